"""`offramp audit`: the trail of changes."""

from __future__ import annotations

from typing import Annotated

import typer

from offramp.core.cli.common import JsonOption, build_context, reading
from offramp.core.cli.output import print_json, print_table, when
from offramp.core.services.audit import OBJECT_TYPES, list_events


def _known_type(value: str | None) -> str | None:
    """A typo in --type would list nothing, which reads as "nothing happened": refuse it, naming the types."""
    if value is not None and value not in OBJECT_TYPES:
        raise typer.BadParameter(f"unknown object type {value!r}; the types are: {', '.join(OBJECT_TYPES)}")
    return value


def audit(
    workspace: Annotated[str | None, typer.Option("--workspace", "-w", help="Only this workspace.")] = None,
    object_type: Annotated[
        str | None,
        typer.Option("--type", help=f"Only this kind of object: {', '.join(OBJECT_TYPES)}.", callback=_known_type),
    ] = None,
    limit: Annotated[int, typer.Option(help="How many events, newest first.")] = 100,
    json_output: JsonOption = False,
) -> None:
    """List audit events, newest first: who changed what, and when."""
    ctx = build_context()
    with reading(ctx) as session:
        events = [
            {
                "at": e.at,
                "actor": e.actor,
                "action": e.action,
                "object_type": e.object_type,
                "object_name": e.object_name,
                "workspace": e.workspace,
                "details": e.details,
            }
            for e in list_events(session, workspace=workspace, object_type=object_type, limit=limit)
        ]
    if json_output:
        print_json(events)
        return
    print_table(
        "Audit events",
        ["at", "actor", "action", "object", "workspace"],
        [
            [
                when(e["at"]),
                e["actor"],
                e["action"],
                f"{e['object_type']} {e['object_name'] or ''}".strip(),
                e["workspace"],
            ]
            for e in events
        ],
    )
