"""Which notices a finished run calls for: pure state-change logic, no store, no network, no clock.

An orchestration or a group has :class:`AlertRules` and an :class:`AlertState`, the state its alerts were left in
by the run before. :func:`decide` takes both and the new run's :class:`RunOutcome`, and returns the new state and
the notices to send. It sends **one notice per change of state**: a schedule that fails every five minutes sends
one failure notice, then one recovery notice on the first success after it.

The rules, one per sentence (``tests/core/test_alert_rules.py`` proves each):

- Only runs that ended count: ``succeeded``, ``partially_failed`` and ``failed``. A cancelled or interrupted run
  (stopped by a person or a crash, resumable) and a dry run change nothing.
- The same run ending the same way twice (a scheduler deciding again after a restart) changes nothing.
- **Health** is the last counted run's status: ``ok`` (succeeded), ``partially_failed`` or ``failed``. A change of
  health to ``failed`` sends a ``failure`` notice (rule ``on_failure``); to ``partially_failed``, from ``ok`` or
  from ``failed``, a ``partial_failure`` notice (rule ``on_partial_failure``). Staying there sends nothing.
- A change of health back to ``ok`` sends one ``recovery`` notice (rule ``on_recovery``), but only when a failure or
  partial-failure notice went out since health was last ``ok``: a recovery always follows an alert the user saw.
- The threshold rules each have a state, ``ok`` or ``firing``. A rule whose condition starts to hold sends one
  notice and fires; while it holds, nothing more; once it no longer holds, it goes back to ``ok`` without a notice,
  ready to alert again. A rule that is switched off forgets its state (switched on again while its condition
  holds, it alerts on the next run). A rule whose condition cannot be measured on a run keeps its state:
    - ``reject_rate_above`` X (a fraction, 0.05 for 5%): rejected rows over rows read, above X; measured on every
      counted run that read rows (the runner's ``max_reject_rate`` reads the same ratio).
    - ``runtime_above`` T seconds: the run's duration, above T; measured on every counted run.
    - ``row_count_drop_above`` P (percent): rows read by a succeeded run, more than P% below the rows read by the
      previous succeeded run; measured on succeeded runs once there is a previous one that read rows. Every
      succeeded run becomes the next one's baseline (a run that read fewer rows too: a lasting drop alerts once).
    - ``on_needs_reauthorization``: a credential of the orchestration (or of a member of the group) needs
      re-authorizing; measured when the outcome says (``credentials_needing_reauthorization`` is not None). The
      notice names the credentials.
- One run may send several notices, one per rule that changed (a revoked grant: ``failure`` and
  ``needs_reauthorization``), in the order of :data:`RULE_ORDER`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from offramp.core.alerts.notices import Notice, NoticeKind, TargetType, run_command, top_reasons
from offramp.core.errors import ConfigError
from offramp.core.hints import offramp_command

if TYPE_CHECKING:
    from offramp.core.runner.types import RunSummary

Health = Literal["ok", "partially_failed", "failed"]
RuleState = Literal["ok", "firing"]
ThresholdRule = Literal["reject_rate", "runtime", "row_count_drop", "needs_reauthorization"]
THRESHOLD_RULES: tuple[ThresholdRule, ...] = ("reject_rate", "runtime", "row_count_drop", "needs_reauthorization")
# The order of a run's notices when it sends several.
RULE_ORDER: tuple[NoticeKind, ...] = ("failure", "partial_failure", "recovery", *THRESHOLD_RULES)

COUNTED_STATUSES = ("succeeded", "partially_failed", "failed")
_HEALTH_OF_STATUS: dict[str, Health] = {"succeeded": "ok", "partially_failed": "partially_failed", "failed": "failed"}


@dataclass(frozen=True)
class AlertRules:
    """The alert rules of one orchestration or group.

    Args:
        on_failure: A run fails (after runs that did not).
        on_partial_failure: A run ends with some events failed (after runs that did not).
        on_recovery: The first succeeded run after a failure or partial-failure notice.
        reject_rate_above: A fraction of rejected rows (0.05 for 5%) a run must exceed to alert; None: off.
        runtime_above: Seconds a run must exceed to alert; None: off.
        row_count_drop_above: Percent (0-100) by which a succeeded run's rows must fall below the previous succeeded
            run's to alert; None: off.
        on_needs_reauthorization: A credential the orchestration uses needs re-authorizing.
    """

    on_failure: bool = True
    on_partial_failure: bool = False
    on_recovery: bool = True
    reject_rate_above: float | None = None
    runtime_above: float | None = None
    row_count_drop_above: float | None = None
    on_needs_reauthorization: bool = True

    def __post_init__(self) -> None:
        problems: list[str] = []
        rate = self.reject_rate_above
        if rate is not None and not (math.isfinite(rate) and 0 <= rate < 1):
            problems.append(f"reject_rate_above is a fraction from 0 up to 1 (0.05 for 5%), not {rate!r}")
        runtime = self.runtime_above
        if runtime is not None and not (math.isfinite(runtime) and runtime > 0):
            problems.append(f"runtime_above is a number of seconds above 0, not {runtime!r}")
        drop = self.row_count_drop_above
        if drop is not None and not (math.isfinite(drop) and 0 <= drop < 100):
            problems.append(f"row_count_drop_above is a percentage from 0 up to 100 (50 for half), not {drop!r}")
        if problems:
            raise ConfigError("; ".join(problems), hint="set the alert rule to a value in its range")

    def enabled(self, rule: ThresholdRule) -> bool:
        """Whether a threshold rule is on."""
        if rule == "reject_rate":
            return self.reject_rate_above is not None
        if rule == "runtime":
            return self.runtime_above is not None
        if rule == "row_count_drop":
            return self.row_count_drop_above is not None
        return self.on_needs_reauthorization


@dataclass(frozen=True)
class AlertState:
    """Where the alerts of one orchestration or group stand after its last counted run.

    Args:
        health: The last counted run's status: ``ok``, ``partially_failed`` or ``failed``.
        alerted: A failure or partial-failure notice went out since health was last ``ok`` (so a recovery is due).
        rules: Each threshold rule that is on, ``ok`` or ``firing``; a rule that is off is absent.
        baseline_rows: Rows read by the last succeeded run (the row-count drop compares with it); None before one.
        last_run: The last counted run, as (run id, status): deciding on it again changes nothing.
    """

    health: Health = "ok"
    alerted: bool = False
    rules: Mapping[ThresholdRule, RuleState] = field(default_factory=dict)
    baseline_rows: int | None = None
    last_run: tuple[str, str] | None = None

    def firing(self) -> tuple[ThresholdRule, ...]:
        """The threshold rules firing now, in :data:`THRESHOLD_RULES` order."""
        return tuple(rule for rule in THRESHOLD_RULES if self.rules.get(rule) == "firing")

    def as_json(self) -> dict[str, Any]:
        """The state as JSON, for the store; :meth:`from_json` reads it back."""
        return {
            "health": self.health,
            "alerted": self.alerted,
            "rules": {rule: self.rules[rule] for rule in THRESHOLD_RULES if rule in self.rules},
            "baseline_rows": self.baseline_rows,
            "last_run": list(self.last_run) if self.last_run is not None else None,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> AlertState:
        """A state written by :meth:`as_json`; what it does not recognise is dropped (a state from a later version
        alerts as if new, rather than failing a run)."""
        health = data.get("health")
        raw_rules = data.get("rules")
        rules: dict[ThresholdRule, RuleState] = {}
        if isinstance(raw_rules, Mapping):
            for rule in THRESHOLD_RULES:
                value = raw_rules.get(rule)
                if value == "ok" or value == "firing":
                    rules[rule] = value
        baseline = data.get("baseline_rows")
        last = data.get("last_run")
        return cls(
            health=health if health == "partially_failed" or health == "failed" else "ok",
            alerted=data.get("alerted") is True,
            rules=rules,
            baseline_rows=baseline if isinstance(baseline, int) and not isinstance(baseline, bool) else None,
            last_run=(str(last[0]), str(last[1])) if isinstance(last, list | tuple) and len(last) == 2 else None,
        )


@dataclass(frozen=True)
class RunOutcome:
    """What a finished run of an orchestration (or of a group, counts summed over its members) tells the alerts.

    ``credentials_needing_reauthorization`` is None when the run does not know (the rule then keeps its state), and
    a tuple of credential names (empty: none) when it does; ``credential_workspaces`` gives the workspace of each
    that is not ``workspace`` (a sandbox uses production's credential: it is authorized there). ``error`` is the
    run's stored error (offramp's words, never a row's value), ``vendor_codes`` the vendor's codes of its failed
    rows (code: rows), ``sandbox`` the sandbox's name when the workspace is one (its notices say test traffic).
    """

    workspace: str
    target: str
    run_id: str
    status: str
    target_type: TargetType = "orchestration"
    queried: int = 0
    sent: int = 0
    rejected: int = 0
    failed: int = 0
    skipped: int = 0
    unknown: int = 0
    events: Mapping[str, int] = field(default_factory=dict)
    reason_counts: Mapping[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    hint: str | None = None
    credentials_needing_reauthorization: tuple[str, ...] | None = None
    dry_run: bool = False
    error: str | None = None
    vendor_codes: Mapping[str, int] = field(default_factory=dict)
    sandbox: str | None = None
    credential_workspaces: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def from_summary(
        cls,
        summary: RunSummary,
        *,
        workspace: str | None = None,
        credentials_needing_reauthorization: tuple[str, ...] | None = None,
        error: str | None = None,
        vendor_codes: Mapping[str, int] | None = None,
        sandbox: str | None = None,
        credential_workspaces: Mapping[str, str] | None = None,
    ) -> RunOutcome:
        """The outcome of one orchestration's run, from the runner's summary (``error``: the run's stored error,
        which the summary's may not be: that one is said to the user whole)."""
        return cls(
            workspace=workspace if workspace is not None else summary.workspace,
            target=summary.orchestration,
            run_id=summary.run_id,
            status=summary.status,
            queried=summary.queried,
            sent=summary.sent,
            rejected=summary.rejected,
            failed=summary.failed,
            skipped=summary.skipped,
            unknown=summary.unknown,
            events=dict(summary.events),
            reason_counts=dict(summary.reason_counts),
            seconds=summary.seconds,
            hint=summary.hint,
            credentials_needing_reauthorization=credentials_needing_reauthorization,
            dry_run=summary.dry_run,
            error=error,
            vendor_codes=dict(vendor_codes or {}),
            sandbox=sandbox,
            credential_workspaces=dict(credential_workspaces or {}),
        )

    @property
    def rows(self) -> dict[str, int]:
        return {
            "queried": self.queried,
            "sent": self.sent,
            "rejected": self.rejected,
            "failed": self.failed,
            "skipped": self.skipped,
            "unknown": self.unknown,
        }


@dataclass(frozen=True)
class Decision:
    """What :func:`decide` returns: the state to store, and the notices to send (in :data:`RULE_ORDER`)."""

    state: AlertState
    notices: tuple[Notice, ...] = ()


def decide(rules: AlertRules, state: AlertState, outcome: RunOutcome) -> Decision:
    """The new alert state after ``outcome``, and the notices its changes of state call for (the module's rules)."""
    if outcome.dry_run or outcome.status not in COUNTED_STATUSES:
        return Decision(state)
    if state.last_run == (outcome.run_id, outcome.status):
        return Decision(state)

    kinds: list[tuple[NoticeKind, str]] = []  # (kind, headline)
    named = f"{outcome.target_type} {outcome.target!r}"

    # Health: failure, partial failure, recovery.
    health = _HEALTH_OF_STATUS[outcome.status]
    alerted = state.alerted
    if health != state.health:
        if health == "failed" and rules.on_failure:
            kinds.append(("failure", f"{named} failed"))
            alerted = True
        elif health == "partially_failed" and rules.on_partial_failure:
            failed = f"{outcome.failed:,} of {outcome.queried:,} rows failed"
            kinds.append(("partial_failure", f"{named} partially failed: {failed}"))
            alerted = True
        elif health == "ok":
            if alerted and rules.on_recovery:
                kinds.append(("recovery", f"{named} recovered: run {outcome.run_id} succeeded"))
            alerted = False

    # The threshold rules.
    new_rules: dict[ThresholdRule, RuleState] = {}
    for rule in THRESHOLD_RULES:
        if not rules.enabled(rule):
            continue  # off: its state is forgotten
        before: RuleState = state.rules.get(rule, "ok")
        holds, headline = _measure(rule, rules, state, outcome, named)
        if holds is None:
            new_rules[rule] = before  # not measurable on this run
            continue
        new_rules[rule] = "firing" if holds else "ok"
        if holds and before == "ok":
            kinds.append((rule, headline))

    baseline = outcome.queried if outcome.status == "succeeded" else state.baseline_rows
    new_state = AlertState(
        health=health,
        alerted=alerted,
        rules=new_rules,
        baseline_rows=baseline,
        last_run=(outcome.run_id, outcome.status),
    )
    notices = tuple(_notice(kind, headline, outcome) for kind, headline in sorted(kinds, key=_rule_rank))
    return Decision(new_state, notices)


def _rule_rank(item: tuple[NoticeKind, str]) -> int:
    return RULE_ORDER.index(item[0])


def _measure(
    rule: ThresholdRule, rules: AlertRules, state: AlertState, outcome: RunOutcome, named: str
) -> tuple[bool | None, str]:
    """Whether the rule's condition holds on this run (None: it cannot be measured), and the headline if it does."""
    if rule == "reject_rate":
        limit = rules.reject_rate_above
        assert limit is not None
        if outcome.queried <= 0:
            return None, ""
        rate = outcome.rejected / outcome.queried
        return rate > limit, f"{named} rejected {rate:.1%} of its {outcome.queried:,} rows (alert above {limit:.1%})"
    if rule == "runtime":
        limit = rules.runtime_above
        assert limit is not None
        took, over = format_duration(outcome.seconds), format_duration(limit)
        return outcome.seconds > limit, f"{named} ran for {took} (alert above {over})"
    if rule == "row_count_drop":
        percent = rules.row_count_drop_above
        assert percent is not None
        previous = state.baseline_rows
        if outcome.status != "succeeded" or previous is None or previous <= 0:
            return None, ""
        drop = (previous - outcome.queried) / previous * 100
        return drop > percent, (
            f"{named} read {outcome.queried:,} rows, {drop:.0f}% fewer than the {previous:,} of its previous "
            f"succeeded run (alert above {percent:g}%)"
        )
    credentials = outcome.credentials_needing_reauthorization
    if credentials is None:
        return None, ""
    listed = ", ".join(repr(name) for name in credentials)
    noun = "credential" if len(credentials) == 1 else "credentials"
    return bool(credentials), f"{noun} {listed} of {named} need{'s' if len(credentials) == 1 else ''} re-authorizing"


def _notice(kind: NoticeKind, headline: str, outcome: RunOutcome) -> Notice:
    hint = outcome.hint
    if kind == "needs_reauthorization":
        names = outcome.credentials_needing_reauthorization or ()
        # Each in its own workspace: production's credential, shared with a sandbox, is authorized in production.
        commands = [
            offramp_command(
                "credentials", "authorize", name, workspace=outcome.credential_workspaces.get(name, outcome.workspace)
            )
            for name in names
        ]
        hint = "re-authorize: " + "; ".join(commands) if commands else hint
    return Notice(
        kind=kind,
        workspace=outcome.workspace,
        target=outcome.target,
        target_type=outcome.target_type,
        headline=headline,
        run_id=outcome.run_id,
        status=outcome.status,
        rows=outcome.rows,
        events=dict(outcome.events),
        reasons=top_reasons(outcome.reason_counts),
        hint=hint,
        command=run_command(outcome.run_id, outcome.workspace),
        error=outcome.error if outcome.status != "succeeded" else None,
        vendor_codes=top_reasons(outcome.vendor_codes),
        sandbox=outcome.sandbox,
    )


def format_duration(seconds: float) -> str:
    """``45 s``, ``12 min 5 s``, ``1 h 12 min``: a duration as a person reads it."""
    whole = round(seconds)
    if whole < 60:
        return f"{seconds:.0f} s" if seconds >= 1 else f"{seconds:.1f} s"
    minutes, secs = divmod(whole, 60)
    if minutes < 60:
        return f"{minutes} min {secs} s" if secs else f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min" if minutes else f"{hours} h"


__all__ = [
    "COUNTED_STATUSES",
    "RULE_ORDER",
    "THRESHOLD_RULES",
    "AlertRules",
    "AlertState",
    "Decision",
    "Health",
    "RuleState",
    "RunOutcome",
    "ThresholdRule",
    "decide",
    "format_duration",
]
