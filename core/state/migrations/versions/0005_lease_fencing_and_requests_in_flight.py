"""Lease generations (fencing), the `unknown` outcome count, and the requests a run has in flight.

``runs.lease_generation`` is raised by every takeover of a run, so a paused process that lost its lease can tell
before it sends or writes. ``run_requests`` records each request's event keys before it is sent: after a crash,
the events of an unsettled request may be at the vendor without being in the ledger. ``runs.unknown`` counts the
events whose outcome is unknown and that were not resent because the vendor's deduplication window had passed.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("lease_generation", sa.Integer(), nullable=False, server_default="1"))
        batch_op.add_column(sa.Column("unknown", sa.Integer(), nullable=False, server_default="0"))
    op.create_table(
        "run_requests",
        sa.Column("run_id", sa.String(length=32), nullable=False),
        sa.Column("request_no", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("event_keys", sa.JSON(), nullable=False),
        sa.Column("settled", sa.Boolean(), nullable=False, server_default="0"),
        sa.ForeignKeyConstraint(["run_id"], ["runs.id"], name=op.f("fk_run_requests_run_id_runs"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("run_id", "request_no", name=op.f("pk_run_requests")),
    )


def downgrade() -> None:
    op.drop_table("run_requests")
    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.drop_column("unknown")
        batch_op.drop_column("lease_generation")
