"""The run of one orchestration: query, prepare, batch, send, record (DESIGN.md, "The path of one run").

The main thread reads the source and prepares rows; batches go to a small pool of sender threads; results come
back to the main thread, which alone records them, one ledger transaction per settled batch (a checkpoint: a batch
is recorded as sent only after the vendor accepted it), written in order by one ledger thread. Every row read ends
in the ledger as sent, rejected, failed or skipped, so the counts add up even when the run stops early: events read
but not sent when it stops are recorded as failed with reason ``not_sent``, and ``--resume`` sends them.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
from sqlalchemy import select
from sqlalchemy.orm import Session

from offramp.core.alerts.dispatch import after_run
from offramp.core.config import PluginSettings
from offramp.core.destination_api import EventColumns, PreparedBatch, PreparedEvent, Preparer, RejectedEvent, Sender
from offramp.core.errors import ConfigError, ObjectNotFoundError, OfframpError, StateError
from offramp.core.hints import offramp_command
from offramp.core.orchestration_options import OrchestrationOptions, split_options
from offramp.core.plugin_api import DestinationContext, DestinationHooks
from offramp.core.plugin_types import DestinationCapabilities
from offramp.core.runner import inflight, ledger, repeats
from offramp.core.runner.fencing import Lease
from offramp.core.runner.ledger import Entry, SettledBatch, Warned
from offramp.core.runner.lifecycle import (
    RESUMABLE,
    Heartbeat,
    expire_lapsed,
    finish_run,
    get_run,
    reopen_run,
    start_run,
)
from offramp.core.runner.prefetch import Prefetch
from offramp.core.runner.sending import BatchResult, RetryBudget, RetryPolicy, TokenBucket, deliver
from offramp.core.runner.suggestions import suggest_columns
from offramp.core.runner.types import (
    ALREADY_DELIVERED,
    NOT_FAILED_IN_REPLAYED_RUN,
    UNKNOWN_PAST_DEDUP_WINDOW,
    RunRequest,
    RunStatus,
    RunSummary,
    reasons_by_outcome,
)
from offramp.core.services import audit
from offramp.core.services.config_snapshot import is_production
from offramp.core.services.context import Context
from offramp.core.services.orchestrations import get_orchestration
from offramp.core.services.plugin_context import context_of, shared_options
from offramp.core.services.workspaces import get_workspace
from offramp.core.sources import SourceQueryError, check_read_only_query, open_source
from offramp.core.state.models import Orchestration, OrchestrationGroup, Run, Workspace

log = logging.getLogger(__name__)

# Requests in flight. Measured with tests/benchmarks/bench_run.py (200k rows, emulator in its own process): 1.00x,
# 1.07x, 1.10x, 1.11x rows/s at 1, 2, 4, 8: preparation, not sending, bounds a run on 2 cores; 4 keeps most of it.
DEFAULT_CONCURRENCY = 4  # bounded by the destination type's capabilities.max_in_flight
MIN_REJECT_SAMPLE = 1000  # rows read before --max-reject-rate may stop a run while it goes on (its end: any size)
MAX_LABELS = 20  # distinct labels kept per rejection reason (RejectedEvent.label)
LABEL_LENGTH = 64
SAMPLE_EVENTS = 5  # events in the dry run's sample request body
NOT_SENT = "not_sent"

Progress = Callable[[RunSummary], None]
_NO_KEYS: pa.Array = pa.array([], pa.string())


@dataclass
class _Unwritten:
    """What the main thread recorded since it last handed the ledger writer a write (one transaction)."""

    entries: list[Entry] = field(default_factory=list)
    settles: list[int] = field(default_factory=list)
    warned: list[Warned] = field(default_factory=list)
    batches: list[SettledBatch] = field(default_factory=list)


@dataclass
class _State:
    """What the main thread knows while the run goes on."""

    summary: RunSummary
    started: float
    batch_number: int = 0
    stop_reason: tuple[RunStatus, str, str | None] | None = None  # (status, error, hint)
    guarded: bool = False  # a guardrail stopped the run: the query needs fixing, so no resume hint
    # Event ids read from the ledger are its keys (ledger.key), as string arrays: prepared events are compared by
    # ledger.keys(event_ids), a column at a time (pyarrow.compute.is_in), never one event at a time.
    settled_before: pa.Array = field(default_factory=lambda: _NO_KEYS)  # resume: events the run already settled
    skip: pa.Array = field(default_factory=lambda: _NO_KEYS)  # mode new / replay
    skip_reason: str | None = None
    only: pa.Array | None = None  # replay: the only events to send
    stored_error: str | None = None  # what the store keeps when the error may quote warehouse values
    writer: ledger.Writer | None = None  # set while the run executes: the ledger is written on a thread of its own
    unwritten: _Unwritten = field(default_factory=_Unwritten)  # recorded, not yet handed to the writer (_flush)
    unknown: pa.Array = field(default_factory=lambda: _NO_KEYS)  # not sent again: outcome unknown (inflight.plan)
    lease: Lease | None = None  # this process's hold on the run: fencing (offramp.core.runner.fencing)
    max_reject_rate: float | None = None  # the request's, else the orchestration's stored guardrail
    reject_rate_named: str = "--max-reject-rate"  # how the error names it: the option given, or the stored one
    fail_on_empty: bool = False  # the request's or the stored one
    actor: str = ""  # who started the run (the audit trail)
    test_traffic: bool = False  # a real run whose events carry a test code: recorded in its report


@dataclass(frozen=True)
class RunPlan:
    """What a run is about, read once from the store before anything is written.

    Args:
        orchestration_id: The orchestration's row id (its runs and ledgers are keyed by it).
        orchestration: Its name.
        workspace: Its workspace's name.
        source: The source reference (``duckdb:PATH``, a URL, ``env:VAR``).
        sql: The query.
        options: The options every destination shares (mode, timezone, guardrails of the source).
        context: What the destination's hooks are handed: settings, this run's run options, the credential handle.
        capabilities: The destination type's limits (requests per second, in flight, the deduplication window).
        hooks: The destination type's checked hooks.
        credential: The credential's name.
        credential_status: Its status (``needs_reauth`` refuses a real run).
        credential_status_reason: Why, when the vendor said.
        overrides: This run's overrides of the run options (``RunRequest.options``), validated.
        columns: The destination type's column contract (suggestions for unused columns).
        sandbox: Whether the workspace is a sandbox (every workspace but production): its real runs must be test
            traffic.
        test_code: The value of the type's ``test_traffic_option`` in the context's options (None: live traffic):
            this run's override, else the orchestration's option, else (in a sandbox) the sandbox's test code.
        credential_workspace: The credential's workspace: production's, when a sandbox shares its credential.
    """

    orchestration_id: int
    orchestration: str
    workspace: str
    source: str
    sql: str
    options: OrchestrationOptions
    context: DestinationContext
    capabilities: DestinationCapabilities
    hooks: DestinationHooks
    credential: str
    credential_status: str
    credential_status_reason: str | None
    overrides: dict[str, Any]
    columns: tuple[str, ...] = ()
    sandbox: bool = False
    test_code: Any = None
    credential_workspace: str | None = None


def _overrides(request: RunRequest, run_options: type[PluginSettings], subject: str) -> dict[str, Any]:
    """``request.options``, checked strictly against the destination type's run options (every error at once)."""
    overrides = dict(request.options)
    own = run_options.model_fields
    unknown = sorted(key for key in overrides if key not in own)
    if unknown:
        valid = ", ".join(sorted(own)) or "none"
        raise ConfigError(
            f"unknown run option{'s' if len(unknown) > 1 else ''} {', '.join(unknown)} for {subject} "
            f"(valid options: {valid})",
            hint="see the destination type's run options: "
            + offramp_command("orchestrations", "show", request.orchestration, workspace=request.workspace),
        )
    split_options(overrides, run_options, subject, strict=True)  # the values, every bad one at once
    return overrides


