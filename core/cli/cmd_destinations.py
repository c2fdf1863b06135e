"""`offramp destinations add|update|rename|list|show|delete|test|action`, and one command per action of the installed
types.

A destination type declares its actions as data (``DestinationHooks.actions``); ``offramp destinations action NAME
ACTION`` runs any of them, and :func:`add_action_commands` adds ``offramp destinations ACTION NAME`` for each.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict
from typing import Annotated

import typer

from offramp.core.cli.cmd_credentials import UnsetOption, say_changed
from offramp.core.cli.common import (
    ActorOption,
    JsonOption,
    SetOption,
    WorkspaceOption,
    build_context,
    parse_settings,
    prompt_missing_secrets,
    reading,
    transaction,
    workspace_name,
)
from offramp.core.cli.output import print_json, print_mapping, print_table, say, when
from offramp.core.connection_checks import CheckStep, has_failures
from offramp.core.registry import Registry
from offramp.core.services import destination_calls
from offramp.core.services import destinations as service
from offramp.core.services.workspaces import get_workspace

app = typer.Typer(help="Vendor targets, each bound to one credential.", no_args_is_help=True)

NameArgument = Annotated[str, typer.Argument(help="Destination name.")]


@app.command("add")
def add(
    name: NameArgument,
    type_name: Annotated[str, typer.Option("--type", "-t", help="Destination type (see `offramp plugins list`).")],
    credential: Annotated[str, typer.Option("--credential", "-c", help="Name of the credential to use.")],
    settings: SetOption = None,
    no_test: Annotated[bool, typer.Option("--no-test", help="Save without running the connection test first.")] = False,
    workspace: WorkspaceOption = None,
    actor: ActorOption = None,
) -> None:
    """Add a destination. Its connection test runs first; a failure refuses to save unless --no-test."""
    ctx = build_context(actor)
    values = parse_settings(settings)
    prompt_missing_secrets(ctx.registry.destination_type(type_name).settings, values)
    target = workspace_name(ctx, workspace)
    steps: list[CheckStep] = []
    if not no_test:
        # Before the write transaction: the test may refresh the credential, which writes in a transaction of its own.
        steps = destination_calls.test_new_destination(ctx, target, name, type_name, credential, values)
    with transaction(ctx) as session:
        row = service.add_destination(session, ctx, target, name, type_name, credential, values)
        say(f"Added destination {row.name} ({row.type}, credential {row.credential.name}).")
    say_warnings(steps)


def say_warnings(steps: list[CheckStep]) -> None:
    """The connection test's warnings (a step that passed with something to look at), one line each."""
    for step in steps:
        if step.verdict == "warning":
            say(f"{_MARKS[step.verdict]:>8}  {step.name}: {step.detail}")


@app.command("update")
def update(
    name: NameArgument,
    settings: SetOption = None,
    unset: UnsetOption = None,
    credential: Annotated[
        str | None, typer.Option("--credential", "-c", help="Bind it to this credential instead.")
    ] = None,
    no_test: Annotated[bool, typer.Option("--no-test", help="Save without running the connection test first.")] = False,
    workspace: WorkspaceOption = None,
    actor: ActorOption = None,
) -> None:
    """Change a destination: --set what changes, --unset what goes, --credential to rebind; the rest is kept.

    Validated as `add` validates (every invalid field at once). The connection test of the destination as it would
    be stored runs first; a failure refuses the change unless --no-test.
    """
    ctx = build_context(actor)
    values = parse_settings(settings)
    target = workspace_name(ctx, workspace)
    steps: list[CheckStep] = []
    if not no_test:
        # Before the write transaction, as for `add`: the test may refresh the credential in a transaction of its own.
        _fields, steps = destination_calls.test_destination_change(ctx, target, name, values, unset or [], credential)
    with transaction(ctx) as session:
        changed = service.edit_destination(session, ctx, target, name, values, unset or [], credential)
    say_changed("destination", name, changed)
    if changed:
        say_warnings(steps)


@app.command("rename")
def rename(
    name: NameArgument,
    new_name: Annotated[str, typer.Argument(metavar="NEW", help="The new name.")],
    workspace: WorkspaceOption = None,
    actor: ActorOption = None,
) -> None:
    """Rename a destination; the orchestrations sending to it keep sending to it."""
    ctx = build_context(actor)
    with transaction(ctx) as session:
        renamed = service.rename_destination(session, ctx, workspace_name(ctx, workspace), name, new_name)
    say(f"Renamed destination {name} to {new_name}." if renamed else f"Destination {name}: nothing to change.")


