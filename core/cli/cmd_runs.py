"""`offramp runs list|show`: past runs, their counts and their per-row ledger."""

from __future__ import annotations

import csv
import io
import json
import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer

from offramp.core.cli.common import JsonOption, WorkspaceOption, build_context, reading, workspace_name
from offramp.core.cli.output import print_json, print_mapping, print_table, say
from offramp.core.errors import ConfigError
from offramp.core.hints import offramp_command
from offramp.core.runner import ledger
from offramp.core.runner.suggestions import columns_not_used
from offramp.core.services import runs as service
from offramp.core.services.workspaces import get_workspace
from offramp.core.state.models import Run

app = typer.Typer(help="Past runs, their counts and their per-row ledger.", no_args_is_help=True)


class ExportFormat(StrEnum):
    TABLE = "table"
    CSV = "csv"
    JSON = "json"


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return ""
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, rest = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {rest} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min"


def _time(iso: str | None) -> str:
    """An ISO timestamp of the store (UTC) to the second, for people."""
    return f"{iso[:19].replace('T', ' ')} UTC" if iso else ""


def _status(data: dict[str, Any]) -> str:
    return str(data["status"]).replace("_", " ") + (" (dry run)" if data["dry_run"] else "")


def _cell(events: int, rows: int) -> str:
    """An outcome in a table of runs: events, then rows (``1410 (3455)``: 1410 events of 3455 rows)."""
    return f"{events} ({rows})"


@app.command("list")
def list_(
    orchestration: Annotated[
        str | None,
        typer.Option(help="Only runs of this orchestration (its runs from before a rename included)."),
    ] = None,
    group: Annotated[
        str | None,
        typer.Option("--group", help="List the group runs of this group instead (its members in order, statuses)."),
    ] = None,
    limit: Annotated[int, typer.Option(min=1, help="How many runs, newest first.")] = 50,
    workspace: WorkspaceOption = None,
    json_output: JsonOption = False,
) -> None:
    """List runs, newest first, with status, rows read, events, the outcomes in events (rows), start and duration.

    A run whose process stopped without finishing (its heartbeat lapsed) is marked interrupted here. --json prints
    each run in the shape of `offramp run --json` (a member run of a group run names it: group_run_id). With
    --group, the group's group runs: status, start, duration, and its members' outcomes.
    """
    if group is not None and orchestration is not None:
        raise ConfigError("give --orchestration or --group, not both", hint="a group run's members are runs of both")
    ctx = build_context()
    if group is not None:
        _list_group_runs(ctx, group, limit, workspace, json_output)
        return
    with reading(ctx) as session:
        runs = service.list_runs(session, get_workspace(session, workspace_name(ctx, workspace)), orchestration, limit)
        data = [service.summary_json(session, run) for run in runs]
    if json_output:
        print_json(data)
        return
    print_table(
        "Runs (rows read, events prepared; each outcome in events, then its rows in parentheses)",
        ["id", "orchestration", "status", "started", "duration", "rows", "events", *service.OUTCOMES],
        [
            [d["id"][:12], d["orchestration"], _status(d), _time(d["started_at"]), _duration(d["duration_seconds"])]
            + [d["rows"]["queried"], d["events"]["prepared"]]
            + [_cell(d["events"][outcome], d["rows"][outcome]) for outcome in service.OUTCOMES]
            for d in data
        ],
    )


def _list_group_runs(ctx: Any, group: str, limit: int, workspace: str | None, json_output: bool) -> None:
    with reading(ctx) as session:
        scope = get_workspace(session, workspace_name(ctx, workspace))
        data = [service.group_run_json(session, row) for row in service.list_group_runs(session, scope, group, limit)]
    if json_output:
        print_json(data)
        return
    print_table(
        f"Group runs of {group}",
        ["id", "status", "started", "duration", "members", "error"],
        [
            [d["id"][:12], _status(d), _time(d["started_at"]), _duration(d["duration_seconds"]),
             service.members_line(d), d["error"] or ""]
            for d in data
        ],
    )  # fmt: skip


def _show_group_run(data: dict[str, Any]) -> None:
    """A group run as people read it: its members in order, each with its run, status, reason and timings."""
    members: dict[str, Any] = {}
    for position, member in enumerate(data["members"], start=1):
        run = f"run {member['run_id']}" if member["run_id"] else "no run"
        timing = ""
        if member["started_at"]:
            timing = f", started {_time(member['started_at'])}, {_duration(member['duration_seconds'])}"
        reason = f": {member['reason']}" if member["reason"] else ""
        members[f"{position}. {member['orchestration']}"] = (
            f"{str(member['status']).replace('_', ' ')} ({run}{timing}){reason}"
        )
    lines: dict[str, Any] = {
        "group": data["group"],
        "workspace": data["workspace"],
        "status": _status(data),
        "actor": data["actor"],
        "scheduled fire": _time(data["fire_at"]),
        "started": _time(data["started_at"]),
        "finished": _time(data["finished_at"]),
        "duration": _duration(data["duration_seconds"]),
        "members": members,
        "error": data["error"],
        "next": data["hint"],
    }
    if data["members"]:
        first = next((member["run_id"] for member in data["members"] if member["run_id"]), None)
        if first:
            lines["a member run"] = offramp_command("runs", "show", first, workspace=data["workspace"])
    print_mapping(
        f"group run {data['id']}", {key: value for key, value in lines.items() if value not in (None, "", {})}
    )