def _plan(ctx: Context, request: RunRequest) -> RunPlan:
    with ctx.store.read_session() as session:
        workspace = get_workspace(session, request.workspace)
        if workspace.deleted_at is not None:
            # Its row stays (renamed NAME~deleted-ID) only for its runs: they are read, never added to.
            name = workspace.name.split("~", 1)[0]
            raise StateError(
                f"sandbox {name!r} was deleted; its runs are kept as history, and nothing was run",
                hint="read them with "
                + offramp_command("runs", "list", workspace=workspace.name)
                + "; run in a new sandbox made with "
                + offramp_command("sandboxes", "create", name),
            )
        row = _orchestration_or_group_hint(session, workspace, request.orchestration)
        destination = row.destination
        kind = ctx.registry.destination_type(destination.type)
        subject = f"orchestration {row.name!r} ({destination.type})"
        option = kind.capabilities.test_traffic_option
        sandbox = not is_production(workspace)
        if sandbox and option is None and not request.dry_run:
            # Refused before the overrides are checked: `--test-event-code` given for a type that has no such option
            # is the sandbox's refusal (nothing can make it test traffic), not an unknown option.
            _refuse_untestable(destination.type, workspace.name, row.name)
        overrides = _overrides(request, kind.run_options, subject)
        stored = dict(row.options)
        options = {**stored, **overrides}
        test_code: str | None = None
        if option is not None:
            # A code is the run's, else the orchestration's, else (in a sandbox) the sandbox's; blank is none, and
            # what is sent is stripped (TikTok would not match " TEST1 " to its Test Events code).
            test_code = _code(options.get(option))
            if test_code is None and sandbox:
                test_code = _code(workspace.test_event_code)
            if test_code is not None:
                options[option] = test_code  # reaches the destination as an override would (the request body)
            else:
                options.pop(option, None)  # a blank stored or given code is not sent
        context = context_of(ctx, destination, options=options, subject=subject, dry_run=request.dry_run)
        credential = destination.credential
        return RunPlan(
            orchestration_id=row.id,
            orchestration=row.name,
            workspace=workspace.name,
            source=row.source,
            sql=row.sql,
            options=shared_options(stored, kind.run_options, subject),
            context=context,
            capabilities=kind.capabilities,
            hooks=ctx.registry.destination_hooks(destination.type),
            credential=credential.name,
            credential_status=credential.status,
            credential_status_reason=credential.status_reason,
            overrides=overrides,
            columns=tuple(kind.columns),
            sandbox=sandbox,
            test_code=test_code,
            credential_workspace=credential.workspace.name,
        )


def _orchestration_or_group_hint(session: Session, workspace: Workspace, name: str) -> Orchestration:
    """The orchestration ``name``; when there is none but a group of that name, the error says how to run the group
    (``offramp run nightly`` for a group ``nightly``)."""
    try:
        return get_orchestration(session, workspace, name)
    except ObjectNotFoundError:
        group = session.scalar(
            select(OrchestrationGroup.id).where(
                OrchestrationGroup.workspace_id == workspace.id, OrchestrationGroup.name == name
            )
        )
        if group is None:
            raise
        raise ObjectNotFoundError(
            f"{name!r} is an orchestration group in workspace {workspace.name!r}, not an orchestration",
            hint="run the group with " + offramp_command("groups", "run", name, workspace=workspace.name),
        ) from None


def _code(value: Any) -> str | None:
    """A test code as sent: stripped; None when there is none (None, or blank after stripping)."""
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def _refuse_untestable(kind: str, ws: str, name: str) -> None:
    """A sandbox's real run of a destination type that cannot keep test traffic apart: always refused."""
    dry = offramp_command("run", name, "--dry-run", workspace=ws)
    raise ConfigError(
        f"destination type {kind} cannot keep test traffic apart from real traffic, so sandbox {ws!r} can only "
        f"dry-run orchestration {name!r}; nothing was run",
        hint=f"preview it with: {dry}; it sends once promoted to production",
    )


