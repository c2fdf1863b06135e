"""`offramp plugins list|show`: the installed credential and destination types."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Any

import typer

from offramp.core.cli.common import JsonOption
from offramp.core.cli.output import print_json, print_mapping, print_table
from offramp.core.config import describe_fields
from offramp.core.plugin_types import DestinationType
from offramp.core.registry import Registered, discover

app = typer.Typer(help="Installed credential and destination types.", no_args_is_help=True)


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


@app.command("list")
def list_plugins(json_output: JsonOption = False) -> None:
    """List credential and destination types, including broken plugins and why they are broken."""
    registry = discover()
    entries = [_summary(e) for e in [*registry.credentials.values(), *registry.destinations.values()]]
    broken = [
        {"kind": b.kind, "name": b.name, "distribution": b.distribution, "status": "broken", "reason": b.reason}
        for b in registry.broken
    ]
    if json_output:
        print_json([*entries, *broken])
        return
    print_table(
        "Plugins",
        ["kind", "name", "display name", "version", "distribution", "status"],
        [
            *([e["kind"], e["name"], e["display_name"], e["version"], e["distribution"], "ok"] for e in entries),
            *([b["kind"], b["name"], "", "", b["distribution"], f"broken: {b['reason']}"] for b in broken),
        ],
    )


@app.command("show")
def show_plugin(
    name: Annotated[str, typer.Argument(help="Type name, e.g. tiktok-ads-offline-events.")],
    json_output: JsonOption = False,
) -> None:
    """Show a type's settings: every field with its type, whether required, default, secret, description."""
    entry = discover().find(name)
    fields = [asdict(spec) for spec in describe_fields(entry.descriptor.settings)]
    if json_output:
        print_json({**_summary(entry), "fields": fields, "schema": entry.descriptor.settings.model_json_schema()})
        return
    summary = _summary(entry)
    print_mapping(f"{summary['display_name']} ({entry.kind} type {name}, version {summary['version']})", {
        key: value for key, value in summary.items() if key not in ("name", "display_name", "version", "kind")
    })  # fmt: skip
    print_table(
        "Settings",
        ["field", "type", "required", "default", "secret", "description"],
        [
            [
                f["name"],
                f["type"],
                "yes" if f["required"] else "no",
                "" if f["required"] else repr(f["default"]) if f["default"] is not None else "-",
                "yes" if f["secret"] else "no",
                f["description"],
            ]
            for f in fields
        ],
    )