@app.command("show")
def show(
    run_id: Annotated[str, typer.Argument(help="Run id (a unique prefix is enough).")],
    rejects: Annotated[bool, typer.Option("--rejects", help="List rejected events by event_id, with reason.")] = False,
    failed: Annotated[
        bool,
        typer.Option("--failed", help="List events that failed (refused by the vendor, or not sent), with code."),
    ] = False,
    unknown: Annotated[
        bool,
        typer.Option(
            "--unknown",
            help="List events whose outcome is unknown: in flight when a run died, too long ago to resend safely.",
        ),
    ] = False,
    warnings: Annotated[
        bool, typer.Option("--warnings", help="List the events that had warnings, by event_id, with their names.")
    ] = False,
    format_: Annotated[
        ExportFormat,
        typer.Option("--format", help="How --rejects/--failed/--unknown/--warnings are printed: table, csv or json."),
    ] = ExportFormat.TABLE,
    output: Annotated[
        Path | None,
        typer.Option(
            "--output",
            "-o",
            help="Write the --rejects/--failed/--unknown (or --warnings) events to this file (csv, or json with "
            "--format json).",
        ),
    ] = None,
    workspace: WorkspaceOption = None,
    json_output: JsonOption = False,
) -> None:
    """Show a run: counts in rows and events and whether they add up, reasons, vendor codes, timings, the vendor's
    request ids, error. A group run id shows the group run: its members in order, with their runs, statuses, reasons
    and timings.

    With --rejects, --failed and/or --unknown, also the ledger's events of those outcomes by event_id (no raw values
    are kept), as a table, or exported as CSV (with a header) or JSON to stdout or --output FILE; with --warnings,
    the events that had warnings (exported on their own: their fields differ).
    """
    flags = (rejects, failed, unknown)
    outcomes = [outcome for flag, outcome in zip(flags, service.LEDGER_OUTCOMES, strict=True) if flag]
    exporting = format_ is not ExportFormat.TABLE or output is not None
    if exporting and not outcomes and not warnings:
        raise ConfigError(
            "--format csv|json and --output export ledger events",
            hint="add --rejects, --failed, --unknown or --warnings",
        )
    if exporting and warnings and outcomes:
        raise ConfigError(
            "--warnings is exported on its own (its fields differ from those of --rejects/--failed/--unknown)",
            hint="export them one after the other, to two files",
        )
    if exporting and json_output:
        raise ConfigError("--json prints the whole run; --format and --output export events", hint="use one of them")
    if output is not None and format_ is ExportFormat.TABLE:
        format_ = ExportFormat.JSON if output.suffix.lower() == ".json" else ExportFormat.CSV
    ctx = build_context()
    with reading(ctx) as session:
        # A run id is unique across workspaces, so the id alone finds it; --workspace narrows the search when given.
        scope = get_workspace(session, workspace) if workspace is not None else None
        found = service.find_run(session, run_id, scope)
        if not isinstance(found, Run):
            if outcomes or warnings or exporting:
                raise ConfigError(
                    f"{found.id} is a group run: its events are in its member runs",
                    hint="see its members with: " + offramp_command("runs", "show", found.id, workspace=workspace),
                )
            group_data = service.group_run_json(session, found)
            if json_output:
                print_json(group_data)
            else:
                _show_group_run(group_data)
            return
        run = found
        data = service.summary_json(session, run)
        listed = {outcome: service.ledger_rows(session, run, outcome) for outcome in outcomes}
        warned = service.warning_rows(session, run) if warnings else None
        heartbeat = (run.heartbeat_at.isoformat() if run.heartbeat_at else None, run.lease_owner)
        last_pass = dict(run.report or {}).get("seconds")
    for rows in listed.values():
        for row in rows:
            row["event_id"] = ledger.shown_key(row["event_id"])
    if exporting:
        _export(data, outcomes, listed, warned, format_, output)
        return
    if json_output:
        extra: dict[str, Any] = {f"{outcome}_rows": rows for outcome, rows in listed.items()}
        if warned is not None:
            extra["warning_events"] = warned
        print_json({**data, **extra})
        return
    print_mapping(f"run {data['id']}", _summary(data, outcomes, warnings, heartbeat, last_pass))
    for outcome, rows in listed.items():
        print_table(
            f"{outcome.capitalize()} events",
            [name for name in service.LEDGER_FIELDS if name != "outcome"],
            [[row[name] for name in service.LEDGER_FIELDS if name != "outcome"] for row in rows],
        )
    if warned is not None:
        print_table(
            "Events with warnings",
            list(service.WARNING_FIELDS),
            [[w["event_id"], ", ".join(w["warnings"])] for w in warned],
        )