def _refuse_live_traffic(plan: RunPlan, request: RunRequest) -> None:
    """A sandbox's real run must be test traffic (DestinationCapabilities.test_traffic_option): refused otherwise,
    before anything is read or recorded."""
    ws, name, kind = plan.workspace, plan.orchestration, plan.context.destination_type
    if not plan.sandbox or request.dry_run or plan.test_code is not None:
        return
    dry = offramp_command("run", name, "--dry-run", workspace=ws)
    option = plan.capabilities.test_traffic_option
    if option is None:
        _refuse_untestable(kind, ws, name)
    if option == "test_event_code":  # the option `offramp run` sets itself
        this_run = offramp_command("run", name, "--test-event-code", "CODE", workspace=ws)
    else:
        this_run = offramp_command("orchestrations", "update", name, "--option", f"{option}=CODE", workspace=ws)
    raise ConfigError(
        f"sandbox {ws!r} has no {option} for orchestration {name!r} ({kind}): every send from a sandbox carries "
        "one, so that the vendor shows its events in its test view (TikTok: Test Events) and never attributes "
        "them; nothing was run",
        hint=f"set the sandbox's: {offramp_command('sandboxes', 'update', ws, '--test-event-code', 'CODE')}; or "
        f"give one: {this_run}; or preview with: {dry}",
    )


def _resumable(
    ctx: Context, orchestration_id: int, name: str, resend_unknown: bool = False, workspace: str | None = None
) -> str:
    with ctx.store.session() as session:
        runs = list(
            session.scalars(select(Run).where(Run.orchestration_id == orchestration_id).order_by(Run.started_at.desc()))
        )
        expire_lapsed(session, runs)
        for run in runs:
            if run.dry_run:
                continue
            if run.status in RESUMABLE or (resend_unknown and run.unknown and run.status != "running"):
                return run.id  # with --resend-unknown, also a finished run that held unknown events back
            break
    raise StateError(
        f"orchestration {name!r} has no cancelled, interrupted or failed run to resume",
        hint="start a new run: " + offramp_command("run", name, workspace=workspace),
    )


def _replayed(ctx: Context, request: RunRequest, orchestration_id: int) -> tuple[str, pa.Array]:
    """The run ``--replay-failed`` names (its full id) and the ledger keys of its failed events.

    Checked before this run is started, so that a refused replay writes nothing (no run left running, holding the
    orchestration's lease).
    """
    assert request.replay_failed is not None
    name, ws = request.orchestration, request.workspace
    with ctx.store.session() as session:
        replayed = get_run(session, request.replay_failed, get_workspace(session, request.workspace))
        # Another orchestration's event ids mean nothing to this query; a run whose orchestration was deleted counts
        # as this one's when the names match (the orchestration was removed and added again).
        ours = replayed.orchestration_id == orchestration_id or (
            replayed.orchestration_id is None and replayed.orchestration_name == name
        )
        if not ours:
            raise ConfigError(
                f"run {replayed.id} is a run of orchestration {replayed.orchestration_name!r}, not of {name!r}",
                hint="replay it with its own orchestration: "
                + offramp_command("run", replayed.orchestration_name, "--replay-failed", replayed.id, workspace=ws),
            )
        if replayed.dry_run:
            raise ConfigError(
                f"run {replayed.id} was a dry run: nothing in it was sent, so nothing failed at the vendor",
                hint="send the events with: " + offramp_command("run", name, workspace=ws),
            )
        return replayed.id, ledger.event_keys(session, [replayed.id], ("failed",))


def run_orchestration(
    ctx: Context, request: RunRequest, *, progress: Progress | None = None, stop: threading.Event | None = None
) -> RunSummary:
    """Run an orchestration to the end (or until ``stop`` is set) and return its summary."""
    stop = stop or threading.Event()
    ws = request.workspace
    if request.resume and request.dry_run:
        # A dry pass would record its would-be sends in the real run being resumed: the run would then say succeeded,
        # with every event sent, and nothing left for a real resume to deliver.
        raise ConfigError(
            "--resume cannot be a dry run: it continues a real run, and what it records is what was delivered",
            hint="preview what the query prepares with: "
            + offramp_command("run", request.orchestration, "--dry-run", workspace=ws)
            + "; then continue the run with: "
            + offramp_command("run", request.orchestration, "--resume", workspace=ws),
        )
    plan = _plan(ctx, request)
    _refuse_live_traffic(plan, request)
    check_read_only_query(plan.sql)
    if not request.dry_run and plan.credential_status == "needs_reauth":
        # Refused before anything is read or recorded: otherwise the run would query the source only to record
        # every row as not sent. A dry run makes no call, so it goes on.
        raise StateError(
            f"credential {plan.credential!r} of destination {plan.context.destination!r} needs authorizing again "
            f"({plan.credential_status_reason or 'refused by the vendor'}); nothing was run",
            hint="re-authorize with: "
            + offramp_command("credentials", "authorize", plan.credential, workspace=plan.credential_workspace)
            + "; then send what an earlier run left with: "
            + offramp_command("run", request.orchestration, "--resume", workspace=ws),
        )
    state = _start(ctx, request, plan)
    execution = RunExecution(ctx, request, plan, state, stop, progress)
    try:
        with Heartbeat(ctx, state.summary.run_id, lease=state.lease):
            execution.run()
    except SourceQueryError as exc:
        shown = offramp_command("orchestrations", "show", request.orchestration, workspace=ws)
        hint = f"fix the orchestration's SQL ({shown}), then run again"
        state.stop_reason = ("failed", exc.message, hint)
        # The engine's message may quote a warehouse value (a failed cast of an email): the user sees it whole,
        # the store keeps only its kind and line.
        kind = exc.engine_message.split(":", 1)[0].strip() or "error"
        where = f" at line {exc.line}" if exc.line else ""
        state.stored_error = (
            f"the query failed ({kind}{where}); the engine's message is not stored, run again to see it"
        )
    except OfframpError as exc:
        state.stop_reason = ("failed", exc.message, exc.hint)
    except BaseException as exc:  # noqa: BLE001 - record the run's end, then let it propagate
        # The exception's text may quote SQL parameters or warehouse values (an email in a failed INSERT): the store
        # keeps only its type. The user sees it whole as it propagates, and with its traceback under --debug.
        if isinstance(exc, KeyboardInterrupt):
            error = "interrupted (Ctrl-C) at once, without waiting for the batches in flight"
            hint = None
        else:
            error = f"the run stopped on an unexpected {type(exc).__name__} (its message is not stored)"
            hint = "run again with --debug to see the error and its traceback: " + offramp_command(
                "--debug", "run", request.orchestration, workspace=ws
            )
        state.stop_reason = ("failed", error, hint)
        ended = _finish(ctx, state, request)
        if not isinstance(exc, KeyboardInterrupt) and not (state.lease is not None and state.lease.lost.is_set()):
            after_run(ctx, ended)  # a crash is a failure to alert on too (Ctrl-C is not); never raises
        raise
    summary = _finish(ctx, state, request)
    if not (state.lease is not None and state.lease.lost.is_set()):
        # The run's own end, however it was started (CLI, group, scheduler); a process that lost its lease leaves
        # the alerts to the one that took the run over. Never raises, never changes the run's status.
        after_run(ctx, summary)
    return summary


