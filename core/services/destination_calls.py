"""What a destination's hooks do on demand: its connection test (also before it is stored) and its actions.

Apart from ``destinations`` because it builds on ``plugin_context``, which builds on ``destinations``.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from offramp.core.connection_checks import CheckStep
from offramp.core.errors import ConfigError
from offramp.core.hints import offramp_command
from offramp.core.plugin_api import ActionResult
from offramp.core.services.context import Context
from offramp.core.services.destinations import (
    edited_destination,
    get_destination,
    unsaved_destination,
    update_destination,
)
from offramp.core.services.plugin_context import context_of, destination_context
from offramp.core.services.workspaces import get_workspace
from offramp.core.state.models import Destination


def test_new_destination(
    ctx: Context, workspace_name: str, name: str, type_name: str, credential_name: str, raw: dict[str, Any]
) -> list[CheckStep]:
    """Validate a destination that is not stored yet and run its connection test; raise if a step failed.

    Runs in a read-only session and outside any write transaction: the test may refresh the credential, which
    writes the rotated tokens in a transaction of its own (on SQLite it would otherwise wait for the caller's).
    """
    with ctx.store.read_session() as session:
        row, resolved = unsaved_destination(session, ctx, workspace_name, name, type_name, credential_name, raw)
        _loaded = (row.workspace.name, row.credential.name)  # loaded while the session is open
    return _passed(name, test_connection(ctx, row), "add it anyway with --no-test")


def test_destination_change(
    ctx: Context,
    workspace_name: str,
    name: str,
    changes: dict[str, Any],
    unset: Collection[str] = (),
    credential_name: str | None = None,
) -> tuple[list[str], list[CheckStep]]:
    """Validate `destinations update` and run the connection test of the destination as it would be stored.

    Returns the fields that would change and the test's steps (none when nothing changes: there is nothing to
    test). Raises if the change is invalid (every invalid field at once) or a step failed. Runs outside any write
    transaction, as :func:`test_new_destination` does.
    """
    with ctx.store.read_session() as session:
        row, change = edited_destination(session, ctx, workspace_name, name, changes, unset, credential_name)
        if not change.fields:
            return [], []
        unsaved = change.unsaved(row)
        _loaded = (unsaved.workspace.name, unsaved.credential.name)  # loaded while the session is open
    return change.fields, _passed(name, test_connection(ctx, unsaved), "update it anyway with --no-test")


def _passed(name: str, steps: list[CheckStep], anyway: str) -> list[CheckStep]:
    """``steps`` when none failed; else the error naming each failed step."""
    failed = [step for step in steps if step.verdict == "failed"]
    if failed:
        raise ConfigError(
            f"destination {name!r} failed its connection test: "
            + "; ".join(f"{step.name}: {step.detail}" for step in failed),
            hint=f"fix it, or {anyway}",
            steps=steps,
        )
    return steps


def test_connection(ctx: Context, row: Destination, *, fix: bool = False) -> list[CheckStep]:
    """The destination type's connection test, step by step; a type without one reports a skipped step.

    ``row`` is loaded with its workspace and credential (it may be a destination not stored yet). The test gets the
    destination's context with the type's default run options, and runs outside any write transaction: it may
    refresh the credential, which writes in a transaction of its own.
    """
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
    with ctx.store.read_session() as session:
        row = get_destination(session, get_workspace(session, workspace_name), name)
        type_name = row.type
    hooks = ctx.registry.destination_hooks(type_name)
    action = hooks.action(action_name)
    if action is None:
        names = ", ".join(item.name for item in hooks.actions) or "none"
        raise ConfigError(
            f"destination type {type_name} has no action {action_name!r} (its actions: {names})",
            hint=f"see `{offramp_command('plugins', 'show', type_name)}`",
        )
    result = action.run(destination_context(ctx, workspace_name, name))
    if result.settings:
        with ctx.store.session() as session:
            row = get_destination(session, get_workspace(session, workspace_name), name)
            # Stored secrets stay as they are; only the settings the action returned change.
            update_destination(session, ctx, row, row.credential.name, {**row.settings, **result.settings})
    return result


__all__ = ["run_action", "test_connection", "test_destination_change", "test_new_destination"]
