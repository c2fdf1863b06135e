"""Destinations: a typed vendor target bound to one credential of a type it accepts."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from offramp.core.config import PluginSettings
from offramp.core.connection_checks import CheckStep
from offramp.core.errors import ConfigError, ObjectInUseError
from offramp.core.plugin_api import ActionResult
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


def _new_row(
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


def test_new_destination(
    ctx: Context, workspace_name: str, name: str, type_name: str, credential_name: str, raw: dict[str, Any]
) -> list[CheckStep]:
    """Validate a destination that is not stored yet and run its connection test; raise if a step failed.

    Runs in a read-only session and outside any write transaction: the test may refresh the credential, which
    writes the rotated tokens in a transaction of its own (on SQLite it would otherwise wait for the caller's).
    """
    with ctx.store.read_session() as session:
        row, resolved = _new_row(session, ctx, workspace_name, name, type_name, credential_name, raw)
        _loaded = (row.workspace.name, row.credential.name)  # loaded while the session is open
    steps = test_connection(ctx, row)
    failed = [step for step in steps if step.verdict == "failed"]
    if failed:
        raise ConfigError(
            f"destination {name!r} failed its connection test: "
            + "; ".join(f"{step.name}: {step.detail}" for step in failed),
            hint="fix it, or add it anyway with --no-test",
            steps=steps,
        )
    return steps


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
    row, resolved = _new_row(session, ctx, workspace_name, name, type_name, credential_name, raw)
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


def test_connection(ctx: Context, row: Destination, *, fix: bool = False) -> list[CheckStep]:
    """The destination type's connection test, step by step; a type without one reports a skipped step.

    ``row`` is loaded with its workspace and credential (it may be a destination not stored yet). The test gets the
    destination's context with the type's default run options, and runs outside any write transaction: it may
    refresh the credential, which writes in a transaction of its own.
    """
    # plugin_context builds on this module (settings, lookups), so it is imported where it is used.
    from offramp.core.services.plugin_context import context_of

    check = ctx.registry.destination_hooks(row.type).check_connection
    if check is None:
        return [CheckStep("connection", "skipped", f"destination type {row.type} has no connection test")]
    return list(check(context_of(ctx, row), fix))


def run_action(ctx: Context, workspace_name: str, name: str, action_name: str) -> ActionResult:
    """Run the action ``action_name`` of the destination ``name``; store the settings it returns on the destination.

    The action is called outside any write transaction (it may call the vendor and refresh the credential, which
    writes on its own); what it returns is validated and stored afterwards, audited, as ``update_destination``
    stores any change of settings.

    Raises:
        ConfigError: the destination's type has no such action (naming those it has).
    """
    from offramp.core.services.plugin_context import destination_context  # see test_connection

    with ctx.store.read_session() as session:
        row = get_destination(session, get_workspace(session, workspace_name), name)
        type_name = row.type
    hooks = ctx.registry.destination_hooks(type_name)
    action = hooks.action(action_name)
    if action is None:
        names = ", ".join(item.name for item in hooks.actions) or "none"
        raise ConfigError(
            f"destination type {type_name} has no action {action_name!r} (its actions: {names})",
            hint=f"see `offramp plugins show {type_name}`",
        )
    result = action.run(destination_context(ctx, workspace_name, name))
    if result.settings:
        with ctx.store.session() as session:
            row = get_destination(session, get_workspace(session, workspace_name), name)
            # Stored secrets stay as they are; only the settings the action returned change.
            update_destination(session, ctx, row, row.credential.name, {**row.settings, **result.settings})
    return result


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
    "run_action",
    "test_connection",
    "test_new_destination",
    "update_destination",
]
