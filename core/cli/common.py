"""Shared pieces of CLI commands: options, the service context, parsing of ``--set``.

The CLI's root (``app.py``) imports this module for ``offramp --version``: what needs SQLAlchemy or the services is
imported inside the functions that use it.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated, Any

import typer

from offramp.core.errors import ConfigError

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from offramp.core.config import PluginSettings
    from offramp.core.services.context import Context
    from offramp.core.state.store import StateStore


WorkspaceOption = Annotated[
    str | None,
    typer.Option("--workspace", "-w", help="Workspace to act in (default: $OFFRAMP_WORKSPACE or production)."),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]
ActorOption = Annotated[
    str | None, typer.Option("--actor", help="Who makes the change, for the audit trail (default: the OS user).")
]
SetOption = Annotated[
    list[str] | None,
    typer.Option(
        "--set",
        "-s",
        help="A setting as key=value; repeat for more. key=env:VAR reads the value from an environment variable.",
    ),
]


# The commands of the CLI itself; a command a plugin contributes (offramp.core.commands) cannot take one of these names.
CORE_COMMANDS = (
    "alerts", "apply", "audit", "credentials", "destinations", "export", "groups", "init", "orchestrations", "plugins",
    "promotions", "run", "runs", "sandboxes", "scheduler", "schedules", "secrets", "sources", "status", "workspaces",
)  # fmt: skip


def build_context(actor: str | None = None) -> Context:
    """Open the state store (upgrading an older schema) and build the services' context."""
    from offramp.core.environment import Environment
    from offramp.core.services.context import Context, current_actor
    from offramp.core.state.store import open_store

    env = Environment()
    store = open_store(env)
    _opened_stores.append(store)
    return Context(env=env, store=store, actor=actor or current_actor())


# Stores opened by the running command, closed by `close_stores` when it ends: the CLI may run inside a longer
# process (tests, a notebook, later the API), where pooled connections would otherwise stay open.
_opened_stores: list[StateStore] = []


def close_stores() -> None:
    """Close every pooled connection of the stores the running command opened."""
    while _opened_stores:
        _opened_stores.pop().dispose()


def workspace_name(ctx: Context, option: str | None) -> str:
    """The workspace a command acts in."""
    return option or ctx.env.workspace


@contextmanager
def transaction(ctx: Context) -> Iterator[Session]:
    """A session committed when the block succeeds (on SQLite it holds the write lock from its start)."""
    with ctx.store.session() as session:
        yield session


@contextmanager
def reading(ctx: Context) -> Iterator[Session]:
    """A session for a command that only reads: it never waits for a writer (a run, an apply, a key rotation)."""
    with ctx.store.read_session() as session:
        yield session


def parse_settings(pairs: list[str] | None) -> dict[str, Any]:
    """``["a=1", "b=x"]`` as a dict; malformed pairs are reported together."""
    values: dict[str, Any] = {}
    bad = []
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            bad.append(pair)
            continue
        values[key.strip()] = value
    if bad:
        raise ConfigError(
            f"--set expects key=value, got: {', '.join(repr(b) for b in bad)}", hint="for example --set app_id=123"
        )
    return values


def prompt_missing_secrets(model: type[PluginSettings], values: dict[str, Any]) -> None:
    """Ask, without echo, for each required secret the command line did not give.

    Off a terminal nothing can be asked; settings validation then names the missing fields with the rest.
    """
    from offramp.core.config import secret_field_names

    missing = [
        name
        for name in sorted(secret_field_names(model))
        if model.model_fields[name].is_required() and name not in values
    ]
    if not missing:
        return
    if not sys.stdin.isatty():
        return  # validation reports them, with every other problem of the command line
    for name in missing:
        values[name] = typer.prompt(f"{name} (input hidden)", hide_input=True)


__all__ = [
    "CORE_COMMANDS",
    "ActorOption",
    "JsonOption",
    "SetOption",
    "WorkspaceOption",
    "build_context",
    "close_stores",
    "parse_settings",
    "prompt_missing_secrets",
    "reading",
    "transaction",
    "workspace_name",
]
