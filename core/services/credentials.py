"""Credentials: named, typed secret bundles, encrypted at rest and shared by destinations.

Production's credentials are shared with every sandbox by reference: a sandbox's destination may be bound to
production's row itself (``--credential NAME`` finds the sandbox's own credential first, then production's), so a
refresh in the sandbox rotates production's stored token under the same lock. A sandbox reads and uses a shared
credential but does not change it: it is changed (updated, authorized, renamed, deleted) in production.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from offramp.core.config import PluginSettings
from offramp.core.errors import ConfigError, ObjectInUseError, ObjectNotFoundError
from offramp.core.hints import offramp_command
from offramp.core.services import audit
from offramp.core.services.context import Context
from offramp.core.services.lookup import ensure_absent, get_named, list_named, rename_named
from offramp.core.services.naming import check_object_name
from offramp.core.services.typed_settings import (
    SecretRecords,
    decrypt_secrets,
    effective_settings,
    encrypt_secrets,
    load_settings,
    resolve_settings,
    secret_status,
)
from offramp.core.services.workspaces import changing_workspace, get_workspace
from offramp.core.state.models import Credential, Destination, Workspace, utcnow


def get_credential(session: Session, workspace: Workspace, name: str) -> Credential:
    """The credential ``name`` in ``workspace``; the error lists the existing ones."""
    return get_named(session, Credential, workspace, name)


def list_credentials(session: Session, workspace: Workspace) -> list[Credential]:
    """Credentials of a workspace, by name."""
    return list_named(session, Credential, workspace)


def _production_of(session: Session, workspace: Workspace) -> Workspace | None:
    """Production, whose credentials a sandbox shares; None when ``workspace`` is production itself."""
    from offramp.core.environment import DEFAULT_WORKSPACE
    from offramp.core.services.config_snapshot import is_production

    if is_production(workspace):
        return None
    return session.scalar(select(Workspace).where(Workspace.name == DEFAULT_WORKSPACE))


def _named(session: Session, workspace: Workspace, name: str) -> Credential | None:
    return session.scalar(select(Credential).where(Credential.workspace_id == workspace.id, Credential.name == name))


def resolve_credential(session: Session, workspace: Workspace, name: str) -> Credential:
    """The credential a destination of ``workspace`` means by ``name``: the workspace's own, else (in a sandbox)
    production's, shared by reference. The error lists the credentials of both."""
    own = _named(session, workspace, name)
    production = _production_of(session, workspace)
    if own is not None or production is None:
        return own or get_credential(session, workspace, name)  # production: the error lists its credentials
    shared = _named(session, production, name)
    if shared is not None:
        return shared
    names = [row.name for row in list_credentials(session, workspace)]
    shared_names = [row.name for row in list_credentials(session, production)]
    raise ObjectNotFoundError(
        f"no credential named {name!r} in sandbox {workspace.name!r} (its own: {', '.join(names) or 'none'}) or in "
        f"production (shared: {', '.join(shared_names) or 'none'})",
        hint=f"see `{offramp_command('credentials', 'list', workspace=workspace.name)}`",
    )


def shared_credentials(session: Session, workspace: Workspace) -> list[Credential]:
    """Production's credentials a sandbox's destinations may name (those it has none of its own name for), by name;
    empty for production."""
    production = _production_of(session, workspace)
    if production is None:
        return []
    own = {row.name for row in list_credentials(session, workspace)}
    return [row for row in list_credentials(session, production) if row.name not in own]


def shadowed_credentials(session: Session, workspace: Workspace) -> list[Credential]:
    """Production's credentials a sandbox shares but cannot name: the sandbox has one of its own by the same name,
    which a name finds first (:func:`resolve_credential`). Its destinations may still be bound to them (made from
    production, or bound before the sandbox's own was added). By name; empty for production."""
    production = _production_of(session, workspace)
    if production is None:
        return []
    own = {row.name for row in list_credentials(session, workspace)}
    return [row for row in list_credentials(session, production) if row.name in own]


