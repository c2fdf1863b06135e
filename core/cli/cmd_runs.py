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
from offramp.core.runner import ledger
from offramp.core.runner.types import reasons_by_outcome
from offramp.core.services import runs as service
from offramp.core.services.workspaces import get_workspace

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


@app.command("list")
def list_(
    orchestration: Annotated[str | None, typer.Option(help="Only runs of this orchestration.")] = None,
    limit: Annotated[int, typer.Option(min=1, help="How many runs, newest first.")] = 50,
    workspace: WorkspaceOption = None,
    json_output: JsonOption = False,
) -> None:
    """List runs, newest first, with status, counts, start and duration.

    A run whose process stopped without finishing (its heartbeat lapsed) is marked interrupted here.
    """
    ctx = build_context()
    with reading(ctx) as session:
        runs = service.list_runs(session, get_workspace(session, workspace_name(ctx, workspace)), orchestration, limit)
        data = [service.describe_run(session, run) for run in runs]
    if json_output:
        print_json(data)
        return
    print_table(
        "Runs",
        ["id", "orchestration", "status", "started", "duration", *service.COUNTS],
        [
            [d["id"][:12], d["orchestration"], _status(d), _time(d["started_at"]), _duration(d["duration_seconds"])]
            + list(d["counts"].values())
            for d in data
        ],
    )


@app.command("show")
def show(
    run_id: Annotated[str, typer.Argument(help="Run id (a unique prefix is enough).")],
    rejects: Annotated[bool, typer.Option("--rejects", help="List rejected rows by event_id, with reason.")] = False,
    failed: Annotated[
        bool, typer.Option("--failed", help="List rows that failed (refused by the vendor, or not sent), with code.")
    ] = False,
    unknown: Annotated[
        bool,
        typer.Option(
            "--unknown",
            help="List rows whose outcome is unknown: in flight when a run died, too long ago to resend safely.",
        ),
    ] = False,
    format_: Annotated[
        ExportFormat, typer.Option("--format", help="How --rejects/--failed rows are printed: table, csv or json.")
    ] = ExportFormat.TABLE,
    output: Annotated[
        Path | None,
        typer.Option(
            "--output", "-o", help="Write the --rejects/--failed rows to this file (csv, or json with --format json)."
        ),
    ] = None,
    workspace: WorkspaceOption = None,
    json_output: JsonOption = False,
) -> None:
    """Show a run: counts and whether they add up, reasons, vendor codes, timings, the vendor's request ids, error.

    With --rejects, --failed and/or --unknown, also the ledger rows of those outcomes by event_id (no raw values are
    kept), as a table, or exported as CSV (with a header) or JSON to stdout or --output FILE.
    """
    flags = (rejects, failed, unknown)
    outcomes = [outcome for flag, outcome in zip(flags, service.LEDGER_OUTCOMES, strict=True) if flag]
    exporting = format_ is not ExportFormat.TABLE or output is not None
    if exporting and not outcomes:
        raise ConfigError(
            "--format csv|json and --output export ledger rows", hint="add --rejects, --failed and/or --unknown"
        )
    if exporting and json_output:
        raise ConfigError("--json prints the whole run; --format and --output export rows", hint="use one of them")
    if output is not None and format_ is ExportFormat.TABLE:
        format_ = ExportFormat.JSON if output.suffix.lower() == ".json" else ExportFormat.CSV
    ctx = build_context()
    with reading(ctx) as session:
        # A run id is unique across workspaces, so the id alone finds it (the hints `offramp run` and `offramp demo`
        # print carry no -w); --workspace narrows the search when given.
        scope = get_workspace(session, workspace) if workspace is not None else None
        run = service.get_run(session, run_id, scope)
        data = service.describe_run(session, run, details=True)
        listed = {outcome: service.ledger_rows(session, run, outcome) for outcome in outcomes}
    for rows in listed.values():
        for row in rows:
            row["event_id"] = ledger.shown_key(row["event_id"])
    if exporting:
        rows = [row for outcome in outcomes for row in listed[outcome]]
        text = _as_csv(rows) if format_ is ExportFormat.CSV else json.dumps(rows, indent=2, ensure_ascii=False) + "\n"
        if output is None:
            sys.stdout.write(text)
            return
        try:
            output.write_text(text, encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"cannot write {output}: {exc.strerror or exc}", hint="check the path") from None
        say(f"Wrote {len(rows)} {' and '.join(outcomes)} rows of run {run.id} to {output} ({format_}).")
        return
    if json_output:
        print_json({**data, **{f"{outcome}_rows": rows for outcome, rows in listed.items()}})
        return
    print_mapping(f"run {data['id']}", _summary(data, outcomes))
    for outcome, rows in listed.items():
        print_table(
            f"{outcome.capitalize()} rows",
            [name for name in service.LEDGER_FIELDS if name != "outcome"],
            [[row[name] for name in service.LEDGER_FIELDS if name != "outcome"] for row in rows],
        )


def _summary(data: dict[str, Any], listed: list[str]) -> dict[str, Any]:
    """The run as people read it: what happened, whether the counts add up, why, when, and what to do next."""
    counts: dict[str, int] = data["counts"]
    lines: dict[str, Any] = {
        "orchestration": data["orchestration"],
        "status": _status(data),
        "mode": data["mode"],
        "counts": service.accounting(counts)
        + (" (so far, from the ledger)" if data["counted_from"] == "ledger" else ""),
        **{f"{outcome} by reason": reasons for outcome, reasons in reasons_by_outcome(data["reason_counts"]).items()},
        "failed by code": data["vendor_codes"],
        "warnings": data["warnings"],
        "columns not used": ", ".join(data["unknown_columns"]),
        "started": _time(data["started_at"]),
        "finished": _time(data["finished_at"]),
        "duration": _duration(data["duration_seconds"]),
        "last pass": _duration(data["seconds"]),
        "options": data["options"],
        "request ids": data["request_ids"],
        "error": data["error"],
        "next": data["hint"],
    }
    if data["dry_run"]:
        lines["dry run"] = "nothing was sent; 'sent' counts the events that would have been"
        if data["sample_requests"]:
            lines["sample requests"] = f"{len(data['sample_requests'])} kept (see --json)"
    if data["status"] == "running":
        lines["heartbeat"] = f"{_time(data['heartbeat_at'])} from {data['lease_owner']}"
    for outcome, flag in zip(service.LEDGER_OUTCOMES, ("--rejects", "--failed", "--unknown"), strict=True):
        if counts[outcome] and outcome not in listed:
            lines[f"{outcome} rows"] = f"offramp runs show {data['id']} {flag}"
    return {key: value for key, value in lines.items() if value not in (None, "", {}, [])}


def _as_csv(rows: list[dict[str, Any]]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=service.LEDGER_FIELDS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()