def _start(ctx: Context, request: RunRequest, plan: RunPlan) -> _State:
    """Start the run (or reopen the one ``--resume`` continues) and read what it must skip or hold back."""
    mode = plan.options.mode
    summary = RunSummary("", request.orchestration, "running", workspace=request.workspace, dry_run=request.dry_run)
    state = _State(summary, time.monotonic())
    state.actor = request.actor or ctx.actor
    stored_rate = plan.options.max_reject_rate
    state.max_reject_rate = request.max_reject_rate if request.max_reject_rate is not None else stored_rate
    if request.max_reject_rate is None:
        state.reject_rate_named = "the orchestration's max_reject_rate"
    state.fail_on_empty = request.fail_on_empty or plan.options.fail_on_empty
    state.test_traffic = plan.test_code is not None and not request.dry_run
    replayed_id: str | None = None
    if request.replay_failed:
        replayed_id, state.only = _replayed(ctx, request, plan.orchestration_id)
        state.skip_reason = NOT_FAILED_IN_REPLAYED_RUN
    if request.resume:
        run_id = _resumable(
            ctx, plan.orchestration_id, request.orchestration, request.resend_unknown, request.workspace
        )
        statuses = (*RESUMABLE, "succeeded", "partially_failed") if request.resend_unknown else RESUMABLE
        state.lease = Lease(
            run_id, reopen_run(ctx, run_id, statuses, request.workspace)
        )  # a takeover fences the previous holder out
        with ctx.store.session() as session:
            ledger.forget(session, run_id, "failed")  # not_sent and not_prepared rows included: sent again now
            if request.resend_unknown:
                ledger.forget(session, run_id, "unknown")
            state.settled_before = ledger.event_keys(session, [run_id], ("sent", "rejected", "skipped", "unknown"))
    else:
        stored = {"limit": request.limit, "replay_failed": replayed_id, "options": plan.overrides}
        values = {"mode": mode, "dry_run": request.dry_run, "options": stored, "report": {"actor": state.actor},
                  "group_run_id": request.group_run_id}  # fmt: skip
        run_id, _ = start_run(ctx, request.workspace, request.orchestration, values)
        state.lease = Lease(run_id, 1)
    state.summary.run_id = run_id
    with ctx.store.session() as session:
        details: dict[str, Any] = {"orchestration": request.orchestration, "dry_run": request.dry_run}
        if request.resume:
            details["resume"] = True
        if replayed_id is not None:
            details["replay_failed"] = replayed_id
        audit.record(session, state.actor, "start", "run", run_id, request.workspace, details)
    if state.only is None and mode == "new":
        with ctx.store.read_session() as session:
            state.skip = ledger.event_keys(
                session, ledger.earlier_runs(session, plan.orchestration_id, run_id), ("sent",)
            )
            state.skip_reason = ALREADY_DELIVERED
    if not request.dry_run:
        # Events a killed run had in flight: resent within the vendor's deduplication window, held back after it.
        window = inflight.dedup_window(plan.capabilities)
        with ctx.store.session() as session:
            new = mode == "new" and state.only is None
            earlier = ledger.earlier_runs(session, plan.orchestration_id, run_id) if new else []
            state.unknown, said = inflight.plan(
                session, run_id, resumed=request.resume, earlier=earlier, settled=state.settled_before,
                delivered=state.skip, window=window, resend=request.resend_unknown,
            )  # fmt: skip
        if said:
            log.warning(said)  # before anything is sent
    return state


def _concurrency(request: RunRequest, capabilities: DestinationCapabilities) -> int:
    """Requests in flight: the request's (or the default), never more than the destination type allows."""
    wanted = request.concurrency or DEFAULT_CONCURRENCY
    limit = max(1, capabilities.max_in_flight)
    if request.concurrency is not None and wanted > limit:
        log.warning(
            "--concurrency %d is more than this destination type takes at once; running with %d requests in flight",
            wanted,
            limit,
        )
    return min(wanted, limit)


def _stopped_by(
    what: str, error: BaseException, orchestration: str, workspace: str | None = None
) -> tuple[RunStatus, str, str | None]:
    """The run's end when ``what`` (the sender, the preparer) raised ``error``: our errors' message and hint, a
    foreign error's type only (its message may quote a row or a request, PII included)."""
    if isinstance(error, OfframpError):
        return "failed", error.message, error.hint
    return (
        "failed",
        f"{what} stopped the run with an unexpected {type(error).__name__} (its message is not stored)",
        f"run again with --debug to see it ({offramp_command('--debug', 'run', orchestration, workspace=workspace)}), "
        "and report it to the destination plugin's authors",
    )


