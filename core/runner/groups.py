"""Group runs: a group's members run in order, one after the other, as one unit (``offramp groups run``).

A group run is recorded in ``group_runs`` (:class:`~offramp.core.state.models.GroupRun`): its plan and progress
(``members``, one item per member in order), its status and timings. It holds a lease as a run does: a heartbeat
from this process, ``lease_generation`` raised by every takeover (``--resume``), so a group run whose process died
(kill -9, a lost machine) shows as ``interrupted`` once its lease lapsed, and may be resumed.

How it ends:

- ``succeeded``: every member succeeded; ``partially_failed``: some member partially failed (that does not stop the
  group), none failed;
- ``failed``: a member failed, or was refused before it started (its reason is the error): the group stops there,
  and the members after it are recorded ``skipped`` with the reason ``member ORCH failed (run RUN_ID)``;
- ``cancelled``: stopped (Ctrl-C, SIGTERM: ``stop`` set): the member running finishes its batches in flight and ends
  cancelled; the later members stay ``pending``.

``resume=True`` continues the group's last cancelled, interrupted or failed group run (or ``group_run_id`` exactly):
members that succeeded or partially failed are kept, the member that stopped is resumed (``RunRequest(resume=True)``:
what the vendor acknowledged is not sent again), the others run.

The engine is imported when a group runs: readers of group runs (``offramp runs list --group``) import this module
for its names and must not load the sources and their drivers.
"""

from __future__ import annotations

import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from offramp.core.errors import ConfigError, OfframpError, StateError
from offramp.core.hints import offramp_command
from offramp.core.runner.lifecycle import RESUMABLE, RunInProgressError, lease_seconds, shown_status
from offramp.core.runner.types import RunRequest, RunSummary
from offramp.core.services import audit
from offramp.core.services.context import Context
from offramp.core.services.groups import get_group
from offramp.core.services.workspaces import get_workspace
from offramp.core.state.models import GroupRun, OrchestrationGroup, Run, utcnow

# A member that ended so: kept by a resume, never run again.
DONE = ("succeeded", "partially_failed")
GROUP_INTERRUPTED_ERROR = "the process running it stopped without finishing (killed, or its machine went down)"


class GroupRunInProgressError(StateError):
    """Another live group run of the group holds its lease (``group_run_id``: that group run)."""

    group_run_id: str


@dataclass(frozen=True)
class GroupRunRequest:
    """One run of a group.

    Args:
        workspace: The group's workspace.
        group: Its name.
        dry_run: Every member runs as a dry run (no network).
        resume: Continue the group's last cancelled, interrupted or failed group run (``group_run_id``: that one).
        options: Run option overrides given to every member run (``{"test_event_code": "X"}``).
        actor: Who started it (the OS user, ``--actor``, ``scheduler``); recorded on the group run and member runs.
        fire_at: The scheduled instant this group run is the fire of (None: started by hand).
        group_run_id: With ``resume``, the group run to take over exactly; without, the id the new group run gets
            (a scheduler that records the id before it starts).
    """

    workspace: str
    group: str
    dry_run: bool = False
    resume: bool = False
    options: Mapping[str, Any] = field(default_factory=dict)
    actor: str | None = None
    fire_at: datetime | None = None
    group_run_id: str | None = None


@dataclass
class MemberOutcome:
    """One member of a group run: its run (None when it never started), status (``pending``, a run status or
    ``skipped``) and reason (the run's error, or why it was skipped)."""

    orchestration: str
    run_id: str | None
    status: str
    reason: str | None = None


@dataclass
class GroupRunSummary:
    group_run_id: str
    group: str
    workspace: str
    status: str
    members: list[MemberOutcome]
    seconds: float = 0.0
    error: str | None = None
    hint: str | None = None
    dry_run: bool = False


def group_lapsed(group_run: GroupRun, now: datetime | None = None) -> bool:
    """Whether ``group_run`` is running on a lease that lapsed (the same lease as runs: lifecycle.lease_seconds)."""
    if group_run.status != "running":
        return False
    beat = group_run.heartbeat_at or group_run.started_at
    return (now or utcnow()) - beat > timedelta(seconds=lease_seconds())


