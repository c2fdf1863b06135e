"""Finding configuration objects by name within a workspace, with errors that list what exists."""

from __future__ import annotations

from typing import TypeVar

from sqlalchemy import select
from sqlalchemy.orm import Session

from offramp.core.errors import ObjectExistsError, ObjectNotFoundError
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
            hint=f"see `offramp {model.__tablename__} list`",
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
            hint="pick another name, or delete it first",
        )


__all__ = ["ensure_absent", "get_named", "list_named"]