def own_credential(session: Session, workspace: Workspace, name: str, command: str, *args: str) -> Credential:
    """The credential ``name`` of ``workspace`` itself, for ``offramp credentials COMMAND NAME ARGS`` (update,
    rename, delete, authorize), which changes it. Production's credential, shared with a sandbox, is refused there
    with the command that changes it in production."""
    own = _named(session, workspace, name)
    production = _production_of(session, workspace)
    if own is None and production is not None and _named(session, production, name) is not None:
        raise ConfigError(
            f"credential {name!r} belongs to production and is shared with sandbox {workspace.name!r}: a sandbox "
            f"uses it but does not {command} it",
            hint=f"{command} it in production, for every workspace that uses it: "
            + offramp_command("credentials", command, name, *args),
        )
    return own or get_credential(session, workspace, name)


def add_credential(
    session: Session, ctx: Context, workspace_name: str, name: str, type_name: str, raw: dict[str, Any]
) -> Credential:
    """Validate and store a new credential; secrets are encrypted before they reach the session."""
    check_object_name("credential", name)
    workspace = changing_workspace(session, workspace_name)
    kind = ctx.registry.credential_type(type_name)
    ensure_absent(session, Credential, workspace, name)
    resolved = resolve_settings(kind.settings, raw, f"credential {name!r} ({type_name})")
    records, _ = encrypt_secrets(ctx.secret_box, resolved, {}, {})
    row = Credential(
        workspace=workspace,
        name=name,
        type=type_name,
        settings=resolved.plain,
        secrets=records,
        status=authorization_status(ctx, type_name, records),
    )
    session.add(row)
    session.flush()
    audit.record(
        session, ctx.actor, "create", "credential", name, workspace.name,
        {"type": type_name, "fields": sorted([*resolved.plain, *records])},
    )  # fmt: skip
    return row