def _export(
    data: dict[str, Any],
    outcomes: list[str],
    listed: dict[str, list[dict[str, Any]]],
    warned: list[dict[str, Any]] | None,
    format_: ExportFormat,
    output: Path | None,
) -> None:
    """Write the listed events as CSV or JSON, to stdout or ``output``; say what was written, in events and rows."""
    if warned is not None:
        rows: list[dict[str, Any]] = warned
        flat = [{"event_id": w["event_id"], "warnings": ",".join(w["warnings"])} for w in warned]
        text = (
            _as_csv(flat, service.WARNING_FIELDS)
            if format_ is ExportFormat.CSV
            else json.dumps(rows, indent=2, ensure_ascii=False) + "\n"
        )
        what = f"{len(rows)} event{'s' if len(rows) != 1 else ''} with warnings"
    else:
        rows = [row for outcome in outcomes for row in listed[outcome]]
        text = (
            _as_csv(rows, service.LEDGER_FIELDS)
            if format_ is ExportFormat.CSV
            else json.dumps(rows, indent=2, ensure_ascii=False) + "\n"
        )
        source_rows = sum(int(row["rows"]) for row in rows)
        what = (
            f"{len(rows)} {' and '.join(outcomes)} event{'s' if len(rows) != 1 else ''} "
            f"({source_rows} row{'s' if source_rows != 1 else ''})"
        )
    if output is None:
        sys.stdout.write(text)
        return
    try:
        output.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot write {output}: {exc.strerror or exc}", hint="check the path") from None
    say(f"Wrote {what} of run {data['id']} to {output} ({format_}).")


def _summary(
    data: dict[str, Any],
    listed: list[str],
    warnings_listed: bool,
    heartbeat: tuple[str | None, str | None],
    last_pass: float | None,
) -> dict[str, Any]:
    """The run as people read it: what happened, whether the counts add up, why, when, and what to do next."""
    rows: dict[str, int] = data["rows"]
    events: dict[str, int] = data["events"]
    so_far = " (so far, from the ledger)" if data["counted_from"] == "ledger" else ""
    reasons: dict[str, dict[str, int]] = data["reasons"]
    workspace = data["workspace"]
    lines: dict[str, Any] = {
        "orchestration": data["orchestration"],
        "workspace": workspace,
        "status": _status(data),
        "mode": data["mode"],
        "actor": data["actor"],
        "counts": service.counts_line(rows, events, dry_run=data["dry_run"]) + so_far,
        "adds up": service.accounting(rows, events),
        **{
            f"{outcome} by reason": {code: f"{count} rows" for code, count in reasons[outcome].items()}
            for outcome in ("rejected", "skipped", "unknown")
        },
        "columns not used": columns_not_used(data["unknown_columns"], data["column_suggestions"]),
        **{f"{reason}": ", ".join(labels) for reason, labels in sorted(data["labels"].items())},
        "failed by code": {code: f"{count} rows" for code, count in data["vendor_codes"].items()},
        "warnings": data["warnings"],
        "started": _time(data["started_at"]),
        "finished": _time(data["finished_at"]),
        "duration": _duration(data["duration_seconds"]),
        "last pass": _duration(last_pass),
        "options": data["options"],
        "request ids": data["request_ids"],
        "error": data["error"],
        "next": data["hint"],
    }
    if data["dry_run"]:
        lines["dry run"] = "nothing was sent; 'would send' counts the events a real run would send"
        if data["sample_requests"]:
            lines["sample requests"] = f"{len(data['sample_requests'])} kept (see --json)"
    if data["status"] == "running":
        lines["heartbeat"] = f"{_time(heartbeat[0])} from {heartbeat[1]}"
    for outcome, flag in zip(service.LEDGER_OUTCOMES, ("--rejects", "--failed", "--unknown"), strict=True):
        if rows[outcome] and outcome not in listed:
            lines[f"{outcome} events"] = offramp_command("runs", "show", data["id"], flag, workspace=workspace)
    if data["warnings"] and not warnings_listed:
        lines["events with warnings"] = offramp_command("runs", "show", data["id"], "--warnings", workspace=workspace)
    return {key: value for key, value in lines.items() if value not in (None, "", {}, [])}


def _as_csv(rows: list[dict[str, Any]], fields: tuple[str, ...]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=fields, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()
