"""`offramp orchestrations add|list|show|delete`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from offramp.core.cli.common import (
    ActorOption,
    JsonOption,
    WorkspaceOption,
    build_context,
    reading,
    transaction,
    workspace_name,
)
from offramp.core.cli.output import print_json, print_mapping, print_table, say, when
from offramp.core.errors import ConfigError
from offramp.core.orchestration_options import DUCKDB_MEMORY
from offramp.core.services import orchestrations as service
from offramp.core.services.workspaces import get_workspace

app = typer.Typer(help="SQL queries bound to a destination, with their run options.", no_args_is_help=True)

NameArgument = Annotated[str, typer.Argument(help="Orchestration name.")]


def _read_sql(sql: str | None, sql_file: Path | None) -> str:
    if (sql is None) == (sql_file is None):
        raise ConfigError("give exactly one of --sql TEXT and --sql-file FILE")
    if sql_file is not None:
        try:
            return sql_file.read_text()
        except OSError as exc:
            raise ConfigError(f"cannot read --sql-file {sql_file}: {exc.strerror}") from None
    assert sql is not None
    return sql


def _event_map(pairs: list[str] | None) -> dict[str, str]:
    mapping = {}
    for pair in pairs or []:
        source, sep, target = pair.rpartition("=")
        if not sep or not source or not target:
            raise ConfigError(f"--map expects 'Source Name=TikTokName', got {pair!r}")
        mapping[source] = target
    return mapping


@app.command("add")
def add(
    name: NameArgument,
    destination: Annotated[str, typer.Option("--destination", "-d", help="Destination to send rows to.")],
    sql: Annotated[str | None, typer.Option("--sql", help="The query (a single SELECT or WITH).")] = None,
    sql_file: Annotated[Path | None, typer.Option("--sql-file", help="File holding the query.")] = None,
    source: Annotated[
        str,
        typer.Option(
            "--source",
            help="duckdb::memory: (default; the SQL may read Parquet/CSV/JSON files), duckdb:PATH, "
            "a SQLAlchemy URL without a password, or env:VAR naming a variable that holds one.",
        ),
    ] = DUCKDB_MEMORY,
    mode: Annotated[str | None, typer.Option(help="all (send every row) or new (skip delivered event_ids).")] = None,
    timezone: Annotated[str | None, typer.Option(help="Timezone of naive timestamps (default UTC).")] = None,
    phone_region: Annotated[
        str | None, typer.Option("--phone-region", help="Region of phones without a country code (default US).")
    ] = None,
    event_map: Annotated[
        list[str] | None,
        typer.Option("--map", help="Translate an event name: 'Order Completed=CompletePayment'. Repeatable."),
    ] = None,
    test_event_code: Annotated[
        str | None, typer.Option("--test-event-code", help="Send to TikTok's Test Events view.")
    ] = None,
    attribution_window_days: Annotated[
        int | None,
        typer.Option("--attribution-window-days", help="Reject events older than this many days (default 28)."),
    ] = None,
    schedule: Annotated[str | None, typer.Option(help="Cron expression for scheduled runs.")] = None,
    allow_path: Annotated[
        list[str] | None,
        typer.Option("--allow-path", help="A file or directory a DuckDB source's SQL may read. Repeatable."),
    ] = None,
    workspace: WorkspaceOption = None,
    actor: ActorOption = None,
) -> None:
    """Add an orchestration: a query, the destination its rows go to, and how they are shaped."""
    options: dict[str, Any] = {
        key: value
        for key, value in {
            "mode": mode,
            "timezone": timezone,
            "default_phone_region": phone_region,
            "test_event_code": test_event_code,
            "attribution_window_days": attribution_window_days,
            "schedule": schedule,
        }.items()
        if value is not None
    }
    if event_map:
        options["event_name_map"] = _event_map(event_map)
    if allow_path:
        options["allowed_paths"] = allow_path
    text = _read_sql(sql, sql_file)
    ctx = build_context(actor)
    with transaction(ctx) as session:
        row = service.add_orchestration(
            session, ctx, workspace_name(ctx, workspace), name, destination, text, source, options
        )
        say(f"Added orchestration {row.name} (destination {row.destination.name}, source {row.source}).")


@app.command("list")
def list_(workspace: WorkspaceOption = None, json_output: JsonOption = False) -> None:
    """List orchestrations."""
    ctx = build_context()
    with reading(ctx) as session:
        rows = service.list_orchestrations(session, get_workspace(session, workspace_name(ctx, workspace)))
        data = [
            {"name": r.name, "destination": r.destination.name, "source": r.source, "updated_at": r.updated_at}
            for r in rows
        ]
    if json_output:
        print_json(data)
        return
    print_table(
        "Orchestrations",
        ["name", "destination", "source", "updated"],
        [[d["name"], d["destination"], d["source"], when(d["updated_at"])] for d in data],
    )


@app.command("show")
def show(name: NameArgument, workspace: WorkspaceOption = None, json_output: JsonOption = False) -> None:
    """Show an orchestration: its query, source, destination and options."""
    ctx = build_context()
    with reading(ctx) as session:
        row = service.get_orchestration(session, get_workspace(session, workspace_name(ctx, workspace)), name)
        data = service.describe_orchestration(session, row)
    if json_output:
        print_json(data)
    else:
        print_mapping(f"orchestration {name}", {k: v for k, v in data.items() if k != "name"})


@app.command("delete")
def delete(name: NameArgument, workspace: WorkspaceOption = None, actor: ActorOption = None) -> None:
    """Delete an orchestration; its past runs stay as history."""
    ctx = build_context(actor)
    with transaction(ctx) as session:
        service.delete_orchestration(session, ctx, workspace_name(ctx, workspace), name)
    say(f"Deleted orchestration {name}.")