def moved_endpoints(ctx: Context, type_name: str, before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    """The endpoint fields (where secrets are sent) whose effective value differs between two plain settings."""
    kind = ctx.registry.credential_type(type_name)
    old, new = effective_settings(kind.settings, before), effective_settings(kind.settings, after)
    return [field for field in kind.endpoint_fields if old.get(field) != new.get(field)]


def _secrets_given_again(ctx: Context, row: Credential, raw: dict[str, Any], moved: list[str]) -> set[str]:
    """The fields ``raw`` gives again, after checking they include every secret a change of endpoint needs.

    A secret was given for one host; sending it to another needs the user to give it again. The app's own
    secrets (every stored secret that is not an authorization token) must be given with the change; tokens not
    given again are dropped, so the credential must be authorized again at its new host.
    """
    kind = ctx.registry.credential_type(row.type)
    given = {field for field, value in raw.items() if value is not None}
    must_give = sorted(field for field in row.secrets if field not in kind.authorization_fields and field not in given)
    if must_give:
        fields = " and ".join(moved)
        verb = "changes" if len(moved) == 1 else "change"
        raise ConfigError(
            f"credential {row.name!r}: {fields} {verb} where its secrets are sent, and {', '.join(must_give)} "
            f"{'was' if len(must_give) == 1 else 'were'} not given again",
            hint=f"give {', '.join(must_give)} again with the change "
            f"({' '.join(f'--set {field}=env:VARIABLE' for field in must_give)}), then authorize it "
            f"at its new host: `{offramp_command('credentials', 'authorize', row.name, workspace=row.workspace.name)}`",
            fields=moved,
        )
    return given


def edited_settings(
    model: type[PluginSettings], subject: str, stored: dict[str, Any], changes: dict[str, Any], unset: Collection[str]
) -> dict[str, Any]:
    """The plain settings an ``update`` gives: ``stored`` without the ``unset`` fields, with ``changes`` over them.

    Raises:
        ConfigError: a field both set and unset, or an unset field the type does not have (naming its fields).
    """
    both = sorted(set(changes) & set(unset))
    if both:
        raise ConfigError(
            f"{subject}: {', '.join(both)} given with both --set and --unset", hint="give each field once"
        )
    unknown = sorted(field for field in unset if field not in model.model_fields)
    if unknown:
        raise ConfigError(
            f"{subject}: cannot unset {', '.join(unknown)}: no such setting (its settings: "
            f"{', '.join(sorted(model.model_fields))})",
            hint="--unset takes a setting's name",
        )
    return {**{key: value for key, value in stored.items() if key not in unset}, **changes}


def update_credential(
    session: Session,
    ctx: Context,
    row: Credential,
    raw: dict[str, Any],
    *,
    unset: Collection[str] = (),
    allow_literal_secrets: bool = False,
) -> list[str]:
    """Replace a credential's settings (secrets not mentioned are kept); return the fields that changed.

    ``unset`` names secrets to remove rather than keep. ``allow_literal_secrets``: a secret may be given as a value
    (the command line, as ``add`` accepts it), not only as ``env:VARIABLE`` (a file, which must never hold one).

    A change of an endpoint field (``CredentialType.endpoint_fields``: where the secrets are sent) is refused
    unless the app's secrets are given again in ``raw``; stored tokens not given again are dropped, so that the
    credential needs a new authorization and nothing issued for the old host reaches the new one.
    """
    kind = ctx.registry.credential_type(row.type)
    subject = f"credential {row.name!r} ({row.type})"
    stored = decrypt_secrets(ctx.secret_box, row.secrets, subject)
    current = {field: value for field, value in stored.items() if field not in unset}
    literal = allow_literal_secrets
    resolved = resolve_settings(kind.settings, raw, subject, kept_secrets=current, allow_literal_secrets=literal)
    moved = moved_endpoints(ctx, row.type, row.settings, resolved.plain)
    if moved:
        # Only what was given again goes on; the stored tokens, issued by the old host, are dropped.
        given = _secrets_given_again(ctx, row, raw, moved)
        current = {field: value for field, value in current.items() if field in given}
        resolved = resolve_settings(kind.settings, raw, subject, kept_secrets=current, allow_literal_secrets=literal)
    records, changed_secrets = encrypt_secrets(ctx.secret_box, resolved, row.secrets, stored)
    changed = sorted(
        {k for k in {*resolved.plain, *row.settings} if resolved.plain.get(k) != row.settings.get(k)}
        | set(changed_secrets)
    )
    if changed:
        row.settings = resolved.plain
        row.secrets = records
        # New tokens (from a file or the command line) end a needs_reauth; other changes leave the status alone.
        if row.status != "needs_reauth" or set(changed) & set(kind.authorization_fields):
            row.status, row.status_reason = authorization_status(ctx, row.type, records), None
        audit.record(session, ctx.actor, "update", "credential", row.name, row.workspace.name, {"fields": changed})
    elif records != row.secrets:  # only a secret's env source changed
        row.secrets = records
    return changed


def edit_credential(
    session: Session,
    ctx: Context,
    workspace_name: str,
    name: str,
    changes: dict[str, Any],
    unset: Collection[str] = (),
) -> list[str]:
    """`credentials update`: set the ``changes`` and remove the ``unset`` fields, keeping every other value.

    Validated as ``add`` validates (every invalid field at once); a secret may be given as ``env:VARIABLE`` or as a
    value, as with ``add``. Returns the fields that changed (secrets by name only), audited as ``update``.
    """
    row = own_credential(session, changing_workspace(session, workspace_name), name, "update")
    kind = ctx.registry.credential_type(row.type)
    subject = f"credential {row.name!r} ({row.type})"
    raw = edited_settings(kind.settings, subject, row.settings, changes, unset)
    return update_credential(session, ctx, row, raw, unset=unset, allow_literal_secrets=True)


def rename_credential(session: Session, ctx: Context, workspace_name: str, old: str, new: str) -> bool:
    """Rename a credential; the destinations bound to it stay bound (they refer to its id)."""
    workspace = changing_workspace(session, workspace_name)
    own_credential(session, workspace, old, "rename", new)
    return rename_named(session, ctx.actor, Credential, workspace, old, new)


def save_tokens(
    session: Session,
    ctx: Context,
    row: Credential,
    values: dict[str, str],
    *,
    access_token_expires_at: datetime | None,
    action: str,
) -> list[str]:
    """Store tokens a credential type obtained itself (an authorization or a refresh), encrypted.

    The credential becomes ``ready``. Audited with the names of the fields that changed, never their values.
    Call it inside the transaction that holds the credential's lock, so a rotated refresh token is stored
    before anyone uses the new access token.
    """
    kind = ctx.registry.credential_type(row.type)
    subject = f"credential {row.name!r} ({row.type})"
    current = decrypt_secrets(ctx.secret_box, row.secrets, subject)
    # Stored secrets are kept, not given again, so they keep their env: source for exports.
    resolved = resolve_settings(kind.settings, {**row.settings, **values}, subject, kept_secrets=current)
    records, changed = encrypt_secrets(ctx.secret_box, resolved, row.secrets, current)
    row.secrets = records
    row.status, row.status_reason = "ready", None
    row.last_refreshed_at = utcnow()
    row.access_token_expires_at = access_token_expires_at
    audit.record(session, ctx.actor, action, "credential", row.name, row.workspace.name, {"fields": changed})
    return changed


def mark_needs_reauth(session: Session, ctx: Context, row: Credential, reason: str) -> None:
    """Record that the vendor refused the grant: everything using it fails fast until it is re-authorized."""
    if row.status == "needs_reauth" and row.status_reason == reason:
        return
    row.status, row.status_reason = "needs_reauth", reason
    audit.record(session, ctx.actor, "needs-reauth", "credential", row.name, row.workspace.name, {"reason": reason})


def authorization_status(ctx: Context, type_name: str, records: SecretRecords) -> str:
    """``needs_authorization`` while none of the type's authorization fields holds a value, else ``ready``."""
    fields = ctx.registry.credential_type(type_name).authorization_fields
    return "needs_authorization" if fields and not any(field in records for field in fields) else "ready"


@contextmanager
def locked_credential(ctx: Context, workspace_name: str, name: str) -> Iterator[tuple[Session, Credential]]:
    """A transaction holding the credential's lock across processes, and the credential read under it.

    PostgreSQL locks the row (SELECT ... FOR UPDATE); SQLite takes its database write lock (BEGIN IMMEDIATE).
    Either way a second process waits here until the first commits, then reads what the first stored: two runs
    never spend the same single-use refresh token.
    """
    with ctx.store.engine.connect() as connection:
        connection = connection.execution_options(sqlite_immediate=True)
        with Session(bind=connection, expire_on_commit=False) as session, session.begin():
            workspace = get_workspace(session, workspace_name)
            row = session.scalar(
                select(Credential)
                .where(Credential.workspace_id == workspace.id, Credential.name == name)
                .with_for_update()
            )
            if row is None:
                get_credential(session, workspace, name)  # raises, listing the existing names
                raise AssertionError("unreachable")
            yield session, row


def credential_settings(ctx: Context, row: Credential) -> PluginSettings:
    """The credential's full settings, secrets decrypted (for the code that uses it, never for display)."""
    kind = ctx.registry.credential_type(row.type)
    return load_settings(kind.settings, row.settings, row.secrets, ctx.secret_box, f"credential {row.name!r}")


def users_of(session: Session, row: Credential, within: Workspace | None = None) -> list[str]:
    """Names of the destinations bound to a credential: those of ``within`` only, or (None) of every workspace, a
    sandbox's destination of production's shared credential as ``NAME (sandbox SANDBOX)``."""
    query = select(Destination.name, Workspace.name).join(Workspace, Destination.workspace_id == Workspace.id)
    query = query.where(Destination.credential_id == row.id)
    if within is not None:
        query = query.where(Destination.workspace_id == within.id)
    home = row.workspace.name
    users = sorted(((name, workspace) for name, workspace in session.execute(query)), key=lambda u: (u[1] != home, u))
    return [
        name if within is not None or workspace == home else f"{name} (sandbox {workspace})"
        for name, workspace in users
    ]


def describe_credential(session: Session, ctx: Context, row: Credential) -> dict[str, Any]:
    """What `credentials show` prints: settings with defaults, secret status, users. Never a secret value."""
    kind = ctx.registry.credential_type(row.type)
    return {
        "name": row.name,
        "workspace": row.workspace.name,
        "type": row.type,
        "settings": effective_settings(kind.settings, row.settings),
        "secrets": secret_status(kind.settings, row.secrets),
        "status": row.status,
        "status_reason": row.status_reason,
        "last_refreshed_at": row.last_refreshed_at.isoformat() if row.last_refreshed_at else None,
        "access_token_expires_at": row.access_token_expires_at.isoformat() if row.access_token_expires_at else None,
        "used_by": [*users_of(session, row), *_channel_users(session, row)],
        "created_at": row.created_at.isoformat(),
        "updated_at": row.updated_at.isoformat(),
    }


def _channel_users(session: Session, row: Credential) -> list[str]:
    from offramp.core.services.alert_channels import channel_users_said  # it imports this module

    return channel_users_said(session, row)


def _rebind_hint(session: Session, row: Credential, users: list[str]) -> str:
    """Commands that free a credential: bind its destinations to another credential of its type, or delete them."""
    ws = row.workspace.name
    if len(users_of(session, row, within=row.workspace)) < len(users):
        # Commands for a sandbox's destinations would act in another workspace than the one of this command.
        return (
            "bind them to another credential or delete them, the sandboxes' in their sandbox with -w SANDBOX "
            "(see `offramp destinations update --help`)"
        )
    others = [other.name for other in list_credentials(session, row.workspace) if other.type == row.type]
    others = [name for name in others if name != row.name]
    deletes = "; ".join(f"`{offramp_command('destinations', 'delete', user, workspace=ws)}`" for user in users)
    if not others:
        return f"bind them to another credential (see `offramp destinations update --help`) or delete them ({deletes})"
    rebinds = "; ".join(
        f"`{offramp_command('destinations', 'update', user, '--credential', others[0], workspace=ws)}`"
        for user in users
    )
    return f"bind them to another credential first ({rebinds}), or delete them ({deletes})"


def delete_credential(session: Session, ctx: Context, workspace_name: str, name: str) -> None:
    """Delete a credential no destination uses."""
    workspace = changing_workspace(session, workspace_name)
    row = own_credential(session, workspace, name, "delete")
    users = users_of(session, row)
    if users:
        raise ObjectInUseError(
            f"credential {name!r} is used by destination(s) {', '.join(users)}",
            hint=_rebind_hint(session, row, users),
            users=users,
        )
    from offramp.core.services.alert_channels import refuse_credential_delete

    refuse_credential_delete(session, row)  # an alert channel's signing secret or SMTP login
    session.delete(row)
    audit.record(session, ctx.actor, "delete", "credential", name, workspace.name, {"type": row.type})


__all__ = [
    "add_credential",
    "credential_settings",
    "delete_credential",
    "describe_credential",
    "edit_credential",
    "edited_settings",
    "get_credential",
    "list_credentials",
    "authorization_status",
    "locked_credential",
    "mark_needs_reauth",
    "moved_endpoints",
    "own_credential",
    "rename_credential",
    "resolve_credential",
    "save_tokens",
    "shadowed_credentials",
    "shared_credentials",
    "update_credential",
    "users_of",
]
