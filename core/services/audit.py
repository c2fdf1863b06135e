"""The audit trail: every change and who made it. Nothing in offramp deletes audit events."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from offramp.core.state.models import AuditEvent, Workspace

# Every object type the audit trail records (``offramp audit --type`` takes one of these).
OBJECT_TYPES = (
    "alert_channel", "credential", "destination", "group", "orchestration", "promotion", "run", "sandbox", "secrets",
    "store", "workspace",
)  # fmt: skip

# The changes that make a workspace's configuration what it is: each advances the workspace's revision as it is
# recorded, so that every change, however made (a command, apply, a promotion), does, and nothing else does (a
# token refresh, a run, a re-authorization). Sandboxes compare production's revision with their base. Alert
# channels are not among them: a sandbox never copies them (it names production's), so there is nothing to pull.
CONFIGURATION_TYPES = frozenset({"credential", "destination", "group", "orchestration"})
CONFIGURATION_ACTIONS = frozenset({"create", "update", "delete", "rename"})


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
    if workspace is not None and object_type in CONFIGURATION_TYPES and action in CONFIGURATION_ACTIONS:
        # In the change's own transaction: a rolled-back change leaves the revision as it was. On PostgreSQL the
        # UPDATE also locks the workspace's row until the commit, so a promotion that locked it first is waited for.
        session.execute(
            update(Workspace).where(Workspace.name == workspace).values(revision=Workspace.revision + 1),
            execution_options={"synchronize_session": False},
        )
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


__all__ = ["CONFIGURATION_ACTIONS", "CONFIGURATION_TYPES", "OBJECT_TYPES", "list_events", "record"]