@app.command("list")
def list_(workspace: WorkspaceOption = None, json_output: JsonOption = False) -> None:
    """List destinations."""
    ctx = build_context()
    with reading(ctx) as session:
        rows = service.list_destinations(session, get_workspace(session, workspace_name(ctx, workspace)))
        data = [
            {"name": r.name, "type": r.type, "credential": r.credential.name, "updated_at": r.updated_at} for r in rows
        ]
    if json_output:
        print_json(data)
        return
    print_table(
        "Destinations",
        ["name", "type", "credential", "updated"],
        [[d["name"], d["type"], d["credential"], when(d["updated_at"])] for d in data],
    )


@app.command("show")
def show(name: NameArgument, workspace: WorkspaceOption = None, json_output: JsonOption = False) -> None:
    """Show a destination's settings (with defaults) and the orchestrations that use it."""
    ctx = build_context()
    with reading(ctx) as session:
        row = service.get_destination(session, get_workspace(session, workspace_name(ctx, workspace)), name)
        data = service.describe_destination(session, ctx, row)
    if json_output:
        print_json(data)
    else:
        print_mapping(f"destination {name}", {k: v for k, v in data.items() if k != "name"})


@app.command("delete")
def delete(name: NameArgument, workspace: WorkspaceOption = None, actor: ActorOption = None) -> None:
    """Delete a destination; refused while an orchestration uses it."""
    ctx = build_context(actor)
    with transaction(ctx) as session:
        service.delete_destination(session, ctx, workspace_name(ctx, workspace), name)
    say(f"Deleted destination {name}.")


_MARKS = {"ok": "ok", "warning": "warning", "failed": "FAILED", "skipped": "skipped", "fixed": "fixed"}


@app.command("test")
def test(
    name: NameArgument,
    fix: Annotated[bool, typer.Option("--fix", help="Correct what can be corrected (auto tracking).")] = False,
    workspace: WorkspaceOption = None,
    json_output: JsonOption = False,
) -> None:
    """Check the destination against the vendor step by step; exit 1 when a step fails."""
    ctx = build_context()
    with reading(ctx) as session:
        row = service.get_destination(session, get_workspace(session, workspace_name(ctx, workspace)), name)
        _loaded = (row.workspace.name, row.credential.name)  # load them now: the test runs after this session
    # Outside the transaction: the test may refresh the credential, which takes its lock.
    steps = destination_calls.test_connection(ctx, row, fix=fix)
    failed = has_failures(steps)
    if json_output:
        print_json({"destination": name, "ok": not failed, "steps": [asdict(step) for step in steps]})
    else:
        for step in steps:
            say(f"{_MARKS[step.verdict]:>8}  {step.name}: {step.detail}")
        say(f"Destination {name} {'FAILED its connection test' if failed else 'passed its connection test'}.")
    if failed:
        raise typer.Exit(1)


ActionArgument = Annotated[str, typer.Argument(metavar="ACTION", help="Action of the destination's type.")]


def _run_action(name: str, action_name: str, workspace: str | None, actor: str | None) -> None:
    ctx = build_context(actor)
    result = destination_calls.run_action(ctx, workspace_name(ctx, workspace), name, action_name)
    say(result.message)


@app.command("action")
def action(
    name: NameArgument, action_name: ActionArgument, workspace: WorkspaceOption = None, actor: ActorOption = None
) -> None:
    """Run an action of the destination's type (see `offramp plugins show TYPE`); settings it returns are stored."""
    _run_action(name, action_name, workspace, actor)


def _action_command(action_name: str) -> Callable[..., None]:
    def command(name: NameArgument, workspace: WorkspaceOption = None, actor: ActorOption = None) -> None:
        _run_action(name, action_name, workspace, actor)

    return command


def add_action_commands(registry: Registry) -> None:
    """Add ``offramp destinations ACTION NAME`` for every action an installed destination type declares.

    An action several types declare is one command, which runs the action of the destination's own type. One named
    like a command of this group (``test``, ``show``...) is only reachable as ``destinations action NAME ACTION``.
    """
    taken = {str(item.name) for item in app.registered_commands}
    declared: dict[str, list[tuple[str, str]]] = {}
    for type_name in sorted(registry.destinations):
        for item in registry.destination_hooks(type_name).actions:
            declared.setdefault(item.name, []).append((type_name, item.help))
    for action_name, owners in sorted(declared.items()):
        if action_name in taken:
            continue
        help_text = owners[0][1]
        if len(owners) > 1:
            help_text += f" (destination types {', '.join(type_name for type_name, _ in owners)})"
        app.command(action_name, help=help_text)(_action_command(action_name))