def shown_group_status(group_run: GroupRun, now: datetime | None = None) -> tuple[str, str | None, datetime | None]:
    """(status, error, finished_at) as readers show it: a lapsed group run is interrupted (computed, not written)."""
    if group_lapsed(group_run, now):
        return "interrupted", GROUP_INTERRUPTED_ERROR, group_run.heartbeat_at or group_run.started_at
    return group_run.status, group_run.error, group_run.finished_at


def _expire(group_runs: list[GroupRun]) -> None:
    now = utcnow()
    for group_run in group_runs:
        if group_lapsed(group_run, now):
            group_run.status, group_run.error, group_run.finished_at = shown_group_status(group_run, now)


def _owner() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def resume_command(group: str, workspace: str) -> str:
    return offramp_command("groups", "run", group, "--resume", workspace=workspace)


@dataclass
class _GroupLease:
    """This process's hold on a group run; ``lost`` once another process took it over (or marked it interrupted)."""

    group_run_id: str
    generation: int
    lost: threading.Event = field(default_factory=threading.Event)

    def write(self, ctx: Context, **values: Any) -> bool:
        """Write ``values`` to the group run (refreshing its heartbeat) while this process holds it."""
        if self.lost.is_set():
            return False
        with ctx.store.session() as session:
            result = session.execute(
                update(GroupRun)
                .where(
                    GroupRun.id == self.group_run_id,
                    GroupRun.lease_generation == self.generation,
                    GroupRun.status == "running",
                )
                .values(heartbeat_at=utcnow(), **values)
                .execution_options(synchronize_session=False)
            )
            if getattr(result, "rowcount", 1) == 0:
                self.lost.set()
                return False
        return True


class _Heartbeat:
    """Refreshes a group run's lease from a background thread until stopped (or the lease is lost)."""

    def __init__(self, ctx: Context, lease: _GroupLease) -> None:
        self._ctx, self._lease = ctx, lease
        self._every = max(0.5, lease_seconds() / 5)
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._beat, name=f"group-heartbeat-{lease.group_run_id[:8]}", daemon=True
        )

    def __enter__(self) -> _Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _beat(self) -> None:
        while not self._stop.wait(self._every):
            try:
                if not self._lease.write(self._ctx):
                    return
            except Exception:  # noqa: BLE001 - a missed beat is retried; the group run must not die of it
                continue


def _locked_group(session: Session, workspace_id: int, name: str) -> OrchestrationGroup | None:
    return session.scalar(
        select(OrchestrationGroup)
        .where(OrchestrationGroup.workspace_id == workspace_id, OrchestrationGroup.name == name)
        .with_for_update()
    )


def _start(ctx: Context, request: GroupRunRequest, actor: str) -> tuple[str, int, list[dict[str, Any]]]:
    """Start a group run, or take over the one a resume continues, under the group row's lock; (id, lease
    generation, members)."""
    with ctx.store.engine.connect() as connection:
        connection = connection.execution_options(sqlite_immediate=True)
        with Session(bind=connection, expire_on_commit=False) as session, session.begin():
            workspace = get_workspace(session, request.workspace)
            group = _locked_group(session, workspace.id, request.group)
            if group is None:
                get_group(session, workspace, request.group)  # raises, naming the groups that exist
                raise AssertionError("unreachable")
            live = list(
                session.scalars(select(GroupRun).where(GroupRun.group_id == group.id, GroupRun.status == "running"))
            )
            _expire(live)
            alive = [group_run for group_run in live if group_run.status == "running"]
            if alive:
                shown = offramp_command("runs", "show", alive[0].id, workspace=request.workspace)
                raise GroupRunInProgressError(
                    f"group {request.group!r} is already running as group run {alive[0].id} "
                    f"(process {alive[0].lease_owner})",
                    hint=f"wait for it to finish, or stop it; see it with: {shown}; a group run whose process died "
                    f"is released after {lease_seconds():.0f} s without a heartbeat",
                    group_run_id=alive[0].id,
                )
            if request.resume:
                return _take_over(session, request, group)
            members = [
                {"orchestration": member.orchestration.name, "orchestration_id": member.orchestration_id,
                 "run_id": None, "status": "pending", "reason": None}
                for member in group.members
            ]  # fmt: skip
            group_run = GroupRun(
                id=request.group_run_id or uuid.uuid4().hex,
                workspace_id=workspace.id,
                group_id=group.id,
                group_name=group.name,
                status="running",
                dry_run=request.dry_run,
                heartbeat_at=utcnow(),
                lease_owner=_owner(),
                lease_generation=1,
                actor=actor,
                fire_at=request.fire_at,
                members=members,
                options=dict(request.options),
            )
            session.add(group_run)
            return group_run.id, 1, members


