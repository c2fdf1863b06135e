"""Initial schema: workspaces, credentials, destinations, orchestrations, groups, audit events.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "audit_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("workspace", sa.String(length=63), nullable=True),
        sa.Column("actor", sa.String(length=255), nullable=False),
        sa.Column("action", sa.String(length=63), nullable=False),
        sa.Column("object_type", sa.String(length=63), nullable=False),
        sa.Column("object_name", sa.String(length=255), nullable=True),
        sa.Column("details", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_events")),
    )
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_audit_events_at"), ["at"], unique=False)
        batch_op.create_index(batch_op.f("ix_audit_events_workspace"), ["workspace"], unique=False)

    op.create_table(
        "workspaces",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=63), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_workspaces")),
        sa.UniqueConstraint("name", name=op.f("uq_workspaces_name")),
    )
    op.create_table(
        "credentials",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("workspace_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=127), nullable=False),
        sa.Column("type", sa.String(length=127), nullable=False),
        sa.Column("settings", sa.JSON(), nullable=False),
        sa.Column("secrets", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
            name=op.f("fk_credentials_workspace_id_workspaces"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_credentials")),
        sa.UniqueConstraint("workspace_id", "name", name=op.f("uq_credentials_workspace_id_name")),
    )
    with op.batch_alter_table("credentials", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_credentials_workspace_id"), ["workspace_id"], unique=False)

    op.create_table(
        "orchestration_groups",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("workspace_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=127), nullable=False),
        sa.Column("schedule", sa.String(length=255), nullable=True),
        sa.Column("timezone", sa.String(length=64), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
            name=op.f("fk_orchestration_groups_workspace_id_workspaces"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_orchestration_groups")),
        sa.UniqueConstraint("workspace_id", "name", name=op.f("uq_orchestration_groups_workspace_id_name")),
    )
    with op.batch_alter_table("orchestration_groups", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_orchestration_groups_workspace_id"), ["workspace_id"], unique=False)

    op.create_table(
        "destinations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("workspace_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=127), nullable=False),
        sa.Column("type", sa.String(length=127), nullable=False),
        sa.Column("credential_id", sa.Integer(), nullable=False),
        sa.Column("settings", sa.JSON(), nullable=False),
        sa.Column("secrets", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["credential_id"],
            ["credentials.id"],
            name=op.f("fk_destinations_credential_id_credentials"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
            name=op.f("fk_destinations_workspace_id_workspaces"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_destinations")),
        sa.UniqueConstraint("workspace_id", "name", name=op.f("uq_destinations_workspace_id_name")),
    )
    with op.batch_alter_table("destinations", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_destinations_credential_id"), ["credential_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_destinations_workspace_id"), ["workspace_id"], unique=False)

    op.create_table(
        "orchestrations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("workspace_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=127), nullable=False),
        sa.Column("destination_id", sa.Integer(), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("sql", sa.Text(), nullable=False),
        sa.Column("options", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["destination_id"],
            ["destinations.id"],
            name=op.f("fk_orchestrations_destination_id_destinations"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
            name=op.f("fk_orchestrations_workspace_id_workspaces"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_orchestrations")),
        sa.UniqueConstraint("workspace_id", "name", name=op.f("uq_orchestrations_workspace_id_name")),
    )
    with op.batch_alter_table("orchestrations", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_orchestrations_destination_id"), ["destination_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_orchestrations_workspace_id"), ["workspace_id"], unique=False)

    op.create_table(
        "orchestration_group_members",
        sa.Column("group_id", sa.Integer(), nullable=False),
        sa.Column("orchestration_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["group_id"],
            ["orchestration_groups.id"],
            name=op.f("fk_orchestration_group_members_group_id_orchestration_groups"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["orchestration_id"],
            ["orchestrations.id"],
            name=op.f("fk_orchestration_group_members_orchestration_id_orchestrations"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("group_id", "orchestration_id", name=op.f("pk_orchestration_group_members")),
    )
    with op.batch_alter_table("orchestration_group_members", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_orchestration_group_members_orchestration_id"), ["orchestration_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("orchestration_group_members", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_orchestration_group_members_orchestration_id"))

    op.drop_table("orchestration_group_members")
    with op.batch_alter_table("orchestrations", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_orchestrations_workspace_id"))
        batch_op.drop_index(batch_op.f("ix_orchestrations_destination_id"))

    op.drop_table("orchestrations")
    with op.batch_alter_table("destinations", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_destinations_workspace_id"))
        batch_op.drop_index(batch_op.f("ix_destinations_credential_id"))

    op.drop_table("destinations")
    with op.batch_alter_table("orchestration_groups", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_orchestration_groups_workspace_id"))

    op.drop_table("orchestration_groups")
    with op.batch_alter_table("credentials", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_credentials_workspace_id"))

    op.drop_table("credentials")
    op.drop_table("workspaces")
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_audit_events_workspace"))
        batch_op.drop_index(batch_op.f("ix_audit_events_at"))

    op.drop_table("audit_events")
