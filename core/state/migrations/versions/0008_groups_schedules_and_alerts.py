"""Scheduling and alerts: group runs, schedule fires and states, scheduler processes, alert channels and deliveries.

A group keeps its schedule and alert options (``orchestration_groups.options``); a sandbox may enable its
schedules (``workspaces.schedules_enabled``); a run may be a member of a group run (``runs.group_run_id``).
``schedule_fires`` holds one row per fire, its unique key the claim that makes a fire run once across schedulers.

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | None = None
depends_on: str | None = None

_WHEN = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("workspaces") as batch:
        batch.add_column(sa.Column("schedules_enabled", sa.Boolean(), nullable=False, server_default="0"))
    with op.batch_alter_table("orchestration_groups") as batch:
        batch.add_column(sa.Column("options", sa.JSON(), nullable=False, server_default="{}"))
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("group_run_id", sa.String(length=32), nullable=True))
        batch.create_index(batch.f("ix_runs_group_run_id"), ["group_run_id"])
    op.create_table(
        "group_runs",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("workspace_id", sa.Integer(), nullable=False),
        sa.Column("group_id", sa.Integer(), nullable=True),
        sa.Column("group_name", sa.String(length=127), nullable=False),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("dry_run", sa.Boolean(), nullable=False),
        sa.Column("started_at", _WHEN, nullable=False),
        sa.Column("finished_at", _WHEN, nullable=True),
        sa.Column("heartbeat_at", _WHEN, nullable=True),
        sa.Column("lease_owner", sa.String(length=255), nullable=True),
        sa.Column("lease_generation", sa.Integer(), nullable=False, server_default="1"),
        sa.Column("actor", sa.String(length=255), nullable=True),
        sa.Column("fire_at", _WHEN, nullable=True),
        sa.Column("members", sa.JSON(), nullable=False),
        sa.Column("options", sa.JSON(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["workspace_id"], ["workspaces.id"], name=op.f("fk_group_runs_workspace_id_workspaces"), ondelete="RESTRICT"
        ),
        sa.ForeignKeyConstraint(
            ["group_id"],
            ["orchestration_groups.id"],
            name=op.f("fk_group_runs_group_id_orchestration_groups"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_group_runs")),
    )
    op.create_index(op.f("ix_group_runs_workspace_id"), "group_runs", ["workspace_id"])
    op.create_index(op.f("ix_group_runs_group_id"), "group_runs", ["group_id"])
    op.create_index(op.f("ix_group_runs_status"), "group_runs", ["status"])
    op.create_table(
        "schedule_fires",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("workspace_id", sa.Integer(), nullable=False),
        sa.Column("target_kind", sa.String(length=16), nullable=False),
        sa.Column("target_id", sa.Integer(), nullable=False),
        sa.Column("target_name", sa.String(length=127), nullable=False),
        sa.Column("fire_at", _WHEN, nullable=False),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("run_id", sa.String(length=32), nullable=True),
        sa.Column("claimed_by", sa.String(length=255), nullable=True),
        sa.Column("claimed_at", _WHEN, nullable=False),
        sa.Column("finished_at", _WHEN, nullable=True),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
            name=op.f("fk_schedule_fires_workspace_id_workspaces"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_schedule_fires")),
        sa.UniqueConstraint(
            "target_kind", "target_id", "fire_at", name=op.f("uq_schedule_fires_target_kind_target_id_fire_at")
        ),
    )
    op.create_index(op.f("ix_schedule_fires_workspace_id"), "schedule_fires", ["workspace_id"])
    op.create_index(op.f("ix_schedule_fires_status"), "schedule_fires", ["status"])
    op.create_table(
        "schedule_states",
        sa.Column("target_kind", sa.String(length=16), nullable=False),
        sa.Column("target_id", sa.Integer(), nullable=False),
        sa.Column("workspace_id", sa.Integer(), nullable=False),
        sa.Column("fingerprint", sa.Text(), nullable=False),
        sa.Column("last_fire", _WHEN, nullable=True),
        sa.Column("freshness_value", sa.Text(), nullable=True),
        sa.Column("updated_at", _WHEN, nullable=False),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
            name=op.f("fk_schedule_states_workspace_id_workspaces"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("target_kind", "target_id", name=op.f("pk_schedule_states")),
    )
    op.create_index(op.f("ix_schedule_states_workspace_id"), "schedule_states", ["workspace_id"])
    op.create_table(
        "scheduler_instances",
        sa.Column("id", sa.String(length=255), nullable=False),
        sa.Column("host", sa.String(length=255), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("started_at", _WHEN, nullable=False),
        sa.Column("heartbeat_at", _WHEN, nullable=False),
        sa.Column("stopped_at", _WHEN, nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_scheduler_instances")),
    )
    op.create_table(
        "alert_channels",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("workspace_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=127), nullable=False),
        sa.Column("type", sa.String(length=16), nullable=False),
        sa.Column("credential_id", sa.Integer(), nullable=True),
        sa.Column("settings", sa.JSON(), nullable=False),
        sa.Column("secrets", sa.JSON(), nullable=False),
        sa.Column("created_at", _WHEN, nullable=False),
        sa.Column("updated_at", _WHEN, nullable=False),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
            name=op.f("fk_alert_channels_workspace_id_workspaces"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["credential_id"],
            ["credentials.id"],
            name=op.f("fk_alert_channels_credential_id_credentials"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alert_channels")),
        sa.UniqueConstraint("workspace_id", "name", name=op.f("uq_alert_channels_workspace_id_name")),
        sqlite_autoincrement=True,
    )
    op.create_index(op.f("ix_alert_channels_workspace_id"), "alert_channels", ["workspace_id"])
    op.create_index(op.f("ix_alert_channels_credential_id"), "alert_channels", ["credential_id"])
    op.create_table(
        "alert_states",
        sa.Column("target_kind", sa.String(length=16), nullable=False),
        sa.Column("target_id", sa.Integer(), nullable=False),
        sa.Column("state", sa.JSON(), nullable=False),
        sa.Column("updated_at", _WHEN, nullable=False),
        sa.PrimaryKeyConstraint("target_kind", "target_id", name=op.f("pk_alert_states")),
    )
    op.create_table(
        "alert_deliveries",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("at", _WHEN, nullable=False),
        sa.Column("workspace", sa.String(length=63), nullable=False),
        sa.Column("channel", sa.String(length=127), nullable=False),
        sa.Column("channel_type", sa.String(length=16), nullable=False),
        sa.Column("target_kind", sa.String(length=16), nullable=True),
        sa.Column("target_name", sa.String(length=127), nullable=True),
        sa.Column("run_id", sa.String(length=32), nullable=True),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("notice", sa.JSON(), nullable=False),
        sa.Column("delivered_at", _WHEN, nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alert_deliveries")),
    )
    op.create_index(op.f("ix_alert_deliveries_at"), "alert_deliveries", ["at"])
    op.create_index(op.f("ix_alert_deliveries_workspace"), "alert_deliveries", ["workspace"])


def downgrade() -> None:
    for table in ("alert_deliveries", "alert_states", "alert_channels", "scheduler_instances", "schedule_states",
                  "schedule_fires", "group_runs"):  # fmt: skip
        op.drop_table(table)
    with op.batch_alter_table("runs") as batch:
        batch.drop_index(batch.f("ix_runs_group_run_id"))
        batch.drop_column("group_run_id")
    with op.batch_alter_table("orchestration_groups") as batch:
        batch.drop_column("options")
    with op.batch_alter_table("workspaces") as batch:
        batch.drop_column("schedules_enabled")
