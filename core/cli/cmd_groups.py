"""`offramp groups add|update|list|show|rename|delete|run`: orchestrations that run in order, as one unit.

A group's members run one after the other; a member that fails stops the group, and the members after it are
recorded as skipped. A group may carry a schedule (cron and IANA timezone) and the schedule options orchestrations
have (``--catch-up``, ``--max-lateness``, ``--when-changed``, ``--enabled/--disabled``).
"""

from __future__ import annotations

import threading
from enum import StrEnum
from typing import Annotated, Any

import typer

from offramp.core.cli.common import ActorOption, JsonOption, WorkspaceOption, build_context, reading, transaction
from offramp.core.cli.common import workspace_name as resolve_workspace
from offramp.core.cli.output import print_json, print_mapping, print_table, say
from offramp.core.errors import ConfigError
from offramp.core.hints import offramp_command

app = typer.Typer(help="Orchestration groups: orchestrations that run in order, as one unit.", no_args_is_help=True)

NameArgument = Annotated[str, typer.Argument(help="Group name.")]


class CatchUp(StrEnum):
    LATEST = "latest"
    SKIP = "skip"


OrchestrationsOption = Annotated[
    list[str] | None,
    typer.Option(
        "--orchestration",
        "-o",
        help="A member, in the order they run; repeat for each (on update: replaces the members).",
    ),
]
ScheduleOption = Annotated[str | None, typer.Option("--schedule", help="Cron expression of its runs ('0 6 * * *').")]
TimezoneOption = Annotated[
    str | None, typer.Option("--timezone", help="IANA timezone the cron expression is read in (default UTC).")
]
EnabledOption = Annotated[
    bool | None,
    typer.Option("--enabled/--disabled", help="Whether the schedule fires (a disabled group still runs by hand)."),
]
CatchUpOption = Annotated[
    CatchUp | None,
    typer.Option("--catch-up", help="After the scheduler was down: latest (one run for the missed fires) or skip."),
]
LatenessOption = Annotated[
    int | None,
    typer.Option("--max-lateness", metavar="MINUTES", help="A missed fire older than this is skipped, recorded so."),
]
WhenChangedOption = Annotated[
    str | None,
    typer.Option(
        "--when-changed",
        metavar="SQL",
        help="A freshness query on the first member's source: a fire runs only when its value changed.",
    ),
]


def _workspace(session: Any, name: str) -> Any:
    # Imported here, as the services are: `offramp --help` loads no SQLAlchemy.
    from offramp.core.services.workspaces import get_workspace

    return get_workspace(session, name)


def _options(
    enabled: bool | None, catch_up: CatchUp | None, max_lateness: int | None, when_changed: str | None
) -> dict[str, Any]:
    given = {
        "schedule_enabled": enabled,
        "catch_up": catch_up.value if catch_up is not None else None,
        "max_lateness_minutes": max_lateness,
        "when_changed": when_changed,
    }
    return {key: value for key, value in given.items() if value is not None}


@app.command("add")
def add(
    name: NameArgument,
    orchestrations: OrchestrationsOption = None,
    schedule: ScheduleOption = None,
    timezone: TimezoneOption = None,
    enabled: EnabledOption = None,
    catch_up: CatchUpOption = None,
    max_lateness: LatenessOption = None,
    when_changed: WhenChangedOption = None,
    workspace: WorkspaceOption = None,
    actor: ActorOption = None,
    json_output: JsonOption = False,
) -> None:
    """Add a group: its orchestrations in the order they run, and optionally a schedule."""
    from offramp.core.services import groups as service

    ctx = build_context(actor)
    ws = resolve_workspace(ctx, workspace)
    options = _options(enabled, catch_up, max_lateness, when_changed)
    with transaction(ctx) as session:
        row = service.add_group(session, ctx, ws, name, list(orchestrations or []), schedule, timezone, options)
        data = service.group_json(session, row)
    if json_output:
        print_json(data)
        return
    scheduled = f", on {schedule} ({data['timezone']})" if schedule else ""
    say(f"Added group {name}: {' -> '.join(data['orchestrations'])}{scheduled}.")
    say("Run it with: " + offramp_command("groups", "run", name, workspace=ws))


