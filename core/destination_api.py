"""The hooks a destination fills so the framework can drive it: prepare rows, send events.

The framework owns the loop (DESIGN.md, "The path of one run"): it reads Arrow record batches from the source,
hands each to the destination's :class:`Preparer`, batches the prepared events up to the vendor's maximum, hands
each batch to the destination's :class:`Sender`, retries what comes back transient and records every row's fate.
A destination implementation module exposes two functions (looked up by name, so a plugin may offer only some)::

    open_preparer(settings, options: PrepareOptions) -> Preparer
    open_sender(ctx, row, settings, options: SendOptions) -> Sender

Accounting: every source row ends up in exactly one prepared or rejected event (``rows`` counts them), so a run
can prove ``queried = sent + rejected + failed + skipped``. Events are identified by ``event_id`` only: neither a
prepared nor a rejected event carries raw PII outside the hashed request body.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import pyarrow as pa

from offramp.core.errors import DestinationError


@dataclass(frozen=True)
class PrepareOptions:
    """The orchestration's run options that shape rows (see ``OrchestrationOptions``).

    Args:
        timezone: IANA zone of timestamps that carry none.
        default_phone_region: Region of phone numbers written without a country code.
        event_name_map: Source event names translated before validation (``Order Completed`` -> ``Purchase``).
        attribution_window_days: Events older than this are rejected (TikTok would not attribute them).
        future_tolerance_seconds: Events further than this in the future are rejected (clock skew allowance).
        now: Unix seconds the window is measured from; None means the clock at preparation time.
    """

    timezone: str = "UTC"
    default_phone_region: str = "US"
    event_name_map: Mapping[str, str] = field(default_factory=dict)
    attribution_window_days: int = 28
    future_tolerance_seconds: int = 600
    now: int | None = None


@dataclass(frozen=True)
class PreparedEvent:
    """One event, ready to send.

    Args:
        event_id: The event's id, as sent; the key of the run ledger.
        body: The event's JSON exactly as it goes into the request (for TikTok, one item of ``data``).
        rows: How many source rows (line items) the event holds.
        warnings: Reason codes of problems that did not stop the event (``invalid_phone``), one per row affected.
    """

    event_id: str
    body: bytes
    rows: int = 1
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True)
class RejectedEvent:
    """Rows our validation refused, grouped by event.

    Args:
        event_id: The id the event would have been sent with (derived when the query gives none).
        reason: A stable reason code (documented per destination), e.g. ``missing_identifiers``.
        detail: What is wrong and how to fix it, naming fields, never their values.
        rows: How many source rows the rejection covers.
    """

    event_id: str
    reason: str
    detail: str
    rows: int = 1


@dataclass
class PreparedBatch:
    """What one call to :meth:`Preparer.prepare` made of its rows."""

    events: list[PreparedEvent] = field(default_factory=list)
    rejected: list[RejectedEvent] = field(default_factory=list)

    @property
    def rows(self) -> int:
        """Source rows accounted for: those in events plus those rejected."""
        return sum(event.rows for event in self.events) + sum(item.rows for item in self.rejected)


class Preparer(Protocol):
    """Turns Arrow record batches into events; may hold back the last event of a batch for the next one.

    Line items of one event may straddle two record batches, so the preparer keeps the trailing event until it
    sees the next batch or :meth:`finish`. Rows of one event must be adjacent in the query's result to be grouped
    across batches (``ORDER BY`` the event id or order id); within a batch their order does not matter. An event id
    that comes out of a later call again is not sent: the runner rejects it (``repeated_event_id``), so that an
    event reaches the vendor whole or not at all.
    """

    @property
    def unknown_columns(self) -> tuple[str, ...]:
        """Columns seen so far that the destination does not read (reported once per run)."""
        ...

    def prepare(self, batch: pa.RecordBatch) -> PreparedBatch:
        """Prepare a batch; rows held back from the previous call come out first."""
        ...

    def finish(self) -> PreparedBatch:
        """Everything still held back."""
        ...

    def close(self) -> None:
        """Release what the preparer holds (an embedded database, caches); it is not used afterwards."""
        ...


@dataclass(frozen=True)
class SendOptions:
    """Per-run options of sending.

    Args:
        test_event_code: Send to the vendor's test view instead of production reporting (TikTok Test Events).
        timeout_seconds: Per request.
    """

    test_event_code: str | None = None
    timeout_seconds: float = 30.0


@dataclass(frozen=True)
class FailedEvent:
    """An event the vendor refused: its code and message, as the vendor gave them."""

    event_id: str
    code: str
    message: str


@dataclass
class DeliveryResult:
    """What became of the events handed to :meth:`Sender.send`.

    Every event handed in is in exactly one of ``sent``, ``failed`` or ``unsent``. ``unsent`` events were not
    accepted because of ``error`` (always transient: a rate limit, a 5xx, a timeout); the runner sends them again
    after a wait. A terminal problem (revoked grant, missing permission) is raised instead, as a
    :class:`DestinationError` that is also :class:`~offramp.core.errors.Terminal`.
    """

    sent: list[str] = field(default_factory=list)
    failed: list[FailedEvent] = field(default_factory=list)
    unsent: list[PreparedEvent] = field(default_factory=list)
    error: DestinationError | None = None
    request_ids: list[str] = field(default_factory=list)
    retry_after_seconds: float | None = None  # the vendor's advised wait, when it gives one


class Sender(Protocol):
    """Sends events to the vendor, at most ``max_batch_size`` per request; safe to call from several threads."""

    @property
    def max_batch_size(self) -> int:
        """The most events one call to :meth:`send` takes."""
        ...

    def send(self, events: Sequence[PreparedEvent]) -> DeliveryResult:
        """Send one batch; see :class:`DeliveryResult` for the contract.

        Raises:
            ValueError: More than ``max_batch_size`` events (a caller's bug), before any request is made.
        """
        ...

    def close(self) -> None:
        """Release connections."""
        ...


__all__ = [
    "DeliveryResult",
    "FailedEvent",
    "PrepareOptions",
    "PreparedBatch",
    "PreparedEvent",
    "Preparer",
    "RejectedEvent",
    "SendOptions",
    "Sender",
]
