"""nullable metric values: NULL records NaN

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-24 03:42:08.962846
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("run_latest_metrics", schema=None) as batch_op:
        batch_op.alter_column("value", existing_type=sa.FLOAT(), nullable=True)

    with op.batch_alter_table("run_metrics", schema=None) as batch_op:
        batch_op.alter_column("value", existing_type=sa.FLOAT(), nullable=True)


def downgrade() -> None:
    # NaN points have no NOT NULL form: they go, the finite points stay.
    op.execute("DELETE FROM run_metrics WHERE value IS NULL")
    op.execute("DELETE FROM run_latest_metrics WHERE value IS NULL")
    with op.batch_alter_table("run_metrics", schema=None) as batch_op:
        batch_op.alter_column("value", existing_type=sa.FLOAT(), nullable=False)

    with op.batch_alter_table("run_latest_metrics", schema=None) as batch_op:
        batch_op.alter_column("value", existing_type=sa.FLOAT(), nullable=False)