def _take_over(
    session: Session, request: GroupRunRequest, group: OrchestrationGroup
) -> tuple[str, int, list[dict[str, Any]]]:
    if request.group_run_id is not None:
        target = session.get(GroupRun, request.group_run_id)
        if target is None or target.group_id != group.id:
            raise StateError(
                f"group {request.group!r} has no group run {request.group_run_id}",
                hint="see its group runs with: "
                + offramp_command("runs", "list", "--group", request.group, workspace=request.workspace),
            )
        _expire([target])
    else:
        query = select(GroupRun).where(GroupRun.group_id == group.id, GroupRun.dry_run.is_(False))
        target = session.scalar(query.order_by(GroupRun.started_at.desc(), GroupRun.id.desc()).limit(1))
    if target is None or target.status not in RESUMABLE:
        raise StateError(
            f"group {request.group!r} has no cancelled, interrupted or failed group run to resume",
            hint="start a new group run: "
            + offramp_command("groups", "run", request.group, workspace=request.workspace),
        )
    # A compare-and-set like lifecycle.reopen_run: of two processes resuming one group run, one wins; the raised
    # generation fences out a process that held it before (one that was only paused).
    result = session.execute(
        update(GroupRun)
        .where(GroupRun.id == target.id, GroupRun.status == target.status,
               GroupRun.lease_generation == target.lease_generation)
        .values(status="running", heartbeat_at=utcnow(), finished_at=None, error=None, lease_owner=_owner(),
                lease_generation=target.lease_generation + 1)
        .execution_options(synchronize_session=False)
    )  # fmt: skip
    if getattr(result, "rowcount", 1) == 0:
        raise GroupRunInProgressError(
            f"group run {target.id} was resumed by another process a moment ago",
            hint="wait for it to finish ("
            + offramp_command("runs", "show", target.id, workspace=request.workspace)
            + ")",
            group_run_id=target.id,
        )
    return target.id, target.lease_generation + 1, [dict(member) for member in target.members]


def _earlier_pass(ctx: Context, group_run_id: str, member: dict[str, Any]) -> str | None:
    """How the member's latest run in this group run stands, for a resume: ``resume`` (it stopped: cancelled,
    interrupted, failed, and is still its orchestration's latest real run, so resuming it sends only what is left),
    a DONE status (it was finished meanwhile, e.g. resumed by hand with ``offramp run --resume``), else None (run it
    afresh). Sets the member's ``run_id`` to that run."""
    with ctx.store.read_session() as session:
        query = select(Run).where(Run.group_run_id == group_run_id, Run.orchestration_id == member["orchestration_id"])
        mine = session.scalar(query.order_by(Run.started_at.desc()).limit(1))
        if mine is None or mine.dry_run:
            return None
        member["run_id"] = mine.id
        status = shown_status(mine)[0]
        if status in DONE:
            return status
        latest = session.scalar(
            select(Run.id)
            .where(Run.orchestration_id == member["orchestration_id"], Run.dry_run.is_(False))
            .order_by(Run.started_at.desc())
            .limit(1)
        )
        return "resume" if latest == mine.id and status in RESUMABLE else None


