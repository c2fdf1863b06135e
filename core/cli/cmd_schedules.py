"""`offramp schedules list`: every schedule, its next fires in its own timezone and in UTC, and its last fire."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import typer

from offramp.core.cli.common import JsonOption, WorkspaceOption, build_context, reading, workspace_name
from offramp.core.cli.output import print_json, print_table, say
from offramp.core.errors import ConfigError
from offramp.core.hints import offramp_command

app = typer.Typer(help="Schedules of orchestrations and groups: next fires, last outcomes.", no_args_is_help=True)


def _utc(value: Any) -> str:
    return value.strftime("%Y-%m-%d %H:%M UTC") if value is not None else ""


def _local(text: str) -> str:
    """An ISO instant with its offset, as a wall time with the offset (``2026-03-29 03:00 +02:00``)."""
    value = datetime.fromisoformat(text)
    return f"{value:%Y-%m-%d %H:%M} {value.strftime('%z')[:3]}:{value.strftime('%z')[3:]}"


def _last(fire: dict[str, Any] | None) -> str:
    if fire is None:
        return "(never fired)"
    text = f"{_utc(fire['fire_at'])} {fire['status']}"
    if fire["reason"]:
        text += f" ({fire['reason']})"
    if fire["run_id"]:
        text += f" run {fire['run_id']}"
    return text


@app.command("list")
def list_(
    workspace: WorkspaceOption = None,
    all_workspaces: Annotated[
        bool, typer.Option("--all-workspaces", help="Every workspace: production and each sandbox.")
    ] = False,
    json_output: JsonOption = False,
) -> None:
    """List schedules: cron and timezone, enabled, the next three fires (local and UTC), the last fire."""
    from offramp.core.scheduling.store import schedule_rows, scheduled_targets
    from offramp.core.services.workspaces import get_workspace
    from offramp.core.state.models import utcnow

    if all_workspaces and workspace is not None:
        raise ConfigError(
            "give -w/--workspace or --all-workspaces, not both",
            hint=f"one workspace: {offramp_command('schedules', 'list', '-w', workspace)}; every workspace: "
            + offramp_command("schedules", "list", "--all-workspaces"),
        )
    ctx = build_context()
    with reading(ctx) as session:
        name = None if all_workspaces else workspace_name(ctx, workspace)
        if name is not None:
            get_workspace(session, name)  # an unknown workspace is an error naming the ones that exist
        rows = schedule_rows(session, scheduled_targets(session, name), utcnow())
    if json_output:
        print_json(rows)
        return
    if not rows:
        where = "" if name is None else f" in workspace {name}"
        say(f"No schedules{where}; give an orchestration one with --schedule, see "
            + offramp_command("orchestrations", "update", "--help"))  # fmt: skip
        return
    table = []
    for row in rows:
        fires = "\n".join(f"{_local(item['local'])}  ({_utc(item['utc'])})" for item in row["next_fires"])
        enabled = "yes" if row["enabled"] else "no"
        if row["note"]:
            enabled += f" ({row['note']})"
        table.append([
            row["workspace"], row["kind"], row["name"], row["cron"] or "", row["timezone"] or "", enabled,
            fires, _last(row["last_fire"]),
        ])  # fmt: skip
    print_table(
        "Schedules", ["workspace", "kind", "name", "cron", "timezone", "enabled", "next fires", "last fire"], table
    )


__all__ = ["app"]
