"""The warnings of each event of a run (``offramp runs show RUN --warnings``).

``run_warnings`` holds, per run and ledger key of an event id, the names of the warnings its preparation raised
(``invalid_phone``), never a value. The ledger writer adds them in the same transaction as the event's entry.

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "run_warnings",
        sa.Column("run_id", sa.String(length=32), nullable=False),
        sa.Column("event_id", sa.String(length=255), nullable=False),
        sa.Column("warnings", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(["run_id"], ["runs.id"], name=op.f("fk_run_warnings_run_id_runs"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("run_id", "event_id", name=op.f("pk_run_warnings")),
    )


def downgrade() -> None:
    op.drop_table("run_warnings")
