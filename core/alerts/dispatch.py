"""After a run or a group run: decide its alert notices and deliver them.

Called by the runner at the end of every run of an orchestration (:func:`after_run`) and by the group runner at the
end of every group run (:func:`after_group_run`), however they were started (``offramp run``, ``offramp groups
run``, the scheduler), so alerts follow the runs themselves, not a command.

The decision and its record are one transaction: under the target's ``alert_states`` row lock the state is read,
:func:`~offramp.core.alerts.rules.decide` gives the new state and the notices, and the new state is stored with one
``pending`` delivery per notice per channel. Two processes finishing runs of one target at once thus never both
send the same change of state. Only then are the notices sent: every channel at once (a thread each), the channels
retrying with backoff, all within one deadline (:func:`deadline_seconds`, ``OFFRAMP_ALERT_DEADLINE_SECONDS``,
20 s by default), so that a slow channel holds the run's end back by that much at most. Each delivery is recorded
``delivered`` or ``failed``; one not finished by the deadline stays ``pending``.

A ``pending`` delivery whose process went away (it exited at the deadline, or died) is sent again from its stored
notice (the same notice id, so a receiver can drop a duplicate) by :func:`retry_pending`: called by the scheduler at
every loop, and here before the notices of a target's next run are decided. Each resend is one attempt; after
:data:`MAX_ATTEMPTS` in all, the delivery is ``failed``. :func:`stale_pending` lists those waiting (``offramp
status``).

Nothing here raises into the run: a notice that cannot be sent is recorded, logged as a warning, and the run's
status and exit code stay what they were.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from offramp.core.alerts.channels import Channel, Delivery, DeliveryPolicy
from offramp.core.alerts.notices import Notice, notice_from_json
from offramp.core.alerts.rules import COUNTED_STATUSES, AlertRules, AlertState, RunOutcome, decide
from offramp.core.errors import OfframpError
from offramp.core.orchestration_options import AlertOptions
from offramp.core.state.models import (
    AlertDelivery,
    AlertStateRow,
    Credential,
    Destination,
    GroupRun,
    Orchestration,
    OrchestrationGroup,
    RowOutcome,
    Run,
    Workspace,
    utcnow,
)

if TYPE_CHECKING:
    from offramp.core.runner.types import RunSummary
    from offramp.core.services.context import Context

log = logging.getLogger("offramp.core.alerts")

# A credential in one of these states cannot be used until someone authorizes it (again).
NEEDS_AUTHORIZING = ("needs_reauth", "needs_authorization")

DEADLINE_ENV = "OFFRAMP_ALERT_DEADLINE_SECONDS"
DEFAULT_DEADLINE_SECONDS = 20.0
# Attempts of one delivery in all (its first sending's, then one per resend of a pending one); then it is failed.
MAX_ATTEMPTS = 5


def deadline_seconds() -> float:
    """How long the end of a run waits for its notices to be delivered (``OFFRAMP_ALERT_DEADLINE_SECONDS``)."""
    raw = os.environ.get(DEADLINE_ENV)
    if raw is None:
        return DEFAULT_DEADLINE_SECONDS
    try:
        value = float(raw)
    except ValueError:
        value = float("nan")
    if not 0 < value < 3600:  # nan too
        log.warning("%s=%r is not a number of seconds (0-3600); using %g", DEADLINE_ENV, raw,
                    DEFAULT_DEADLINE_SECONDS)  # fmt: skip
        return DEFAULT_DEADLINE_SECONDS
    return value


def _request_seconds(deadline: float) -> float:
    return min(10.0, 2 * deadline)


def delivery_policy(deadline: float | None = None) -> DeliveryPolicy:
    """The channels' policy within the deadline: retries stop at it (a request started before it may end later)."""
    deadline = deadline_seconds() if deadline is None else deadline
    return DeliveryPolicy(
        attempts=MAX_ATTEMPTS, wait_initial=min(1.0, deadline / 8), wait_max=max(0.1, deadline / 4),
        total_seconds=deadline, request_seconds=_request_seconds(deadline),
    )  # fmt: skip


def stale_after(deadline: float | None = None) -> timedelta:
    """How old a ``pending`` delivery is when no process is sending it any more: the deadline, plus one request
    started just before it."""
    deadline = deadline_seconds() if deadline is None else deadline
    return timedelta(seconds=deadline + _request_seconds(deadline) + 1.0)