def _stored_error(ctx: Context, run_id: str) -> str | None:
    """The member run's error as the store keeps it (never a warehouse value the message may have quoted)."""
    with ctx.store.read_session() as session:
        return session.scalar(select(Run.error).where(Run.id == run_id))


def run_group(
    ctx: Context,
    request: GroupRunRequest,
    *,
    stop: threading.Event | None = None,
    progress: Callable[[str, RunSummary], None] | None = None,
) -> GroupRunSummary:
    """Run a group's members in order, one after the other, and return the group run's summary.

    Raises:
        GroupRunInProgressError: another group run of the group is alive.
        ConfigError, StateError: the group does not exist, or there is nothing to resume (nothing was recorded).
    """

    if request.resume and request.dry_run:
        raise ConfigError(
            "--resume cannot be a dry run: it continues a real group run",
            hint="preview the group with: "
            + offramp_command("groups", "run", request.group, "--dry-run", workspace=request.workspace),
        )
    stop = stop or threading.Event()
    started = time.monotonic()
    actor = request.actor or ctx.actor
    group_run_id, generation, members = _start(ctx, request, actor)
    lease = _GroupLease(group_run_id, generation)
    with ctx.store.session() as session:
        # Object type run, like a run's start: a group run changes no configuration.
        details = {"group": request.group, "dry_run": request.dry_run, "resume": request.resume}
        audit.record(session, actor, "start", "run", group_run_id, request.workspace, details)
    status, error, hint = "succeeded", None, None

    def save() -> bool:
        return lease.write(ctx, members=[dict(member) for member in members])

    try:
        with _Heartbeat(ctx, lease):
            for index, member in enumerate(members):
                name = str(member["orchestration"])
                if member["status"] in DONE:
                    continue
                if lease.lost.is_set():
                    break
                if stop.is_set():
                    status, error = "cancelled", f"stopped before member {name} started"
                    break
                earlier = _earlier_pass(ctx, group_run_id, member) if request.resume else None
                if earlier in DONE:
                    member.update(status=earlier, reason=None)
                    save()
                    continue
                resume = earlier == "resume"
                member.update(status="running", reason=None, **({} if resume else {"run_id": None}))
                save()

                def seen(summary: RunSummary, member: dict[str, Any] = member, name: str = name) -> None:
                    if summary.run_id and member["run_id"] != summary.run_id:
                        member["run_id"] = summary.run_id  # recorded as soon as known: `runs show` links it
                        save()
                    if progress is not None:
                        progress(name, summary)

                run_request = RunRequest(
                    workspace=request.workspace, orchestration=name, dry_run=request.dry_run,
                    options=dict(request.options), resume=resume, actor=actor, group_run_id=group_run_id,
                )  # fmt: skip
                try:
                    summary = _run_member(ctx, run_request, member, seen, stop)
                except OfframpError as exc:
                    # Refused before it started (needs a test code, needs re-authorizing, already running).
                    member.update(status="failed", reason=exc.message)
                    status, error, hint = "failed", f"member {name} failed: {exc.message}", exc.hint
                    _skip_after(members, index, name, None)
                    break
                member["run_id"] = summary.run_id
                member["status"] = summary.status
                member["reason"] = _stored_error(ctx, summary.run_id) if summary.error else None
                if summary.status == "cancelled":
                    status, error = "cancelled", f"stopped during member {name} (run {summary.run_id})"
                    break
                elif summary.status not in DONE:
                    status = "failed"
                    error = f"member {name} failed (run {summary.run_id}): {member['reason'] or summary.status}"
                    hint = summary.hint
                    _skip_after(members, index, name, summary.run_id)
                    break
                save()
        if status == "succeeded" and any(member["status"] == "partially_failed" for member in members):
            status = "partially_failed"
    except BaseException:
        # Ctrl-C twice, or an unexpected error: the member run recorded its own end; the group run stops resumable.
        _end(ctx, lease, "cancelled", "interrupted at once (Ctrl-C twice) or by an unexpected error", members)
        raise
    if lease.lost.is_set():
        error = "another process took the group run over (offramp groups run --resume) while this one was paused"
        return GroupRunSummary(
            group_run_id, request.group, request.workspace, "interrupted",
            [_outcome(member) for member in members], time.monotonic() - started, error, None, request.dry_run,
        )  # fmt: skip
    if status in ("cancelled", "failed") and not request.dry_run:
        hint = _with_resume(hint if status == "failed" else None, request, members)
    _end(ctx, lease, status, error, members)
    with ctx.store.session() as session:
        details = {"group": request.group, "status": status, "dry_run": request.dry_run}
        audit.record(session, actor, "finish", "run", group_run_id, request.workspace, details)
    _alerts(ctx, group_run_id, hint)
    return GroupRunSummary(
        group_run_id, request.group, request.workspace, status, [_outcome(member) for member in members],
        time.monotonic() - started, error, hint, request.dry_run,
    )  # fmt: skip