class RunExecution:
    """One pass of a run, from the first row read to the last result recorded.

    It owns the destination's preparer and sender, the pool of sender threads, the ledger writer and the live
    summary. :meth:`run` reads top to bottom: read a record batch, prepare it, screen and record what is not sent,
    batch the rest, submit full batches, record finished ones; at the end send what is left, wait for what is in
    flight, and account for every row read (rows a preparer never gave back are failed ``not_prepared``).
    """

    def __init__(
        self,
        ctx: Context,
        request: RunRequest,
        plan: RunPlan,
        state: _State,
        stop: threading.Event,
        progress: Progress | None,
    ) -> None:
        self.ctx = ctx
        self.request = request
        self.plan = plan
        self.state = state
        self.stop = stop
        self.progress = progress
        self.halt = threading.Event()  # set by a terminal answer or a guardrail: senders stop, the run fails
        self.concurrency = _concurrency(request, plan.capabilities)
        rate = plan.capabilities.requests_per_second
        self.bucket = _bucket_of(plan.workspace, plan.credential, rate, self.concurrency)
        self.budget = RetryBudget(max(100, self.concurrency * 25))
        lease = state.lease
        self.either = _Either(stop, self.halt, *([lease.lost] if lease else []))  # a lost lease stops the run, too
        # Check the lease, record the request, send: what a killed run had in flight is known (inflight).
        self.gate = (
            inflight.RequestLog(ctx.store, lease, ledger.keys_of).open if lease and not request.dry_run else None
        )
        self.in_flight: dict[Future[BatchResult], EventColumns] = {}
        self.outgoing: list[EventColumns] = []  # prepared, kept, not yet a full batch
        self.outgoing_events = 0
        self.prepared_rows = 0  # rows the preparer gave back, as events or rejections

    def run(self) -> None:
        """The pass: read, prepare, send, record; every row read ends in the ledger."""
        plan, request = self.plan, self.request
        with ExitStack() as reading:
            # The query starts first: its engine sorts or scans (outside the GIL) while the destination's preparer
            # and sender open, and then the next batch is fetched while this one is prepared (runner.prefetch).
            source = reading.enter_context(open_source(plan.source, plan.options))
            batches = reading.enter_context(Prefetch(source.batches(plan.sql, request.batch_rows, request.limit)))
            self._run(batches)

    def _run(self, batches: Iterable[Any]) -> None:
        state, request, plan = self.state, self.request, self.plan
        preparer = plan.hooks.open_preparer(plan.context)
        try:
            sender = plan.hooks.open_sender(plan.context)
        except BaseException:
            preparer.close()
            raise
        state.writer = ledger.Writer(
            self.ctx.store, state.summary.run_id, lease=state.lease, orchestration=request.orchestration,
            workspace=request.workspace,
        )  # fmt: skip
        seen = repeats.SeenIndex()  # the ids prepared so far, on disk: an event is sent whole or not at all
        try:
            with ThreadPoolExecutor(max_workers=self.concurrency, thread_name_prefix="send") as pool:
                try:
                    self._read_prepare_send(batches, preparer, sender, seen, pool)
                except BaseException:
                    self.halt.set()  # the senders stop at once: what they hold comes back unsent
                    raise
        finally:
            seen.close()  # first: a failed ledger write below must not leave the run's ids on disk
            try:
                self._account_for_the_rest()
            finally:
                state.summary.unknown_columns = list(preparer.unknown_columns)
                state.summary.column_suggestions = suggest_columns(state.summary.unknown_columns, plan.columns)
                preparer.close()
                sender.close()
                try:
                    _flush(state)
                finally:
                    writer, state.writer = state.writer, None
                    writer.close()  # everything recorded is in the store before the run's counts are read from it
        if self.stop.is_set() and state.stop_reason is None:
            state.stop_reason = ("cancelled", "stopped on request", None)
        if state.fail_on_empty and state.summary.queried == 0 and state.stop_reason is None:
            shown = offramp_command("orchestrations", "show", request.orchestration, workspace=request.workspace)
            state.stop_reason = (
                "failed",
                "the query returned no rows (fail_on_empty)",
                f"check the query and its source ({shown})",
            )

    def _read_prepare_send(
        self,
        batches: Iterable[Any],
        preparer: Preparer,
        sender: Sender,
        seen: repeats.SeenIndex,
        pool: ThreadPoolExecutor,
    ) -> None:
        state = self.state
        for batch in batches:
            state.summary.queried += batch.num_rows
            if not self._take(preparer.prepare, batch, seen, sender, pool):
                break
            self._collect(block=False)
            self._guard()
            if self.either.is_set():
                break
        if not self.halt.is_set():
            self._take(lambda _: preparer.finish(), None, seen, sender, pool)
        if self.outgoing and not self.either.is_set():
            self._submit(EventColumns.concat(self.outgoing), sender, pool)
            self.outgoing.clear()
            self.outgoing_events = 0
        while self.in_flight:
            self._collect(block=True)

    def _take(
        self,
        prepare: Callable[[Any], PreparedBatch],
        batch: Any,
        seen: repeats.SeenIndex,
        sender: Sender,
        pool: ThreadPoolExecutor,
    ) -> bool:
        """Prepare ``batch``, record what is not sent, queue the rest; False when the preparer raised (the run
        stops, and :meth:`_account_for_the_rest` records its rows as not prepared)."""
        state = self.state
        try:
            prepared = prepare(batch)
        except Exception as exc:  # noqa: BLE001 - a preparer's error stops the run, its rows accounted for
            if state.stop_reason is None:
                state.stop_reason = _stopped_by("the preparer", exc, self.request.orchestration, self.request.workspace)
            self.halt.set()
            return False
        self.prepared_rows += prepared.rows
        # Columns from here on: objects (a preparer that makes them) once, and no object per event after that.
        objects, invalid = repeats.split_unstorable(prepared.events)
        columns = PreparedBatch(objects, columns=prepared.columns).all_columns()
        columns, rejected = repeats.screen(seen, columns, invalid + prepared.all_rejected())  # before anything else
        _record_rejections(state, rejected, columns)
        columns = _kept(state, columns)
        if len(columns):
            self.outgoing.append(columns)
            self.outgoing_events += len(columns)
        size = sender.max_batch_size
        if self.outgoing_events >= size:
            pending = EventColumns.concat(self.outgoing)
            full = len(pending) // size
            for number in range(full):
                self._submit(pending.slice(number * size, size), sender, pool)
            rest = pending.slice(full * size, len(pending) - full * size)
            self.outgoing = [rest] if len(rest) else []
            self.outgoing_events = len(rest)
        _flush(state)  # what this batch settled (rejections, skips, a dry run's batches): one ledger transaction
        return True

    def _submit(self, events: EventColumns, sender: Sender, pool: ThreadPoolExecutor) -> None:
        state = self.state
        state.batch_number += 1
        if self.request.dry_run:
            _dry_run_batch(state, sender, events)
            return
        self.budget.grow()
        future = pool.submit(
            deliver, sender, state.batch_number, events, bucket=self.bucket, budget=self.budget,
            stop=self.either, policy=RetryPolicy(), gate=self.gate,
        )  # fmt: skip
        self.in_flight[future] = events
        # Twice the requests in flight, at most, are queued: a stop (Ctrl-C, a guardrail) then finds little already
        # handed to the senders, and a slow vendor holds few bodies here.
        while len(self.in_flight) >= self.concurrency * 2:
            self._collect(block=True)

    def _collect(self, *, block: bool) -> None:
        """Record the batches that finished (all of them when ``block`` waits for at least one)."""
        state = self.state
        if self.in_flight:
            done, _ = wait(list(self.in_flight), timeout=None if block else 0, return_when=FIRST_COMPLETED)
            for future in done:
                self._settle(self.in_flight.pop(future), future.result())
            _flush(state)  # the requests that finished, answers and entries: one checkpoint
        state.summary.seconds = time.monotonic() - state.started
        if self.progress is not None:
            self.progress(state.summary)

    def _settle(self, events: EventColumns, result: BatchResult) -> None:
        state = self.state
        # The sender answers with the events' own ids, so full ids map here; the ledger keeps their keys.
        request_id = result.request_ids[-1] if result.request_ids else None
        batches: list[SettledBatch] = []
        if result.sent:
            whole = len(result.sent) == len(events) and not result.failed and not result.unsent
            sent = events if whole else events.filter(_among(events.event_ids, result.sent))
            keys = ledger.keys(sent.event_ids)
            batch = SettledBatch("sent", keys, sent.rows, attempts=result.attempts, batch=result.number,
                                 request_id=request_id)  # fmt: skip
            batches.append(batch)
        entries: list[Entry] = []
        if result.failed:
            refused = events.filter(_among(events.event_ids, [item.event_id for item in result.failed]))
            rows = dict(zip(refused.event_ids.to_pylist(), refused.rows.to_pylist(), strict=True))
            entries += [
                Entry(item.event_id, "failed", rows[item.event_id], vendor_code=(number := _numeric(item.code)),
                      reason_code=None if number is not None else item.code, message=item.message,
                      attempts=result.attempts, batch=result.number, request_id=request_id)
                for item in result.failed
            ]  # fmt: skip
        entries += [_not_sent(event) for event in result.unsent]
        _record(state, entries, result.request_nos, _warned(events), batches)
        sample = state.summary.request_ids
        sample.extend(result.request_ids[: max(0, 20 - len(sample))])
        if result.terminal is not None and state.stop_reason is None:
            state.stop_reason = _stopped_by(
                "the sender", result.terminal, self.request.orchestration, self.request.workspace
            )
            self.halt.set()

    def _guard(self) -> None:
        """max_reject_rate during the run: stop a run whose query is broken before it sends garbage for an hour
        (after a minimum sample; the end of every run checks it whatever its size, :func:`_end_guardrails`)."""
        state = self.state
        summary, limit = state.summary, state.max_reject_rate
        if limit is None or summary.queried < MIN_REJECT_SAMPLE or state.stop_reason is not None:
            return
        rate = summary.rejected / summary.queried
        if rate > limit:
            state.stop_reason = (
                "failed",
                f"{rate:.1%} of the {summary.queried} rows read so far were rejected, over "
                f"{state.reject_rate_named} {limit:.1%}"
                + _likely_cause(summary.reason_counts, summary.column_suggestions),
                _rejects_hint(summary),
            )
            state.guarded = True
            self.halt.set()

    def _account_for_the_rest(self) -> None:
        """Record what this pass read but never sent: events still queued (``not_sent``), and rows the preparer
        did not give back (it raised, or held them when the run stopped) under one made-up key (``not_prepared``)."""
        state = self.state
        for future, events in list(self.in_flight.items()):  # done: the pool waited for its threads
            del self.in_flight[future]
            error = future.exception()
            if error is None:
                self._settle(events, future.result())
            else:
                _record(state, [_not_sent(event) for event in events], warned=_warned(events))
        if self.outgoing:
            left = EventColumns.concat(self.outgoing)
            _record(state, [_not_sent(event) for event in left], warned=_warned(left))
            self.outgoing.clear()
            self.outgoing_events = 0
        held = state.summary.queried - self.prepared_rows
        if held > 0:
            message = "the run stopped before these rows were prepared; resume the run to prepare and send them"
            _record(state, [Entry(ledger.not_prepared_key(), "failed", held, reason_code=ledger.NOT_PREPARED,
                                  message=message)])  # fmt: skip


