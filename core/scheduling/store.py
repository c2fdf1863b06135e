"""The scheduler's records in the state store: the targets with a schedule, claims of fires, schedule states and
scheduler instances; and the read functions ``offramp schedules list`` and ``offramp status`` show them with.

Exactly once. A fire is claimed by inserting its ``schedule_fires`` row (unique per target and fire time, see
:class:`~offramp.core.state.models.ScheduleFire`) in a transaction of its own: of several schedulers that find the
same fire due, on one machine or many, only one insert commits (:func:`claim`); the others see the row and move
on. A skipped fire is recorded the same way, so it is recorded once whoever sees it first. A fire whose run must
be continued by another scheduler (its scheduler died, or stopped on SIGTERM) changes hands with a compare-and-set
on ``claimed_by`` (:func:`take_over`), so one scheduler takes it.

Read functions for other commands (``offramp status`` imports them; they only read, in the caller's session):

- :func:`scheduled_targets`: every orchestration and group with a schedule, of one workspace or all;
- :func:`schedule_rows`: what ``schedules list`` prints for each of them (next three fires, last fire);
- :func:`last_fire`: the last recorded fire of one target;
- :func:`live_instances`: the scheduler processes whose heartbeat is fresh.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from pydantic import ValidationError
from sqlalchemy import Engine, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from offramp.core.errors import ConfigError, StateError
from offramp.core.hints import offramp_command
from offramp.core.orchestration_options import GROUP_OPTIONS, SHARED_OPTIONS, GroupOptions, OrchestrationOptions
from offramp.core.runner.lifecycle import lease_seconds
from offramp.core.scheduling.decisions import Schedule, SkippedFire, may_fire
from offramp.core.scheduling.fires import NextFire, next_fires
from offramp.core.services.config_snapshot import is_production
from offramp.core.services.context import Context
from offramp.core.state.models import (
    Orchestration,
    OrchestrationGroup,
    ScheduleFire,
    SchedulerInstance,
    ScheduleState,
    Workspace,
    utcnow,
)

TargetKind = Literal["orchestration", "group"]
ORCHESTRATION: TargetKind = "orchestration"
GROUP: TargetKind = "group"

SCHEDULER_ACTOR = "scheduler"  # the actor of scheduled runs (RunRequest.actor, GroupRun.actor)
# Fire statuses besides the final run statuses: claimed (by a scheduler, its run not started yet), running, skipped.
CLAIMED, RUNNING, SKIPPED = "claimed", "running", "skipped"
# Fires not done with: claimed or running, or whose run was stopped (cancelled by a stopping scheduler) or
# interrupted, which a scheduler resumes. A later fire overlaps an open one, so a stopped fire that will not be
# resumed (superseded by a later run, later than the maximum lateness) is closed as skipped, never left open.
OPEN = (CLAIMED, RUNNING, "cancelled", "interrupted")


@dataclass(frozen=True)
class Target:
    """An orchestration or a group with a schedule, as the scheduler and ``schedules list`` need it.

    Attributes:
        kind: ``orchestration`` or ``group``.
        id: Its row id (the claim's ``target_id``).
        name: Its name.
        workspace: Its workspace's name.
        workspace_id: Its workspace's id.
        sandbox: Whether the workspace is a sandbox.
        fires: Whether the workspace's schedules fire at all (:func:`~offramp.core.scheduling.may_fire`).
        schedule: The schedule (cron, zone, catch-up, lateness, enabled).
        when_changed: The freshness query, or None.
        problem: Why the stored schedule cannot be used (it is then left alone), or None.
        changed_at: When the orchestration or group was last changed (its ``updated_at``): a new or edited
            definition has its fires due from then on (see :func:`read_state`).
    """

    kind: TargetKind
    id: int
    name: str
    workspace: str
    workspace_id: int
    sandbox: bool
    fires: bool
    schedule: Schedule | None
    when_changed: str | None = None
    problem: str | None = None
    changed_at: datetime | None = None

    @property
    def key(self) -> tuple[str, int]:
        return (self.kind, self.id)

    @property
    def fingerprint(self) -> str:
        """What makes the schedule a new one when it changes: nothing is caught up for a changed definition."""
        return fingerprint(self.schedule) if self.schedule is not None else ""


def fingerprint(schedule: Schedule) -> str:
    """``cron|zone|enabled|catch_up|max_lateness`` (ScheduleState.fingerprint)."""
    lateness = "" if schedule.max_lateness is None else str(int(schedule.max_lateness.total_seconds()))
    return f"{schedule.cron}|{schedule.zone}|{schedule.enabled}|{schedule.catch_up}|{lateness}"


def _schedule(cron: str, zone: str | None, options: GroupOptions) -> Schedule:
    lateness = options.max_lateness_minutes
    return Schedule(
        cron=cron,
        zone=zone or "UTC",
        catch_up=options.catch_up,
        max_lateness=None if lateness is None else timedelta(minutes=lateness),
        enabled=options.schedule_enabled,
    )


def _problem(error: Exception) -> str:
    if isinstance(error, ValidationError):
        return "; ".join(
            f"{'.'.join(str(p) for p in item['loc'])}: {str(item['msg']).removeprefix('Value error, ')}"
            for item in error.errors(include_url=False)
        )
    return error.message if isinstance(error, ConfigError) else str(error)


def _target(
    kind: TargetKind, row_id: int, name: str, workspace: Workspace, fires: bool,
    build: Callable[[], tuple[Schedule, str | None]], changed_at: datetime | None = None,
) -> Target:  # fmt: skip
    """The target, or (its stored schedule unusable) the target with the problem and no schedule."""
    sandbox = not is_production(workspace)
    try:
        schedule, when_changed = build()
    except (ValidationError, ConfigError) as error:
        return Target(kind, row_id, name, workspace.name, workspace.id, sandbox, fires, None, problem=_problem(error))
    return Target(kind, row_id, name, workspace.name, workspace.id, sandbox, fires, schedule, when_changed,
                  changed_at=changed_at)  # fmt: skip


def _orchestration_target(row: Orchestration, workspace: Workspace, fires: bool) -> Target | None:
    stored = dict(row.options or {})
    if not stored.get("schedule"):
        return None

    def build() -> tuple[Schedule, str | None]:
        options = OrchestrationOptions.model_validate({k: v for k, v in stored.items() if k in SHARED_OPTIONS})
        assert options.schedule is not None
        return _schedule(options.schedule, options.schedule_timezone, options), options.when_changed

    return _target(ORCHESTRATION, row.id, row.name, workspace, fires, build, row.updated_at)


def _group_target(row: OrchestrationGroup, workspace: Workspace, fires: bool) -> Target | None:
    cron = row.schedule
    if not cron:
        return None

    def build() -> tuple[Schedule, str | None]:
        options = GroupOptions.model_validate({k: v for k, v in dict(row.options or {}).items() if k in GROUP_OPTIONS})
        return _schedule(cron, row.timezone, options), options.when_changed

    return _target(GROUP, row.id, row.name, workspace, fires, build, row.updated_at)


def scheduled_targets(session: Session, workspace: str | None = None) -> list[Target]:
    """Every orchestration and group with a schedule, of ``workspace`` (None: every workspace not deleted), by
    workspace (production first), kind and name. A target whose workspace may not fire is listed with
    ``fires=False``; one whose stored schedule is unusable with ``problem`` set."""
    query = select(Workspace).where(Workspace.deleted_at.is_(None))
    if workspace is not None:
        query = query.where(Workspace.name == workspace)
    targets: list[Target] = []
    for ws in sorted(session.scalars(query), key=lambda w: (not is_production(w), w.name)):
        fires = may_fire(sandbox=not is_production(ws), sandbox_schedules_enabled=bool(ws.schedules_enabled))
        orchestrations = session.scalars(
            select(Orchestration).where(Orchestration.workspace_id == ws.id).order_by(Orchestration.name)
        )
        targets += [t for row in orchestrations if (t := _orchestration_target(row, ws, fires)) is not None]
        groups = session.scalars(
            select(OrchestrationGroup).where(OrchestrationGroup.workspace_id == ws.id).order_by(OrchestrationGroup.name)
        )
        targets += [t for row in groups if (t := _group_target(row, ws, fires)) is not None]
    return targets


# --- reading fires, for `schedules list` and `status` ---------------------------------------------------------


def last_fire(session: Session, kind: str, target_id: int) -> ScheduleFire | None:
    """The target's latest recorded fire (by fire time), whatever became of it."""
    return session.scalar(
        select(ScheduleFire)
        .where(ScheduleFire.target_kind == kind, ScheduleFire.target_id == target_id)
        .order_by(ScheduleFire.fire_at.desc())
        .limit(1)
    )


def fire_json(fire: ScheduleFire | None) -> dict[str, Any] | None:
    """A fire as ``schedules list --json`` shows it: fire time (UTC), status, reason, run id, claimed by."""
    if fire is None:
        return None
    return {"fire_at": fire.fire_at, "status": fire.status, "reason": fire.reason, "run_id": fire.run_id,
            "claimed_by": fire.claimed_by, "finished_at": fire.finished_at}  # fmt: skip


def schedule_rows(session: Session, targets: Sequence[Target], now: datetime, count: int = 3) -> list[dict[str, Any]]:
    """For each target: kind, name, workspace, cron, timezone, enabled, whether it fires (``fires``: False in a
    sandbox that has not enabled schedules, ``note`` says so), the next ``count`` fires in its timezone and in UTC,
    and its last fire (:func:`fire_json`). Reads only."""
    rows = []
    for target in targets:
        schedule = target.schedule
        upcoming: list[NextFire] = []
        if schedule is not None and schedule.enabled and target.fires:
            upcoming = next_fires(schedule.cron, schedule.zone, now, count)
        note = None
        if target.problem is not None:
            note = f"not usable: {target.problem}"
        elif not target.fires:
            note = "sandbox schedules off"
        elif schedule is not None and not schedule.enabled:
            note = "disabled"
        rows.append({
            "kind": target.kind, "name": target.name, "workspace": target.workspace,
            "cron": schedule.cron if schedule else None, "timezone": schedule.zone if schedule else None,
            "enabled": bool(schedule and schedule.enabled), "fires": target.fires and schedule is not None,
            "catch_up": schedule.catch_up if schedule else None,
            "max_lateness_minutes": int(schedule.max_lateness.total_seconds() // 60)
            if schedule and schedule.max_lateness else None,
            "when_changed": target.when_changed, "note": note,
            "next_fires": [{"local": item.local.isoformat(), "utc": item.utc} for item in upcoming],
            "last_fire": fire_json(last_fire(session, target.kind, target.id)),
        })  # fmt: skip
    return rows


# --- claims and fires ---------------------------------------------------------------------------------------------


def _insert_if_absent(engine: Engine) -> Any:
    """INSERT ... ON CONFLICT DO NOTHING for the store's dialect (both keep the unique claim)."""
    dialect = postgresql if engine.dialect.name == "postgresql" else sqlite
    return dialect.insert(ScheduleFire).on_conflict_do_nothing(index_elements=["target_kind", "target_id", "fire_at"])


SKIPPED_PER_STATEMENT = 500


def record_skipped(ctx: Context, target: Target, skipped: Sequence[SkippedFire], instance: str | None) -> int:
    """Record fires that do not run, each with its reason, unless already recorded (by this scheduler or another);
    returns how many were new."""
    if not skipped:
        return 0
    now = utcnow()
    values = [
        {"workspace_id": target.workspace_id, "target_kind": target.kind, "target_id": target.id,
         "target_name": target.name, "fire_at": item.fire, "status": SKIPPED, "reason": item.reason,
         "claimed_by": instance, "claimed_at": now, "finished_at": now}
        for item in skipped
    ]  # fmt: skip
    new = 0
    with ctx.store.session() as session:
        # In chunks: a long downtime of a schedule every minute is thousands of fires, more than one statement's
        # parameters (SQLite's limit). RETURNING tells which rows were new (the rowcount of ON CONFLICT DO NOTHING
        # is not reliable across drivers).
        for start in range(0, len(values), SKIPPED_PER_STATEMENT):
            chunk = values[start : start + SKIPPED_PER_STATEMENT]
            statement = _insert_if_absent(ctx.store.engine).values(chunk).returning(ScheduleFire.id)
            new += len(session.execute(statement).all())
    return new


def claim(ctx: Context, target: Target, fire_at: datetime, instance: str) -> int | None:
    """Claim the fire ``fire_at`` of ``target`` for ``instance``, in a transaction of its own: its row id, or None
    when another scheduler (or this one, earlier) has it already. THE claim: at most one scheduler gets it."""
    value = {"workspace_id": target.workspace_id, "target_kind": target.kind, "target_id": target.id,
             "target_name": target.name, "fire_at": fire_at, "status": CLAIMED, "claimed_by": instance,
             "claimed_at": utcnow()}  # fmt: skip
    # RETURNING gives the new row's id, and nothing when the row was there (never a rowcount: psycopg reports 1 for
    # an INSERT ... ON CONFLICT DO NOTHING that inserted nothing).
    statement = _insert_if_absent(ctx.store.engine).values(**value).returning(ScheduleFire.id)
    with ctx.store.session() as session:
        fire_id = session.execute(statement).scalar()
        return None if fire_id is None else int(fire_id)


def set_fire(
    ctx: Context, fire_id: int, status: str, *, reason: str | None = None, run_id: str | None = None,
    instance: str | None = None,
) -> bool:  # fmt: skip
    """Record what became of a fire: ``running`` (with its run id), ``skipped`` or a final run status (with the
    reason). With ``instance``, only while that scheduler still holds the fire (another may have taken it over);
    returns whether the row changed."""
    values: dict[str, Any] = {"status": status, "reason": reason}
    if run_id is not None:
        values["run_id"] = run_id
    if status not in (CLAIMED, RUNNING):
        values["finished_at"] = utcnow()
    statement = update(ScheduleFire).where(ScheduleFire.id == fire_id)
    if instance is not None:
        statement = statement.where(ScheduleFire.claimed_by == instance)
    with ctx.store.session() as session:
        result = session.execute(statement.values(**values).execution_options(synchronize_session=False))
        return bool(getattr(result, "rowcount", 1))


def take_over(ctx: Context, fire: ScheduleFire, instance: str, run_id: str | None = None) -> bool:
    """Take a fire another scheduler held (dead, or stopped) for ``instance``: a compare-and-set on its holder and
    status, so of several schedulers trying at once one gets it. ``run_id``: the run (group run) it resumes, recorded
    on the fire at once (the fire may not have named it: its scheduler died before it said)."""
    values: dict[str, Any] = {"claimed_by": instance, "status": RUNNING, "claimed_at": utcnow(), "finished_at": None}
    if run_id is not None:
        values["run_id"] = run_id
    with ctx.store.session() as session:
        result = session.execute(
            update(ScheduleFire)
            .where(
                ScheduleFire.id == fire.id,
                ScheduleFire.status == fire.status,
                (ScheduleFire.claimed_by == fire.claimed_by)
                if fire.claimed_by is not None
                else ScheduleFire.claimed_by.is_(None),
            )
            .values(**values)
            .execution_options(synchronize_session=False)
        )
        return bool(getattr(result, "rowcount", 0))


def open_fires(session: Session, statuses: Sequence[str]) -> list[ScheduleFire]:
    """Fires in one of ``statuses`` (claimed, running, cancelled: the candidates for a takeover), oldest first."""
    return list(
        session.scalars(select(ScheduleFire).where(ScheduleFire.status.in_(statuses)).order_by(ScheduleFire.fire_at))
    )


def open_fire_before(session: Session, target: Target, fire_at: datetime) -> ScheduleFire | None:
    """An earlier fire of the target still open (claimed, running, or stopped to be resumed): while there is one, a
    new fire overlaps it, even when its run is not alive at this instant (its scheduler died and another is about
    to resume it)."""
    return session.scalar(
        select(ScheduleFire)
        .where(
            ScheduleFire.target_kind == target.kind,
            ScheduleFire.target_id == target.id,
            ScheduleFire.fire_at < fire_at,
            ScheduleFire.status.in_(OPEN),
        )
        .order_by(ScheduleFire.fire_at.desc())
        .limit(1)
    )


# --- schedule states ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class StateView:
    """A schedule's state as the loop reads it: the fires handled up to ``last_fire`` (None: a new schedule, or
    one whose definition changed) and the freshness value of its last successful run."""

    last_fire: datetime | None
    freshness_value: str | None


def read_state(session: Session, target: Target, now: datetime) -> StateView:
    """The target's state at ``now``.

    A new definition (no state, or a changed fingerprint: cron, zone, enabling, catch-up, lateness) has its fires
    due from the moment it was added or changed (the target's ``changed_at``, when earlier than ``now``), not from
    the moment a scheduler first sees it: ``scheduler --once`` under cron sees an edit only at the next fire, which
    must not be lost. Nothing before the change is caught up. A sandbox's target never seen before starts at ``now``
    (enabling a sandbox's schedules catches nothing up, and the switch records no time of its own)."""
    row = session.get(ScheduleState, (target.kind, target.id))
    if row is not None and row.fingerprint == target.fingerprint:
        return StateView(row.last_fire, row.freshness_value)
    value = row.freshness_value if row is not None else None
    if target.changed_at is None or (row is None and target.sandbox) or target.changed_at >= now:
        return StateView(None, value)
    since = target.changed_at
    if row is not None and row.last_fire is not None and row.last_fire > since:
        since = row.last_fire  # the old definition's fires are handled up to there: none of them again
    return StateView(min(since, now), value)


def advance_state(ctx: Context, target: Target, last_fire: datetime) -> None:
    """Store that the target's fires are handled up to ``last_fire``: never backwards for the same definition (a
    scheduler with a late clock, or a slower one, handles nothing twice); a changed definition starts afresh."""
    for _attempt in range(3):
        with ctx.store.session() as session:
            row = session.scalar(
                select(ScheduleState)
                .where(ScheduleState.target_kind == target.kind, ScheduleState.target_id == target.id)
                .with_for_update()
            )
            if row is None:
                insert = (postgresql if ctx.store.engine.dialect.name == "postgresql" else sqlite).insert
                inserted = session.execute(
                    insert(ScheduleState)
                    .values(target_kind=target.kind, target_id=target.id, workspace_id=target.workspace_id,
                            fingerprint=target.fingerprint, last_fire=last_fire, updated_at=utcnow())
                    .on_conflict_do_nothing()
                    .returning(ScheduleState.target_id)
                ).first()  # fmt: skip
                if inserted is not None:
                    return
                continue  # another scheduler inserted it a moment ago: read it again
            if row.fingerprint != target.fingerprint:
                row.fingerprint, row.last_fire = target.fingerprint, last_fire
            elif row.last_fire is None or last_fire > row.last_fire:
                row.last_fire = last_fire
            return


def store_freshness(ctx: Context, target: Target, value: str | None) -> None:
    """Record the freshness query's value of a successful run (the next fire compares with it)."""
    with ctx.store.session() as session:
        row = session.get(ScheduleState, (target.kind, target.id), with_for_update=True)
        if row is not None:
            row.freshness_value = value


# --- scheduler instances --------------------------------------------------------------------------------------


def instance_alive(row: SchedulerInstance, now: datetime | None = None) -> bool:
    """Whether a scheduler process is alive: not stopped, and its heartbeat within the lease (the runs' lease,
    ``OFFRAMP_RUN_LEASE_SECONDS``: a scheduler that stops beating is as dead as a run that does)."""
    return row.stopped_at is None and (now or utcnow()) - row.heartbeat_at <= timedelta(seconds=lease_seconds())


def live_instances(session: Session, now: datetime | None = None) -> list[SchedulerInstance]:
    """The scheduler processes alive now (host, pid, started, last heartbeat), oldest first."""
    rows = session.scalars(
        select(SchedulerInstance).where(SchedulerInstance.stopped_at.is_(None)).order_by(SchedulerInstance.started_at)
    )
    return [row for row in rows if instance_alive(row, now)]


def register_instance(ctx: Context) -> str:
    """Register this process as a scheduler; its id (``host:pid:random``).

    On SQLite one scheduler at a time: refused while another is alive, naming its host and pid (SQLite has one
    writer at a time, and its processes must share a machine: several schedulers would only queue on its lock).
    """
    host, pid = socket.gethostname(), os.getpid()
    instance_id = f"{host}:{pid}:{uuid.uuid4().hex[:8]}"
    with ctx.store.session() as session:  # on SQLite, BEGIN IMMEDIATE: two starting at once are serialized
        if ctx.store.engine.dialect.name == "sqlite":
            alive = [other for other in live_instances(session) if not _gone(session, other, host)]
            if alive:
                other = alive[0]
                lapses = other.heartbeat_at + timedelta(seconds=lease_seconds())
                raise StateError(
                    f"another scheduler is running on {other.host} (pid {other.pid}) since "
                    f"{other.started_at:%Y-%m-%d %H:%M:%S} UTC; a SQLite store runs one scheduler at a time",
                    hint=f"stop it first (kill -TERM {other.pid} on {other.host}); if it is not running, its lease "
                    f"lapses at {lapses:%H:%M:%S} UTC and a scheduler may start then; to run several schedulers, put "
                    "the state store on PostgreSQL (OFFRAMP_DATABASE_URL); see them with " + offramp_command("status"),
                )
        now = utcnow()
        session.add(SchedulerInstance(id=instance_id, host=host, pid=pid, started_at=now, heartbeat_at=now))
    return instance_id


def _gone(session: Session, other: SchedulerInstance, host: str) -> bool:
    """Whether a scheduler that looks alive (its lease not lapsed) is a process of this machine that no longer
    exists (killed with SIGKILL): then it is marked stopped, so the next scheduler need not wait for its lease."""
    if other.host != host:
        return False
    try:
        os.kill(other.pid, 0)  # signal 0: only whether the process exists
    except ProcessLookupError:
        other.stopped_at = utcnow()
        return True
    except PermissionError:
        return False  # it exists, as another user's process
    return False


#: How far the local clock and the database's may differ before the scheduler warns: leases and heartbeats are
#: written with each machine's clock and read by the others.
CLOCK_SKEW_WARNING = timedelta(seconds=5)


def database_now(ctx: Context) -> datetime:
    """The database server's clock now (UTC): PostgreSQL's ``now()``, SQLite's ``CURRENT_TIMESTAMP``."""
    with ctx.store.read_session() as session:
        value = session.execute(select(func.now())).scalar()
    if isinstance(value, str):  # SQLite: 'YYYY-MM-DD HH:MM:SS', in UTC
        value = datetime.fromisoformat(value)
    assert isinstance(value, datetime)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def clock_skew_warning(local: datetime, database: datetime) -> str | None:
    """The warning to log when the local clock and the database's differ by more than :data:`CLOCK_SKEW_WARNING`,
    else None."""
    skew = (local - database).total_seconds()
    if abs(skew) <= CLOCK_SKEW_WARNING.total_seconds():
        return None
    way = "ahead of" if skew > 0 else "behind"
    return (f"warning: this machine's clock is {abs(skew):.0f} s {way} the database's; leases and heartbeats "
            "assume the clocks agree (a scheduler may take over a live run or wait too long for a dead one): "
            "synchronize the clocks (NTP)")  # fmt: skip


def beat_instance(ctx: Context, instance_id: str) -> None:
    """Refresh this scheduler's heartbeat."""
    with ctx.store.session() as session:
        session.execute(
            update(SchedulerInstance).where(SchedulerInstance.id == instance_id).values(heartbeat_at=utcnow())
        )


def stop_instance(ctx: Context, instance_id: str) -> None:
    """Mark this scheduler stopped (another may start at once, on SQLite too)."""
    with ctx.store.session() as session:
        session.execute(
            update(SchedulerInstance).where(SchedulerInstance.id == instance_id).values(stopped_at=utcnow())
        )


def instance_of(session: Session, instance_id: str | None) -> SchedulerInstance | None:
    """A scheduler instance by id (None for None)."""
    return None if instance_id is None else session.get(SchedulerInstance, instance_id)


__all__ = [
    "CLAIMED",
    "CLOCK_SKEW_WARNING",
    "GROUP",
    "OPEN",
    "ORCHESTRATION",
    "RUNNING",
    "SCHEDULER_ACTOR",
    "SKIPPED",
    "StateView",
    "Target",
    "TargetKind",
    "advance_state",
    "beat_instance",
    "claim",
    "clock_skew_warning",
    "database_now",
    "fingerprint",
    "fire_json",
    "instance_alive",
    "instance_of",
    "last_fire",
    "live_instances",
    "open_fire_before",
    "open_fires",
    "read_state",
    "record_skipped",
    "register_instance",
    "schedule_rows",
    "scheduled_targets",
    "set_fire",
    "stop_instance",
    "store_freshness",
    "take_over",
]
