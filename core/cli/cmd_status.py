"""`offramp status`: a workspace's health at a glance (schedules, last runs, credentials, alerts, schedulers).

It only reads, never waits for a writer, and exits 0 whatever it finds: a monitor reads ``--json`` (its
``problems`` list is empty when all is well), a person the tables.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from offramp.core.cli.common import JsonOption, WorkspaceOption, build_context, reading, workspace_name
from offramp.core.cli.output import print_json, print_table, say


def _time(iso: str | None) -> str:
    """An ISO timestamp of the document (UTC) to the second, for people."""
    return f"{iso[:19].replace('T', ' ')} UTC" if iso else ""


def _fire_time(fires: list[dict[str, str]]) -> str:
    """The next fire in the schedule's own timezone and in UTC: ``2026-12-04 06:00 +0100 (2026-12-04 05:00 UTC)``."""
    if not fires:
        return ""
    local, utc = datetime.fromisoformat(fires[0]["local"]), datetime.fromisoformat(fires[0]["utc"])
    return f"{local:%Y-%m-%d %H:%M} {local.strftime('%z')} ({utc:%Y-%m-%d %H:%M} UTC)"


def _last_fire(fire: dict[str, Any] | None) -> str:
    if fire is None:
        return "never"
    text = f"{_time(fire['fire_at'])} {str(fire['status']).replace('_', ' ')}"
    if fire["reason"]:
        text += f" ({fire['reason']})"
    if fire["run_id"]:
        text += f" run {fire['run_id']}"
    return text


def _fires(schedule: dict[str, Any]) -> str:
    if schedule["note"]:
        return f"no: {schedule['note']}"
    return "yes" if schedule["fires"] and schedule["enabled"] else "no"


def _print(document: dict[str, Any]) -> None:
    say(f"Status of workspace {document['workspace']} at {_time(document['at'])}")
    for problem in document["problems"]:
        say(f"  problem: {problem}")
    if not document["problems"]:
        say("  no problems")
    print_table(
        "Schedules",
        ["kind", "name", "schedule", "timezone", "fires", "next fire (local, UTC)", "last fire"],
        [
            [s["kind"], s["name"], s["cron"], s["timezone"], _fires(s), _fire_time(s["next_fires"]),
             _last_fire(s["last_fire"])]
            for s in document["schedules"]
        ],
    )  # fmt: skip
    runs = document["last_runs"]
    print_table(
        "Last runs (failing first)",
        ["kind", "name", "status", "run", "started", "seconds", "error"],
        [
            [r["kind"], r["name"], (r["status"] or "never run").replace("_", " "), r["run_id"], _time(r["started_at"]),
             "" if r["duration_seconds"] is None else f"{r['duration_seconds']:.1f}", r["error"]]
            for r in runs
        ],
    )  # fmt: skip
    first = next((r for r in runs if r["command"]), None)
    if first is not None:
        say(f"  a run's details and ledger: `{first['command']}`")
    print_table(
        "Credentials needing authorization",
        ["name", "type", "status", "reason", "used by", "authorize with"],
        [
            [c["name"], c["type"], c["status"], c["reason"], ", ".join(c["used_by"]), c["command"] or c["note"]]
            for c in document["credentials"]
        ],
    )
    alerts = document["alerts"]
    say(
        f"Alerts since {_time(alerts['since'])}: {alerts['delivered']} delivered, {alerts['failed']} failed, "
        f"{alerts['pending']} pending"
    )
    if alerts["failures"]:
        print_table(
            "Failed alert deliveries",
            ["at", "channel", "type", "for", "run", "notice", "attempts", "error"],
            [
                [_time(f["at"]), f["channel"], f["channel_type"], f"{f['target_kind'] or ''} {f['target_name'] or ''}",
                 f["run_id"], f["kind"], f["attempts"], f["error"]]
                for f in alerts["failures"]
            ],
        )  # fmt: skip
    print_table(
        "Schedulers alive",
        ["host", "pid", "started", "last heartbeat"],
        [[i["host"], i["pid"], _time(i["started_at"]), _time(i["heartbeat_at"])] for i in document["schedulers"]],
    )


def status(workspace: WorkspaceOption = None, json_output: JsonOption = False) -> None:
    """The health of a workspace at a glance: schedules, last runs, alerts.

    Schedules with their next fire (in their timezone and in UTC) and last fire; the last run of each orchestration
    and group, failed, interrupted and partially failed first; credentials that need authorizing, with the command;
    alert deliveries of the last 24 hours; the scheduler processes alive. Exit 0 whatever it finds; --json prints
    one document for monitoring (its keys: docs/scheduling.md), whose "problems" list is empty when all is well.
    """
    from offramp.core.services.status import workspace_status
    from offramp.core.services.workspaces import get_workspace

    ctx = build_context()
    with reading(ctx) as session:
        document = workspace_status(session, get_workspace(session, workspace_name(ctx, workspace)))
    if json_output:
        print_json(document)
    else:
        _print(document)


__all__ = ["status"]
