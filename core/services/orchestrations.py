"""Orchestrations: one SQL query, one destination, the run options."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from offramp.core.errors import (
    ConfigError,
    ObjectInUseError,
    SettingsValidationError,
)
from offramp.core.orchestration_options import OrchestrationOptions, check_source
from offramp.core.services import audit
from offramp.core.services.context import Context
from offramp.core.services.destinations import get_destination
from offramp.core.services.lookup import ensure_absent, get_named, list_named
from offramp.core.services.naming import check_object_name
from offramp.core.services.workspaces import get_workspace
from offramp.core.state.models import Orchestration, OrchestrationGroup, OrchestrationGroupMember, Workspace


def get_orchestration(session: Session, workspace: Workspace, name: str) -> Orchestration:
    """The orchestration ``name`` in ``workspace``; the error lists the existing ones."""
    return get_named(session, Orchestration, workspace, name)


def list_orchestrations(session: Session, workspace: Workspace) -> list[Orchestration]:
    """Orchestrations of a workspace, by name."""
    return list_named(session, Orchestration, workspace)


def validate_options(raw: dict[str, Any], subject: str) -> dict[str, Any]:
    """Validate run options; return the values the user set (defaults stay implicit)."""
    try:
        options = OrchestrationOptions.model_validate(raw)
    except ValidationError as exc:
        problems = [
            (".".join(str(p) for p in e["loc"]) or "options", str(e["msg"]).removeprefix("Value error, "))
            for e in exc.errors(include_url=False)
        ]
        raise SettingsValidationError(subject, problems, hint="see `offramp orchestrations add --help`") from None
    return options.model_dump(mode="json", exclude_unset=True)


def check_sql(sql: str, subject: str) -> str:
    """A query must have text; whether it is a single read query is checked when it runs."""
    if not sql.strip():
        raise ConfigError(f"{subject}: the SQL is empty", hint="pass --sql TEXT or --sql-file FILE")
    return sql


def add_orchestration(
    session: Session,
    ctx: Context,
    workspace_name: str,
    name: str,
    destination_name: str,
    sql: str,
    source: str,
    options: dict[str, Any],
) -> Orchestration:
    """Validate and store a new orchestration."""
    check_object_name("orchestration", name)
    subject = f"orchestration {name!r}"
    workspace = get_workspace(session, workspace_name)
    ensure_absent(session, Orchestration, workspace, name)
    destination = get_destination(session, workspace, destination_name)
    row = Orchestration(
        workspace=workspace,
        name=name,
        destination=destination,
        source=check_source(source),
        sql=check_sql(sql, subject),
        options=validate_options(options, subject),
    )
    session.add(row)
    session.flush()
    audit.record(
        session, ctx.actor, "create", "orchestration", name, workspace.name,
        {"destination": destination.name, "source": row.source, "options": row.options},
    )  # fmt: skip
    return row


def update_orchestration(
    session: Session,
    ctx: Context,
    row: Orchestration,
    destination_name: str,
    sql: str,
    source: str,
    options: dict[str, Any],
) -> list[str]:
    """Replace an orchestration's definition; return the fields that changed."""
    subject = f"orchestration {row.name!r}"
    destination = get_destination(session, row.workspace, destination_name)
    new: dict[str, Any] = {
        "destination": destination.name,
        "sql": check_sql(sql, subject),
        "source": check_source(source),
        "options": validate_options(options, subject),
    }
    old = {"destination": row.destination.name, "sql": row.sql, "source": row.source, "options": row.options}
    changed = sorted(key for key in new if new[key] != old[key])
    if changed:
        row.destination, row.sql, row.source, row.options = (
            destination,
            new["sql"],
            new["source"],
            new["options"],
        )
        audit.record(session, ctx.actor, "update", "orchestration", row.name, row.workspace.name, {"fields": changed})
    return changed


def groups_of(session: Session, row: Orchestration) -> list[str]:
    """Names of the orchestration groups an orchestration belongs to."""
    query = (
        select(OrchestrationGroup.name)
        .join(OrchestrationGroupMember, OrchestrationGroupMember.group_id == OrchestrationGroup.id)
        .where(OrchestrationGroupMember.orchestration_id == row.id)
        .order_by(OrchestrationGroup.name)
    )
    return list(session.scalars(query))


def describe_orchestration(session: Session, row: Orchestration) -> dict[str, Any]:
    """What `orchestrations show` prints."""
    defaults = OrchestrationOptions().model_dump(mode="json")
    return {
        "name": row.name,
        "workspace": row.workspace.name,
        "destination": row.destination.name,
        "source": row.source,
        "options": {**defaults, **row.options},
        "groups": groups_of(session, row),
        "sql": row.sql,
        "created_at": row.created_at.isoformat(),
        "updated_at": row.updated_at.isoformat(),
    }


def delete_orchestration(session: Session, ctx: Context, workspace_name: str, name: str) -> None:
    """Delete an orchestration that no group runs; its past runs stay as history."""
    workspace = get_workspace(session, workspace_name)
    row = get_orchestration(session, workspace, name)
    groups = groups_of(session, row)
    if groups:
        raise ObjectInUseError(
            f"orchestration {name!r} belongs to group(s) {', '.join(groups)}",
            hint="remove it from those groups first",
            users=groups,
        )
    session.delete(row)
    audit.record(session, ctx.actor, "delete", "orchestration", name, workspace.name)


__all__ = [
    "add_orchestration",
    "delete_orchestration",
    "describe_orchestration",
    "get_orchestration",
    "list_orchestrations",
    "update_orchestration",
    "validate_options",
]
