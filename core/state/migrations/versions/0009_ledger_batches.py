"""The ledger per batch: one row per settled batch of sent or skipped events, their keys as one blob.

``ledger_batches`` holds, per run, the batches whose events share one outcome (sent, or skipped whole), with their
event and row counts and the events' ledger keys and rows packed together (``offramp.core.runner.packed_keys``).
Rejected, failed and unknown events stay one ``row_outcomes`` row each. Nothing is moved: the runs recorded before
this revision keep their per-event rows, and every reader of the ledger reads both tables, so ``runs show``, resume
and mode ``new`` work across the upgrade.

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "ledger_batches",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.String(length=32), nullable=False),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("reason_code", sa.String(length=64), nullable=True),
        sa.Column("message", sa.Text(), nullable=True),
        sa.Column("events", sa.Integer(), nullable=False),
        sa.Column("rows", sa.Integer(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("batch", sa.Integer(), nullable=True),
        sa.Column("request_id", sa.String(length=64), nullable=True),
        sa.Column("keys", sa.LargeBinary(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["run_id"], ["runs.id"], name=op.f("fk_ledger_batches_run_id_runs"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ledger_batches")),
    )
    with op.batch_alter_table("ledger_batches") as batch:
        batch.create_index(batch.f("ix_ledger_batches_run_id"), ["run_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("ledger_batches") as batch:
        batch.drop_index(batch.f("ix_ledger_batches_run_id"))
    op.drop_table("ledger_batches")