@dataclass(frozen=True)
class _Target:
    """What the alerts of one finished run are about: the target, its rules, its channels, the outcome."""

    kind: str  # orchestration | group
    id: int
    workspace_id: int
    options: AlertOptions
    outcome: RunOutcome


def after_run(ctx: Context, summary: RunSummary) -> None:
    """Decide and deliver the notices of a finished run of an orchestration (never raises)."""
    if summary.dry_run or summary.status not in COUNTED_STATUSES:
        return
    try:
        with ctx.store.read_session() as session:
            target = _run_target(session, summary)
        if target is not None:
            _decide_and_deliver(ctx, target)
    except Exception as exc:  # noqa: BLE001 - an alert never fails the run it reports on
        _warn(f"run {summary.run_id}", exc)


def after_group_run(ctx: Context, group_run_id: str, hint: str | None = None) -> None:
    """Decide and deliver the notices of a finished group run (never raises); ``hint``: the group run's own (its
    fix, and the command that resumes the group), which its notices carry."""
    try:
        with ctx.store.read_session() as session:
            target = _group_target(session, group_run_id, hint)
        if target is not None:
            _decide_and_deliver(ctx, target)
    except Exception as exc:  # noqa: BLE001 - an alert never fails the group run it reports on
        _warn(f"group run {group_run_id}", exc)


def _warn(what: str, exc: Exception) -> None:
    # An OfframpError's message is offramp's own (no secret); any other exception's text might quote anything.
    said = exc.message if isinstance(exc, OfframpError) else f"unexpected {type(exc).__name__}"
    log.warning("the alerts of %s were not sent: %s", what, said)


def _alert_options(raw: dict[str, Any] | None, subject: str) -> AlertOptions | None:
    """The ``alerts`` option of a target as stored, or None (none set, or no longer valid: said in the log)."""
    alerts = (raw or {}).get("alerts")
    if alerts is None:
        return None
    try:
        return AlertOptions.model_validate(alerts)
    except ValidationError:
        log.warning("the alert rules of %s are not valid any more; no alert was decided for its run", subject)
        return None


def rules_of(options: AlertOptions) -> AlertRules:
    """The pure rules of an ``alerts`` option (the same names)."""
    return AlertRules(
        on_failure=options.on_failure,
        on_partial_failure=options.on_partial_failure,
        on_recovery=options.on_recovery,
        reject_rate_above=options.reject_rate_above,
        runtime_above=options.runtime_above,
        row_count_drop_above=options.row_count_drop_above,
        on_needs_reauthorization=options.on_needs_reauthorization,
    )


def _needing_authorization(session: Session, orchestration_ids: list[int]) -> tuple[tuple[str, str], ...]:
    """The credentials of these orchestrations' destinations that need (re-)authorizing, as (name, the
    credential's own workspace: production's, for a sandbox sharing it)."""
    if not orchestration_ids:
        return ()
    query = (
        select(Credential.name, Workspace.name)
        .join(Workspace, Credential.workspace_id == Workspace.id)
        .join(Destination, Destination.credential_id == Credential.id)
        .join(Orchestration, Orchestration.destination_id == Destination.id)
        .where(Orchestration.id.in_(orchestration_ids), Credential.status.in_(NEEDS_AUTHORIZING))
        .distinct()
        .order_by(Credential.name)
    )
    return tuple((str(name), str(workspace)) for name, workspace in session.execute(query))


def _sandbox(workspace: Workspace | None) -> str | None:
    from offramp.core.services.config_snapshot import is_production

    return None if workspace is None or is_production(workspace) else workspace.name


def _failed_vendor_codes(session: Session, run_ids: list[str]) -> dict[str, int]:
    """The vendor's codes of the failed rows of these runs (code: rows), from the ledger."""
    if not run_ids:
        return {}
    query = select(RowOutcome.vendor_code, RowOutcome.rows).where(
        RowOutcome.run_id.in_(run_ids), RowOutcome.outcome == "failed", RowOutcome.vendor_code.is_not(None)
    )
    codes: dict[str, int] = {}
    for code, rows in session.execute(query):
        codes[str(code)] = codes.get(str(code), 0) + int(rows or 1)
    return codes


