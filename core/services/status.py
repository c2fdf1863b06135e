"""The health of a workspace at a glance (``offramp status``): one read of the store, one stable document.

Nothing here writes: a run, group run or scheduler whose process died is shown as it is (interrupted, not alive)
without being marked so, the way ``runs list`` shows runs. The document (:func:`workspace_status`) is what
``offramp status --json`` prints for monitoring; its keys are listed there and in docs/scheduling.md, and its
``version`` is raised when one changes meaning or goes away. Schedules are read with the scheduler's own read
functions (offramp.core.scheduling.store), so ``status`` and ``schedules list`` never disagree.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from offramp.core.alerts.dispatch import NEEDS_AUTHORIZING, stale_pending
from offramp.core.hints import offramp_command
from offramp.core.runner.groups import shown_group_status
from offramp.core.runner.lifecycle import shown_status
from offramp.core.scheduling.store import live_instances, schedule_rows, scheduled_targets
from offramp.core.services.credentials import list_credentials
from offramp.core.services.runs import clean
from offramp.core.state.models import (
    AlertDelivery,
    Credential,
    Destination,
    GroupRun,
    Orchestration,
    OrchestrationGroup,
    Run,
    Workspace,
    utcnow,
)

STATUS_VERSION = 1  # of the document workspace_status returns; raised when a key changes meaning or goes away
ALERTS_WINDOW = timedelta(hours=24)  # how far back `status` counts alert deliveries
# The order of `last_runs`: what needs attention first. Every other status (cancelled, running, succeeded) comes
# after these, and an orchestration or group never run comes last.
FAILING_FIRST = ("failed", "interrupted", "partially_failed")
UNFINISHED_FIRES = ("claimed", "running")


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _jsonable(value: Any) -> Any:
    """``value`` with its datetimes as ISO 8601 text (the scheduler's read functions return datetimes)."""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return {key: _jsonable(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_jsonable(item) for item in value]
    return value


def _shown_fire(session: Session, kind: str, fire: dict[str, Any] | None, now: datetime) -> dict[str, Any] | None:
    """A last fire as readers show it: one still claimed or running whose run's process died is interrupted (the
    scheduler that ran it records the end of a fire, so a dead one never did; another scheduler takes it over)."""
    if fire is None or fire["status"] not in UNFINISHED_FIRES or fire["run_id"] is None:
        return fire
    shown: tuple[str, str | None, datetime | None] | None = None
    if kind == "group":
        group_run = session.get(GroupRun, fire["run_id"])
        shown = None if group_run is None else shown_group_status(group_run, now)
    else:
        run = session.get(Run, fire["run_id"])
        shown = None if run is None else shown_status(run, now)
    if shown is None or shown[0] != "interrupted":
        return fire
    return {**fire, "status": "interrupted", "reason": shown[1]}


def schedules(session: Session, workspace: Workspace, now: datetime) -> list[dict[str, Any]]:
    """Every orchestration and group of ``workspace`` with a schedule, as ``offramp schedules list --json`` shows
    them (offramp.core.scheduling.store.schedule_rows), with the next fire only."""
    rows = schedule_rows(session, scheduled_targets(session, workspace.name), now, count=1)
    for row in rows:
        fire = _shown_fire(session, row["kind"], row["last_fire"], now)
        row["last_fire"] = None if fire is None else {**fire, "reason": clean(fire["reason"])}
    return [_jsonable(row) for row in rows]


def _run_entry(kind: str, name: str) -> dict[str, Any]:
    return {
        "kind": kind,
        "name": name,
        "status": None,
        "run_id": None,
        "started_at": None,
        "finished_at": None,
        "duration_seconds": None,
        "actor": None,
        "error": None,
        "command": None,
    }


def _fill(
    entry: dict[str, Any],
    run_id: str,
    shown: tuple[str, str | None, datetime | None],
    actor: str | None,
    started: datetime,
    now: datetime,
    workspace: Workspace,
) -> None:
    status, error, finished = shown
    entry.update(
        status=status,
        run_id=run_id,
        started_at=started.isoformat(),
        finished_at=_iso(finished),
        duration_seconds=round(((finished or now) - started).total_seconds(), 3),
        actor=actor,
        error=clean(error),
        command=offramp_command("runs", "show", run_id, workspace=workspace.name),
    )


def last_runs(session: Session, workspace: Workspace, now: datetime) -> list[dict[str, Any]]:
    """The last real (not dry) run of each orchestration and group of ``workspace``: failed, interrupted and
    partially failed first, then the others, then those never run; orchestrations before groups, by name, within
    each. A dry run sends nothing, so it says nothing about the health of what does."""
    entries = []
    for orchestration in session.scalars(select(Orchestration).where(Orchestration.workspace_id == workspace.id)):
        entry = _run_entry("orchestration", orchestration.name)
        run = session.scalar(
            select(Run)
            .where(Run.orchestration_id == orchestration.id, Run.dry_run.is_(False))
            .order_by(Run.started_at.desc(), Run.id)
            .limit(1)
        )
        if run is not None:
            actor = (run.report or {}).get("actor")
            _fill(entry, run.id, shown_status(run, now), actor, run.started_at, now, workspace)
        entries.append(entry)
    for group in session.scalars(select(OrchestrationGroup).where(OrchestrationGroup.workspace_id == workspace.id)):
        entry = _run_entry("group", group.name)
        group_run = session.scalar(
            select(GroupRun)
            .where(GroupRun.group_id == group.id, GroupRun.dry_run.is_(False))
            .order_by(GroupRun.started_at.desc(), GroupRun.id)
            .limit(1)
        )
        if group_run is not None:
            shown = shown_group_status(group_run, now)
            _fill(entry, group_run.id, shown, group_run.actor, group_run.started_at, now, workspace)
        entries.append(entry)

    def rank(entry: dict[str, Any]) -> tuple[int, bool, str]:
        status = entry["status"]
        if status is None:
            order = len(FAILING_FIRST) + 1
        else:
            order = FAILING_FIRST.index(status) if status in FAILING_FIRST else len(FAILING_FIRST)
        return order, entry["kind"] != "orchestration", entry["name"]

    return sorted(entries, key=rank)


def credentials_needing_authorization(session: Session, workspace: Workspace) -> list[dict[str, Any]]:
    """The credentials ``workspace`` uses that need authorizing (``needs_authorization``) or re-authorizing
    (``needs_reauth``): its own, and in a sandbox production's ones its destinations are bound to; its own first,
    by name. Each with the command that authorizes it; production's, seen from a sandbox, is authorized in
    production, which the ``note`` says (a command printed here must act in this workspace)."""
    own = list_credentials(session, workspace)
    bound = session.scalars(
        select(Credential)
        .join(Destination, Destination.credential_id == Credential.id)
        .where(Destination.workspace_id == workspace.id)
    )
    rows = {row.id: row for row in [*own, *bound]}
    entries = []
    for row in sorted(rows.values(), key=lambda r: (r.workspace_id != workspace.id, r.name)):
        if row.status not in NEEDS_AUTHORIZING:
            continue
        users = session.scalars(
            select(Destination.name)
            .where(Destination.credential_id == row.id, Destination.workspace_id == workspace.id)
            .order_by(Destination.name)
        )
        shared = row.workspace_id != workspace.id
        command = offramp_command("credentials", "authorize", row.name, workspace=workspace.name)
        entries.append({
            "name": row.name,
            "workspace": row.workspace.name,
            "type": row.type,
            "status": row.status,
            "reason": clean(row.status_reason),
            "used_by": list(users),
            "command": None if shared else command,
            "note": "production's credential, shared with this sandbox: authorize it in production" if shared else None,
        })  # fmt: skip
    return entries


def alerts(session: Session, workspace: Workspace, now: datetime) -> dict[str, Any]:
    """The alert deliveries of ``workspace`` in the last 24 hours: counts by status, and each failed one, newest
    first."""
    since = now - ALERTS_WINDOW
    rows = list(
        session.scalars(
            select(AlertDelivery)
            .where(AlertDelivery.workspace == workspace.name, AlertDelivery.at >= since)
            .order_by(AlertDelivery.at.desc(), AlertDelivery.id.desc())
        )
    )
    counts = {status: sum(1 for row in rows if row.status == status) for status in ("delivered", "failed", "pending")}
    failures = [
        {
            "at": row.at.isoformat(),
            "channel": row.channel,
            "channel_type": row.channel_type,
            "target_kind": row.target_kind,
            "target_name": row.target_name,
            "run_id": row.run_id,
            "kind": row.kind,
            "attempts": row.attempts,
            "error": clean(row.error),
        }
        for row in rows
        if row.status == "failed"
    ]
    # Pending past the time a process takes to send them: their process went away before it recorded the outcome
    # (a scheduler's next pass, or the target's next run, sends them again).
    stuck = [
        {"at": row.at.isoformat(), "channel": row.channel, "target_kind": row.target_kind,
         "target_name": row.target_name, "run_id": row.run_id, "kind": row.kind, "attempts": row.attempts}
        for row in stale_pending(session, since)
        if row.workspace == workspace.name
    ]  # fmt: skip
    return {"since": since.isoformat(), **counts, "failures": failures, "stuck": stuck}


def schedulers(session: Session, now: datetime) -> list[dict[str, Any]]:
    """The scheduler processes alive, on any machine (each serves every workspace), oldest first."""
    return [
        {
            "id": row.id,
            "host": row.host,
            "pid": row.pid,
            "started_at": row.started_at.isoformat(),
            "heartbeat_at": row.heartbeat_at.isoformat(),
        }
        for row in live_instances(session, now)
    ]


def _firing(entry: dict[str, Any]) -> bool:
    return bool(entry["fires"] and entry["enabled"] and entry["note"] is None)


def _problems(document: dict[str, Any]) -> list[str]:
    problems = []
    for entry in document["last_runs"]:
        if entry["status"] in FAILING_FIRST:
            status = entry["status"].replace("_", " ")
            problems.append(f"{entry['kind']} {entry['name']}: last run {entry['run_id']} {status}")
    for entry in document["credentials"]:
        problems.append(f"credential {entry['name']}: {entry['status']}")
    if document["alerts"]["failed"]:
        problems.append(f"{document['alerts']['failed']} alert delivery(ies) failed in the last 24 h")
    for stuck in document["alerts"]["stuck"]:
        problems.append(
            f"alert to channel {stuck['channel']} ({stuck['kind']}, {stuck['target_kind']} {stuck['target_name']}) "
            f"pending since {stuck['at']}: not delivered yet"
        )
    if any(_firing(entry) for entry in document["schedules"]) and not document["schedulers"]:
        problems.append("schedules fire in this workspace but no scheduler is running")
    return problems


def workspace_status(session: Session, workspace: Workspace, now: datetime | None = None) -> dict[str, Any]:
    """The status document of ``workspace`` (``offramp status --json``, version 1; keys in this order):

    ``version``; ``workspace``; ``at`` (when it was read); ``problems`` (one line each: a last run failed,
    interrupted or partially failed; a credential needing authorization; failed or stuck alert deliveries;
    schedules that fire with no scheduler alive; empty when all is well); ``schedules`` (the rows of ``schedules
    list --json``, with one next fire: see offramp.core.scheduling.store.schedule_rows); ``last_runs`` [{``kind``,
    ``name``, ``status`` (null: never run), ``run_id``, ``started_at``, ``finished_at``, ``duration_seconds``,
    ``actor``, ``error``, ``command``}], failing first; ``credentials`` [{``name``, ``workspace``, ``type``,
    ``status``, ``reason``, ``used_by``, ``command``, ``note``}]; ``alerts`` {``since``, ``delivered``, ``failed``,
    ``pending``, ``failures`` [{``at``, ``channel``, ``channel_type``, ``target_kind``, ``target_name``,
    ``run_id``, ``kind``, ``attempts``, ``error``}], ``stuck`` [{``at``, ``channel``, ``target_kind``,
    ``target_name``, ``run_id``, ``kind``, ``attempts``}] (pending past the time a send takes)}; ``schedulers``
    [{``id``, ``host``, ``pid``, ``started_at``, ``heartbeat_at``}] (the live ones). Timestamps are ISO 8601 with
    their UTC offset.
    """
    now = now or utcnow()
    document: dict[str, Any] = {
        "version": STATUS_VERSION,
        "workspace": workspace.name,
        "at": now.isoformat(),
        "problems": [],
        "schedules": schedules(session, workspace, now),
        "last_runs": last_runs(session, workspace, now),
        "credentials": credentials_needing_authorization(session, workspace),
        "alerts": alerts(session, workspace, now),
        "schedulers": schedulers(session, now),
    }
    document["problems"] = _problems(document)
    return document


__all__ = [
    "ALERTS_WINDOW",
    "STATUS_VERSION",
    "alerts",
    "credentials_needing_authorization",
    "last_runs",
    "schedulers",
    "schedules",
    "workspace_status",
]
