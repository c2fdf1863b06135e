"""Sandboxes and promotion: workspace revisions, a sandbox's base, the objects' origins, the promotions.

``workspaces.revision`` advances with every configuration change; a sandbox keeps the production revision it was
made from or last pulled (``base_revision``) and production's configuration then (``base_snapshot``). A sandbox's
objects keep the id of the production object they were copied from (``origin_id``). ``promotions`` is the history.

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | None = None
depends_on: str | None = None

_ORIGINS = ("destinations", "orchestrations", "orchestration_groups")
# Tables whose ids are identities (see _NEVER_REUSED_IDS in offramp.core.state.models): rebuilt on SQLite with
# AUTOINCREMENT, so that a deleted object's id is never given to a new one.
_IDENTITIES = ("credentials", *_ORIGINS)


def upgrade() -> None:
    with op.batch_alter_table("workspaces") as batch:
        batch.add_column(sa.Column("created_by", sa.String(length=255), nullable=True))
        batch.add_column(sa.Column("revision", sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("base_revision", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("base_snapshot", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("test_event_code", sa.String(length=255), nullable=True))
        batch.add_column(sa.Column("reverts_promotion", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True))
    for table in _ORIGINS:
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column("origin_id", sa.Integer(), nullable=True))
    if op.get_bind().dialect.name == "sqlite":
        # Each table is copied, dropped and its copy renamed; StateStore.upgrade runs this with foreign keys off (a
        # drop would cascade) and checks them before the commit.
        for table in _IDENTITIES:
            with op.batch_alter_table(table, recreate="always", table_kwargs={"sqlite_autoincrement": True}):
                pass
    op.create_table(
        "promotions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(length=255), nullable=False),
        sa.Column("sandbox", sa.String(length=63), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("revision_before", sa.Integer(), nullable=False),
        sa.Column("revision_after", sa.Integer(), nullable=False),
        sa.Column("diff", sa.JSON(), nullable=False),
        sa.Column("before", sa.JSON(), nullable=False),
        sa.Column("after", sa.JSON(), nullable=False),
        sa.Column("reverts", sa.Integer(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_promotions")),
    )
    op.create_index(op.f("ix_promotions_at"), "promotions", ["at"])


def downgrade() -> None:
    op.drop_index(op.f("ix_promotions_at"), table_name="promotions")
    op.drop_table("promotions")
    for table in _ORIGINS:
        with op.batch_alter_table(table) as batch:
            batch.drop_column("origin_id")
    with op.batch_alter_table("workspaces") as batch:
        for column in (
            "deleted_at",
            "reverts_promotion",
            "test_event_code",
            "base_snapshot",
            "base_revision",
            "revision",
            "created_by",
        ):
            batch.drop_column(column)
