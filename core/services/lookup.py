"""Finding configuration objects by name within a workspace, with errors that list what exists."""

from __future__ import annotations

from typing import TypeVar

from sqlalchemy import select
from sqlalchemy.orm import Session

from offramp.core.errors import ObjectExistsError, ObjectNotFoundError
from offramp.core.hints import offramp_command
from offramp.core.services import audit
from offramp.core.services.naming import check_object_name
from offramp.core.state.models import Credential, Destination, Orchestration, Workspace

Named = TypeVar("Named", Credential, Destination, Orchestration)


def get_named(session: Session, model: type[Named], workspace: Workspace, name: str) -> Named:
    """The object ``name`` of ``model``'s kind in ``workspace``; the error lists the existing ones."""
    found = session.scalar(select(model).where(model.workspace_id == workspace.id, model.name == name))
    if found is None:
        kind = model.__tablename__[:-1]
        names = session.scalars(select(model.name).where(model.workspace_id == workspace.id).order_by(model.name))
        raise ObjectNotFoundError(
            f"no {kind} named {name!r} in workspace {workspace.name!r} (existing: {', '.join(names) or 'none'})",
            hint=f"see `{offramp_command(model.__tablename__, 'list', workspace=workspace.name)}`",
        )
    return found


def list_named(session: Session, model: type[Named], workspace: Workspace) -> list[Named]:
    """Every object of ``model``'s kind in ``workspace``, by name."""
    return list(session.scalars(select(model).where(model.workspace_id == workspace.id).order_by(model.name)))


def ensure_absent(session: Session, model: type[Named], workspace: Workspace, name: str) -> None:
    """Raise ObjectExistsError when ``name`` is taken in ``workspace``."""
    if session.scalar(select(model.id).where(model.workspace_id == workspace.id, model.name == name)) is not None:
        raise ObjectExistsError(
            f"{model.__tablename__[:-1]} {name!r} already exists in workspace {workspace.name!r}",
            hint=f"pick another name, or change the existing one (see `offramp {model.__tablename__} update --help`)",
        )


def rename_named(session: Session, actor: str, model: type[Named], workspace: Workspace, old: str, new: str) -> bool:
    """Rename the object ``old`` to ``new`` (checked as a new name is); False when it already has that name.

    The object keeps its id, so everything that refers to it (bindings, group memberships, runs, the delivery
    history of mode ``new``) follows it. Audited as ``rename`` with ``{"from": old, "to": new}``.
    """
    kind = model.__tablename__[:-1]
    row = get_named(session, model, workspace, old)
    if new == old:
        return False
    check_object_name(kind, new)
    ensure_absent(session, model, workspace, new)
    row.name = new
    session.flush()
    audit.record(session, actor, "rename", kind, new, workspace.name, {"from": old, "to": new})
    return True


__all__ = ["ensure_absent", "get_named", "list_named", "rename_named"]
