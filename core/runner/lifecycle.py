"""A run's lifecycle: start, reopen (``--resume``), heartbeat, finish's lease check, expire; and finding a run.

One live run per orchestration at a time, kept alive by a heartbeat. A run holds a lease: its ``heartbeat_at`` is
refreshed every few seconds by the process running it. A run whose heartbeat is older than the lease (the process
was killed, even with SIGKILL, or its machine died) is *lapsed*: readers (``runs list``, ``runs show``) show it as
``interrupted`` without writing (:func:`shown_status`), and the next run or ``--resume`` of its orchestration marks
it so in the store (:func:`expire_lapsed`), so a dead run is never taken for a live one, and it can be resumed.

Services (``offramp.core.services.runs``) import this module at the top; the engine imports it, never the reverse.
"""

from __future__ import annotations

import os
import socket
import threading
import uuid
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from offramp.core.errors import ConfigError, ObjectNotFoundError, StateError
from offramp.core.hints import offramp_command
from offramp.core.runner import inflight, ledger
from offramp.core.runner.fencing import Lease
from offramp.core.runner.types import RunSummary
from offramp.core.services.context import Context
from offramp.core.services.orchestrations import get_orchestration
from offramp.core.services.workspaces import get_workspace
from offramp.core.state.models import Orchestration, Run, Workspace, utcnow

LEASE_ENV = "OFFRAMP_RUN_LEASE_SECONDS"
DEFAULT_LEASE_SECONDS = 30.0


def lease_seconds() -> float:
    """How long a run may go without a heartbeat before it counts as interrupted."""
    try:
        return max(1.0, float(os.environ.get(LEASE_ENV, DEFAULT_LEASE_SECONDS)))
    except ValueError:
        return DEFAULT_LEASE_SECONDS


INTERRUPTED_ERROR = "the process running it stopped without finishing (killed, or its machine went down)"


def lapsed(run: Run, now: datetime | None = None) -> bool:
    """Whether ``run`` is running on a lease that lapsed: its process stopped beating."""
    if run.status != "running":
        return False
    beat = run.heartbeat_at or run.started_at
    return (now or utcnow()) - beat > timedelta(seconds=lease_seconds())


def shown_status(run: Run, now: datetime | None = None) -> tuple[str, str | None, datetime | None]:
    """(status, error, finished_at) of ``run`` as readers show it: a lapsed run is interrupted (computed, not
    written)."""
    if lapsed(run, now):
        return "interrupted", INTERRUPTED_ERROR, run.heartbeat_at or run.started_at
    return run.status, run.error, run.finished_at


def expire_lapsed(session: Session, runs: list[Run]) -> None:
    """Mark running runs whose lease lapsed as interrupted, in the caller's (writing) transaction: only a run or a
    resume calls this, before it decides what to start; readers use :func:`shown_status`."""
    now = utcnow()
    for run in runs:
        if lapsed(run, now):
            run.status, run.error, run.finished_at = shown_status(run, now)


def get_run(session: Session, run_id: str, workspace: Workspace | None = None) -> Run:
    """A run by id (a unique prefix is enough), of ``workspace`` when given. Reads only: a lapsed run keeps its
    stored status (see :func:`shown_status`)."""
    prefix = run_id.strip().lower()
    if not prefix:
        raise ConfigError("a run id is required", hint="see the runs with: " + offramp_command("runs", "list"))
    query = select(Run).where(Run.id.startswith(prefix, autoescape=True))
    if workspace is not None:
        query = query.where(Run.workspace_id == workspace.id)
    matches = list(session.scalars(query.limit(2)))
    if len(matches) != 1:
        problem = "no run" if not matches else "more than one run"
        where = f" in workspace {workspace.name!r}" if workspace is not None else ""
        listing = offramp_command("runs", "list", workspace=workspace.name if workspace is not None else None)
        hint = "give more of the id" if matches else f"see the runs with: {listing}"
        raise ObjectNotFoundError(f"{problem} with id {run_id!r}{where}", hint=hint)
    return matches[0]


class RunInProgressError(StateError):
    """Another live run of the orchestration holds its lease (``run_id``: that run, when known)."""


def start_run(ctx: Context, workspace_name: str, orchestration: str, values: dict[str, Any]) -> tuple[str, int]:
    """Create a run (status running) under the orchestration's lock; (run id, orchestration id).

    ``values`` are extra columns of the run (mode, dry_run, options). Refuses while another run of the
    orchestration is alive; marks a lapsed one interrupted first.
    """
    with ctx.store.engine.connect() as connection:
        connection = connection.execution_options(sqlite_immediate=True)
        with Session(bind=connection, expire_on_commit=False) as session, session.begin():
            workspace = get_workspace(session, workspace_name)
            row = session.scalar(
                select(Orchestration)
                .where(Orchestration.workspace_id == workspace.id, Orchestration.name == orchestration)
                .with_for_update()
            )
            if row is None:
                get_orchestration(session, workspace, orchestration)  # raises, naming the ones that exist
                raise AssertionError("unreachable")
            live = list(session.scalars(select(Run).where(Run.orchestration_id == row.id, Run.status == "running")))
            expire_lapsed(session, live)
            alive = [run for run in live if run.status == "running"]
            if alive:
                raise RunInProgressError(
                    f"orchestration {orchestration!r} is already running as run {alive[0].id} "
                    f"(process {alive[0].lease_owner})",
                    hint="wait for it to finish, or stop it; a run whose process died is released after "
                    f"{lease_seconds():.0f} s without a heartbeat",
                    run_id=alive[0].id,
                )
            run = Run(
                id=values.pop("id", None) or uuid.uuid4().hex,
                workspace_id=workspace.id,
                orchestration_id=row.id,
                orchestration_name=row.name,
                status="running",
                heartbeat_at=utcnow(),
                lease_owner=f"{socket.gethostname()}:{os.getpid()}",
                lease_generation=1,
                **values,
            )
            session.add(run)
            return run.id, row.id


