"""materializations

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24 02:24:35.154147
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import mloop.store.types

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "materializations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("view", sa.String(length=200), nullable=False),
        sa.Column("view_version", sa.Integer(), nullable=False),
        sa.Column("start_ts", mloop.store.types.UTCDateTime(), nullable=False),
        sa.Column("end_ts", mloop.store.types.UTCDateTime(), nullable=False),
        sa.Column("rows", sa.BigInteger(), nullable=False),
        sa.Column("values", sa.BigInteger(), nullable=False),
        sa.Column("last_event_ts", mloop.store.types.UTCDateTime(), nullable=True),
        sa.Column("started_at", mloop.store.types.UTCDateTime(), nullable=False),
        sa.Column("finished_at", mloop.store.types.UTCDateTime(), nullable=False),
        sa.Column("actor", sa.String(length=200), nullable=False),
        sa.ForeignKeyConstraint(
            ["project_id"], ["projects.id"], name=op.f("fk_materializations_project_id_projects")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_materializations")),
    )
    with op.batch_alter_table("materializations", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_materializations_project_id_view_end_ts"),
            ["project_id", "view", "end_ts"],
            unique=False,
        )


def downgrade() -> None:
    with op.batch_alter_table("materializations", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_materializations_project_id_view_end_ts"))

    op.drop_table("materializations")