def _run_member(
    ctx: Context,
    run_request: RunRequest,
    member: dict[str, Any],
    seen: Callable[[RunSummary], None],
    stop: threading.Event,
) -> RunSummary:
    """Run (or resume) one member. A resumed group's stopped member run beat in the process that died with the
    group run, on a heartbeat of its own: its lease lapses up to a beat after the group's. Wait for that (at most
    one lease) rather than fail the group as if another process ran the member."""
    from offramp.core.runner.engine import run_orchestration  # the engine imports what this module imports

    deadline = time.monotonic() + lease_seconds() + 1.0
    while True:
        try:
            return run_orchestration(ctx, run_request, progress=seen, stop=stop)
        except RunInProgressError as exc:
            own = run_request.resume and getattr(exc, "run_id", None) == member.get("run_id")
            if not own or stop.is_set() or time.monotonic() > deadline:
                raise
            stop.wait(0.25)


def _with_resume(hint: str | None, request: GroupRunRequest, members: list[dict[str, Any]]) -> str:
    """The hint of a group run that stopped: the failed member's own (its fix), continued by the group's resume,
    which takes the place of the member's ``offramp run ORCH --resume`` (resumed in the group, it stays a member)."""
    group_resume = resume_command(request.group, request.workspace)
    if hint:
        for member in members:
            member_resume = offramp_command(
                "run", str(member["orchestration"]), "--resume", workspace=request.workspace
            )
            if member_resume in hint:
                return hint.replace(member_resume, group_resume)
        return f"{hint}; then continue the group with: {group_resume}"
    return f"continue the group with: {group_resume}"


def _skip_after(members: list[dict[str, Any]], index: int, name: str, run_id: str | None) -> None:
    reason = f"member {name} failed (run {run_id})" if run_id else f"member {name} failed before it started"
    for later in members[index + 1 :]:
        later.update(status="skipped", reason=reason, run_id=None)


def _end(ctx: Context, lease: _GroupLease, status: str, error: str | None, members: list[dict[str, Any]]) -> None:
    try:
        lease.write(ctx, status=status, error=error, finished_at=utcnow(), members=[dict(m) for m in members])
    except Exception:  # noqa: BLE001 - the store is gone: the lease lapses and readers show the group run interrupted
        return


def _alerts(ctx: Context, group_run_id: str, hint: str | None) -> None:
    from offramp.core.alerts.dispatch import after_group_run

    try:
        after_group_run(ctx, group_run_id, hint=hint)  # the group run's hint: its fix and the group's resume
    except Exception:  # noqa: BLE001 - it never raises by contract; a failed alert must not fail the group run
        return


def _outcome(member: dict[str, Any]) -> MemberOutcome:
    return MemberOutcome(
        str(member["orchestration"]), member.get("run_id"), str(member["status"]), member.get("reason")
    )


__all__ = [
    "DONE",
    "GROUP_INTERRUPTED_ERROR",
    "GroupRunInProgressError",
    "GroupRunRequest",
    "GroupRunSummary",
    "MemberOutcome",
    "group_lapsed",
    "resume_command",
    "run_group",
    "shown_group_status",
]
