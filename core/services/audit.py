"""The audit trail: every change and who made it. Nothing in offramp deletes audit events."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from offramp.core.state.models import AuditEvent

# Every object type the audit trail records (``offramp audit --type`` takes one of these).
OBJECT_TYPES = ("credential", "destination", "group", "orchestration", "run", "secrets", "store", "workspace")


def record(
    session: Session,
    actor: str,
    action: str,
    object_type: str,
    object_name: str | None,
    workspace: str | None,
    details: dict[str, Any] | None = None,
) -> AuditEvent:
    """Add an audit event to the current transaction. ``details`` must never hold secret values."""
    assert object_type in OBJECT_TYPES, f"add {object_type!r} to OBJECT_TYPES"
    event = AuditEvent(
        actor=actor,
        action=action,
        object_type=object_type,
        object_name=object_name,
        workspace=workspace,
        details=details or {},
    )
    session.add(event)
    return event


def list_events(
    session: Session, *, workspace: str | None = None, object_type: str | None = None, limit: int = 100
) -> list[AuditEvent]:
    """Audit events, newest first."""
    query = select(AuditEvent).order_by(AuditEvent.at.desc(), AuditEvent.id.desc()).limit(limit)
    if workspace is not None:
        query = query.where(AuditEvent.workspace == workspace)
    if object_type is not None:
        query = query.where(AuditEvent.object_type == object_type)
    return list(session.scalars(query))


__all__ = ["OBJECT_TYPES", "list_events", "record"]
