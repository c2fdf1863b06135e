"""What a destination's preparer and sender exchange with the runner: events, batches, results.

The framework owns the loop (docs/plugin-author-guide.md, "The path of one run"): it reads Arrow record batches from
the source, hands each to the destination's :class:`Preparer`, batches the prepared events up to the vendor's
maximum, hands each batch to the destination's :class:`Sender`, retries what comes back transient and records every
row's fate. The hooks that open them (``open_preparer(context)``, ``open_sender(context)``) are declared in
:class:`offramp.core.plugin_api.DestinationHooks`.

Accounting: every source row ends up in exactly one prepared or rejected event (``rows`` counts them), so a run
can prove ``queried = sent + rejected + failed + skipped``. Events are identified by ``event_id`` only: neither a
prepared nor a rejected event carries raw PII outside the hashed request body.

One error channel (``offramp.core.errors`` says what the runner does with each marker): a sender *returns* a
:class:`DeliveryResult` for every answer the vendor gave, partial progress included; *raising* concerns the whole
batch: a :class:`~offramp.core.errors.Transient` error means "nothing of this batch was sent, send it again later";
anything else stops the run, and the batch is recorded as not sent.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol, overload

import pyarrow as pa
import pyarrow.compute  # noqa: F401 - pa.compute

from offramp.core.errors import DestinationError


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
        label: The category value that caused the rejection, when it is one and not personal data (an event name
            that maps to none of the vendor's: ``Order Complete``), else None. A run's report lists the distinct
            labels of each reason (at most 20, each cut to 64 characters), so that a user sees which values to map.
    """

    event_id: str
    reason: str
    detail: str
    rows: int = 1
    label: str | None = None


@dataclass(frozen=True)
class EventColumns(Sequence[PreparedEvent]):
    """Prepared events as Arrow arrays of equal length: a columnar preparer's output, without one object per event.

    The runner carries events this way from the preparer to the sender and the ledger, and hands a sender slices of
    it (``events[i:j]`` is an ``EventColumns`` again, without copying). It is also a ``Sequence[PreparedEvent]``, so a
    sender written for objects works unchanged; a sender that joins bodies takes them as they are with
    :func:`joined_bodies` (TikTok's 40002 halving re-joins slices of the same arrays).

    Args:
        event_ids: ``string`` array, the events' ids.
        rows: ``int32`` or ``int64`` array, source rows per event.
        bodies: ``binary`` (or ``string``) array, each event's JSON exactly as it goes into the request.
        warnings: Per warning name (``invalid_phone``), an integer array of the rows of each event it concerns
            (0: none); a name absent means no event has it.
    """

    event_ids: pa.Array
    rows: pa.Array
    bodies: pa.Array
    warnings: Mapping[str, pa.Array] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not len(self.event_ids) == len(self.rows) == len(self.bodies):
            raise ValueError("event_ids, rows and bodies must have the same length")
        if any(len(counts) != len(self.event_ids) for counts in self.warnings.values()):
            raise ValueError("every warnings array must have one value per event")

    def __len__(self) -> int:
        return len(self.event_ids)

    @overload
    def __getitem__(self, index: int) -> PreparedEvent: ...

    @overload
    def __getitem__(self, index: slice) -> EventColumns: ...

    def __getitem__(self, index: int | slice) -> PreparedEvent | EventColumns:
        if isinstance(index, slice):
            start, stop, step = index.indices(len(self))
            if step != 1:
                raise ValueError("EventColumns slices are contiguous")
            return self.slice(start, max(0, stop - start))
        position = range(len(self))[index]  # IndexError as a list would raise it
        return self.slice(position, 1).to_events()[0]

    def __iter__(self) -> Iterator[PreparedEvent]:
        return iter(self.to_events())

    def slice(self, offset: int, length: int) -> EventColumns:
        """``length`` events from ``offset``, sharing the arrays' buffers."""
        return EventColumns(
            self.event_ids.slice(offset, length),
            self.rows.slice(offset, length),
            self.bodies.slice(offset, length),
            {name: counts.slice(offset, length) for name, counts in self.warnings.items()},
        )

    def filter(self, mask: pa.Array) -> EventColumns:
        """The events where ``mask`` (a boolean array, one per event) is true."""
        return EventColumns(
            self.event_ids.filter(mask),
            self.rows.filter(mask),
            self.bodies.filter(mask),
            {name: counts.filter(mask) for name, counts in self.warnings.items()},
        )

    @property
    def total_rows(self) -> int:
        """Source rows held by these events."""
        return int(pa.compute.sum(self.rows).as_py() or 0) if len(self.rows) else 0

    def to_events(self) -> list[PreparedEvent]:
        """One :class:`PreparedEvent` per event, in order."""
        bodies = self.bodies.to_pylist()
        ids, rows = self.event_ids.to_pylist(), self.rows.to_pylist()
        warned: list[tuple[str, ...]] = [()] * len(ids)
        for name in sorted(self.warnings):  # an event's warning names in order (objects may hold them in any)
            for position, count in enumerate(self.warnings[name].to_pylist()):
                if count:
                    warned[position] = (*warned[position], *([name] * int(count)))
        return [
            PreparedEvent(event_id, body if isinstance(body, bytes) else body.encode(), count, warnings)
            for event_id, count, body, warnings in zip(ids, rows, bodies, warned, strict=True)
        ]

    @classmethod
    def from_events(cls, events: Sequence[PreparedEvent]) -> EventColumns:
        """The columns of prepared event objects (a preparer that makes objects; the runner carries columns)."""
        if isinstance(events, EventColumns):
            return events
        names = dict.fromkeys(name for event in events for name in event.warnings)
        warnings = {name: pa.array([event.warnings.count(name) for event in events], pa.int32()) for name in names}
        return cls(
            pa.array([event.event_id for event in events], pa.string()),
            pa.array([event.rows for event in events], pa.int64()),
            pa.array([event.body for event in events], pa.binary()),
            warnings,
        )

    @classmethod
    def concat(cls, parts: Sequence[EventColumns]) -> EventColumns:
        """The events of ``parts``, in order, as one (types unified: ``string`` ids, ``int64`` rows, ``binary``
        bodies, ``int32`` warnings)."""
        if len(parts) == 1:
            return parts[0]
        names = dict.fromkeys(name for part in parts for name in part.warnings)

        def joined(arrays: list[pa.Array], kind: pa.DataType) -> pa.Array:
            if not arrays:
                return pa.array([], kind)
            return pa.concat_arrays([array.cast(kind) for array in arrays])

        return cls(
            joined([part.event_ids for part in parts], pa.string()),
            joined([part.rows for part in parts], pa.int64()),
            joined([part.bodies for part in parts], pa.binary()),
            {
                name: joined(
                    [part.warnings.get(name, pa.nulls(len(part), pa.int32()).fill_null(0)) for part in parts],
                    pa.int32(),
                )
                for name in names
            },
        )


