"""Run report (vendor codes, warnings, unknown columns, request ids, timings) and rows per ledger entry.

A ledger entry is one event: it may hold several source rows (line items), so it records how many, and the
vendor's request id of the batch that settled it.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("report", sa.JSON(), nullable=False, server_default="{}"))
    with op.batch_alter_table("row_outcomes", schema=None) as batch_op:
        batch_op.add_column(sa.Column("rows", sa.Integer(), nullable=False, server_default="1"))
        batch_op.add_column(sa.Column("request_id", sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("row_outcomes", schema=None) as batch_op:
        batch_op.drop_column("request_id")
        batch_op.drop_column("rows")
    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.drop_column("report")
