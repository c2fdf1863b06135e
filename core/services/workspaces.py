"""Workspaces: `production` and named sandboxes; every configuration object lives in exactly one."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from offramp.core.environment import DEFAULT_WORKSPACE
from offramp.core.errors import ConfigError, ObjectExistsError, ObjectInUseError, ObjectNotFoundError
from offramp.core.hints import offramp_command
from offramp.core.services import audit
from offramp.core.services.context import Context
from offramp.core.services.naming import check_workspace_name
from offramp.core.state.models import (
    AlertChannel,
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


def lock_for_change(session: Session, workspace: Workspace, *, shared: bool = False) -> None:
    """Lock ``workspace``'s row for the rest of the transaction, before reading what the transaction changes.

    Every transaction that changes a workspace's configuration takes this lock first (PostgreSQL: ``SELECT ... FOR
    UPDATE``), and a promotion holds production's for its whole transaction: an edit made meanwhile waits for the
    promotion and then reads what it wrote, so neither loses the other's change, and the two never deadlock (each
    takes the workspace's lock before any object's). ``shared`` (``FOR SHARE``): read the configuration as of one
    revision (making or pulling a sandbox). On SQLite a write transaction holds the database's write lock from its
    start, which serializes them already.
    """
    if session.get_bind().dialect.name == "postgresql":
        query = select(Workspace.id).where(Workspace.id == workspace.id)
        session.execute(query.with_for_update(read=shared))


def changing_workspace(session: Session, name: str) -> Workspace:
    """The workspace called ``name``, locked for a change of its configuration (see :func:`lock_for_change`)."""
    workspace = get_workspace(session, name)
    if workspace.deleted_at is not None:
        raise ConfigError(
            f"sandbox {name.split('~', 1)[0]!r} was deleted: its row stays only so that its runs are kept as history",
            hint="make a new sandbox with " + offramp_command("sandboxes", "create", name.split("~", 1)[0]),
        )
    lock_for_change(session, workspace)
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
            ("alert channels", AlertChannel),
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
            hint="delete the sandbox with its objects (its runs stay as history) with "
            + offramp_command("sandboxes", "delete", name)
            if name != DEFAULT_WORKSPACE
            else "delete its objects first (runs are kept as history, so a workspace with runs stays)",
        )
    session.delete(workspace)
    audit.record(session, ctx.actor, "delete", "workspace", name, name)


__all__ = [
    "add_workspace",
    "changing_workspace",
    "delete_workspace",
    "get_workspace",
    "list_workspaces",
    "lock_for_change",
]