_BUCKETS: dict[tuple[str, str, float], TokenBucket] = {}
_BUCKETS_LOCK = threading.Lock()


def _bucket_of(workspace: str, credential: str, rate: float, burst: int) -> TokenBucket:
    """The rate limiter of a credential, shared by every run in this process that uses it (a vendor's limits are
    per account, not per run): ``rate`` is the destination type's ``capabilities.requests_per_second``."""
    with _BUCKETS_LOCK:
        key = (workspace, credential, rate)
        if key not in _BUCKETS:
            _BUCKETS[key] = TokenBucket(rate, burst)
        return _BUCKETS[key]


class _Either(threading.Event):
    """Set when either of two events is: the user's stop or the run's own halt."""

    def __init__(self, *events: threading.Event) -> None:
        super().__init__()
        self._events = events

    def is_set(self) -> bool:
        return any(event.is_set() for event in self._events)

    def wait(self, timeout: float | None = None) -> bool:
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            if self.is_set():
                return True
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                return False
            self._events[0].wait(min(0.05, left) if left is not None else 0.05)


def _among(values: pa.Array, chosen: list[str] | pa.Array) -> pa.Array:
    """A boolean mask: which of ``values`` ``chosen`` holds."""
    value_set = chosen if isinstance(chosen, pa.Array) else pa.array(chosen, pa.string())
    return pc.fill_null(pc.is_in(values.cast(pa.string()), value_set=value_set), False)