def _run_target(session: Session, summary: RunSummary) -> _Target | None:
    run = session.get(Run, summary.run_id)
    if run is None or run.orchestration_id is None:
        return None
    orchestration = session.get(Orchestration, run.orchestration_id)
    if orchestration is None:
        return None
    options = _alert_options(orchestration.options, f"orchestration {orchestration.name!r}")
    if options is None:
        return None
    workspace = session.get(Workspace, run.workspace_id)
    needing = _needing_authorization(session, [orchestration.id])
    vendor_codes = dict(summary.vendor_codes) or _failed_vendor_codes(session, [run.id])
    outcome = RunOutcome.from_summary(
        summary,
        workspace=workspace.name if workspace is not None else summary.workspace,
        credentials_needing_reauthorization=tuple(name for name, _ in needing),
        credential_workspaces=dict(needing),
        # The stored error, not the summary's: that one may quote a warehouse value (said to the user only).
        error=run.error,
        vendor_codes={code: rows for code, rows in vendor_codes.items() if code != "unknown"},
        sandbox=_sandbox(workspace),
    )
    return _Target("orchestration", orchestration.id, run.workspace_id, options, outcome)


def _run_seconds(run: Run) -> float:
    """How long a run ran: as its report says (every pass of a resumed run), else from its start to its end."""
    seconds = dict(run.report or {}).get("seconds")
    if isinstance(seconds, int | float) and not isinstance(seconds, bool):
        return float(seconds)
    if run.finished_at is None:
        return 0.0
    return max(0.0, (run.finished_at - run.started_at).total_seconds())


def _group_target(session: Session, group_run_id: str, hint: str | None) -> _Target | None:
    group_run = session.get(GroupRun, group_run_id)
    if group_run is None or group_run.dry_run or group_run.group_id is None:
        return None
    if group_run.status not in COUNTED_STATUSES:
        return None
    group = session.get(OrchestrationGroup, group_run.group_id)
    if group is None:
        return None
    options = _alert_options(group.options, f"group {group.name!r}")
    if options is None:
        return None
    members = list(group_run.members or [])
    run_ids = [str(m["run_id"]) for m in members if m.get("run_id")]
    runs = list(session.scalars(select(Run).where(Run.id.in_(run_ids)))) if run_ids else []
    counts = {name: sum(int(getattr(run, name) or 0) for run in runs)
              for name in ("queried", "sent", "rejected", "failed", "skipped", "unknown")}  # fmt: skip
    events: dict[str, int] = {}
    reasons: dict[str, int] = {}
    vendor_codes: dict[str, int] = {}
    for run in runs:
        report = dict(run.report or {})
        for name, value in dict(report.get("events") or {}).items():
            events[name] = events.get(name, 0) + int(value)
        for code, rows in dict(run.reason_counts or {}).items():
            reasons[code] = reasons.get(code, 0) + int(rows)
        for code, rows in dict(report.get("vendor_codes") or {}).items():
            if code != "unknown":
                vendor_codes[str(code)] = vendor_codes.get(str(code), 0) + int(rows)
    workspace = session.get(Workspace, group_run.workspace_id)
    orchestration_ids = [int(m["orchestration_id"]) for m in members if m.get("orchestration_id") is not None]
    needing = _needing_authorization(session, orchestration_ids)
    outcome = RunOutcome(
        workspace=workspace.name if workspace is not None else "",
        target=group.name,
        target_type="group",
        run_id=group_run.id,
        status=group_run.status,
        events=events,
        reason_counts=reasons,
        # The members' own durations: a group resumed a day later did not run for a day.
        seconds=sum(_run_seconds(run) for run in runs),
        hint=hint if hint is not None else _group_hint(members),
        credentials_needing_reauthorization=tuple(name for name, _ in needing),
        credential_workspaces=dict(needing),
        queried=counts["queried"],
        sent=counts["sent"],
        rejected=counts["rejected"],
        failed=counts["failed"],
        skipped=counts["skipped"],
        unknown=counts["unknown"],
        error=group_run.error,
        vendor_codes=vendor_codes,
        sandbox=_sandbox(workspace),
    )
    return _Target("group", group.id, group_run.workspace_id, options, outcome)


def _group_hint(members: list[dict[str, Any]]) -> str | None:
    """The first failed member, as the group run's hint when the group runner gave none."""
    for member in members:
        if member.get("status") == "failed":
            reason = member.get("reason")
            said = f"member {member.get('orchestration')} failed"
            return f"{said}: {reason}" if reason else said
    return None


