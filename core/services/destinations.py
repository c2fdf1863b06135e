"""Destinations: a typed vendor target bound to one credential of a type it accepts.

A sandbox's destination may be bound to its own credential or to production's, shared by reference
(``credentials.resolve_credential``: the sandbox's own first, then production's).
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from offramp.core.config import PluginSettings
from offramp.core.errors import ConfigError, ObjectInUseError
from offramp.core.hints import offramp_command
from offramp.core.plugin_types import DestinationType
from offramp.core.services import audit
from offramp.core.services.context import Context
from offramp.core.services.credentials import (
    edited_settings,
    list_credentials,
    resolve_credential,
    shared_credentials,
)
from offramp.core.services.lookup import ensure_absent, get_named, list_named, rename_named
from offramp.core.services.naming import check_object_name
from offramp.core.services.typed_settings import (
    ResolvedSettings,
    SecretRecords,
    decrypt_secrets,
    effective_settings,
    encrypt_secrets,
    load_settings,
    resolve_settings,
    secret_status,
)
from offramp.core.services.workspaces import changing_workspace, get_workspace
from offramp.core.state.models import Credential, Destination, Orchestration, Workspace


def get_destination(session: Session, workspace: Workspace, name: str) -> Destination:
    """The destination ``name`` in ``workspace``; the error lists the existing ones."""
    return get_named(session, Destination, workspace, name)


def list_destinations(session: Session, workspace: Workspace) -> list[Destination]:
    """Destinations of a workspace, by name."""
    return list_named(session, Destination, workspace)


def _check_binding(
    session: Session, kind: DestinationType, credential: Credential, name: str, workspace: Workspace
) -> None:
    if kind.credential_types and credential.type not in kind.credential_types:
        accepted = ", ".join(kind.credential_types)
        usable = [*list_credentials(session, workspace), *shared_credentials(session, workspace)]
        fitting = sorted(row.name for row in usable if row.type in kind.credential_types)
        hint = f"bind it to a credential of type {accepted}"
        hint += f" (existing: {', '.join(fitting)})" if fitting else " (see `offramp credentials add --help`)"
        raise ConfigError(
            f"destination {name!r} ({kind.name}) cannot use credential {credential.name!r} of type {credential.type}",
            hint=hint,
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
    credential = resolve_credential(session, workspace, credential_name)
    _check_binding(session, kind, credential, name, workspace)
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
    changing_workspace(session, workspace_name)
    row, resolved = unsaved_destination(session, ctx, workspace_name, name, type_name, credential_name, raw)
    session.add(row)
    session.flush()
    audit.record(
        session, ctx.actor, "create", "destination", name, row.workspace.name,
        {"type": type_name, "credential": row.credential.name, "settings": resolved.plain},
    )  # fmt: skip
    return row


@dataclass(frozen=True)
class DestinationChange:
    """What an update of a destination would store, worked out without changing the row."""

    credential: Credential
    resolved: ResolvedSettings
    records: SecretRecords
    fields: list[str]  # the fields that change (secrets by name), and "credential" when it does

    def unsaved(self, row: Destination) -> Destination:
        """A copy of ``row`` with the change, not added to any session (for its connection test)."""
        return Destination(
            workspace=row.workspace, name=row.name, type=row.type, credential=self.credential,
            settings=self.resolved.plain, secrets=self.records,
        )  # fmt: skip


def destination_change(
    session: Session,
    ctx: Context,
    row: Destination,
    credential_name: str | None,
    raw: dict[str, Any],
    *,
    unset: Collection[str] = (),
    allow_literal_secrets: bool = False,
) -> DestinationChange:
    """Validate new settings and credential for ``row`` (stored secrets not in ``raw`` or ``unset`` are kept).

    ``credential_name`` None keeps the current binding, whatever it is; a name is resolved as ``add`` resolves it
    (:func:`~offramp.core.services.credentials.resolve_credential`: in a sandbox its own credential first, then
    production's), and the binding changes when that is another credential (compared by id, not by name: a
    sandbox's own ``tt`` is not production's ``tt``).
    """
    kind = ctx.registry.destination_type(row.type)
    subject = f"destination {row.name!r} ({row.type})"
    if credential_name is None:
        credential = row.credential
    else:
        credential = resolve_credential(session, row.workspace, credential_name)
    _check_binding(session, kind, credential, row.name, row.workspace)
    stored = decrypt_secrets(ctx.secret_box, row.secrets, subject) if row.secrets else {}
    current = {field: value for field, value in stored.items() if field not in unset}
    resolved = resolve_settings(
        kind.settings, raw, subject, kept_secrets=current, allow_literal_secrets=allow_literal_secrets
    )
    records, changed_secrets = (
        encrypt_secrets(ctx.secret_box, resolved, row.secrets, stored) if resolved.secret_values else ({}, [])
    )
    changed = {k for k in {*resolved.plain, *row.settings} if resolved.plain.get(k) != row.settings.get(k)}
    changed |= set(changed_secrets) | set(row.secrets.keys() - records.keys())
    if credential.id != row.credential_id:
        changed.add("credential")
    return DestinationChange(credential, resolved, records, sorted(changed))


def update_destination(
    session: Session,
    ctx: Context,
    row: Destination,
    credential_name: str,
    raw: dict[str, Any],
    *,
    unset: Collection[str] = (),
    allow_literal_secrets: bool = False,
) -> list[str]:
    """Replace a destination's settings and credential; return what changed.

    For `apply` and a destination action, which always name a credential: the name of the credential ``row`` is
    bound to keeps that binding (an exported sandbox names production's shared ``tt`` and its own ``tt`` alike, so
    applying the export again must not move a destination from one to the other); another name is resolved as
    ``add`` resolves it. Audited with the names of the fields that changed and the plain settings; a secret only by
    its name.
    """
    named = None if credential_name == row.credential.name else credential_name
    change = destination_change(session, ctx, row, named, raw, unset=unset, allow_literal_secrets=allow_literal_secrets)
    return apply_change(session, ctx, row, change)


def apply_change(session: Session, ctx: Context, row: Destination, change: DestinationChange) -> list[str]:
    """Store a :class:`DestinationChange` on ``row`` (audited when something changes); return the changed fields."""
    if change.fields:
        row.settings = change.resolved.plain
        row.secrets = change.records
        row.credential = change.credential
        audit.record(
            session, ctx.actor, "update", "destination", row.name, row.workspace.name,
            {"fields": change.fields, "settings": change.resolved.plain, "credential": change.credential.name},
        )  # fmt: skip
    return change.fields


def edited_destination(
    session: Session,
    ctx: Context,
    workspace_name: str,
    name: str,
    changes: dict[str, Any],
    unset: Collection[str] = (),
    credential_name: str | None = None,
) -> tuple[Destination, DestinationChange]:
    """`destinations update`: the destination and its change (``changes`` set, ``unset`` removed, every other
    value kept), validated as ``add`` validates, every invalid field at once; the row is not changed."""
    row = get_destination(session, changing_workspace(session, workspace_name), name)
    kind = ctx.registry.destination_type(row.type)
    raw = edited_settings(kind.settings, f"destination {row.name!r} ({row.type})", row.settings, changes, unset)
    # Without --credential the binding stays as it is; with one, the name means what it means to `add`.
    change = destination_change(session, ctx, row, credential_name, raw, unset=unset, allow_literal_secrets=True)
    return row, change


def edit_destination(
    session: Session,
    ctx: Context,
    workspace_name: str,
    name: str,
    changes: dict[str, Any],
    unset: Collection[str] = (),
    credential_name: str | None = None,
) -> list[str]:
    """Store what :func:`edited_destination` works out; return the fields that changed (audited as ``update``)."""
    row, change = edited_destination(session, ctx, workspace_name, name, changes, unset, credential_name)
    return apply_change(session, ctx, row, change)


def rename_destination(session: Session, ctx: Context, workspace_name: str, old: str, new: str) -> bool:
    """Rename a destination; the orchestrations sending to it keep sending to it (they refer to its id)."""
    return rename_named(session, ctx.actor, Destination, changing_workspace(session, workspace_name), old, new)


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


def _move_hint(session: Session, row: Destination, users: list[str]) -> str:
    """Commands that free a destination: point its orchestrations at another destination, or delete them."""
    ws = row.workspace.name
    others = [other.name for other in list_destinations(session, row.workspace) if other.id != row.id]
    deletes = "; ".join(f"`{offramp_command('orchestrations', 'delete', user, workspace=ws)}`" for user in users)
    if not others:
        return f"delete those orchestrations first: {deletes}"
    moves = "; ".join(
        f"`{offramp_command('orchestrations', 'update', user, '--destination', others[0], workspace=ws)}`"
        for user in users
    )
    return f"send those orchestrations to another destination first ({moves}), or delete them ({deletes})"


def delete_destination(session: Session, ctx: Context, workspace_name: str, name: str) -> None:
    """Delete a destination no orchestration sends to."""
    workspace = changing_workspace(session, workspace_name)
    row = get_destination(session, workspace, name)
    users = users_of(session, row)
    if users:
        raise ObjectInUseError(
            f"destination {name!r} is used by orchestration(s) {', '.join(users)}",
            hint=_move_hint(session, row, users),
            users=users,
        )
    session.delete(row)
    audit.record(session, ctx.actor, "delete", "destination", name, workspace.name, {"type": row.type})


__all__ = [
    "add_destination",
    "apply_change",
    "delete_destination",
    "describe_destination",
    "DestinationChange",
    "destination_change",
    "destination_settings",
    "edit_destination",
    "edited_destination",
    "get_destination",
    "list_destinations",
    "rename_destination",
    "unsaved_destination",
    "update_destination",
]
