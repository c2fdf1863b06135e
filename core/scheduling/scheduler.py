"""The scheduler loop (``offramp scheduler``): fire due schedules, exactly once across scheduler processes.

Each pass (:meth:`Scheduler.tick`), for every workspace that may fire and every orchestration and group with a
schedule:

1. Take over fires other schedulers left: a fire ``running`` whose run's lease lapsed (its scheduler was killed),
   or ``cancelled`` (its scheduler stopped on SIGTERM), is claimed with a compare-and-set when a worker starts
   the job (so a takeover waiting in the queue is never taken twice) and its run resumed (``--resume``: nothing
   the vendor acknowledged is sent again). A stopped fire is closed ``skipped`` instead when a later run of the
   target started since (``superseded by run ID``) or when it is older than the schedule's maximum lateness; this
   scheduler's own fires that no worker holds (an error between the claim and its record) are taken over too.
   Every error after a claim records the fire ``failed`` (one line, the error's type), so it never blocks the
   target.
2. Decide (:func:`~offramp.core.scheduling.due`) from the schedule's state: record each skipped fire; claim the
   fire to run (:func:`~offramp.core.scheduling.store.claim`: one scheduler gets it, the others move on); then a
   fire while the previous run still runs is skipped (``still running: RUN_ID``), a fire whose freshness query
   returns the value of the last successful run is skipped (``no new data``), and the others run through the
   same runner as ``offramp run`` (actor ``scheduler``) on a small pool of worker threads, so one long run does
   not hold the other schedules up. The fire shows ``running`` with its run id as soon as the run has one, then
   the run's final status (a run refused before it starts, such as a sandbox run without a test event code, is
   ``failed`` with the runner's message).
3. Advance the schedule's state (never backwards); retry alert deliveries left pending.

At start the scheduler warns when this machine's clock and the database's differ by more than 5 s.

The clock is injectable (``clock``): the unit tests drive the decisions with a controllable one on a real store.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select

from offramp.core.errors import OfframpError
from offramp.core.runner import RunRequest, RunSummary, run_orchestration
from offramp.core.runner.groups import GroupRunInProgressError, GroupRunRequest, group_lapsed, run_group
from offramp.core.runner.lifecycle import RunInProgressError, lapsed, lease_seconds
from offramp.core.scheduling.decisions import NO_NEW_DATA, changed, due, late_reason, overlap
from offramp.core.scheduling.freshness import current_value
from offramp.core.scheduling.store import (
    GROUP,
    OPEN,
    RUNNING,
    SCHEDULER_ACTOR,
    SKIPPED,
    Target,
    advance_state,
    beat_instance,
    claim,
    clock_skew_warning,
    database_now,
    instance_alive,
    instance_of,
    open_fire_before,
    open_fires,
    read_state,
    record_skipped,
    register_instance,
    scheduled_targets,
    set_fire,
    stop_instance,
    store_freshness,
    take_over,
)
from offramp.core.services.context import Context
from offramp.core.sources import SourceQueryError
from offramp.core.state.models import GroupRun, Run, ScheduleFire, utcnow

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]
Say = Callable[[str], None]

DEFAULT_WORKERS = 2
DEFAULT_POLL_SECONDS = 15.0
SKIPPED_SHOWN = 5  # skipped fires logged one by one; more (a long downtime) are summed up in one line
SUCCESSFUL = ("succeeded", "partially_failed")
STOPPED = "cancelled"  # the fire status of a run a stopping scheduler cancelled: the next scheduler resumes it


@dataclass(frozen=True)
class FireResult:
    """What became of one fire this scheduler handled."""

    kind: str
    name: str
    workspace: str
    fire_at: datetime
    status: str
    reason: str | None
    run_id: str | None
    ran: bool = True  # False: the outcome of another scheduler's run, recorded by this one (a takeover)


@dataclass
class _Job:
    target: Target
    fire_id: int
    fire_at: datetime
    resume: bool = False
    run_id: str | None = None  # the run (group run) to resume
    previous_value: str | None = None  # the freshness value of the last successful run
    check_freshness: bool = False
    store_value: bool = False  # store the freshness value after a successful run (a resumed run: no check first)
    reported: bool = False  # the fire shows its run id already
    takeover: ScheduleFire | None = None  # the fire as read, to take over when the job starts (compare-and-set)


def _iso(instant: datetime) -> str:
    return instant.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _lapsed(row: Run | GroupRun, now: datetime) -> bool:
    """Whether a run's or group run's lease lapsed (its process stopped beating)."""
    return group_lapsed(row, now) if isinstance(row, GroupRun) else lapsed(row, now)


def _unexpected(exc: Exception) -> str:
    """An unexpected error as a fire keeps it: one line, its type only (its text may quote SQL parameters or
    warehouse values: the message is not stored, as for runs)."""
    return f"unexpected {type(exc).__name__} (its message is not stored; `offramp --debug scheduler` logs it)"


def _with_hint(message: str | None, hint: str | None) -> str | None:
    """The runner's error with its hint (what to do next), as a failed fire keeps and logs it."""
    if not hint:
        return message
    return f"{message}; {hint}" if message else hint