@app.command("update")
def update(
    name: NameArgument,
    orchestrations: OrchestrationsOption = None,
    schedule: ScheduleOption = None,
    unset_schedule: Annotated[bool, typer.Option("--unset-schedule", help="Remove the schedule.")] = False,
    timezone: TimezoneOption = None,
    unset_timezone: Annotated[bool, typer.Option("--unset-timezone", help="Read the cron in UTC again.")] = False,
    enabled: EnabledOption = None,
    catch_up: CatchUpOption = None,
    max_lateness: LatenessOption = None,
    no_max_lateness: Annotated[
        bool, typer.Option("--no-max-lateness", help="Catch up a missed fire however late.")
    ] = False,
    when_changed: WhenChangedOption = None,
    no_when_changed: Annotated[
        bool, typer.Option("--no-when-changed", help="Remove the freshness query: every fire runs.")
    ] = False,
    workspace: WorkspaceOption = None,
    actor: ActorOption = None,
    json_output: JsonOption = False,
) -> None:
    """Change a group: what is given changes, the rest stays (--orchestration given replaces the members)."""
    from offramp.core.services import groups as service

    for given, unset, flag in (
        (schedule, unset_schedule, "schedule"),
        (timezone, unset_timezone, "timezone"),
        (max_lateness, no_max_lateness, "max-lateness"),
        (when_changed, no_when_changed, "when-changed"),
    ):
        if given is not None and unset:
            raise ConfigError(f"--{flag} given with its unset flag", hint="give one of them")
    unset_fields = [
        field
        for field, flag in (
            ("schedule", unset_schedule),
            ("timezone", unset_timezone),
            ("max_lateness_minutes", no_max_lateness),
            ("when_changed", no_when_changed),
        )
        if flag
    ]
    ctx = build_context(actor)
    ws = resolve_workspace(ctx, workspace)
    with transaction(ctx) as session:
        changed = service.update_group(
            session, ctx, ws, name, orchestrations=list(orchestrations) if orchestrations else None,
            schedule=schedule, timezone=timezone, options=_options(enabled, catch_up, max_lateness, when_changed),
            unset=unset_fields,
        )  # fmt: skip
        data = service.group_json(session, service.get_group(session, _workspace(session, ws), name))
    if json_output:
        print_json({**data, "changed": changed})
        return
    say(f"Updated group {name}: {', '.join(changed)}." if changed else f"Group {name}: nothing to change.")


@app.command("list")
def list_(workspace: WorkspaceOption = None, json_output: JsonOption = False) -> None:
    """List groups: members in order, schedule and timezone, whether the schedule is enabled."""
    from offramp.core.services import groups as service

    ctx = build_context()
    with reading(ctx) as session:
        ws = _workspace(session, resolve_workspace(ctx, workspace))
        data = [service.group_json(session, row) for row in service.list_groups(session, ws)]
    if json_output:
        print_json(data)
        return
    print_table(
        "Groups",
        ["name", "orchestrations", "schedule", "timezone", "enabled"],
        [
            [d["name"], " -> ".join(d["orchestrations"]), d["schedule"] or "", d["timezone"] if d["schedule"] else "",
             ("yes" if d["settings"]["schedule_enabled"] else "no") if d["schedule"] else ""]
            for d in data
        ],
    )  # fmt: skip


@app.command("show")
def show(name: NameArgument, workspace: WorkspaceOption = None, json_output: JsonOption = False) -> None:
    """Show a group: its members in order, schedule, options (with their defaults), and its last group run."""
    from offramp.core.services import groups as service
    from offramp.core.services import runs

    ctx = build_context()
    with reading(ctx) as session:
        ws = _workspace(session, resolve_workspace(ctx, workspace))
        data = service.group_json(session, service.get_group(session, ws, name))
        last = runs.list_group_runs(session, ws, name, limit=1)
        data["last_run"] = runs.group_run_json(session, last[0]) if last else None
    if json_output:
        print_json(data)
        return
    last_run = data["last_run"]
    print_mapping(
        f"group {name}",
        {
            "workspace": data["workspace"],
            "orchestrations": " -> ".join(data["orchestrations"]),
            "schedule": data["schedule"] or "(none: runs only when started)",
            "timezone": data["timezone"],
            "options": data["settings"],
            "last run": (
                f"{last_run['status'].replace('_', ' ')} ({runs.members_line(last_run)}), started "
                f"{last_run['started_at'][:19].replace('T', ' ')} UTC: "
                + offramp_command("runs", "show", last_run["id"], workspace=data["workspace"])
                if last_run
                else "never run"
            ),
        },
    )


