"""monitoring results and alerts

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-03 13:58:05.245084
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import mloop.store.types

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "alerts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=500), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("endpoint", sa.String(length=200), nullable=False),
        sa.Column("severity", sa.String(length=20), nullable=False),
        sa.Column("started_at", mloop.store.types.UTCDateTime(), nullable=False),
        sa.Column("last_seen", mloop.store.types.UTCDateTime(), nullable=False),
        sa.Column("resolved_at", mloop.store.types.UTCDateTime(), nullable=True),
        sa.Column("alert", mloop.store.types.JSONText(), nullable=False),
        sa.ForeignKeyConstraint(["project_id"], ["projects.id"], name=op.f("fk_alerts_project_id_projects")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alerts")),
    )
    with op.batch_alter_table("alerts", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_alerts_endpoint"), ["endpoint"], unique=False)
        batch_op.create_index("ix_alerts_key_open", ["project_id", "key", "resolved_at"], unique=False)

    op.create_table(
        "monitor_results",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("endpoint", sa.String(length=200), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("window_start", mloop.store.types.UTCDateTime(), nullable=False),
        sa.Column("window_end", mloop.store.types.UTCDateTime(), nullable=False),
        sa.Column("rows", sa.Integer(), nullable=False),
        sa.Column("computed_at", mloop.store.types.UTCDateTime(), nullable=False),
        sa.Column("result", mloop.store.types.JSONText(), nullable=False),
        sa.ForeignKeyConstraint(
            ["project_id"], ["projects.id"], name=op.f("fk_monitor_results_project_id_projects")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_monitor_results")),
        sa.UniqueConstraint(
            "project_id",
            "endpoint",
            "kind",
            "version",
            "window_start",
            "window_end",
            name="uq_monitor_results_window",
        ),
    )
    with op.batch_alter_table("monitor_results", schema=None) as batch_op:
        batch_op.create_index(
            "ix_monitor_results_endpoint_kind_start",
            ["project_id", "endpoint", "kind", "window_start"],
            unique=False,
        )


def downgrade() -> None:
    with op.batch_alter_table("monitor_results", schema=None) as batch_op:
        batch_op.drop_index("ix_monitor_results_endpoint_kind_start")

    op.drop_table("monitor_results")
    with op.batch_alter_table("alerts", schema=None) as batch_op:
        batch_op.drop_index("ix_alerts_key_open")
        batch_op.drop_index(batch_op.f("ix_alerts_endpoint"))

    op.drop_table("alerts")
