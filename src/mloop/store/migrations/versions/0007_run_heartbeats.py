"""run heartbeats: when a running run's process last said it is alive

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-06 09:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import mloop.store.types

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Nullable: runs from before this migration never had a heartbeat, and are never judged by one.
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("heartbeat_at", mloop.store.types.UTCDateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("heartbeat_at")
