"""model exports: sibling artifacts of a model version (ONNX)

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-05 22:10:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import mloop.store.types

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "model_exports",
        sa.Column("model_id", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("format", sa.String(length=20), nullable=False),
        sa.Column("artifact", sa.String(length=64), nullable=False),
        sa.Column("details", mloop.store.types.JSONText(), nullable=False),
        sa.Column("created_at", mloop.store.types.UTCDateTime(), nullable=False),
        sa.Column("created_by", sa.String(length=200), nullable=False),
        sa.ForeignKeyConstraint(
            ["model_id"], ["registered_models.id"], name=op.f("fk_model_exports_model_id_registered_models")
        ),
        sa.PrimaryKeyConstraint("model_id", "version", "format", name=op.f("pk_model_exports")),
    )


def downgrade() -> None:
    op.drop_table("model_exports")
