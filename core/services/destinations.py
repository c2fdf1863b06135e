"""Destinations: a typed vendor target bound to one credential of a type it accepts."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from offramp.core.config import PluginSettings
from offramp.core.errors import ConfigError, ObjectInUseError
from offramp.core.plugin_types import DestinationType
from offramp.core.services import audit
from offramp.core.services.context import Context
from offramp.core.services.credentials import get_credential
from offramp.core.services.lookup import ensure_absent, get_named, list_named
from offramp.core.services.naming import check_object_name
from offramp.core.services.typed_settings import (
    ResolvedSettings,
    decrypt_secrets,
    effective_settings,
    encrypt_secrets,
    load_settings,
    resolve_settings,
    secret_status,
)
from offramp.core.services.workspaces import get_workspace
from offramp.core.state.models import Credential, Destination, Orchestration, Workspace


def get_destination(session: Session, workspace: Workspace, name: str) -> Destination:
    """The destination ``name`` in ``workspace``; the error lists the existing ones."""
    return get_named(session, Destination, workspace, name)


def list_destinations(session: Session, workspace: Workspace) -> list[Destination]:
    """Destinations of a workspace, by name."""
    return list_named(session, Destination, workspace)


def _check_binding(kind: DestinationType, credential: Credential, name: str) -> None:
    if kind.credential_types and credential.type not in kind.credential_types:
        accepted = ", ".join(kind.credential_types)
        raise ConfigError(
            f"destination {name!r} ({kind.name}) cannot use credential {credential.name!r} of type {credential.type}",
            hint=f"bind it to a credential of type {accepted}",
        )


def unsaved_destination(
    session: Session,
    ctx: Context,
    workspace_name: str,
    name: str,
    type_name: str,
    credential_name: str,
    raw: dict[str, Any],
) -> tuple[Destination, ResolvedSettings]:
    """A validated destination row, not yet added to the session, and its resolved settings."""
    check_object_name("destination", name)
    workspace = get_workspace(session, workspace_name)
    kind = ctx.registry.destination_type(type_name)
    ensure_absent(session, Destination, workspace, name)
    credential = get_credential(session, workspace, credential_name)
    _check_binding(kind, credential, name)
    resolved = resolve_settings(kind.settings, raw, f"destination {name!r} ({type_name})")
    records, _ = encrypt_secrets(ctx.secret_box, resolved, {}, {}) if resolved.secret_values else ({}, [])
    row = Destination(
        workspace=workspace, name=name, type=type_name, credential=credential, settings=resolved.plain, secrets=records
    )
    return row, resolved


def add_destination(
    session: Session,
    ctx: Context,
    workspace_name: str,
    name: str,
    type_name: str,
    credential_name: str,
    raw: dict[str, Any],
) -> Destination:
    """Validate and store a new destination (its connection test, when wanted, is test_new_destination, run first)."""
    row, resolved = unsaved_destination(session, ctx, workspace_name, name, type_name, credential_name, raw)
    session.add(row)
    session.flush()
    audit.record(
        session, ctx.actor, "create", "destination", name, row.workspace.name,
        {"type": type_name, "credential": row.credential.name, "settings": resolved.plain},
    )  # fmt: skip
    return row


def update_destination(
    session: Session, ctx: Context, row: Destination, credential_name: str, raw: dict[str, Any]
) -> list[str]:
    """Replace a destination's settings and credential; return what changed."""
    kind = ctx.registry.destination_type(row.type)
    subject = f"destination {row.name!r} ({row.type})"
    credential = get_credential(session, row.workspace, credential_name)
    _check_binding(kind, credential, row.name)
    current = decrypt_secrets(ctx.secret_box, row.secrets, subject) if row.secrets else {}
    resolved = resolve_settings(kind.settings, raw, subject, kept_secrets=current, allow_literal_secrets=False)
    records, changed_secrets = (
        encrypt_secrets(ctx.secret_box, resolved, row.secrets, current) if resolved.secret_values else ({}, [])
    )
    changed = {k for k in {*resolved.plain, *row.settings} if resolved.plain.get(k) != row.settings.get(k)}
    changed |= set(changed_secrets)
    if credential.id != row.credential_id:
        changed.add("credential")
    if changed:
        row.settings = resolved.plain
        row.secrets = records
        row.credential = credential
        audit.record(
            session, ctx.actor, "update", "destination", row.name, row.workspace.name,
            {"fields": sorted(changed), "settings": resolved.plain, "credential": credential.name},
        )  # fmt: skip
    return sorted(changed)


def destination_settings(ctx: Context, row: Destination) -> PluginSettings:
    """The destination's full, validated settings."""
    kind = ctx.registry.destination_type(row.type)
    return load_settings(kind.settings, row.settings, row.secrets, ctx.secret_box, f"destination {row.name!r}")


def users_of(session: Session, row: Destination) -> list[str]:
    """Names of the orchestrations that send to a destination."""
    query = select(Orchestration.name).where(Orchestration.destination_id == row.id).order_by(Orchestration.name)
    return list(session.scalars(query))


def describe_destination(session: Session, ctx: Context, row: Destination) -> dict[str, Any]:
    """What `destinations show` prints; never a secret value."""
    kind = ctx.registry.destination_type(row.type)
    return {
        "name": row.name,
        "workspace": row.workspace.name,
        "type": row.type,
        "credential": row.credential.name,
        "settings": effective_settings(kind.settings, row.settings),
        "secrets": secret_status(kind.settings, row.secrets),
        "used_by": users_of(session, row),
        "created_at": row.created_at.isoformat(),
        "updated_at": row.updated_at.isoformat(),
    }


def delete_destination(session: Session, ctx: Context, workspace_name: str, name: str) -> None:
    """Delete a destination no orchestration sends to."""
    workspace = get_workspace(session, workspace_name)
    row = get_destination(session, workspace, name)
    users = users_of(session, row)
    if users:
        raise ObjectInUseError(
            f"destination {name!r} is used by orchestration(s) {', '.join(users)}",
            hint="delete those orchestrations first",
            users=users,
        )
    session.delete(row)
    audit.record(session, ctx.actor, "delete", "destination", name, workspace.name, {"type": row.type})


__all__ = [
    "add_destination",
    "delete_destination",
    "describe_destination",
    "destination_settings",
    "get_destination",
    "list_destinations",
    "unsaved_destination",
    "update_destination",
]