def joined_bodies(events: Sequence[PreparedEvent], separator: bytes = b",") -> bytes:
    """The events' bodies joined by ``separator``, byte for byte as prepared; from the arrays when ``events`` is an
    :class:`EventColumns` (no event object is made)."""
    if isinstance(events, EventColumns):
        bodies = events.bodies
        if not pa.types.is_binary(bodies.type):
            bodies = bodies.cast(pa.binary())
        return separator.join(bodies.to_pylist())
    return separator.join(event.body for event in events)


def event_ids_of(events: Sequence[PreparedEvent]) -> list[str]:
    """The events' ids, in order; from the array when ``events`` is an :class:`EventColumns`."""
    if isinstance(events, EventColumns):
        return list(events.event_ids.to_pylist())
    return [event.event_id for event in events]


def concat_events(parts: Sequence[Sequence[PreparedEvent]]) -> Sequence[PreparedEvent]:
    """The events of ``parts`` in order: an :class:`EventColumns` when every part is one (a sender giving back
    the slices it did not send), else a list."""
    if parts and all(isinstance(part, EventColumns) for part in parts):
        columns = [part for part in parts if isinstance(part, EventColumns) and len(part)]
        return EventColumns.concat(columns) if columns else parts[0]
    return [event for part in parts for event in part]


@dataclass(frozen=True)
class RejectedColumns:
    """Rejected events as Arrow arrays of equal length (the fields of :class:`RejectedEvent`): a columnar
    preparer's rejections, as data.

    Args:
        event_ids: ``string``; reasons: ``string`` reason codes; details: ``string``; rows: integers;
        labels: ``string``, NULL where the rejection has no label.
    """

    event_ids: pa.Array
    reasons: pa.Array
    details: pa.Array
    rows: pa.Array
    labels: pa.Array

    def __post_init__(self) -> None:
        size = len(self.event_ids)
        if not all(len(array) == size for array in (self.reasons, self.details, self.rows, self.labels)):
            raise ValueError("event_ids, reasons, details, rows and labels must have the same length")

    def __len__(self) -> int:
        return len(self.event_ids)

    def to_list(self) -> list[RejectedEvent]:
        """One :class:`RejectedEvent` per rejection, in order."""
        return [
            RejectedEvent(event_id, reason, detail, int(rows), label)
            for event_id, reason, detail, rows, label in zip(
                self.event_ids.to_pylist(), self.reasons.to_pylist(), self.details.to_pylist(),
                self.rows.to_pylist(), self.labels.to_pylist(), strict=True,
            )
        ]  # fmt: skip