def _locked_state(session: Session, kind: str, target_id: int) -> AlertStateRow:
    """The target's ``alert_states`` row, locked for the rest of the transaction (made when it has none)."""
    query = select(AlertStateRow).where(AlertStateRow.target_kind == kind, AlertStateRow.target_id == target_id)
    row = session.scalar(query.with_for_update())
    if row is not None:
        return row
    try:
        with session.begin_nested():
            session.add(AlertStateRow(target_kind=kind, target_id=target_id, state={}))
    except IntegrityError:
        pass  # another process made it at the same moment: its row is locked below
    row = session.scalar(query.with_for_update().execution_options(populate_existing=True))
    assert row is not None
    return row


@dataclass(frozen=True)
class _Send:
    """One pending delivery to make: its row, the channel (None: it could not be opened), the notice."""

    delivery_id: int
    channel: Channel | None
    notice: Notice
    error: str | None = None
    attempts_before: int = 0
    retry: bool = False
    channel_key: str = ""  # the channel's workspace and name: one thread per channel


def _decide_and_deliver(ctx: Context, target: _Target) -> None:
    from offramp.core.services.alert_channels import record_pending

    deadline = deadline_seconds()
    policy = delivery_policy(deadline)
    # What an earlier run of this target left pending (its process gone) goes out first, in the same deadline.
    sends: list[_Send] = _claim_stale(ctx, stale_after(deadline), target=target)
    with ctx.store.session() as session:
        row = _locked_state(session, target.kind, target.id)
        state = AlertState.from_json(row.state or {})
        decision = decide(rules_of(target.options), state, target.outcome)
        if decision.state != state:
            row.state = decision.state.as_json()
        workspace = session.get(Workspace, target.workspace_id)
        assert workspace is not None
        for notice in decision.notices:
            for name in target.options.channels:
                channel, channel_type, error = _open(ctx, session, workspace, name, policy)
                pending = record_pending(session, notice, name, channel_type, target_kind=target.kind)
                sends.append(_Send(pending.id, channel, notice, error, channel_key=f"{workspace.name}/{name}"))
    _deliver_all(ctx, sends, deadline)


def _open(
    ctx: Context, session: Session, workspace: Workspace, name: str, policy: DeliveryPolicy
) -> tuple[Channel | None, str, str | None]:
    """The channel ``name`` as ``workspace`` finds it, opened: (channel, its type, None), or (None, type, error)."""
    from offramp.core.services.alert_channels import open_channel, resolve_channel

    channel_type = "unknown"
    try:
        found = resolve_channel(session, workspace, name)
        channel_type = found.type
        return open_channel(ctx, found, policy), channel_type, None
    except OfframpError as exc:
        # Recorded as a failed delivery: `offramp status` shows it, and the next change alerts again.
        return None, channel_type, f"alert channel {name!r}: {exc.message}"


def _deliver_all(ctx: Context, sends: list[_Send], deadline: float) -> None:
    """Deliver to every channel at once, a thread each (a channel's notices one after the other, in their order:
    a failure before its re-authorization notice), waiting until ``deadline`` seconds from now; what is not done
    by then stays ``pending`` (its thread still records it if this process lives on)."""
    if not sends:
        return
    by_channel: dict[str, list[_Send]] = {}
    for send in sends:
        by_channel.setdefault(send.channel_key, []).append(send)
    threads = [threading.Thread(target=_deliver_in_order, args=(ctx, queue), daemon=True, name="offramp-alert")
               for queue in by_channel.values()]  # fmt: skip
    for thread in threads:
        thread.start()
    ends = time.monotonic() + deadline
    for thread in threads:
        thread.join(max(0.0, ends - time.monotonic()))
    late = sum(1 for thread in threads if thread.is_alive())
    if late:
        log.warning(
            "%d alert channel%s did not deliver within %g s (%s); what is left is pending, sent again later", late,
            "" if late == 1 else "s", deadline, DEADLINE_ENV,
        )  # fmt: skip


def _deliver_in_order(ctx: Context, queue: list[_Send]) -> None:
    for send in queue:
        _deliver_one(ctx, send)


def _deliver_one(ctx: Context, send: _Send) -> None:
    from offramp.core.services.alert_channels import record_result

    try:
        if send.channel is None:
            log.warning("%s", send.error)
            delivery = Delivery(ok=False, attempts=0, error=send.error)
        else:
            delivery = send.channel.deliver(send.notice)
        with ctx.store.session() as session:
            if send.retry:
                # A resend: one attempt more in all; still pending (sent again later) until MAX_ATTEMPTS.
                attempts = send.attempts_before + max(1, delivery.attempts)
                done = delivery.ok or attempts >= MAX_ATTEMPTS or send.channel is None
                record_result(session, send.delivery_id, Delivery(delivery.ok, attempts, delivery.error),
                              keep_pending=not done)  # fmt: skip
            else:
                record_result(session, send.delivery_id, delivery)
    except Exception as exc:  # noqa: BLE001 - a thread of its own: its failure is only logged
        _warn(f"delivery {send.delivery_id}", exc)