RESUMABLE = ("cancelled", "interrupted", "failed")


def reopen_run(ctx: Context, run_id: str, statuses: tuple[str, ...] = RESUMABLE, workspace: str | None = None) -> int:
    """Take a run in one of ``statuses`` back to running (``--resume``), with this process's lease.

    Returns the run's new lease generation: a takeover raises it, so the process that held the run before (one that
    was only paused) finds its lease lost at its next write or send (offramp.core.runner.fencing). Refused when
    another process resumed the run first.
    """
    with ctx.store.session() as session:
        result = session.execute(
            update(Run)
            .where(Run.id == run_id, Run.status.in_(statuses))
            .values(
                status="running",
                heartbeat_at=utcnow(),
                finished_at=None,
                error=None,
                lease_owner=f"{socket.gethostname()}:{os.getpid()}",
                lease_generation=Run.lease_generation + 1,
            )
            .execution_options(synchronize_session=False)
        )
        if getattr(result, "rowcount", 1) == 0:
            raise RunInProgressError(
                f"run {run_id} was resumed by another process a moment ago",
                hint="wait for it to finish (" + offramp_command("runs", "show", run_id, workspace=workspace) + ")",
            )
        generation = session.scalar(select(Run.lease_generation).where(Run.id == run_id))
        assert generation is not None
        return int(generation)


def finish_run(
    ctx: Context, summary: RunSummary, *, lease: Lease | None, orchestration: str, stored_error: str | None = None
) -> RunSummary:
    """Write a run's end: its status, counts from its ledger (earlier passes of a resumed run included) and report;
    ``summary`` gets the ledger's counts. ``stored_error`` replaces ``summary.error`` in the store when the error may
    quote warehouse values. A process that lost its lease writes nothing (``Lease.end``)."""
    with ctx.store.session() as session:
        if lease is not None and not lease.hold(session):
            return lease.end(summary, orchestration, ledger.totals(session, summary.run_id), summary.workspace)
        if not summary.dry_run:
            inflight.tidy(session, summary.run_id)  # requests of an earlier pass whose events are settled now
        totals = ledger.totals(session, summary.run_id)
        run = session.get(Run, summary.run_id)
        assert run is not None
        counts = totals["counts"]
        if counts["unknown"] and not summary.dry_run:
            inflight.report_unknown(summary, counts["unknown"], orchestration)
        run.status = summary.status
        run.finished_at = utcnow()
        run.queried = sum(counts.values())
        run.sent, run.rejected, run.failed, run.skipped = (counts[k] for k in ("sent", "rejected", "failed", "skipped"))
        run.unknown = summary.unknown = counts["unknown"]
        run.reason_counts = totals["reasons"]
        run.error = stored_error or summary.error
        labels = {reason: list(kept) for reason, kept in dict(run.report or {}).get("labels", {}).items()}
        for reason, kept in summary.labels.items():  # a resumed run keeps the labels its earlier passes saw
            merged = labels.setdefault(reason, [])
            merged.extend(label for label in kept if label not in merged)
            del merged[20:]
        summary.labels = labels
        summary.events = dict(totals["events"])
        run.report = {
            "actor": dict(run.report or {}).get("actor"),  # who started the run (kept from its start)
            "events": summary.events,
            "labels": labels,
            "column_suggestions": summary.column_suggestions,
            "vendor_codes": totals["vendor_codes"],
            "warnings": summary.warnings,
            "unknown_columns": summary.unknown_columns,
            "request_ids": summary.request_ids,
            "seconds": round(summary.seconds, 3),
            "hint": summary.hint,
            "sample_requests": summary.sample_requests,
        }
        # The ledger is the truth: a resumed run's counts include what earlier passes settled.
        summary.queried = run.queried
        summary.sent, summary.rejected, summary.failed, summary.skipped = (
            run.sent,
            run.rejected,
            run.failed,
            run.skipped,
        )
        summary.reason_counts, summary.vendor_codes = dict(run.reason_counts), dict(totals["vendor_codes"])
    return summary


class Heartbeat:
    """Refreshes a run's lease from a background thread until stopped.

    With a :class:`~offramp.core.runner.fencing.Lease`, a beat refreshes the lease only while this process still
    holds it; once another process took the run over, the lease is marked lost and the beating stops.
    """

    def __init__(self, ctx: Context, run_id: str, every: float | None = None, *, lease: Lease | None = None) -> None:
        self._ctx = ctx
        self._run_id = run_id
        self._lease = lease
        self._every = every if every is not None else max(0.5, lease_seconds() / 5)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name=f"heartbeat-{run_id[:8]}", daemon=True)

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _beat(self) -> None:
        while not self._stop.wait(self._every):
            try:
                with self._ctx.store.session() as session:
                    if self._lease is not None:
                        if not self._lease.hold(session):
                            return  # taken over: the run's threads see lease.lost and stop
                        continue
                    session.execute(update(Run).where(Run.id == self._run_id).values(heartbeat_at=utcnow()))
            except Exception:  # noqa: BLE001 - a missed beat is retried; the run itself must not die of it
                continue


__all__ = [
    "DEFAULT_LEASE_SECONDS",
    "INTERRUPTED_ERROR",
    "LEASE_ENV",
    "RESUMABLE",
    "Heartbeat",
    "RunInProgressError",
    "expire_lapsed",
    "finish_run",
    "get_run",
    "lapsed",
    "lease_seconds",
    "reopen_run",
    "shown_status",
    "start_run",
]
