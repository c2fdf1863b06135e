"""Workspaces: `production` and named sandboxes; every configuration object lives in exactly one."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from offramp.core.errors import ObjectExistsError, ObjectInUseError, ObjectNotFoundError
from offramp.core.services import audit
from offramp.core.services.context import Context
from offramp.core.services.naming import check_workspace_name
from offramp.core.state.models import (
    Credential,
    Destination,
    Orchestration,
    OrchestrationGroup,
    Run,
    Workspace,
)


def get_workspace(session: Session, name: str) -> Workspace:
    """The workspace called ``name``; the error lists the ones that exist."""
    workspace = session.scalar(select(Workspace).where(Workspace.name == name))
    if workspace is None:
        live = select(Workspace.name).where(Workspace.deleted_at.is_(None)).order_by(Workspace.name)
        existing = ", ".join(session.scalars(live)) or "none"
        raise ObjectNotFoundError(
            f"no workspace named {name!r} (existing: {existing})",
            hint=f"make a sandbox from production with `offramp sandboxes create {name}`, or pass --workspace",
        )
    return workspace


def list_workspaces(session: Session) -> list[Workspace]:
    """Every workspace, by name (not deleted sandboxes, whose rows stay only for their runs)."""
    return list(session.scalars(select(Workspace).where(Workspace.deleted_at.is_(None)).order_by(Workspace.name)))


def add_workspace(session: Session, ctx: Context, name: str, description: str | None = None) -> Workspace:
    """Create an empty workspace."""
    check_workspace_name(name)
    if session.scalar(select(Workspace).where(Workspace.name == name)) is not None:
        raise ObjectExistsError(f"workspace {name!r} already exists")
    workspace = Workspace(name=name, description=description)
    session.add(workspace)
    session.flush()
    audit.record(session, ctx.actor, "create", "workspace", name, name)
    return workspace


def delete_workspace(session: Session, ctx: Context, name: str) -> None:
    """Delete an empty workspace; refused while it holds objects or runs."""
    workspace = get_workspace(session, name)
    counts = {
        label: session.scalar(select(func.count()).select_from(model).where(model.workspace_id == workspace.id))
        for label, model in (
            ("credentials", Credential),
            ("destinations", Destination),
            ("orchestrations", Orchestration),
            ("orchestration groups", OrchestrationGroup),
            ("runs", Run),
        )
    }
    held = [f"{count} {label}" for label, count in counts.items() if count]
    if held:
        raise ObjectInUseError(
            f"workspace {name!r} still holds {', '.join(held)}",
            hint="delete its objects first (runs are kept as history, so a workspace with runs stays)",
        )
    session.delete(workspace)
    audit.record(session, ctx.actor, "delete", "workspace", name, name)


__all__ = ["add_workspace", "delete_workspace", "get_workspace", "list_workspaces"]
