"""`offramp runs list|show`: past runs and their ledger."""

from __future__ import annotations

from typing import Annotated

import typer

from offramp.core.cli.common import JsonOption, WorkspaceOption, build_context, transaction, workspace_name
from offramp.core.cli.output import print_json, print_mapping, print_table
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


@app.command("show")
def show(
    run_id: Annotated[str, typer.Argument(help="Run id (a unique prefix is enough).")],
    rejects: Annotated[bool, typer.Option("--rejects", help="List rejected rows by event_id, with reason.")] = False,
    failed: Annotated[bool, typer.Option("--failed", help="List rows the vendor refused, with its code.")] = False,
    json_output: JsonOption = False,
) -> None:
    """Show a run's summary, and optionally its rejected or failed rows."""
    ctx = build_context()
    with transaction(ctx) as session:
        run = service.get_run(session, run_id)
        data = service.describe_run(run)
        for flag, outcome in ((rejects, "rejected"), (failed, "failed")):
            if flag:
                data[outcome + "_rows"] = [
                    {
                        "event_id": row.event_id,
                        "reason": row.reason_code,
                        "vendor_code": row.vendor_code,
                        "message": row.message,
                    }
                    for row in service.row_outcomes(session, run, outcome)
                ]
    if json_output:
        print_json(data)
    else:
        print_mapping(f"run {data['id']}", {k: v for k, v in data.items() if k != "id"})
