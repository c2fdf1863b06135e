"""A real offramp workspace for a plugin's tests: a fresh SQLite store, credentials and destinations in it, and the
:class:`~offramp.core.plugin_api.DestinationContext` core hands the plugin's hooks.

Nothing is mocked: the store, the encryption of secrets, the credential's lock and the validation of settings are
the ones ``offramp run`` uses, so a hook tested here behaves as it will in a run::

    with PluginWorkspace(tmp_path) as workspace:
        workspace.add_credential("acme", "static-token", {"token": "t0ken"})
        workspace.add_destination("acme", "acme", "acme", {"url": "https://127.0.0.1:8443/events"})
        context = workspace.context("acme", options={"timezone": "Europe/Paris"})
        sender = HOOKS.open_sender(context)
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from offramp.core.environment import DEFAULT_WORKSPACE, Environment
from offramp.core.plugin_api import CredentialHandle, DestinationContext
from offramp.core.registry import Registry, discover
from offramp.core.secrets import create_key_file
from offramp.core.services.context import Context
from offramp.core.services.credentials import add_credential
from offramp.core.services.destinations import add_destination
from offramp.core.services.plugin_context import credential_handle, destination_context
from offramp.core.state.store import initialize

# The workspace `offramp init` creates, which every command uses unless told otherwise.
WORKSPACE = DEFAULT_WORKSPACE


class PluginWorkspace:
    """A throw-away state store in ``home`` (a new, empty directory), with the installed plugins registered.

    Args:
        home: Where the store and its key file go.
        registry: The plugin types to use; by default those installed (entry points). Pass one with
            ``Registry.register(...)`` to test a type that is not installed.
    """

    def __init__(self, home: Path, registry: Registry | None = None) -> None:
        # Every field given, so that no OFFRAMP_* variable of the developer's shell reaches the test's store.
        env = Environment(home=Path(home), database_url=None, secret_key=None, workspace=WORKSPACE, auto_upgrade=True)
        store = initialize(env)[0]
        create_key_file(env.key_file)
        self._ctx = Context(env=env, store=store, actor="plugin-test", _registry=registry or discover())

    def __enter__(self) -> PluginWorkspace:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Release the store."""
        self._ctx.store.dispose()

    @property
    def registry(self) -> Registry:
        """The registry the workspace validates and runs with."""
        return self._ctx.registry

    def add_credential(self, name: str, type_name: str, settings: Mapping[str, Any]) -> CredentialHandle:
        """Store a credential (secrets encrypted, as `offramp credentials add` does) and return its handle."""
        with self._ctx.store.session() as session:
            add_credential(session, self._ctx, WORKSPACE, name, type_name, dict(settings))
        return self.credential(name)

    def add_destination(self, name: str, type_name: str, credential: str, settings: Mapping[str, Any]) -> None:
        """Store a destination bound to ``credential``, validated as `offramp destinations add` does (without its
        connection test)."""
        with self._ctx.store.session() as session:
            add_destination(session, self._ctx, WORKSPACE, name, type_name, credential, dict(settings))

    def credential(self, name: str) -> CredentialHandle:
        """The handle core gives a plugin for the credential ``name``."""
        return credential_handle(self._ctx, WORKSPACE, name)

    def context(
        self,
        destination: str,
        *,
        options: Mapping[str, Any] | None = None,
        now: float | None = None,
        dry_run: bool = False,
        timeout_seconds: float = 30.0,
    ) -> DestinationContext:
        """The context a run of an orchestration with ``options`` (flat, as in YAML) hands the hooks."""
        return destination_context(
            self._ctx, WORKSPACE, destination, options=options, now=now, dry_run=dry_run,
            timeout_seconds=timeout_seconds,
        )  # fmt: skip


__all__ = ["PluginWorkspace"]