@dataclass
class PreparedBatch:
    """What one call to :meth:`Preparer.prepare` made of its rows.

    Events come as objects (``events``), as Arrow arrays (``columns``), or both; rejections as objects
    (``rejected``), as arrays (``rejected_columns``), or both. :meth:`all_columns` and :meth:`all_rejected` give
    them all, objects first. A preparer that makes many events should give columns: the runner then makes no
    object per event on its way to the sender and the ledger.
    """

    events: list[PreparedEvent] = field(default_factory=list)
    rejected: list[RejectedEvent] = field(default_factory=list)
    columns: EventColumns | None = None
    rejected_columns: RejectedColumns | None = None

    @property
    def rows(self) -> int:
        """Source rows accounted for: those in events plus those rejected."""
        columnar = self.columns.total_rows if self.columns is not None else 0
        refused = int(pa.compute.sum(self.rejected_columns.rows).as_py() or 0) if self.rejected_columns else 0
        return sum(event.rows for event in self.events) + columnar + sum(item.rows for item in self.rejected) + refused

    def all_events(self) -> list[PreparedEvent]:
        """Every prepared event as an object, objects first, then the columns'."""
        return self.events + self.columns.to_events() if self.columns is not None else self.events

    def all_columns(self) -> EventColumns:
        """Every prepared event as columns, objects first, then the columns'."""
        parts = [EventColumns.from_events(self.events)] if self.events or self.columns is None else []
        if self.columns is not None:
            parts.append(self.columns)
        return EventColumns.concat(parts)

    def all_rejected(self) -> list[RejectedEvent]:
        """Every rejection as an object, objects first."""
        extra = self.rejected_columns.to_list() if self.rejected_columns is not None else []
        return self.rejected + extra


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
class FailedEvent:
    """An event the vendor refused: its code and message, as the vendor gave them."""

    event_id: str
    code: str
    message: str


@dataclass
class DeliveryResult:
    """What became of the events handed to :meth:`Sender.send`.

    Every event handed in is in exactly one of ``sent``, ``failed`` or ``unsent``. ``unsent`` events were not
    accepted because of ``error``:

    - ``error`` is :class:`~offramp.core.errors.Transient` (a rate limit, a 5xx, a timeout): the runner sends the
      unsent events again after a wait (``retry_after_seconds`` when the vendor advised one);
    - ``error`` is anything else (a revoked grant, a missing permission: mark it
      :class:`~offramp.core.errors.Terminal`, with a ``hint``): the runner records what was sent and failed, records
      the unsent events as not sent, and stops the run. A sender that had settled part of a batch before a terminal
      answer (a batch split to isolate a refused event) returns this way, so nothing it achieved is lost.
    """

    sent: list[str] = field(default_factory=list)
    failed: list[FailedEvent] = field(default_factory=list)
    unsent: Sequence[PreparedEvent] = field(default_factory=list)  # a slice of the events handed in, or a list
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

        The runner hands in an :class:`EventColumns` (a sequence of events whose slices are columns again): join
        its bodies with :func:`joined_bodies` to build a request without making an object per event, and return
        slices of it as ``unsent``.

        Raises:
            ValueError: More than ``max_batch_size`` events (a caller's bug), before any request is made.
            Transient: Nothing of the batch was sent; the runner sends it all again after a wait.
            Exception: Anything else stops the run; the whole batch is recorded as not sent.
        """
        ...

    def preview(self, events: Sequence[PreparedEvent]) -> bytes:
        """The request body :meth:`send` would post for ``events``, byte for byte, without sending (dry runs)."""
        ...

    def close(self) -> None:
        """Release connections."""
        ...


__all__ = [
    "DeliveryResult",
    "EventColumns",
    "FailedEvent",
    "PreparedBatch",
    "PreparedEvent",
    "Preparer",
    "RejectedColumns",
    "RejectedEvent",
    "Sender",
    "concat_events",
    "event_ids_of",
    "joined_bodies",
]