def _kept(state: _State, events: EventColumns) -> EventColumns:
    """The events to send: not already settled by the run being resumed, not skipped by mode or replay (recorded
    here, a batch at a time), not held back as unknown. Compared a column at a time."""
    if state.only is None and not len(state.settled_before) and not len(state.skip) and not len(state.unknown):
        return events  # a plain run: no id to compare, no key to compute
    if not len(events):
        return events
    keys = ledger.keys(events.event_ids)
    keep = pa.repeat(True, len(events))
    if len(state.settled_before):
        keep = pc.invert(_among(keys, state.settled_before))
    if len(state.unknown):
        unknown = pc.and_(_among(keys, state.unknown), keep)
        if pc.any(unknown).as_py():
            held = events.filter(unknown)
            reason, message = UNKNOWN_PAST_DEDUP_WINDOW, inflight.UNKNOWN_MESSAGE
            entries = [Entry(event.event_id, "unknown", event.rows, reason_code=reason, message=message)
                       for event in held]  # fmt: skip
            _record(state, entries, warned=_warned(held))
            keep = pc.and_(keep, pc.invert(unknown))
    skipped = pa.repeat(False, len(events))
    if state.only is not None:
        skipped = pc.invert(_among(keys, state.only))
    if len(state.skip):
        skipped = pc.or_(skipped, _among(keys, state.skip))
    skipped = pc.and_(skipped, keep)
    if pc.any(skipped).as_py():
        passed = events.filter(skipped)
        batch = SettledBatch("skipped", keys.filter(skipped), passed.rows, reason_code=state.skip_reason)
        _record(state, [], warned=_warned(passed), batches=[batch])
        keep = pc.and_(keep, pc.invert(skipped))
    return events.filter(keep)


def _record_rejections(state: _State, rejected: list[RejectedEvent], events: EventColumns) -> None:
    """Record the rejections (not those a resumed run settled before) and count the prepared events' warnings."""
    kept = rejected
    if len(state.settled_before) and rejected:
        stored = pa.array([ledger.entry_key(item.event_id, item.reason) for item in rejected], pa.string())
        settled = _among(stored, state.settled_before).to_pylist()
        kept = [item for item, before in zip(rejected, settled, strict=True) if not before]
    entries = [Entry(item.event_id, "rejected", item.rows, reason_code=item.reason, message=item.detail)
               for item in kept]  # fmt: skip
    labels = state.summary.labels
    for item in rejected:
        label = item.label
        if not label:
            continue
        # A category value (an unmapped event name), never an identifier; a few distinct ones, cut short.
        shown_labels = labels.setdefault(item.reason, [])
        shown = str(label)[:LABEL_LENGTH]
        if shown not in shown_labels and len(shown_labels) < MAX_LABELS:
            shown_labels.append(shown)
    warnings = state.summary.warnings
    for name, counts in events.warnings.items():
        total = int(pc.sum(counts).as_py() or 0)
        if total:
            warnings[name] = warnings.get(name, 0) + total
    _record(state, entries)


def _warned(events: EventColumns | list[PreparedEvent]) -> list[Warned]:
    """The warnings of ``events`` for the ledger writer (names only): only the events that have some."""
    if not isinstance(events, EventColumns):
        return [(event.event_id, tuple(event.warnings)) for event in events if event.warnings]
    names: dict[str, list[str]] = {}
    for name, counts in events.warnings.items():
        mask = pc.fill_null(pc.greater(counts, 0), False)
        if pc.any(mask).as_py():
            for event_id in events.event_ids.filter(mask).to_pylist():
                names.setdefault(event_id, []).append(name)
    return [(event_id, tuple(found)) for event_id, found in names.items()]


def _record(
    state: _State,
    entries: Iterable[Entry],
    settles: list[int] | None = None,
    warned: list[Warned] | None = None,
    batches: list[SettledBatch] | None = None,
) -> None:
    items = list(entries)
    if not items and not settles and not batches and not warned:
        return
    assert state.writer is not None, "entries are recorded only while the run executes"
    # settles: the requests these entries answer (inflight); warned: their events' warnings, in the same checkpoint.
    # Handed to the writer by _flush: the main thread's records of one step go in one transaction.
    unwritten = state.unwritten
    unwritten.entries += items
    unwritten.settles += settles or ()
    unwritten.warned += warned or ()
    unwritten.batches += batches or ()
    summary = state.summary
    not_prepared = ledger.not_prepared_key()
    for batch in batches or ():
        rows = ledger.total_rows(batch)
        setattr(summary, batch.outcome, getattr(summary, batch.outcome) + rows)
        summary.events[batch.outcome] += len(batch.keys)
        summary.events["prepared"] += len(batch.keys)
        if batch.outcome == "skipped" and batch.reason_code:
            summary.reason_counts[batch.reason_code] = summary.reason_counts.get(batch.reason_code, 0) + rows
    for entry in items:
        setattr(summary, entry.outcome, getattr(summary, entry.outcome) + entry.rows)
        if entry.event_id != not_prepared:  # rows never prepared are no event
            summary.events[entry.outcome] += 1
            summary.events["prepared"] += 1
        if entry.outcome in ("rejected", "skipped", "unknown") and entry.reason_code:
            summary.reason_counts[entry.reason_code] = summary.reason_counts.get(entry.reason_code, 0) + entry.rows
        if entry.outcome == "failed":
            code = str(entry.vendor_code) if entry.vendor_code is not None else (entry.reason_code or "unknown")
            summary.vendor_codes[code] = summary.vendor_codes.get(code, 0) + entry.rows


