"""`offramp runs list|show`: past runs and their ledger."""

from __future__ import annotations

import csv
import io
import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from offramp.core.cli.common import JsonOption, WorkspaceOption, build_context, transaction, workspace_name
from offramp.core.cli.output import print_json, print_mapping, print_table, say
from offramp.core.services import runs as service
from offramp.core.services.workspaces import get_workspace

app = typer.Typer(help="Past runs, their counts and their per-row ledger.", no_args_is_help=True)


@app.command("list")
def list_(
    orchestration: Annotated[str | None, typer.Option(help="Only runs of this orchestration.")] = None,
    limit: Annotated[int, typer.Option(help="How many runs, newest first.")] = 50,
    workspace: WorkspaceOption = None,
    json_output: JsonOption = False,
) -> None:
    """List runs, newest first."""
    ctx = build_context()
    with transaction(ctx) as session:
        runs = service.list_runs(session, get_workspace(session, workspace_name(ctx, workspace)), orchestration, limit)
        data = [service.describe_run(run) for run in runs]
    if json_output:
        print_json(data)
        return
    print_table(
        "Runs",
        ["id", "orchestration", "status", "started", "queried", "sent", "rejected", "failed", "skipped"],
        [[d["id"], d["orchestration"], d["status"], d["started_at"][:19], *d["counts"].values()] for d in data],
    )


_LEDGER_FIELDS = ("event_id", "reason", "vendor_code", "message", "rows", "attempts", "request_id")


@app.command("show")
def show(
    run_id: Annotated[str, typer.Argument(help="Run id (a unique prefix is enough).")],
    rejects: Annotated[bool, typer.Option("--rejects", help="List rejected rows by event_id, with reason.")] = False,
    failed: Annotated[bool, typer.Option("--failed", help="List rows the vendor refused, with its code.")] = False,
    format_: Annotated[str, typer.Option("--format", help="For --rejects/--failed: table, csv or json.")] = "table",
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Write the rows to this file.")] = None,
    json_output: JsonOption = False,
) -> None:
    """Show a run's summary, and optionally its rejected or failed rows (exportable as CSV or JSON)."""
    if format_ not in ("table", "csv", "json"):
        raise typer.BadParameter("--format is table, csv or json")
    ctx = build_context()
    with transaction(ctx) as session:
        run = service.get_run(session, run_id)
        data = service.describe_run(run)
        listed: list[dict[str, object]] = []
        for flag, outcome in ((rejects, "rejected"), (failed, "failed")):
            if flag:
                rows: list[dict[str, object]] = [
                    {
                        "event_id": row.event_id,
                        "reason": row.reason_code,
                        "vendor_code": row.vendor_code,
                        "message": row.message,
                        "rows": row.rows,
                        "attempts": row.attempts,
                        "request_id": row.request_id,
                    }
                    for row in service.row_outcomes(session, run, outcome)
                ]
                data[outcome + "_rows"] = rows
                listed.extend(rows)
    if (rejects or failed) and format_ != "table":
        text = _as_csv(listed) if format_ == "csv" else json.dumps(listed, indent=2, ensure_ascii=False) + "\n"
        if output is not None:
            output.write_text(text, encoding="utf-8")
            say(f"Wrote {len(listed)} rows to {output}.")
        else:
            sys.stdout.write(text)
        return
    if json_output:
        print_json(data)
    else:
        print_mapping(f"run {data['id']}", {k: v for k, v in data.items() if k != "id"})


def _as_csv(rows: list[dict[str, object]]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=_LEDGER_FIELDS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()
