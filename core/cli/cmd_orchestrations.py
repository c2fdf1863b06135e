"""`offramp orchestrations add|update|rename|list|show|delete`.

An orchestration's options are those every destination shares (``--mode``, ``--timezone``, ``--allow-path``; its
schedule: ``--schedule`` with ``--schedule-timezone``, ``--catch-up``, ``--max-lateness``, ``--when-changed`` and
``--schedule-enabled/--schedule-disabled``, fired by ``offramp scheduler``) and the run options of its destination
type (``--option KEY=VALUE``; ``offramp plugins show TYPE`` lists them). ``--phone-region``, ``--map``,
``--test-event-code`` and ``--attribution-window-days`` are shorthands for run options a destination type may read,
kept from before destination types owned their run options.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from sqlalchemy.orm import Session

from offramp.core.cli.cmd_credentials import say_changed
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
from offramp.core.services.context import Context
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
            raise ConfigError(f"--map expects 'Source Name=DestinationName', got {pair!r}")
        mapping[source] = target
    return mapping


def _option_value(key: str, text: str) -> Any:
    """A JSON object or array (``{...}``, ``[...]``) is parsed; any other value stays text, which the option's model
    converts (``7`` for a number, ``true`` for a flag), so that ``NO`` or ``0012`` stay what was typed."""
    if not text.lstrip().startswith(("{", "[")):
        return text
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(
            f"--option {key}: {text!r} is not valid JSON ({exc.msg})",
            hint=f'for example --option \'{key}={{"Order Completed": "Purchase"}}\'',
        ) from None


def parse_options(pairs: list[str] | None, given: dict[str, Any]) -> dict[str, Any]:
    """``--option KEY=VALUE`` pairs added to the options other flags ``given``; a key given twice is refused."""
    options = dict(given)
    bad = []
    for pair in pairs or []:
        key, sep, text = pair.partition("=")
        key = key.strip()
        if not sep or not key:
            bad.append(pair)
            continue
        if key in options:
            raise ConfigError(f"option {key} is given twice", hint="give each option once (a shorthand or --option)")
        options[key] = _option_value(key, text)
    if bad:
        raise ConfigError(
            f"--option expects KEY=VALUE, got: {', '.join(repr(item) for item in bad)}",
            hint="for example --option attribution_window_days=7",
        )
    return options


def _shorthand(option: str) -> str:
    return f"Shorthand for --option {option}=VALUE; an option of the destination type"


SqlOption = Annotated[str | None, typer.Option("--sql", help="The query (a single SELECT or WITH).")]
SqlFileOption = Annotated[Path | None, typer.Option("--sql-file", help="File holding the query.")]
_SOURCE_HELP = (
    "duckdb::memory: (default; the SQL may read Parquet/CSV/JSON files), duckdb:PATH, "
    "a SQLAlchemy URL without a password, or env:VAR naming a variable that holds one."
)
ModeOption = Annotated[str | None, typer.Option(help="all (send every row) or new (skip delivered event_ids).")]
TimezoneOption = Annotated[str | None, typer.Option(help="Timezone of naive timestamps (default UTC).")]
PhoneRegionOption = Annotated[
    str | None,
    typer.Option(
        "--phone-region", help=f"{_shorthand('default_phone_region')} (region of phones without a country code)."
    ),
]
MapOption = Annotated[
    list[str] | None,
    typer.Option(
        "--map",
        help=f"{_shorthand('event_name_map')} (translate an event name: 'Order Completed=CompletePayment'). "
        "Repeatable; on update, the map given replaces the stored one.",
    ),
]
TestEventCodeOption = Annotated[str | None, typer.Option("--test-event-code", help=f"{_shorthand('test_event_code')}.")]
AttributionOption = Annotated[
    int | None,
    typer.Option(
        "--attribution-window-days",
        help=f"{_shorthand('attribution_window_days')} (reject events older than this many days).",
    ),
]
OptionOption = Annotated[
    list[str] | None,
    typer.Option(
        "--option",
        "-o",
        metavar="KEY=VALUE",
        help="A run option of the destination type (`offramp plugins show TYPE` lists them); a JSON object or "
        "array for structured values. Repeatable.",
    ),
]
ScheduleOption = Annotated[
    str | None, typer.Option(help="Cron expression of scheduled runs ('0 6 * * *'; `offramp scheduler` runs them).")
]
ScheduleTimezoneOption = Annotated[
    str | None,
    typer.Option("--schedule-timezone", help="IANA timezone the cron expression is read in (default UTC)."),
]
CatchUpOption = Annotated[
    str | None,
    typer.Option(
        "--catch-up",
        help="After the scheduler was down: latest (one run for the latest missed fire; default) or skip (none).",
    ),
]
MaxLatenessOption = Annotated[
    int | None,
    typer.Option("--max-lateness", metavar="MINUTES", help="A missed fire older than this is skipped, recorded."),
]
WhenChangedOption = Annotated[
    str | None,
    typer.Option(
        "--when-changed",
        metavar="SQL",
        help="A freshness query run on the source ('SELECT max(updated_at) FROM orders'): a fire runs only when its "
        "value changed since the last successful run.",
    ),
]
ScheduleEnabledOption = Annotated[
    bool | None,
    typer.Option("--schedule-enabled/--schedule-disabled", help="Whether the schedule fires (default enabled)."),
]
AllowPathOption = Annotated[
    list[str] | None,
    typer.Option("--allow-path", help="A file or directory a DuckDB source's SQL may read. Repeatable."),
]
MaxRejectRateOption = Annotated[
    float | None,
    typer.Option(
        "--max-reject-rate",
        help="Fail a run when more than this share (0 to 1) of the rows read is rejected; checked at the end of "
        "every run.",
    ),
]
FailOnEmptyOption = Annotated[
    bool | None,
    typer.Option("--fail-on-empty/--no-fail-on-empty", help="Fail a run when the query returns no rows."),
]


def given_options(
    *,
    mode: str | None,
    timezone: str | None,
    phone_region: str | None,
    event_map: list[str] | None,
    attribution_window_days: int | None,
    test_event_code: str | None,
    schedule: str | None,
    allow_path: list[str] | None,
    max_reject_rate: float | None,
    fail_on_empty: bool | None,
    option: list[str] | None,
    schedule_timezone: str | None = None,
    catch_up: str | None = None,
    max_lateness: int | None = None,
    when_changed: str | None = None,
    schedule_enabled: bool | None = None,
) -> dict[str, Any]:
    """The options the command line sets, as stored: its shorthands, then each --option."""
    # In the order options were stored (and exported) before destination types owned theirs.
    given: dict[str, Any] = {
        "mode": mode,
        "timezone": timezone,
        "default_phone_region": phone_region,
        "event_name_map": _event_map(event_map) if event_map else None,
        "attribution_window_days": attribution_window_days,
        "test_event_code": test_event_code,
        "schedule": schedule,
        "allowed_paths": allow_path or None,
        "max_reject_rate": max_reject_rate,
        "fail_on_empty": fail_on_empty,
        "schedule_timezone": schedule_timezone,
        "catch_up": catch_up,
        "max_lateness_minutes": max_lateness,
        "when_changed": when_changed,
        "schedule_enabled": schedule_enabled,
    }
    return parse_options(option, {key: value for key, value in given.items() if value is not None})


@app.command("add")
def add(
    name: NameArgument,
    destination: Annotated[str, typer.Option("--destination", "-d", help="Destination to send rows to.")],
    sql: SqlOption = None,
    sql_file: SqlFileOption = None,
    source: Annotated[str, typer.Option("--source", help=_SOURCE_HELP)] = DUCKDB_MEMORY,
    mode: ModeOption = None,
    timezone: TimezoneOption = None,
    phone_region: PhoneRegionOption = None,
    event_map: MapOption = None,
    test_event_code: TestEventCodeOption = None,
    attribution_window_days: AttributionOption = None,
    option: OptionOption = None,
    schedule: ScheduleOption = None,
    schedule_timezone: ScheduleTimezoneOption = None,
    catch_up: CatchUpOption = None,
    max_lateness: MaxLatenessOption = None,
    when_changed: WhenChangedOption = None,
    schedule_enabled: ScheduleEnabledOption = None,
    allow_path: AllowPathOption = None,
    max_reject_rate: MaxRejectRateOption = None,
    fail_on_empty: FailOnEmptyOption = None,
    workspace: WorkspaceOption = None,
    actor: ActorOption = None,
) -> None:
    """Add an orchestration: a query, the destination its rows go to, and how they are shaped."""
    options = given_options(
        mode=mode, timezone=timezone, phone_region=phone_region, event_map=event_map,
        attribution_window_days=attribution_window_days, test_event_code=test_event_code, schedule=schedule,
        allow_path=allow_path, max_reject_rate=max_reject_rate, fail_on_empty=fail_on_empty, option=option,
        schedule_timezone=schedule_timezone, catch_up=catch_up, max_lateness=max_lateness, when_changed=when_changed,
        schedule_enabled=schedule_enabled,
    )  # fmt: skip
    text = _read_sql(sql, sql_file)
    ctx = build_context(actor)
    with transaction(ctx) as session:
        row = service.add_orchestration(
            session, ctx, workspace_name(ctx, workspace), name, destination, text, source, options
        )
        say(f"Added orchestration {row.name} (destination {row.destination.name}, source {row.source}).")


@app.command("update")
def update(
    name: NameArgument,
    destination: Annotated[
        str | None, typer.Option("--destination", "-d", help="Send its rows to this destination instead.")
    ] = None,
    sql: SqlOption = None,
    sql_file: SqlFileOption = None,
    source: Annotated[str | None, typer.Option("--source", help=_SOURCE_HELP)] = None,
    mode: ModeOption = None,
    timezone: TimezoneOption = None,
    phone_region: PhoneRegionOption = None,
    event_map: MapOption = None,
    test_event_code: TestEventCodeOption = None,
    attribution_window_days: AttributionOption = None,
    option: OptionOption = None,
    unset: Annotated[
        list[str] | None,
        typer.Option("--unset", "-u", metavar="KEY", help="Remove a stored option (back to its default). Repeatable."),
    ] = None,
    schedule: ScheduleOption = None,
    schedule_timezone: ScheduleTimezoneOption = None,
    catch_up: CatchUpOption = None,
    max_lateness: MaxLatenessOption = None,
    when_changed: WhenChangedOption = None,
    schedule_enabled: ScheduleEnabledOption = None,
    allow_path: AllowPathOption = None,
    max_reject_rate: MaxRejectRateOption = None,
    fail_on_empty: FailOnEmptyOption = None,
    workspace: WorkspaceOption = None,
    actor: ActorOption = None,
) -> None:
    """Change an orchestration: what is given changes, the rest is kept. Validated as `add` validates.

    It stays the same orchestration (its runs, its delivery history for mode new, its groups).
    """
    options = given_options(
        mode=mode, timezone=timezone, phone_region=phone_region, event_map=event_map,
        attribution_window_days=attribution_window_days, test_event_code=test_event_code, schedule=schedule,
        allow_path=allow_path, max_reject_rate=max_reject_rate, fail_on_empty=fail_on_empty, option=option,
        schedule_timezone=schedule_timezone, catch_up=catch_up, max_lateness=max_lateness, when_changed=when_changed,
        schedule_enabled=schedule_enabled,
    )  # fmt: skip
    text = None if sql is None and sql_file is None else _read_sql(sql, sql_file)
    ctx = build_context(actor)
    with transaction(ctx) as session:
        changed = service.edit_orchestration(
            session, ctx, workspace_name(ctx, workspace), name,
            destination_name=destination, sql=text, source=source, options=options, unset=unset or [],
        )  # fmt: skip
    say_changed("orchestration", name, changed)


@app.command("rename")
def rename(
    name: NameArgument,
    new_name: Annotated[str, typer.Argument(metavar="NEW", help="The new name.")],
    workspace: WorkspaceOption = None,
    actor: ActorOption = None,
) -> None:
    """Rename an orchestration; it keeps its runs, its delivery history (mode new) and its groups."""
    ctx = build_context(actor)
    with transaction(ctx) as session:
        renamed = service.rename_orchestration(session, ctx, workspace_name(ctx, workspace), name, new_name)
    say(f"Renamed orchestration {name} to {new_name}." if renamed else f"Orchestration {name}: nothing to change.")


def _listing(session: Session, ctx: Context, workspace: str) -> list[dict[str, Any]]:
    rows = service.list_orchestrations(session, get_workspace(session, workspace))
    return [
        {"name": r.name, "destination": r.destination.name, "source": r.source, "updated_at": r.updated_at}
        for r in rows
    ]


def print_orchestrations(ctx: Context, workspace: str) -> None:
    """The table `orchestrations list` prints (also printed by commands plugins contribute: offramp.core.commands)."""
    with reading(ctx) as session:
        data = _listing(session, ctx, workspace)
    print_table(
        "Orchestrations",
        ["name", "destination", "source", "updated"],
        [[d["name"], d["destination"], d["source"], when(d["updated_at"])] for d in data],
    )


@app.command("list")
def list_(workspace: WorkspaceOption = None, json_output: JsonOption = False) -> None:
    """List orchestrations."""
    ctx = build_context()
    if not json_output:
        print_orchestrations(ctx, workspace_name(ctx, workspace))
        return
    with reading(ctx) as session:
        print_json(_listing(session, ctx, workspace_name(ctx, workspace)))


@app.command("show")
def show(name: NameArgument, workspace: WorkspaceOption = None, json_output: JsonOption = False) -> None:
    """Show an orchestration: its query, source, destination and options."""
    ctx = build_context()
    with reading(ctx) as session:
        row = service.get_orchestration(session, get_workspace(session, workspace_name(ctx, workspace)), name)
        data = service.describe_orchestration(session, ctx, row)
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
