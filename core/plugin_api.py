"""The plugin API: what a destination or credential type is handed, and the hooks it fills.

A plugin sees only this module, :mod:`offramp.core.destination_api` (events, batches, results), the descriptors
(:mod:`offramp.core.plugin_types`), the settings base (:mod:`offramp.core.config`) and the errors
(:mod:`offramp.core.errors`), all exported from :mod:`offramp.core`. It never opens a session on the state store,
never reads a row of it, and never imports ``offramp.core.services``, ``.state``, ``.runner`` or ``.cli``
(``tests/test_plugin_boundary.py`` walks the import graph to hold that).

Every hook gets a frozen :class:`DestinationContext` (or, for a credential type, a :class:`CredentialHandle`).
Core builds both over the store; a plugin reads its settings and run options from the context and its
credential's settings, tokens and status through the handle.

A descriptor's ``implementation`` (``"module:ATTRIBUTE"``) names a :class:`DestinationHooks` or a
:class:`CredentialHooks` instance. The registry imports it when the plugin is registered and checks each hook's
signature there (:func:`check_hooks`): a plugin with a missing or misnamed hook is listed as broken with the reason,
instead of failing in the middle of a run.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import Any, Literal, Protocol

from offramp.core.config import PluginSettings
from offramp.core.connection_checks import CheckStep
from offramp.core.destination_api import Preparer, Sender
from offramp.core.errors import PluginError
from offramp.core.plugin_types import NAME_PATTERN

CredentialStatus = Literal["ready", "needs_authorization", "needs_reauth"]


@dataclass(frozen=True)
class CredentialState:
    """A credential as the store holds it at one moment.

    Args:
        settings: Its validated settings, secrets decrypted (``SecretStr``): for the code that uses them, never for
            display or logs.
        status: ``ready``; ``needs_authorization`` (no token yet); ``needs_reauth`` (the vendor refused it).
        status_reason: Why it needs re-authorization, as recorded.
        token_expires_at: When the stored access token expires (UTC); None when it does not or is unknown.
        refreshed_at: When tokens were last stored by an authorization or a refresh (UTC).
    """

    settings: PluginSettings
    status: CredentialStatus
    status_reason: str | None = None
    token_expires_at: datetime | None = None
    refreshed_at: datetime | None = None


class LockedCredential(Protocol):
    """A credential read under its cross-process lock (see :meth:`CredentialHandle.locked`).

    What it saves is committed when the ``with`` block ends without an error, before the lock is released; an
    error inside the block rolls everything back.
    """

    @property
    def state(self) -> CredentialState:
        """The credential as read under the lock (another process's refresh is visible here)."""
        ...

    def save_tokens(self, tokens: Mapping[str, str], *, expires_at: datetime | None, action: str) -> None:
        """Store tokens the credential type obtained (an authorization, a refresh), encrypted.

        ``tokens`` maps secret fields of the settings model to their new values; fields not named keep theirs.
        The credential becomes ``ready``. ``action`` (``authorize``, ``refresh``) names the audit event, which
        records the names of the fields that changed, never their values.
        """
        ...

    def mark_needs_reauthorization(self, reason: str) -> None:
        """Record that the vendor refused the grant; every use fails fast until someone authorizes it again."""
        ...


class CredentialHandle(Protocol):
    """One stored credential, as its plugin sees it; safe to share between threads.

    Attributes:
        workspace: The credential's workspace.
        name: Its name.
        type: Its credential type.
    """

    workspace: str
    name: str
    type: str

    def read(self) -> CredentialState:
        """The credential now: settings (secrets decrypted), status, token expiry."""
        ...

    def settings(self) -> PluginSettings:
        """Shorthand for ``read().settings``."""
        ...

    def locked(self) -> AbstractContextManager[LockedCredential]:
        """Hold the credential's lock across threads and processes while the block runs.

        A second process asking for it waits until the first commits, then reads what the first stored: two
        processes never spend the same single-use refresh token.
        """
        ...

    def mark_needs_reauthorization(self, reason: str) -> None:
        """Take the lock and record that the vendor refused the grant."""
        ...

    @property
    def reauthorize_command(self) -> str:
        """The command that authorizes this credential again, for messages and hints."""
        ...


@dataclass(frozen=True)
class DestinationContext:
    """What every destination hook is handed: one destination, its settings and run options, its credential.

    Args:
        workspace: The destination's workspace.
        destination: The destination's name.
        destination_type: Its type's name.
        settings: Its validated settings (an instance of the type's ``settings`` model).
        options: The run options of this destination type (an instance of its ``run_options`` model): those of the
            orchestration being run, or the model's defaults outside a run.
        credential: The credential the destination is bound to.
        timezone: IANA zone of timestamps that carry none (the orchestration's ``timezone``).
        now: Unix seconds that time windows are measured from; None means the clock when the hook runs.
        dry_run: Nothing may be sent: the run previews request bodies instead (:meth:`Sender.preview`).
        timeout_seconds: Per request to the vendor.
    """

    workspace: str
    destination: str
    destination_type: str
    settings: PluginSettings
    options: PluginSettings
    credential: CredentialHandle
    timezone: str = "UTC"
    now: float | None = None
    dry_run: bool = False
    timeout_seconds: float = 30.0


@dataclass(frozen=True)
class ActionResult:
    """What a destination action did.

    Args:
        message: One line for the user (``Created event set 73...``).
        settings: Settings of the destination to store (``{"event_set_id": "73..."}``); core validates and saves
            them, audited, after the action returned. Empty when nothing changes.
    """

    message: str
    settings: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class DestinationAction:
    """Something a destination type can do on demand, rendered by the CLI as ``offramp destinations NAME DEST``
    (and ``offramp destinations action DEST NAME``).

    Args:
        name: Lower-case words joined by hyphens (``ensure-event-set``).
        help: One sentence: what it does.
        run: Called with the destination's context; returns what it did.
    """

    name: str
    help: str
    run: Callable[[DestinationContext], ActionResult]


@dataclass(frozen=True)
class DestinationHooks:
    """The behaviour of a destination type; its descriptor's ``implementation`` names an instance.

    Args:
        open_preparer: ``open_preparer(context) -> Preparer``: a preparer for one run.
        open_sender: ``open_sender(context) -> Sender``: a sender for one run (or one connection test).
        check_connection: ``check_connection(context, fix) -> list[CheckStep]``: the steps of
            ``offramp destinations test``; ``fix`` asks it to correct what it can. None: the type has no test.
        actions: What the type can do on demand.
        required_columns: ``required_columns(context) -> groups``: the query needs one column of each group
            (matched case-insensitively) or every row is rejected, given the destination's settings (TikTok needs
            ``event`` unless a fixed event name is set). ``offramp sandboxes validate`` refuses a scheduled
            orchestration whose query has none of a group. None: the type requires no column.
    """

    open_preparer: Callable[[DestinationContext], Preparer]
    open_sender: Callable[[DestinationContext], Sender]
    check_connection: Callable[[DestinationContext, bool], list[CheckStep]] | None = None
    actions: tuple[DestinationAction, ...] = ()
    required_columns: Callable[[DestinationContext], Sequence[Sequence[str]]] | None = None

    def action(self, name: str) -> DestinationAction | None:
        """The action called ``name``, if the type has one."""
        return next((action for action in self.actions if action.name == name), None)


@dataclass(frozen=True)
class AccessReport:
    """What ``offramp credentials test`` prints: what the credential reaches, as a table and as data.

    Args:
        summary: One line (``the token reaches 2 advertiser(s)``).
        title: The table's title.
        columns: Its column headings.
        rows: Its rows, as text.
        key: The key the items are listed under in ``--json`` output (``advertisers``).
        items: The same as data, for ``--json``.
    """

    summary: str
    title: str
    columns: Sequence[str]
    rows: Sequence[Sequence[str]]
    key: str = "items"
    items: Sequence[Mapping[str, Any]] = ()


@dataclass(frozen=True)
class Authorization:
    """What completing an authorization achieved, in one line for the user (advertisers, token lifetime)."""

    message: str


@dataclass(frozen=True)
class CredentialHooks:
    """The behaviour of a credential type that does more than hold its secrets.

    Args:
        authorization_url: ``authorization_url(credential, state, redirect_uri) -> str``: the consent page a person
            opens (``offramp credentials authorize``). None: the type is not authorized, its secrets are set.
        complete_authorization: ``complete_authorization(credential, code) -> Authorization``: exchange the code
            the vendor redirected with, and save the tokens through :meth:`LockedCredential.save_tokens`.
        describe_access: ``describe_access(credential) -> AccessReport``: what the credential reaches
            (``offramp credentials test``). None: the type cannot be tested against an API.
    """

    authorization_url: Callable[[CredentialHandle, str, str | None], str] | None = None
    complete_authorization: Callable[[CredentialHandle, str], Authorization] | None = None
    describe_access: Callable[[CredentialHandle], AccessReport] | None = None


# Each hook's parameters, by position; a hook may name them as it likes, but must take exactly these.
_ARITY: dict[str, int] = {
    "open_preparer": 1,
    "open_sender": 1,
    "check_connection": 2,
    "required_columns": 1,
    "authorization_url": 3,
    "complete_authorization": 2,
    "describe_access": 1,
}


def _check_callable(owner: str, name: str, hook: object, arity: int) -> None:
    if not callable(hook):
        raise PluginError(f"{owner}.{name} is not callable (got {type(hook).__name__})")
    try:
        signature = inspect.signature(hook)
    except (TypeError, ValueError):
        return  # a builtin or C callable without a signature: accepted as it is
    try:
        signature.bind(*([None] * arity))
    except TypeError:
        shown = f"{name}{signature}"
        raise PluginError(
            f"{owner}.{name} must take {arity} positional argument(s), but its signature is {shown}",
            hint="see docs/plugin-author-guide.md for each hook's arguments",
        ) from None


def check_hooks(hooks: object, kind: Literal["credential", "destination"]) -> None:
    """Check an implementation object: its class, and the signature of every hook it fills.

    Raises:
        PluginError: naming the hook that is missing, not callable, or takes the wrong arguments.
    """
    expected: type[DestinationHooks] | type[CredentialHooks] = (
        DestinationHooks if kind == "destination" else CredentialHooks
    )
    if not isinstance(hooks, expected):
        raise PluginError(
            f"the implementation must be an offramp.core.{expected.__name__}, got {type(hooks).__name__}",
            hint=f"export an instance: HOOKS = {expected.__name__}(...), and name it in the descriptor's "
            "implementation ('module:HOOKS')",
        )
    owner = expected.__name__
    for item in fields(hooks):
        value = getattr(hooks, item.name)
        if item.name == "actions":
            _check_actions(value)
        elif value is not None:
            _check_callable(owner, item.name, value, _ARITY[item.name])
        elif item.name in ("open_preparer", "open_sender"):
            raise PluginError(f"{owner}.{item.name} is required")


def _check_actions(actions: object) -> None:
    if not isinstance(actions, tuple) or not all(isinstance(action, DestinationAction) for action in actions):
        raise PluginError("DestinationHooks.actions must be a tuple of DestinationAction")
    names = [action.name for action in actions]
    for action in actions:
        if not NAME_PATTERN.match(action.name):
            raise PluginError(f"action name {action.name!r} must be lower-case words joined by hyphens")
        if not action.help:
            raise PluginError(f"action {action.name!r} has no help")
        _check_callable("DestinationAction", f"{action.name}.run", action.run, 1)
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise PluginError(f"actions named twice: {', '.join(repeated)}")


__all__ = [
    "AccessReport",
    "ActionResult",
    "Authorization",
    "CredentialHandle",
    "CredentialHooks",
    "CredentialState",
    "CredentialStatus",
    "DestinationAction",
    "DestinationContext",
    "DestinationHooks",
    "LockedCredential",
    "check_hooks",
]
