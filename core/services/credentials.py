"""Credentials: named, typed secret bundles, encrypted at rest and shared by destinations."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from offramp.core.config import PluginSettings
from offramp.core.errors import ObjectInUseError
from offramp.core.services import audit
from offramp.core.services.context import Context
from offramp.core.services.lookup import ensure_absent, get_named, list_named
from offramp.core.services.naming import check_object_name
from offramp.core.services.typed_settings import (
    decrypt_secrets,
    effective_settings,
    encrypt_secrets,
    load_settings,
    resolve_settings,
    secret_status,
)
from offramp.core.services.workspaces import get_workspace
from offramp.core.state.models import Credential, Destination, Workspace


def get_credential(session: Session, workspace: Workspace, name: str) -> Credential:
    """The credential ``name`` in ``workspace``; the error lists the existing ones."""
    return get_named(session, Credential, workspace, name)


def list_credentials(session: Session, workspace: Workspace) -> list[Credential]:
    """Credentials of a workspace, by name."""
    return list_named(session, Credential, workspace)


def add_credential(
    session: Session, ctx: Context, workspace_name: str, name: str, type_name: str, raw: dict[str, Any]
) -> Credential:
    """Validate and store a new credential; secrets are encrypted before they reach the session."""
    check_object_name("credential", name)
    workspace = get_workspace(session, workspace_name)
    kind = ctx.registry.credential_type(type_name)
    ensure_absent(session, Credential, workspace, name)
    resolved = resolve_settings(kind.settings, raw, f"credential {name!r} ({type_name})")
    records, _ = encrypt_secrets(ctx.secret_box, resolved, {}, {})
    row = Credential(workspace=workspace, name=name, type=type_name, settings=resolved.plain, secrets=records)
    session.add(row)
    session.flush()
    audit.record(
        session, ctx.actor, "create", "credential", name, workspace.name,
        {"type": type_name, "fields": sorted([*resolved.plain, *records])},
    )  # fmt: skip
    return row


def update_credential(session: Session, ctx: Context, row: Credential, raw: dict[str, Any]) -> list[str]:
    """Replace a credential's settings (secrets not mentioned are kept); return the fields that changed."""
    kind = ctx.registry.credential_type(row.type)
    subject = f"credential {row.name!r} ({row.type})"
    current = decrypt_secrets(ctx.secret_box, row.secrets, subject)
    resolved = resolve_settings(kind.settings, raw, subject, kept_secrets=current, allow_literal_secrets=False)
    records, changed_secrets = encrypt_secrets(ctx.secret_box, resolved, row.secrets, current)
    changed = sorted(
        {k for k in {*resolved.plain, *row.settings} if resolved.plain.get(k) != row.settings.get(k)}
        | set(changed_secrets)
    )
    if changed:
        row.settings = resolved.plain
        row.secrets = records
        audit.record(session, ctx.actor, "update", "credential", row.name, row.workspace.name, {"fields": changed})
    elif records != row.secrets:  # only a secret's env source changed
        row.secrets = records
    return changed


def store_refreshed_secrets(session: Session, ctx: Context, row: Credential, values: dict[str, str]) -> None:
    """Save secrets a credential type obtained itself (rotated tokens); audited without their values."""
    kind = ctx.registry.credential_type(row.type)
    subject = f"credential {row.name!r} ({row.type})"
    current = decrypt_secrets(ctx.secret_box, row.secrets, subject)
    resolved = resolve_settings(kind.settings, {**row.settings, **current, **values}, subject)
    records, changed = encrypt_secrets(ctx.secret_box, resolved, row.secrets, current)
    row.secrets = records
    if changed:
        audit.record(
            session,
            ctx.actor,
            "rotate-secret",
            "credential",
            row.name,
            row.workspace.name,
            {"fields": changed},
        )


def credential_settings(ctx: Context, row: Credential) -> PluginSettings:
    """The credential's full settings, secrets decrypted (for the code that uses it, never for display)."""
    kind = ctx.registry.credential_type(row.type)
    return load_settings(kind.settings, row.settings, row.secrets, ctx.secret_box, f"credential {row.name!r}")


def users_of(session: Session, row: Credential) -> list[str]:
    """Names of the destinations bound to a credential."""
    query = select(Destination.name).where(Destination.credential_id == row.id).order_by(Destination.name)
    return list(session.scalars(query))


def describe_credential(session: Session, ctx: Context, row: Credential) -> dict[str, Any]:
    """What `credentials show` prints: settings with defaults, secret status, users. Never a secret value."""
    kind = ctx.registry.credential_type(row.type)
    return {
        "name": row.name,
        "workspace": row.workspace.name,
        "type": row.type,
        "settings": effective_settings(kind.settings, row.settings),
        "secrets": secret_status(kind.settings, row.secrets),
        "used_by": users_of(session, row),
        "created_at": row.created_at.isoformat(),
        "updated_at": row.updated_at.isoformat(),
    }


def delete_credential(session: Session, ctx: Context, workspace_name: str, name: str) -> None:
    """Delete a credential no destination uses."""
    workspace = get_workspace(session, workspace_name)
    row = get_credential(session, workspace, name)
    users = users_of(session, row)
    if users:
        raise ObjectInUseError(
            f"credential {name!r} is used by destination(s) {', '.join(users)}",
            hint="delete those destinations or bind them to another credential first",
            users=users,
        )
    session.delete(row)
    audit.record(session, ctx.actor, "delete", "credential", name, workspace.name, {"type": row.type})


__all__ = [
    "add_credential",
    "credential_settings",
    "delete_credential",
    "describe_credential",
    "get_credential",
    "list_credentials",
    "store_refreshed_secrets",
    "update_credential",
    "users_of",
]
