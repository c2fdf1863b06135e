"""What core hands a plugin: a credential handle over the store, and a destination's frozen context.

The handle (:class:`StoredCredential`) is the only way a plugin reads or writes its credential: every read opens its
own short read session; :meth:`StoredCredential.locked` holds the credential's cross-process lock
(``locked_credential``) for the block and commits what was saved in it. A plugin never sees a session or a row.

A handle names the credential's own workspace: a sandbox's destination bound to production's shared credential
gets a handle on production's row, so that a refresh there locks and rotates the one stored token every workspace
uses (TikTok refuses a spent refresh token: a copy would cut production off).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime
from typing import Any, cast

from sqlalchemy.orm import Session

from offramp.core.config import PluginSettings
from offramp.core.hints import offramp_command
from offramp.core.orchestration_options import OrchestrationOptions, split_options
from offramp.core.plugin_api import CredentialState, CredentialStatus, DestinationContext
from offramp.core.services.context import Context
from offramp.core.services.credentials import (
    credential_settings,
    get_credential,
    locked_credential,
    mark_needs_reauth,
    own_credential,
    resolve_credential,
    save_tokens,
)
from offramp.core.services.destinations import destination_settings, get_destination
from offramp.core.services.workspaces import get_workspace
from offramp.core.state.models import Credential, Destination


def _state(ctx: Context, row: Credential) -> CredentialState:
    status = cast(CredentialStatus, row.status)  # the column holds one of the three
    return CredentialState(
        settings=credential_settings(ctx, row),
        status=status,
        status_reason=row.status_reason,
        token_expires_at=row.access_token_expires_at,
        refreshed_at=row.last_refreshed_at,
    )


class _Locked:
    """A credential read under its lock; what it saves is part of the lock's transaction."""

    def __init__(self, ctx: Context, session: Session, row: Credential) -> None:
        self._ctx = ctx
        self._session = session
        self._row = row
        self._state = _state(ctx, row)

    @property
    def state(self) -> CredentialState:
        return self._state

    def save_tokens(self, tokens: Mapping[str, str], *, expires_at: datetime | None, action: str) -> None:
        save_tokens(
            self._session, self._ctx, self._row, dict(tokens), access_token_expires_at=expires_at, action=action
        )
        self._session.flush()
        self._state = _state(self._ctx, self._row)

    def mark_needs_reauthorization(self, reason: str) -> None:
        mark_needs_reauth(self._session, self._ctx, self._row, reason)
        self._session.flush()
        self._state = _state(self._ctx, self._row)


class StoredCredential:
    """A :class:`~offramp.core.plugin_api.CredentialHandle` over the state store."""

    def __init__(self, ctx: Context, workspace: str, name: str, type_name: str) -> None:
        self._ctx = ctx
        self.workspace = workspace
        self.name = name
        self.type = type_name

    def __repr__(self) -> str:
        return f"StoredCredential(workspace={self.workspace!r}, name={self.name!r}, type={self.type!r})"

    def read(self) -> CredentialState:
        with self._ctx.store.read_session() as session:
            row = get_credential(session, get_workspace(session, self.workspace), self.name)
            return _state(self._ctx, row)

    def settings(self) -> PluginSettings:
        return self.read().settings

    @contextmanager
    def locked(self) -> Iterator[_Locked]:
        with locked_credential(self._ctx, self.workspace, self.name) as (session, row):
            yield _Locked(self._ctx, session, row)

    def mark_needs_reauthorization(self, reason: str) -> None:
        with self.locked() as credential:
            credential.mark_needs_reauthorization(reason)

    @property
    def reauthorize_command(self) -> str:
        return offramp_command("credentials", "authorize", self.name, workspace=self.workspace)


def credential_handle(ctx: Context, workspace: str, name: str, *, changes: str | None = None) -> StoredCredential:
    """The handle of the credential ``name`` as ``workspace`` sees it: its own, else (a sandbox) production's shared
    one (raises ObjectNotFoundError listing the existing ones).

    ``changes``: the command the handle is for when it changes the credential (``authorize``), which a sandbox may
    not do to production's credential (``credentials.own_credential``).
    """
    with ctx.store.read_session() as session:
        seen_from = get_workspace(session, workspace)
        if changes is not None:
            row = own_credential(session, seen_from, name, changes)
        else:
            row = resolve_credential(session, seen_from, name)
        return StoredCredential(ctx, row.workspace.name, name, row.type)


def context_of(
    ctx: Context,
    row: Destination,
    *,
    options: Mapping[str, Any] | None = None,
    subject: str | None = None,
    **fields: Any,
) -> DestinationContext:
    """The context of a loaded destination row (its workspace and credential loaded too).

    ``options`` are an orchestration's flat run options (as stored); the destination type's share of them becomes
    ``context.options`` and the shared ``timezone`` is taken from them. ``fields`` set the other context fields
    (``now``, ``dry_run``, ``timeout_seconds``).
    """
    kind = ctx.registry.destination_type(row.type)
    settings = destination_settings(ctx, row)
    what = subject or f"the run options of destination {row.name!r} ({row.type})"
    shared, own = split_options(dict(options or {}), kind.run_options, what, strict=False)
    # The credential's own workspace, not the destination's: production's, when a sandbox shares it (a sandbox
    # shares production's credentials only). Told by ids, which are loaded with the rows: a destination's context is
    # also built after its session closed (a connection test), when a relationship could not load any more.
    from offramp.core.environment import DEFAULT_WORKSPACE

    borrowed = row.credential.workspace_id != row.workspace.id
    owner = DEFAULT_WORKSPACE if borrowed else row.workspace.name
    credential = StoredCredential(ctx, owner, row.credential.name, row.credential.type)
    values: dict[str, Any] = {"timezone": shared.timezone, **fields}
    return DestinationContext(
        workspace=row.workspace.name,
        destination=row.name,
        destination_type=row.type,
        settings=settings,
        options=own,
        credential=credential,
        **values,
    )


def destination_context(
    ctx: Context, workspace: str, name: str, *, options: Mapping[str, Any] | None = None, **fields: Any
) -> DestinationContext:
    """The context of the destination ``name``: for a connection test or an action (the type's default run
    options), or for a run (the orchestration's ``options``)."""
    with ctx.store.read_session() as session:
        row = get_destination(session, get_workspace(session, workspace), name)
        return context_of(ctx, row, options=options, **fields)


def shared_options(raw: Mapping[str, Any], run_options: type[PluginSettings], subject: str) -> OrchestrationOptions:
    """The options every destination shares, of stored flat options (lenient about options no type reads)."""
    return split_options(dict(raw), run_options, subject, strict=False)[0]


__all__ = ["StoredCredential", "context_of", "credential_handle", "destination_context", "shared_options"]