def _stale_query(older_than: timedelta, now: datetime | None = None) -> Any:
    cutoff = (now or utcnow()) - older_than
    return select(AlertDelivery).where(AlertDelivery.status == "pending", AlertDelivery.at < cutoff)


def stale_pending(session: Session, since: datetime, *, older_than: timedelta | None = None) -> list[AlertDelivery]:
    """Deliveries recorded since ``since`` still ``pending`` after the time a process takes to send them
    (:func:`stale_after`, or ``older_than``): their process went away; :func:`retry_pending` sends them again.
    Oldest first."""
    query = _stale_query(older_than if older_than is not None else stale_after()).where(AlertDelivery.at >= since)
    return list(session.scalars(query.order_by(AlertDelivery.at, AlertDelivery.id)))


def _claim_stale(ctx: Context, older_than: timedelta, *, target: _Target | None = None) -> list[_Send]:
    """Claim the stale pending deliveries (of ``target`` only, when given) for a resend: each row's attempts raised
    by one with a compare-and-set, so two processes never both resend one; those out of attempts become failed."""
    from offramp.core.services.alert_channels import claim_pending

    policy = delivery_policy(deadline_seconds())
    one_attempt = DeliveryPolicy(
        attempts=1, wait_initial=0.0, wait_max=0.0, total_seconds=policy.total_seconds,
        request_seconds=policy.request_seconds,
    )  # fmt: skip
    sends: list[_Send] = []
    with ctx.store.read_session() as session:
        query = _stale_query(older_than)
        if target is not None:
            workspace = session.get(Workspace, target.workspace_id)
            if workspace is None:
                return []
            query = query.where(
                AlertDelivery.workspace == workspace.name,
                AlertDelivery.target_kind == target.kind,
                AlertDelivery.target_name == target.outcome.target,
            )
        found = [(row.id, row.attempts) for row in session.scalars(query.order_by(AlertDelivery.id))]
    for delivery_id, attempts in found:
        with ctx.store.session() as session:
            row = claim_pending(session, delivery_id, attempts, max_attempts=MAX_ATTEMPTS)
            if row is None:
                continue  # another process has it, or it ran out of attempts (now failed)
            try:
                notice = notice_from_json(row.notice)
            except (KeyError, TypeError, ValueError):
                row.status, row.error = "failed", "the stored notice cannot be read back; it was not sent again"
                continue
            channel: Channel | None = None
            error: str | None = None
            workspace = session.scalar(select(Workspace).where(Workspace.name == row.workspace))
            if workspace is None:
                error = f"alert channel {row.channel!r}: workspace {row.workspace!r} no longer exists"
            else:
                channel, _, error = _open(ctx, session, workspace, row.channel, one_attempt)
            key = f"{row.workspace}/{row.channel}"
            sends.append(_Send(row.id, channel, notice, error, attempts_before=attempts, retry=True, channel_key=key))
    return sends


def retry_pending(ctx: Context, older_than: timedelta | float | None = None) -> int:
    """Send again every delivery left ``pending`` for longer than ``older_than`` (seconds or a timedelta; default
    :func:`stale_after`), at once, within the deadline; each resend one attempt, failed after :data:`MAX_ATTEMPTS`.
    For the scheduler's loop; never raises. Returns how many were sent again."""
    try:
        if older_than is None:
            age = stale_after()
        elif isinstance(older_than, timedelta):
            age = older_than
        else:
            age = timedelta(seconds=older_than)
        sends = _claim_stale(ctx, age)
        _deliver_all(ctx, sends, deadline_seconds())
        return len(sends)
    except Exception as exc:  # noqa: BLE001 - the scheduler's loop goes on
        _warn("pending deliveries", exc)
        return 0


__all__ = [
    "DEADLINE_ENV",
    "DEFAULT_DEADLINE_SECONDS",
    "MAX_ATTEMPTS",
    "NEEDS_AUTHORIZING",
    "after_group_run",
    "after_run",
    "deadline_seconds",
    "delivery_policy",
    "retry_pending",
    "rules_of",
    "stale_after",
    "stale_pending",
]
