"""What a run is asked to do, and what it reports while it runs and when it ends.

The runner (``offramp.core.runner.run_orchestration``) takes a :class:`RunRequest` and returns a
:class:`RunSummary`; while it runs it hands :class:`RunSummary` snapshots to a progress callback. The CLI, a
scheduler and later the REST API all start runs this way, so a run does not depend on how it was started.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

RunStatus = Literal["running", "succeeded", "partially_failed", "failed", "cancelled", "interrupted"]
FINAL_STATUSES: tuple[RunStatus, ...] = ("succeeded", "partially_failed", "failed", "cancelled", "interrupted")


@dataclass(frozen=True)
class RunRequest:
    """One run of one orchestration.

    Args:
        workspace: The orchestration's workspace.
        orchestration: Its name.
        dry_run: No network at all; everything else runs, and sample request bodies and the reject report are kept.
        limit: Read at most this many rows from the query.
        options: Overrides of the orchestration's run options for this run only, by name (``offramp run
            --test-event-code X`` is ``{"test_event_code": "X"}``). Checked strictly against the destination
            type's run options before anything is written: an unknown name or a bad value is a ConfigError naming
            the valid options. Recorded in the run's stored options under ``options``.
        resume: Continue the orchestration's last cancelled or interrupted run without resending what the vendor
            acknowledged.
        replay_failed: A run id: send again only the rows that failed in that run.
        fail_on_empty: A query that returns no rows fails the run (also when the orchestration's stored
            ``fail_on_empty`` option is set).
        max_reject_rate: Fail a run whose share of rejected rows exceeds this: checked during the run once a minimum
            sample was read (it stops there), and at its end whatever its size. None: the orchestration's stored
            ``max_reject_rate`` option, if any.
        actor: Who started the run, for the audit trail (the OS user, ``--actor``, a scheduler).
        group_run_id: The group run this run is a member of (``offramp groups run``), recorded on the run.
        concurrency: Requests in flight at once (None: the default, 4). Bounded by the destination type's
            ``capabilities.max_in_flight``: a larger value is lowered to it, with a warning in the log, and the run
            goes on (the vendor's limit is a fact, not an error of the user's).
        batch_rows: Rows per record batch read from the source.
        resend_unknown: Send events whose outcome is unknown (their request was in flight when a run died) even
            after the destination's deduplication window, when a resend may count them twice.
    """

    workspace: str
    orchestration: str
    dry_run: bool = False
    limit: int | None = None
    options: Mapping[str, Any] = field(default_factory=dict)
    resume: bool = False
    replay_failed: str | None = None
    fail_on_empty: bool = False
    max_reject_rate: float | None = None
    concurrency: int | None = None
    batch_rows: int = 50_000
    resend_unknown: bool = False
    actor: str | None = None
    group_run_id: str | None = None


# What the summary counts in events: those prepared (every ledger entry but the rows never prepared), then by outcome.
EVENT_COUNTS = ("prepared", "sent", "rejected", "failed", "skipped", "unknown")


def _no_events() -> dict[str, int]:
    return dict.fromkeys(EVENT_COUNTS, 0)


@dataclass
class RunSummary:
    """A run's state: counts that add up (queried = sent + rejected + failed + skipped + unknown once it ended, in
    rows; and prepared = sent + rejected + failed + skipped + unknown in events), timings, reasons.

    ``queried``, ``sent`` ... count source rows; :attr:`events` counts events (an event of three line items is
    three rows and one event), by outcome, and ``prepared``: every event the run accounts for (rows read but never
    prepared count as rows only).

    ``unknown`` counts the rows of events that were in a request whose answer was never recorded (a run died with it
    in flight), longer ago than the destination's deduplication window: the vendor may hold them, so they were not
    sent again (reason ``unknown_past_dedup_window``). While the run goes on, ``queried`` counts the rows this pass
    read and the outcomes what it recorded (:attr:`settled`); at the end every count is the ledger's, earlier passes
    of a resumed run included.
    """

    run_id: str
    orchestration: str
    status: RunStatus
    workspace: str = ""
    queried: int = 0
    sent: int = 0
    rejected: int = 0
    failed: int = 0
    skipped: int = 0
    unknown: int = 0
    events: dict[str, int] = field(default_factory=_no_events)  # by EVENT_COUNTS
    reason_counts: dict[str, int] = field(default_factory=dict)  # rejected, skipped and unknown rows by reason code
    vendor_codes: dict[str, int] = field(default_factory=dict)  # failed rows by the vendor's code
    warnings: dict[str, int] = field(default_factory=dict)  # e.g. invalid_phone
    unknown_columns: list[str] = field(default_factory=list)
    column_suggestions: dict[str, str] = field(default_factory=dict)  # unused column -> the contract column it may be
    labels: dict[str, list[str]] = field(default_factory=dict)  # reason -> distinct category values (at most 20)
    request_ids: list[str] = field(default_factory=list)  # the vendor's ids of accepted requests (a sample)
    seconds: float = 0.0
    error: str | None = None  # why the run failed or stopped
    hint: str | None = None  # what to do next (e.g. how to resume)
    dry_run: bool = False
    sample_requests: list[str] = field(default_factory=list)  # dry run: request bodies exactly as they would go

    @property
    def settled(self) -> int:
        """Rows the ledger accounts for (every outcome, unknown included)."""
        return self.sent + self.rejected + self.failed + self.skipped + self.unknown

    @property
    def counts_add_up(self) -> bool:
        """Both invariants: rows (queried = the sum of outcomes) and events (prepared = the sum of outcomes)."""
        events = self.events
        return self.queried == self.settled and events["prepared"] == sum(events[name] for name in EVENT_COUNTS[1:])

    @property
    def rows_per_second(self) -> float:
        """Settled rows per second so far."""
        return self.settled / self.seconds if self.seconds > 0 else 0.0


# The runner's own reasons for rows that are not rejections; every other reason code is a destination's rejection.
ALREADY_DELIVERED = "already_delivered"  # mode new: sent by an earlier run
NOT_FAILED_IN_REPLAYED_RUN = "not_failed_in_replayed_run"  # --replay-failed: not among the replayed run's failures
UNKNOWN_PAST_DEDUP_WINDOW = "unknown_past_dedup_window"  # in flight when a run died, longer ago than the window
_OUTCOME_OF_REASON = {ALREADY_DELIVERED: "skipped", NOT_FAILED_IN_REPLAYED_RUN: "skipped",
                      UNKNOWN_PAST_DEDUP_WINDOW: "unknown"}  # fmt: skip


def reasons_by_outcome(reason_counts: dict[str, int]) -> dict[str, dict[str, int]]:
    """A run's rows by reason code, split by the outcome the reason belongs to (rejected, skipped, unknown)."""
    split: dict[str, dict[str, int]] = {}
    for code, rows in reason_counts.items():
        split.setdefault(_OUTCOME_OF_REASON.get(code, "rejected"), {})[code] = rows
    return split


__all__ = [
    "ALREADY_DELIVERED",
    "EVENT_COUNTS",
    "FINAL_STATUSES",
    "NOT_FAILED_IN_REPLAYED_RUN",
    "UNKNOWN_PAST_DEDUP_WINDOW",
    "RunRequest",
    "RunStatus",
    "RunSummary",
    "reasons_by_outcome",
]
