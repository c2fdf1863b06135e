"""Credential status (ready, needs_authorization, needs_reauth), last refresh and access token expiry.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    with op.batch_alter_table("credentials", schema=None) as batch_op:
        batch_op.add_column(sa.Column("status", sa.String(length=32), server_default="ready", nullable=False))
        batch_op.add_column(sa.Column("status_reason", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("last_refreshed_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("access_token_expires_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("credentials", schema=None) as batch_op:
        batch_op.drop_column("access_token_expires_at")
        batch_op.drop_column("last_refreshed_at")
        batch_op.drop_column("status_reason")
        batch_op.drop_column("status")
