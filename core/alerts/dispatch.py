"""After a run or a group run: decide its alert notices and deliver them.

Called by the runner at the end of every run of an orchestration (:func:`after_run`) and by the group runner at the
end of every group run (:func:`after_group_run`), however they were started (``offramp run``, ``offramp groups
run``, the scheduler), so alerts follow the runs themselves, not a command.

The decision and its record are one transaction: under the target's ``alert_states`` row lock the state is read,
:func:`~offramp.core.alerts.rules.decide` gives the new state and the notices, and the new state is stored with one
``pending`` delivery per notice per channel. Two processes finishing runs of one target at once thus never both
send the same change of state. Only then is each notice sent (the channels retry with backoff), and each delivery
recorded ``delivered`` or ``failed``. Nothing here raises into the run: a notice that cannot be sent is recorded,
logged as a warning, and the run's status and exit code stay what they were.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from offramp.core.alerts.channels import Channel, Delivery
from offramp.core.alerts.notices import Notice
from offramp.core.alerts.rules import COUNTED_STATUSES, AlertRules, AlertState, RunOutcome, decide
from offramp.core.errors import OfframpError
from offramp.core.orchestration_options import AlertOptions
from offramp.core.state.models import (
    AlertStateRow,
    Credential,
    Destination,
    GroupRun,
    Orchestration,
    OrchestrationGroup,
    Run,
    Workspace,
)

if TYPE_CHECKING:
    from offramp.core.runner.types import RunSummary
    from offramp.core.services.context import Context

log = logging.getLogger("offramp.core.alerts")

# A credential in one of these states cannot be used until someone authorizes it (again).
NEEDS_AUTHORIZING = ("needs_reauth", "needs_authorization")


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


def after_group_run(ctx: Context, group_run_id: str) -> None:
    """Decide and deliver the notices of a finished group run (never raises)."""
    try:
        with ctx.store.read_session() as session:
            target = _group_target(session, group_run_id)
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


def _needing_authorization(session: Session, orchestration_ids: list[int]) -> tuple[str, ...]:
    """The credentials of these orchestrations' destinations that need (re-)authorizing, by name."""
    if not orchestration_ids:
        return ()
    query = (
        select(Credential.name)
        .join(Destination, Destination.credential_id == Credential.id)
        .join(Orchestration, Orchestration.destination_id == Destination.id)
        .where(Orchestration.id.in_(orchestration_ids), Credential.status.in_(NEEDS_AUTHORIZING))
        .distinct()
        .order_by(Credential.name)
    )
    return tuple(session.scalars(query))


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
    outcome = RunOutcome.from_summary(
        summary,
        workspace=workspace.name if workspace is not None else summary.workspace,
        credentials_needing_reauthorization=_needing_authorization(session, [orchestration.id]),
    )
    return _Target("orchestration", orchestration.id, run.workspace_id, options, outcome)


def _group_target(session: Session, group_run_id: str) -> _Target | None:
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
    for run in runs:
        for name, value in dict((run.report or {}).get("events") or {}).items():
            events[name] = events.get(name, 0) + int(value)
        for code, rows in dict(run.reason_counts or {}).items():
            reasons[code] = reasons.get(code, 0) + int(rows)
    ended = group_run.finished_at or group_run.heartbeat_at or group_run.started_at
    workspace = session.get(Workspace, group_run.workspace_id)
    orchestration_ids = [int(m["orchestration_id"]) for m in members if m.get("orchestration_id") is not None]
    outcome = RunOutcome(
        workspace=workspace.name if workspace is not None else "",
        target=group.name,
        target_type="group",
        run_id=group_run.id,
        status=group_run.status,
        events=events,
        reason_counts=reasons,
        seconds=max(0.0, (ended - group_run.started_at).total_seconds()),
        hint=_group_hint(members),
        credentials_needing_reauthorization=_needing_authorization(session, orchestration_ids),
        queried=counts["queried"],
        sent=counts["sent"],
        rejected=counts["rejected"],
        failed=counts["failed"],
        skipped=counts["skipped"],
        unknown=counts["unknown"],
    )
    return _Target("group", group.id, group_run.workspace_id, options, outcome)


def _group_hint(members: list[dict[str, Any]]) -> str | None:
    """The first failed member, as the group run's hint (its own run says what to do)."""
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


def _decide_and_deliver(ctx: Context, target: _Target) -> None:
    from offramp.core.services.alert_channels import open_channel, record_pending, record_result, resolve_channel

    sends: list[tuple[int, Channel | None, Notice, str | None]] = []  # (delivery id, channel, notice, error)
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
                channel: Channel | None = None
                error: str | None = None
                channel_type = "unknown"
                try:
                    found = resolve_channel(session, workspace, name)
                    channel_type = found.type
                    channel = open_channel(ctx, found)
                except OfframpError as exc:
                    # Recorded as a failed delivery: `offramp status` shows it, and the next change alerts again.
                    error = f"alert channel {name!r}: {exc.message}"
                pending = record_pending(session, notice, name, channel_type, target_kind=target.kind)
                sends.append((pending.id, channel, notice, error))
    for delivery_id, channel, notice, error in sends:
        delivery = channel.deliver(notice) if channel is not None else Delivery(ok=False, attempts=0, error=error)
        if not delivery.ok and channel is None:
            log.warning("%s", error)
        with ctx.store.session() as session:
            record_result(session, delivery_id, delivery)


__all__ = ["NEEDS_AUTHORIZING", "after_group_run", "after_run", "rules_of"]