def _flush(state: _State) -> None:
    """Hand the ledger writer what was recorded since the last flush, as one write (one transaction)."""
    unwritten = state.unwritten
    if not (unwritten.entries or unwritten.settles or unwritten.warned or unwritten.batches):
        return
    assert state.writer is not None, "entries are recorded only while the run executes"
    state.unwritten = _Unwritten()
    state.writer.write(unwritten.entries, unwritten.settles, unwritten.warned, unwritten.batches)


def _numeric(code: str) -> int | None:
    """A vendor's code as a number when it is one in ASCII digits ("²".isdigit() is true, but int() refuses it)."""
    return int(code) if code.isascii() and code.isdigit() else None


def _not_sent(event: PreparedEvent) -> Entry:
    message = "the run stopped before this event was sent; resume the run to send it"
    return Entry(event.event_id, "failed", event.rows, reason_code=NOT_SENT, message=message)


def _dry_run_batch(state: _State, sender: Sender, events: EventColumns) -> None:
    """A dry run settles a batch without the network, keeping the first request bodies as they would go."""
    if len(state.summary.sample_requests) < 2:
        state.summary.sample_requests.append(sender.preview(events[:SAMPLE_EVENTS]).decode())
    batch = SettledBatch("sent", ledger.keys(events.event_ids), events.rows, message="dry run: not sent",
                         batch=state.batch_number)  # fmt: skip
    _record(state, [], warned=_warned(events), batches=[batch])


def _finish(ctx: Context, state: _State, request: RunRequest) -> RunSummary:
    summary = state.summary
    summary.seconds = time.monotonic() - state.started
    if state.stop_reason is not None:
        summary.status, summary.error, summary.hint = state.stop_reason
    else:
        summary.status = "partially_failed" if summary.failed else "succeeded"
        ended = _end_guardrails(ctx, state)
        if ended is not None:
            summary.status, summary.error, summary.hint = ended
    # A dry run cannot be resumed, and a run a guardrail stopped is run again once its query is fixed.
    resumable = not summary.dry_run and not state.guarded
    if resumable and (summary.status == "cancelled" or (summary.status == "failed" and summary.failed)):
        resume = offramp_command("run", request.orchestration, "--resume", workspace=request.workspace)
        if not summary.hint:
            summary.hint = f"send what is left with: {resume}"
        elif "--resume" not in summary.hint:  # a hint that already says how to resume is not said twice
            summary.hint = f"{summary.hint}; then send what is left with: {resume}"
    summary = finish_run(ctx, summary, lease=state.lease, orchestration=request.orchestration,
                         stored_error=state.stored_error)  # fmt: skip
    with ctx.store.session() as session:
        if state.test_traffic and not (state.lease is not None and state.lease.lost.is_set()):
            # Its events went to the vendor's test view (`sandboxes validate` looks for such a run of a change).
            run = session.get(Run, summary.run_id)
            if run is not None:
                run.report = {**dict(run.report or {}), "test_traffic": True}
        rows = {
            name: getattr(summary, name) for name in ("queried", "sent", "rejected", "failed", "skipped", "unknown")
        }
        details = {"status": summary.status, "dry_run": summary.dry_run, "rows": rows, "events": dict(summary.events)}
        audit.record(session, state.actor, "finish", "run", summary.run_id, request.workspace, details)
    return summary


def _likely_cause(reasons: dict[str, int], suggestions: dict[str, str]) -> str:
    """``; most likely cause: missing_identifiers (50 rows); column emial was not used (did you mean email?)``."""
    rejected = reasons_by_outcome(reasons).get("rejected", {})
    said = ""
    if rejected:
        code, rows = max(rejected.items(), key=lambda item: (item[1], item[0]))
        said = f"; most likely cause: {code} ({rows} row{'s' if rows != 1 else ''})"
    for column, contract in suggestions.items():
        said += f"; column {column} was not used (did you mean {contract}?)"
    return said


def _rejects_hint(summary: RunSummary) -> str:
    shown = offramp_command("runs", "show", summary.run_id, "--rejects", workspace=summary.workspace)
    return f"see the rejected rows and why with: {shown}; fix the query, then run again"


def _end_guardrails(ctx: Context, state: _State) -> tuple[RunStatus, str, str | None] | None:
    """The guardrails checked when a run ends, whatever its size, on the ledger's counts (earlier passes of a
    resumed run included); a dry run is checked too, so that it fails where the real run would.

    A run fails when every row read was rejected, or when it sent nothing while rejecting something. Rows skipped as
    already delivered (mode ``new``, a replay) count as delivered: a rerun that finds only what an earlier run sent,
    and the rows that were always rejected, succeeds. Then ``max_reject_rate``: rejected rows over rows read.
    """
    summary = state.summary
    with ctx.store.read_session() as session:
        totals = ledger.totals(session, summary.run_id)
    counts = totals["counts"]
    queried, rejected = sum(counts.values()), counts["rejected"]
    if not rejected:
        return None
    cause = _likely_cause(totals["reasons"], summary.column_suggestions)
    sent = "would be sent" if summary.dry_run else "was sent"
    if rejected == queried:
        error = f"all {queried} row{'s' if queried != 1 else ''} read were rejected, so nothing {sent}{cause}"
    elif counts["sent"] == 0 and counts["skipped"] == 0:
        error = f"nothing {sent}: {rejected} of the {queried} rows read were rejected{cause}"
    elif state.max_reject_rate is not None and rejected / queried > state.max_reject_rate:
        error = (
            f"{rejected / queried:.1%} of the {queried} rows read were rejected, over {state.reject_rate_named} "
            f"{state.max_reject_rate:.1%}{cause}"
        )
    else:
        return None
    return "failed", error, _rejects_hint(summary)


__all__ = ["DEFAULT_CONCURRENCY", "RunExecution", "RunPlan", "run_orchestration"]
