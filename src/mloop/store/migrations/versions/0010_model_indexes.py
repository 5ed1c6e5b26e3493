"""model indexes: the vector index attached to a model version (base artifact + additions)

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-06 22:30:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import mloop.store.types

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "model_indexes",
        sa.Column("model_id", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("artifact", sa.String(length=64), nullable=False),
        sa.Column("generation", sa.Integer(), nullable=False),
        sa.Column("details", mloop.store.types.JSONText(), nullable=False),
        sa.Column("updated_at", mloop.store.types.UTCDateTime(), nullable=False),
        sa.Column("updated_by", sa.String(length=200), nullable=False),
        sa.ForeignKeyConstraint(
            ["model_id"], ["registered_models.id"], name=op.f("fk_model_indexes_model_id_registered_models")
        ),
        sa.PrimaryKeyConstraint("model_id", "version", name=op.f("pk_model_indexes")),
    )


def downgrade() -> None:
    op.drop_table("model_indexes")