def _freshness_error(error: OfframpError) -> str:
    """A failed freshness query, as the fire keeps it: the engine's message may quote a warehouse value, so only its
    kind and line are kept (as for a run's query)."""
    if isinstance(error, SourceQueryError):
        kind = error.engine_message.split(":", 1)[0].strip() or "error"
        where = f" at line {error.line}" if error.line else ""
        return f"freshness query failed ({kind}{where}); the engine's message is not stored"
    return f"freshness query: {error.message}"


class Scheduler:
    """One scheduler process's loop. Use :meth:`start`, then :meth:`tick` (tests, ``--once``) or :meth:`serve`,
    then :meth:`close`.

    Args:
        ctx: The services' context (its store is shared with the worker threads).
        workers: Runs executing at once.
        clock: The current instant, for the schedules' decisions (runs and leases keep the real time).
        stop: Set to stop: no new fire, and the runs in progress finish their batches in flight and end
            cancelled (resumable; the next scheduler resumes them).
        say: Where the one line per fire and outcome goes (stderr in the CLI).
    """

    def __init__(
        self,
        ctx: Context,
        *,
        workers: int = DEFAULT_WORKERS,
        clock: Clock = utcnow,
        stop: threading.Event | None = None,
        say: Say | None = None,
    ) -> None:
        self.ctx = ctx
        self.clock = clock
        self.stop = stop or threading.Event()
        self.say: Say = say or (lambda line: log.info("%s", line))
        self.instance_id = ""
        self.results: list[FireResult] = []
        self._pool = ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="fire")
        self._futures: list[Future[None]] = []
        self._busy: dict[tuple[str, int], str | None] = {}  # targets with a fire in this process -> its run id
        self._lock = threading.Lock()
        self._beating = threading.Event()
        self._beat_thread: threading.Thread | None = None

    # --- the process ------------------------------------------------------------------------------------------

    def start(self) -> str:
        """Register this scheduler (refused on SQLite while another is alive) and start its heartbeat."""
        self.instance_id = register_instance(self.ctx)
        self._check_clock()
        self._beat_thread = threading.Thread(target=self._beat, name="scheduler-heartbeat", daemon=True)
        self._beat_thread.start()
        return self.instance_id

    def _check_clock(self) -> None:
        """Warn when this machine's clock and the database's disagree (more than 5 s): leases and heartbeats are
        written with each scheduler's clock and compared by the others."""
        try:
            warning = clock_skew_warning(utcnow(), database_now(self.ctx))
        except Exception:  # noqa: BLE001 - a check only: the scheduler runs without it
            log.debug("database clock check failed", exc_info=True)
            return
        if warning is not None:
            self.say(warning)

    def _retry_alerts(self) -> None:
        """Send again alert deliveries left pending (a process died while sending): once per pass."""
        try:
            from offramp.core.alerts.dispatch import retry_pending

            retry_pending(self.ctx)
        except Exception:  # noqa: BLE001 - alerts never stop the schedules
            log.warning("retrying pending alert deliveries failed", exc_info=True)

    def _beat(self) -> None:
        every = max(0.5, lease_seconds() / 5)
        while not self._beating.wait(every):
            try:
                beat_instance(self.ctx, self.instance_id)
            except Exception:  # noqa: BLE001 - a missed beat is retried; the loop must not die of it
                log.debug("scheduler heartbeat failed", exc_info=True)

    def wait(self) -> None:
        """Wait for every fire submitted so far to end."""
        while True:
            with self._lock:
                pending = [future for future in self._futures if not future.done()]
                self._futures = pending
            if not pending:
                return
            for future in pending:
                future.result()

    def close(self) -> None:
        """Wait for the runs in progress (stopped ones end cancelled), stop beating, mark this scheduler stopped."""
        self.wait()
        self._pool.shutdown(wait=True)
        self._beating.set()
        if self._beat_thread is not None:
            self._beat_thread.join()
        if self.instance_id:
            stop_instance(self.ctx, self.instance_id)

    def serve(self, poll: float = DEFAULT_POLL_SECONDS) -> None:
        """Tick until stopped: wake at the earliest next fire, or after ``poll`` seconds (takeovers, new
        schedules)."""
        while not self.stop.is_set():
            try:
                wake = self.tick()
            except Exception as exc:  # noqa: BLE001 - a store that is briefly unreachable: try again next poll
                log.debug("scheduler pass failed", exc_info=True)
                self.say(f"scheduler pass failed ({type(exc).__name__}); trying again in {poll:g} s")
                wake = None
            delay = poll
            if wake is not None:
                delay = min(poll, max(0.0, (wake - self.clock()).total_seconds()) + 0.05)
            self.stop.wait(max(0.05, delay))

    def once(self) -> list[FireResult]:
        """``--once``: fire what is due now (and take over what other schedulers left), wait for the runs."""
        self.tick()
        self.wait()
        return list(self.results)

    # --- one pass ---------------------------------------------------------------------------------------------

    def tick(self) -> datetime | None:
        """One pass over every schedule; returns the earliest next fire (when to wake), or None."""
        assert self.instance_id, "start() the scheduler first"
        now = self.clock()
        with self.ctx.store.read_session() as session:
            targets = scheduled_targets(session)
        active = [t for t in targets if t.fires and t.schedule is not None]
        self._take_over({t.key: t for t in active if t.schedule is not None and t.schedule.enabled}, now)
        wake: datetime | None = None
        for target in active:
            if self.stop.is_set():
                break
            try:
                next_fire = self._consider(target, now)
            except Exception as exc:  # noqa: BLE001 - one broken schedule must not stop the others
                log.debug("schedule of %s %s failed", target.kind, target.name, exc_info=True)
                self.say(f"{self._who(target)}: not handled this pass ({type(exc).__name__}); tried again next pass")
                continue
            if next_fire is not None and (wake is None or next_fire < wake):
                wake = next_fire
        self._retry_alerts()
        return wake

    def _consider(self, target: Target, now: datetime) -> datetime | None:
        assert target.schedule is not None
        with self.ctx.store.read_session() as session:
            state = read_state(session, target, now)
        decision = due(target.schedule, state.last_fire, now)
        new = record_skipped(self.ctx, target, decision.skipped, self.instance_id)
        if new:
            if len(decision.skipped) <= SKIPPED_SHOWN:
                for item in decision.skipped:
                    self.say(f"{self._who(target, item.fire)}: skipped ({item.reason})")
            else:
                first, last = decision.skipped[0].fire, decision.skipped[-1].fire
                self.say(f"{self._who(target)}: {new} fires from {_iso(first)} to {_iso(last)} skipped "
                         f"({decision.skipped[-1].reason})")  # fmt: skip
        if decision.run is not None:
            fire_id = claim(self.ctx, target, decision.run, self.instance_id)
            if fire_id is not None:
                try:
                    self._fire(target, fire_id, decision.run, state.freshness_value)
                except Exception as exc:  # noqa: BLE001 - a claimed fire must not stay claimed: it would block
                    log.debug("fire of %s %s failed", target.kind, target.name, exc_info=True)
                    self._end(target, fire_id, decision.run, "failed", _unexpected(exc), None)
        advance_state(self.ctx, target, decision.last_fire)
        return decision.next_fire

    def _fire(self, target: Target, fire_id: int, fire_at: datetime, previous_value: str | None) -> None:
        """A claimed fire: skipped on overlap, else handed to a worker (freshness, then the run)."""
        with self._lock:
            here = target.key in self._busy
            running = self._busy.get(target.key)
        if not here:
            running = self._live_run(target)
        if not here and running is None:
            with self.ctx.store.read_session() as session:
                earlier = open_fire_before(session, target, fire_at)
                if earlier is not None:
                    running = earlier.run_id or f"the fire of {_iso(earlier.fire_at)}"
        if here or running is not None:
            reason = overlap(running or "a run this scheduler is about to start")
            self._end(target, fire_id, fire_at, SKIPPED, reason, None)
            return
        job = _Job(target, fire_id, fire_at, previous_value=previous_value,
                   check_freshness=target.when_changed is not None)  # fmt: skip
        self._submit(job)

    def _live_run(self, target: Target) -> str | None:
        """The id of the target's run (group run) that is alive now, if any."""
        now = utcnow()
        with self.ctx.store.read_session() as session:
            rows: list[Run] | list[GroupRun]
            if target.kind == GROUP:
                rows = list(session.scalars(select(GroupRun).where(GroupRun.group_id == target.id,
                                                                   GroupRun.status == "running")))  # fmt: skip
            else:
                rows = list(session.scalars(select(Run).where(Run.orchestration_id == target.id,
                                                              Run.status == "running")))  # fmt: skip
            for row in rows:
                if not _lapsed(row, now):
                    return row.id
        return None

    def _submit(self, job: _Job) -> None:
        with self._lock:
            self._busy[job.target.key] = job.run_id
            self._futures.append(self._pool.submit(self._execute, job))

    # --- takeovers ----------------------------------------------------------------------------------------------

    def _take_over(self, targets: dict[tuple[str, int], Target], now: datetime) -> None:
        """Resume the fires other schedulers left (their run lapsed, or they stopped on SIGTERM), and this one's own
        fires that no worker holds (an error between the claim and the record left them open).

        The compare-and-set on the fire's holder is done by the worker when the job starts, not here: a takeover
        waiting in the queue longer than the lease must not let a second scheduler take the same fire (the first
        one's claim would look as old as a dead scheduler's)."""
        real_now = utcnow()
        plans: list[tuple[ScheduleFire, Target, str, Any, str | None]] = []
        with self.ctx.store.read_session() as session:
            for fire in open_fires(session, OPEN):
                target = targets.get((fire.target_kind, fire.target_id))
                with self._lock:
                    busy = (fire.target_kind, fire.target_id) in self._busy
                if target is None or busy:
                    continue
                plan = self._takeover_plan(session, fire, target, real_now, now)
                if plan is not None:
                    previous = read_state(session, target, now).freshness_value
                    session.expunge(fire)
                    plans.append((fire, target, *plan, previous))
        for fire, target, action, run, previous in plans:
            who = self._who(target, fire.fire_at)
            if action == "finish":
                if not take_over(self.ctx, fire, self.instance_id):
                    continue  # another scheduler took it a moment ago
                status, reason, run_id = run
                self._end(target, fire.id, fire.fire_at, status, reason, run_id, ran=False)
                continue
            run_id = run
            if run_id is not None and target.schedule is not None and target.schedule.max_lateness is None:
                age = now - fire.fire_at
                if age > timedelta(hours=1):
                    self.say(f"{who}: resuming a stopped fire {age.total_seconds() / 3600:.1f} h old (no data lost); "
                             "set a maximum lateness (--max-lateness) to skip such fires instead")  # fmt: skip
            fresh = target.when_changed is not None
            self._submit(_Job(target, fire.id, fire.fire_at, resume=run_id is not None, run_id=run_id,
                              previous_value=previous, check_freshness=fresh and run_id is None,
                              store_value=fresh, takeover=fire))  # fmt: skip

    def _takeover_plan(
        self, session: Any, fire: ScheduleFire, target: Target, now: datetime, decided: datetime
    ) -> tuple[str, Any] | None:
        """What to do with an open fire no worker of this scheduler holds: ("resume", run id), ("resume", None) to
        start its run, ("finish", (status, reason, run id)) to close it, or None to leave it. ``now`` is the real
        time (leases), ``decided`` the scheduler's clock (lateness)."""
        own = fire.claimed_by == self.instance_id  # not busy here: left open by an error, nobody runs it
        holder = instance_of(session, fire.claimed_by)
        holder_alive = not own and holder is not None and instance_alive(holder, now)
        stopped = fire.status in (STOPPED, "interrupted")
        # A stopped fire names its run if it had one; searching by time could find a run started by hand since.
        row = self._run_of(session, fire, search=not stopped)
        if row is None:
            if holder_alive and not stopped:
                return None
            return self._late(target, fire, decided) or ("resume", None)
        if row.status == "running":
            if not _lapsed(row, now):
                return None  # alive: its scheduler runs it (or a user resumed it by hand)
            if holder_alive and now - fire.claimed_at <= timedelta(seconds=lease_seconds()):
                return None  # a live scheduler took it over a moment ago and is about to resume the run
            return self._late(target, fire, decided, row) or self._resumable(session, target, row)
        if holder_alive and not stopped:
            return None  # its scheduler is about to record the end
        if row.status in ("cancelled", "interrupted"):
            return self._late(target, fire, decided, row) or self._resumable(session, target, row)
        return ("finish", (row.status, row.error, row.id))

    @staticmethod
    def _late(
        target: Target, fire: ScheduleFire, decided: datetime, row: Run | GroupRun | None = None
    ) -> tuple[str, Any] | None:
        """Close a stopped fire older than the schedule's maximum lateness (skipped, like a missed one), rather
        than resume it ahead of the catch-up fire: None when it is not late (or there is no maximum)."""
        limit = target.schedule.max_lateness if target.schedule is not None else None
        if limit is None or fire.fire_at >= decided - limit:
            return None
        return ("finish", (SKIPPED, late_reason(limit), row.id if row is not None else None))

    def _resumable(self, session: Any, target: Target, row: Run | GroupRun) -> tuple[str, Any]:
        """Resume ``row``, unless a later run of the target started since (resuming would continue that one): then
        the fire is closed, skipped (a closed status: an open one would hold every later fire as overlapping)."""
        if target.kind == GROUP:
            later = session.scalar(
                select(GroupRun.id).where(GroupRun.group_id == target.id, GroupRun.started_at > row.started_at,
                                          GroupRun.dry_run.is_(False)).order_by(GroupRun.started_at.desc()).limit(1)
            )  # fmt: skip
        else:
            later = session.scalar(
                select(Run.id).where(Run.orchestration_id == target.id, Run.started_at > row.started_at,
                                     Run.dry_run.is_(False)).order_by(Run.started_at.desc()).limit(1)
            )  # fmt: skip
        if later is not None:
            return ("finish", (SKIPPED, f"superseded by run {later}", row.id))
        return ("resume", row.id)

    @staticmethod
    def _run_of(session: Any, fire: ScheduleFire, *, search: bool = True) -> Run | GroupRun | None:
        """The run (group run) a fire started: by its recorded id, else (``search``) the one of its fire time (a
        group run records it) or the first run started since the claim (its scheduler died before it said)."""
        if fire.run_id is None and not search:
            return None
        if fire.target_kind == GROUP:
            if fire.run_id is not None:
                return session.get(GroupRun, fire.run_id)  # type: ignore[no-any-return]
            return session.scalar(  # type: ignore[no-any-return]
                select(GroupRun).where(GroupRun.group_id == fire.target_id, GroupRun.fire_at == fire.fire_at)
                .order_by(GroupRun.started_at).limit(1)
            )  # fmt: skip
        if fire.run_id is not None:
            return session.get(Run, fire.run_id)  # type: ignore[no-any-return]
        return session.scalar(  # type: ignore[no-any-return]
            select(Run).where(Run.orchestration_id == fire.target_id, Run.started_at >= fire.claimed_at,
                              Run.dry_run.is_(False)).order_by(Run.started_at).limit(1)
        )  # fmt: skip

    # --- a fire's run, on a worker thread -------------------------------------------------------------------------

    def _execute(self, job: _Job) -> None:
        target = job.target
        try:
            if job.takeover is not None:
                # The compare-and-set now, as the job starts: of several schedulers, the one that gets it resumes.
                if not take_over(self.ctx, job.takeover, self.instance_id, job.run_id):
                    self.say(f"{self._who(target, job.fire_at)}: taken over by another scheduler a moment ago")
                    return
                self.say(f"{self._who(target, job.fire_at)}: taking over from "
                         f"{job.takeover.claimed_by or 'a stopped scheduler'}"
                         + (f", resuming run {job.run_id}" if job.run_id else ", starting its run"))  # fmt: skip
            if self.stop.is_set():
                # Claimed but not started when the scheduler was asked to stop: the next scheduler starts it.
                self._end(target, job.fire_id, job.fire_at, STOPPED, "the scheduler stopped before its run started",
                          job.run_id)  # fmt: skip
                return
            value: str | None = None
            if job.check_freshness:
                assert target.when_changed is not None
                try:
                    value = current_value(self.ctx, target.kind, target.id, target.when_changed)
                except OfframpError as exc:
                    self._end(target, job.fire_id, job.fire_at, "failed", _freshness_error(exc), None)
                    return
                if not changed(job.previous_value, value):
                    self._end(target, job.fire_id, job.fire_at, SKIPPED, NO_NEW_DATA, None)
                    return
            elif job.store_value:
                # A resumed run was checked when it first started; the value now is what it sends up to.
                assert target.when_changed is not None
                try:
                    value = current_value(self.ctx, target.kind, target.id, target.when_changed)
                except OfframpError:
                    log.debug("freshness query of a resumed fire failed", exc_info=True)
                    job.store_value = False
            status, reason, run_id = self._run(job)
            if (job.check_freshness or job.store_value) and status in SUCCESSFUL:
                store_freshness(self.ctx, target, value)
            self._end(target, job.fire_id, job.fire_at, status, reason, run_id)
        except Exception as exc:  # noqa: BLE001 - the fire records why; the loop goes on
            log.debug("fire of %s %s failed", target.kind, target.name, exc_info=True)
            try:
                self._end(target, job.fire_id, job.fire_at, "failed", _unexpected(exc), job.run_id)
            except Exception:  # noqa: BLE001 - the store is unreachable: the next pass takes the fire over
                log.debug("recording the fire failed", exc_info=True)
                self.say(f"{self._who(target, job.fire_at)}: its outcome could not be recorded "
                         f"({type(exc).__name__}); the next pass records it")  # fmt: skip
        finally:
            with self._lock:
                self._busy.pop(target.key, None)

    def _started(self, job: _Job, run_id: str) -> None:
        """The fire's run has an id: the fire shows running with it (once)."""
        if job.reported:
            return
        job.reported = True
        with self._lock:
            self._busy[job.target.key] = run_id
        set_fire(self.ctx, job.fire_id, RUNNING, run_id=run_id, instance=self.instance_id)
        verb = "resumed" if job.resume else "running"
        kind = "group run" if job.target.kind == GROUP else "run"
        self.say(f"{self._who(job.target, job.fire_at)}: {verb} as {kind} {run_id}")

    def _run(self, job: _Job) -> tuple[str, str | None, str | None]:
        target = job.target
        if target.kind == GROUP:
            return self._run_group(job)
        request = RunRequest(workspace=target.workspace, orchestration=target.name, resume=job.resume,
                             actor=SCHEDULER_ACTOR)  # fmt: skip

        def progress(summary: RunSummary) -> None:
            self._started(job, summary.run_id)

        try:
            summary = run_orchestration(self.ctx, request, progress=progress, stop=self.stop)
        except RunInProgressError as exc:
            return SKIPPED, overlap(getattr(exc, "run_id", None) or "another process"), None
        except OfframpError as exc:
            return "failed", _with_hint(exc.message, exc.hint), job.run_id
        error = _with_hint(summary.error, summary.hint) if summary.status == "failed" else summary.error
        return summary.status, error, summary.run_id

    def _run_group(self, job: _Job) -> tuple[str, str | None, str | None]:
        target = job.target
        # A new group run gets its id from here, so that the fire names it as soon as it starts.
        group_run_id = job.run_id or uuid.uuid4().hex
        request = GroupRunRequest(workspace=target.workspace, group=target.name, resume=job.resume,
                                  actor=SCHEDULER_ACTOR, fire_at=job.fire_at, group_run_id=group_run_id)  # fmt: skip

        def progress(_member: str, _summary: RunSummary) -> None:
            self._started(job, group_run_id)

        try:
            summary = run_group(self.ctx, request, stop=self.stop, progress=progress)
        except GroupRunInProgressError as exc:
            return SKIPPED, overlap(getattr(exc, "group_run_id", None) or "another process"), None
        except OfframpError as exc:
            return "failed", _with_hint(exc.message, exc.hint), job.run_id
        error = _with_hint(summary.error, summary.hint) if summary.status == "failed" else summary.error
        return summary.status, error, summary.group_run_id

    # --- recording --------------------------------------------------------------------------------------------

    def _end(
        self, target: Target, fire_id: int, fire_at: datetime, status: str, reason: str | None, run_id: str | None,
        *, ran: bool = True,
    ) -> None:  # fmt: skip
        set_fire(self.ctx, fire_id, status, reason=reason, run_id=run_id, instance=self.instance_id)
        with self._lock:
            self.results.append(
                FireResult(target.kind, target.name, target.workspace, fire_at, status, reason, run_id, ran)
            )
        said = status + (f" ({reason})" if reason else "") + (f", run {run_id}" if run_id else "")
        self.say(f"{self._who(target, fire_at)}: {said}")

    @staticmethod
    def _who(target: Target, fire_at: datetime | None = None) -> str:
        where = "" if target.workspace == "production" else f" in {target.workspace}"
        at = "" if fire_at is None else f" fire {_iso(fire_at)}"
        return f"{target.kind} {target.name}{where}{at}"


__all__ = ["DEFAULT_POLL_SECONDS", "DEFAULT_WORKERS", "FireResult", "Scheduler"]