@app.command("rename")
def rename(
    old: Annotated[str, typer.Argument(help="The group's name now.")],
    new: Annotated[str, typer.Argument(help="Its new name.")],
    workspace: WorkspaceOption = None,
    actor: ActorOption = None,
) -> None:
    """Rename a group; its group runs and schedule history follow it."""
    from offramp.core.services import groups as service

    ctx = build_context(actor)
    with transaction(ctx) as session:
        renamed = service.rename_group(session, ctx, resolve_workspace(ctx, workspace), old, new)
    say(f"Renamed group {old} to {new}." if renamed else f"Group {old} already has that name.")


@app.command("delete")
def delete(name: NameArgument, workspace: WorkspaceOption = None, actor: ActorOption = None) -> None:
    """Delete a group; its orchestrations stay, and its group runs stay as history."""
    from offramp.core.services import groups as service

    ctx = build_context(actor)
    with transaction(ctx) as session:
        service.delete_group(session, ctx, resolve_workspace(ctx, workspace), name)
    say(f"Deleted group {name}; its orchestrations stay.")


@app.command("run")
def run(
    name: NameArgument,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Every member as a dry run: no network.")] = False,
    resume: Annotated[
        bool,
        typer.Option(
            "--resume", help="Continue the last cancelled, interrupted or failed group run: finished members stay."
        ),
    ] = False,
    test_event_code: Annotated[
        str | None,
        typer.Option("--test-event-code", help="Overrides the run option test_event_code of every member."),
    ] = None,
    workspace: WorkspaceOption = None,
    actor: ActorOption = None,
    json_output: JsonOption = False,
) -> None:
    """Run a group: its members in order, one after the other; a member that fails stops the group.

    Exit 0 when every member succeeded or partially failed, 1 otherwise. Ctrl-C lets the member running finish its
    batches in flight and stops the group (cancelled; continue it with --resume).
    """
    from offramp.core.cli.cmd_run import _stop_on_interrupt
    from offramp.core.runner.groups import GroupRunRequest, run_group
    from offramp.core.services import runs
    from offramp.core.state.models import GroupRun

    ctx = build_context(actor)
    ws = resolve_workspace(ctx, workspace)
    request = GroupRunRequest(
        workspace=ws,
        group=name,
        dry_run=dry_run,
        resume=resume,
        options={} if test_event_code is None else {"test_event_code": test_event_code},
        actor=ctx.actor,
    )
    stop = threading.Event()
    with _stop_on_interrupt(stop):
        summary = run_group(ctx, request, stop=stop)
    with reading(ctx) as session:
        group_run = session.get(GroupRun, summary.group_run_id)
        assert group_run is not None
        data = runs.group_run_json(session, group_run)
    # What this process saw: its own end when it lost its lease to another process, and the whole hint.
    data.update(status=summary.status, hint=summary.hint or data["hint"])
    if json_output:
        print_json(data)
    else:
        for position, member in enumerate(data["members"], start=1):
            run_text = f" (run {member['run_id']})" if member["run_id"] else ""
            reason = f": {member['reason']}" if member["reason"] else ""
            say(f"{position}. {member['orchestration']}: {member['status'].replace('_', ' ')}{run_text}{reason}")
        dry = " (dry run)" if summary.dry_run else ""
        say(f"Group {name}: {summary.status.replace('_', ' ')}{dry} (group run {summary.group_run_id}).")
        if summary.error:
            say(f"error: {summary.error}")
        if data["hint"]:
            say(f"next: {data['hint']}")
        say("details: " + offramp_command("runs", "show", summary.group_run_id, workspace=ws))
    if summary.status not in ("succeeded", "partially_failed"):
        raise typer.Exit(1)
