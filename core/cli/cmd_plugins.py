"""`offramp plugins list|show`: the installed credential and destination types, and contributed commands."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Any

import typer

from offramp.core.cli.common import CORE_COMMANDS, JsonOption
from offramp.core.cli.output import print_json, print_mapping, print_table
from offramp.core.commands import discover_commands
from offramp.core.config import describe_fields
from offramp.core.plugin_api import CredentialHooks, DestinationHooks
from offramp.core.plugin_types import CredentialType, DestinationType
from offramp.core.registry import Registered, discover

app = typer.Typer(help="Installed credential and destination types, and commands plugins add.", no_args_is_help=True)


def _summary(entry: Registered) -> dict[str, Any]:
    descriptor = entry.descriptor
    data: dict[str, Any] = {
        "kind": entry.kind,
        "name": descriptor.name,
        "display_name": descriptor.display_name,
        "version": descriptor.version,
        "distribution": entry.distribution,
        "description": descriptor.description,
        "status": "ok",
    }
    if isinstance(descriptor, DestinationType):
        data["capabilities"] = {
            **asdict(descriptor.capabilities),
            "event_sources": list(descriptor.capabilities.event_sources),
        }
        data["credential_types"] = list(descriptor.credential_types)
    return data


def _hooks(entry: Registered) -> dict[str, Any]:
    """Which hooks the type fills, and its actions."""
    hooks = entry.hooks
    if isinstance(hooks, DestinationHooks):
        filled = ["open_preparer", "open_sender"] + (["check_connection"] if hooks.check_connection else [])
        return {"hooks": filled, "actions": [{"name": item.name, "help": item.help} for item in hooks.actions]}
    if isinstance(hooks, CredentialHooks):
        hooked: dict[str, object] = {
            "authorization_url": hooks.authorization_url,
            "complete_authorization": hooks.complete_authorization,
            "describe_access": hooks.describe_access,
        }
        return {"hooks": [name for name, hook in hooked.items() if hook is not None]}
    return {"hooks": []}


def _field_rows(fields: list[dict[str, Any]]) -> list[list[str]]:
    return [
        [
            f["name"],
            f["type"],
            "yes" if f["required"] else "no",
            "" if f["required"] else repr(f["default"]) if f["default"] is not None else "-",
            "yes" if f["secret"] else "no",
            f["description"],
        ]
        for f in fields
    ]


@app.command("list")
def list_plugins(json_output: JsonOption = False) -> None:
    """List credential and destination types and contributed commands, including broken plugins and why."""
    registry = discover()
    commands = discover_commands(frozenset(CORE_COMMANDS))
    entries = [_summary(e) for e in [*registry.credentials.values(), *registry.destinations.values()]]
    contributed = [
        {"kind": "command", "name": c.contribution.name, "distribution": c.distribution, "status": "ok",
         "description": c.contribution.help}
        for c in commands.commands
    ]  # fmt: skip
    broken = [
        {"kind": b.kind, "name": b.name, "distribution": b.distribution, "status": "broken", "reason": b.reason}
        for b in registry.broken
    ] + [
        {"kind": "command", "name": b.name, "distribution": b.distribution, "status": "broken", "reason": b.reason}
        for b in commands.broken
    ]
    if json_output:
        print_json([*entries, *contributed, *broken])
        return
    print_table(
        "Plugins",
        ["kind", "name", "display name", "version", "distribution", "status"],
        [
            *([e["kind"], e["name"], e["display_name"], e["version"], e["distribution"], "ok"] for e in entries),
            *([c["kind"], c["name"], "", "", c["distribution"], "ok"] for c in contributed),
            *([b["kind"], b["name"], "", "", b["distribution"], f"broken: {b['reason']}"] for b in broken),
        ],
    )


@app.command("show")
def show_plugin(
    name: Annotated[str, typer.Argument(help="Type name, e.g. static-token.")],
    json_output: JsonOption = False,
) -> None:
    """Show a type: its settings (each field's type, whether required, default, secret, description), a destination
    type's run options and actions, and the hooks it fills."""
    entry = discover().find(name)
    descriptor = entry.descriptor
    fields = [asdict(spec) for spec in describe_fields(descriptor.settings)]
    summary = {**_summary(entry), **_hooks(entry)}
    run_options: list[dict[str, Any]] = []
    if isinstance(descriptor, DestinationType):
        run_options = [asdict(spec) for spec in describe_fields(descriptor.run_options)]
    if json_output:
        data = {**summary, "fields": fields, "schema": descriptor.settings.model_json_schema()}
        if isinstance(descriptor, DestinationType):
            data["run_options"] = run_options
            data["run_options_schema"] = descriptor.run_options.model_json_schema()
        print_json(data)
        return
    shown = {key: value for key, value in summary.items() if key not in ("name", "display_name", "version", "kind")}
    if isinstance(descriptor, CredentialType) or not shown.get("actions"):
        shown.pop("actions", None)
    else:
        shown["actions"] = [f"{item['name']}: {item['help']}" for item in shown["actions"]]
    print_mapping(f"{summary['display_name']} ({entry.kind} type {name}, version {summary['version']})", shown)
    columns = ["field", "type", "required", "default", "secret", "description"]
    print_table("Settings", columns, _field_rows(fields))
    if isinstance(descriptor, DestinationType):
        # The options every destination shares (mode, timezone, schedule...) are in `offramp orchestrations add --help`.
        print_table("Run options (orchestration options this type reads)", columns, _field_rows(run_options))
