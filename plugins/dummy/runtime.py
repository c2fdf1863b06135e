"""The dummy destination's runtime: a preparer and a sender with failure knobs, and an in-memory "vendor".

Nothing leaves the process. The preparer turns every row into one event; the sender "delivers" events by keeping
them in memory (:attr:`DummySender.delivered`), so a test can check that each event arrived exactly once.

Every random draw is a hash of the seed, what is drawn for, and a key (the event id, or the batch's number), never
a shared random sequence. So the same event meets the same fate on every preparation and every resend, whatever
the order of batches and threads, and a failing test replays exactly with the same ``seed``:

- ``reject_prob``: per row, keyed by its event id, outcome ``rejected`` with reason ``dummy_reject``;
- ``fail_prob``: per event, keyed by its event id, outcome ``failed`` with code ``dummy_refused``;
- ``transient_prob``: per batch, keyed by the batch's number in this sender (0, 1, 2...; with several threads,
  batches take their numbers in the order they reach the sender).

Reason codes of rejections: ``missing_event_id`` (the query has an ``event_id`` column, and this row's is null or
blank) and ``dummy_reject`` (the ``reject_prob`` draw).
"""

from __future__ import annotations

import base64
import hashlib
import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from typing import Any

import orjson
import pyarrow as pa

from offramp.core import (
    DeliveryResult,
    DestinationContext,
    DestinationError,
    DestinationHooks,
    FailedEvent,
    PreparedBatch,
    PreparedEvent,
    RejectedEvent,
    Terminal,
    Transient,
)
from offramp.plugins.dummy import DummyDestinationSettings, DummyRunOptions

logger = logging.getLogger(__name__)

EVENT_ID_COLUMN = "event_id"
REFUSED_CODE = "dummy_refused"
REJECT_REASON = "dummy_reject"
MISSING_EVENT_ID_REASON = "missing_event_id"


class DummyTransientError(DestinationError, Transient):
    """The dummy vendor is "unavailable" for one batch (``transient_prob``)."""


class DummyTerminalError(DestinationError, Terminal):
    """The dummy vendor "revoked the grant" (``terminal_after_batches``)."""


def draw(seed: int, purpose: str, key: str) -> float:
    """A number in [0, 1) fixed by ``seed``, ``purpose`` and ``key``: the same inputs always give the same draw."""
    digest = hashlib.blake2b(f"{seed}\x00{purpose}\x00{key}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


def _json_default(value: Any) -> Any:
    # orjson handles str, numbers, bool, None, lists, dicts, date/time/datetime; Arrow also yields these.
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    if isinstance(value, timedelta):
        return value.total_seconds()
    raise TypeError(f"cannot encode a {type(value).__name__} value")


def _row_json(row: dict[str, Any]) -> bytes:
    return orjson.dumps(row, default=_json_default, option=orjson.OPT_NON_STR_KEYS)


def derived_event_id(row: dict[str, Any]) -> str:
    """The id of a row without an ``event_id`` column: a hash of its values, so a rerun derives the same id."""
    canonical = orjson.dumps(row, default=_json_default, option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS)
    return hashlib.sha256(canonical).hexdigest()[:32]


class DummyPreparer:
    """Turns each row into one :class:`PreparedEvent` whose body is the row as JSON.

    The event id is the row's ``event_id`` column as a string when the query has one, else :func:`derived_event_id`.
    The dummy reads every column, so :attr:`unknown_columns` is always empty, and it never holds rows back.
    """

    def __init__(self, settings: DummyDestinationSettings | None = None) -> None:
        self.settings = settings or DummyDestinationSettings()

    @property
    def unknown_columns(self) -> tuple[str, ...]:
        return ()

    def prepare(self, batch: pa.RecordBatch) -> PreparedBatch:
        result = PreparedBatch()
        has_event_id = EVENT_ID_COLUMN in batch.schema.names
        for row in batch.to_pylist():
            event_id = self._event_id(row, has_event_id)
            if event_id is None:
                result.rejected.append(
                    RejectedEvent(
                        event_id=derived_event_id(row),
                        reason=MISSING_EVENT_ID_REASON,
                        detail=f"the {EVENT_ID_COLUMN} column is null or blank; give every row an event id",
                    )
                )
            elif draw(self.settings.seed, "reject", event_id) < self.settings.reject_prob:
                result.rejected.append(
                    RejectedEvent(
                        event_id=event_id,
                        reason=REJECT_REASON,
                        detail="rejected on purpose by the dummy destination (reject_prob)",
                    )
                )
            else:
                result.events.append(PreparedEvent(event_id=event_id, body=_row_json(row)))
        logger.debug("dummy: prepared %d events, rejected %d rows", len(result.events), len(result.rejected))
        return result

    def finish(self) -> PreparedBatch:
        return PreparedBatch()

    def close(self) -> None:
        """Nothing to release."""

    @staticmethod
    def _event_id(row: dict[str, Any], has_event_id: bool) -> str | None:
        if not has_event_id:
            return derived_event_id(row)
        value = row[EVENT_ID_COLUMN]
        if value is None:
            return None
        text = value if isinstance(value, str) else str(value)
        return text if text.strip() else None


@dataclass(frozen=True)
class DeliveredEvent:
    """One event the dummy vendor accepted: its id, its body as sent, and the test code it was sent with (None:
    live traffic)."""

    event_id: str
    body: bytes
    test_event_code: str | None = None


class DummySender:
    """Sends events to an in-memory "vendor", failing according to the settings' knobs; thread-safe.

    Per call to :meth:`send`, in order: more than ``max_batch_size`` events raise :class:`ValueError` before
    anything happens; ``latency_ms`` is slept (outside the lock, so concurrent batches overlap as real requests
    do); once ``terminal_after_batches`` batches have been handed in, every further batch raises
    :class:`DummyTerminalError`; the ``transient_prob`` draw leaves the whole batch unsent with a
    :class:`DummyTransientError`; otherwise each event is refused by the ``fail_prob`` draw or delivered.

    What was delivered is kept in order in :attr:`delivered` (ids alone: :meth:`delivered_ids`). Senders opened
    through :data:`HOOKS` for one destination share one :class:`DummyVendor` (:func:`vendor`): what they delivered,
    and knobs a test sets on the vendor, apply to every one of them.
    """

    def __init__(
        self,
        settings: DummyDestinationSettings | None = None,
        vendor: DummyVendor | None = None,
        *,
        test_event_code: str | None = None,
    ) -> None:
        self._settings = settings or DummyDestinationSettings()
        self._vendor = vendor or DummyVendor()
        self._test_event_code = test_event_code
        self._lock = self._vendor.lock
        self._closed = False

    @property
    def _batches(self) -> int:
        return self._vendor.batches

    @_batches.setter
    def _batches(self, value: int) -> None:
        self._vendor.batches = value

    @property
    def _delivered(self) -> list[DeliveredEvent]:
        return self._vendor.delivered

    @property
    def settings(self) -> DummyDestinationSettings:
        """The knobs in force: the sender's settings, then what was set on its vendor."""
        knobs = self._vendor.knobs
        return self._settings.model_copy(update=knobs) if knobs else self._settings

    @property
    def max_batch_size(self) -> int:
        return self._settings.batch_size

    @property
    def delivered(self) -> list[DeliveredEvent]:
        """A copy of the events the "vendor" accepted, in the order it accepted them (resends included)."""
        with self._lock:
            return list(self._delivered)

    def delivered_ids(self) -> list[str]:
        """The ids of :attr:`delivered`, in order: a duplicate here is an event delivered twice."""
        return [event.event_id for event in self.delivered]

    def reconfigure(self, **knobs: Any) -> None:
        """Change knobs of a live sender, validated like settings: a test's way to make the vendor fail and recover.

        Raises:
            pydantic.ValidationError: A knob is unknown or out of range.
        """
        with self._lock:
            self._settings = DummyDestinationSettings.model_validate({**self._settings.model_dump(), **knobs})

    def would_refuse(self, event_id: str) -> bool:
        """Whether the ``fail_prob`` draw refuses this event under the current knobs (the same on every resend)."""
        settings = self.settings
        return draw(settings.seed, "refuse", event_id) < settings.fail_prob

    def send(self, events: Sequence[PreparedEvent]) -> DeliveryResult:
        if len(events) > self.max_batch_size:
            raise ValueError(f"a batch holds at most {self.max_batch_size} events, got {len(events)}")
        latency_ms = self.settings.latency_ms
        if latency_ms:
            time.sleep(latency_ms / 1000)
        with self._lock:
            if self._closed:
                raise RuntimeError("the dummy sender is closed")
            settings = self.settings
            number = self._batches
            self._batches += 1
            request_id = f"dummy-{number}"
            if settings.terminal_after_batches is not None and number >= settings.terminal_after_batches:
                raise DummyTerminalError(
                    f"the dummy vendor stopped after {settings.terminal_after_batches} batches "
                    "(terminal_after_batches)",
                    hint="this is the dummy destination's terminal_after_batches knob; unset it to send again",
                    request_id=request_id,
                )
            if draw(settings.seed, "transient", str(number)) < settings.transient_prob:
                logger.debug("dummy: batch %s of %d events failed transiently", request_id, len(events))
                error = DummyTransientError(
                    "the dummy vendor is unavailable for this batch (transient_prob)",
                    hint="retry after a wait",
                    request_id=request_id,
                )
                return DeliveryResult(unsent=list(events), error=error, request_ids=[request_id])
            result = DeliveryResult(request_ids=[request_id])
            for event in events:
                if draw(settings.seed, "refuse", event.event_id) < settings.fail_prob:
                    message = "the dummy vendor refused this event (fail_prob)"
                    result.failed.append(FailedEvent(event_id=event.event_id, code=REFUSED_CODE, message=message))
                else:
                    result.sent.append(event.event_id)
                    self._delivered.append(DeliveredEvent(event.event_id, event.body, self._test_event_code))
        logger.debug(
            "dummy: batch %s of %d events: %d sent, %d refused",
            request_id,
            len(events),
            len(result.sent),
            len(result.failed),
        )
        return result

    def preview(self, events: Sequence[PreparedEvent]) -> bytes:
        """The body the dummy "posts": a JSON array of the events' bodies, as :meth:`send` would hand them over."""
        if len(events) > self.max_batch_size:
            raise ValueError(f"a batch holds at most {self.max_batch_size} events, got {len(events)}")
        return b"[" + b",".join(event.body for event in events) + b"]"

    def close(self) -> None:
        """Refuse further sends; what was delivered stays readable."""
        with self._lock:
            self._closed = True


class DummyVendor:
    """The in-memory "vendor" of one dummy destination: what it accepted, and knobs that override the settings.

    ``knobs`` (validated like settings by :meth:`set`) apply to every sender of the destination, opened before or
    after: a test's way to make the vendor fail and recover while the runner drives its own sender.
    """

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.batches = 0
        self.delivered: list[DeliveredEvent] = []
        self.knobs: dict[str, Any] = {}

    def set(self, **knobs: Any) -> None:
        """Override knobs; raises pydantic.ValidationError for an unknown or out-of-range one."""
        merged = {**self.knobs, **knobs}
        DummyDestinationSettings.model_validate(merged)
        with self.lock:
            self.knobs = merged

    def reset(self) -> None:
        """Drop every override: the senders' settings apply again."""
        with self.lock:
            self.knobs = {}

    def delivered_ids(self) -> list[str]:
        """The ids of the events accepted so far, in order, repeats included."""
        with self.lock:
            return [event.event_id for event in self.delivered]


_VENDORS: dict[tuple[str, str], DummyVendor] = {}
_VENDORS_LOCK = threading.Lock()


def vendor(workspace: str, destination: str) -> DummyVendor:
    """The vendor of the dummy destination ``destination`` of ``workspace`` in this process (made on first use)."""
    with _VENDORS_LOCK:
        return _VENDORS.setdefault((workspace, destination), DummyVendor())


def open_preparer(context: DestinationContext) -> DummyPreparer:
    """The hook the framework calls to prepare rows for a dummy destination."""
    settings = context.settings
    assert isinstance(settings, DummyDestinationSettings)
    return DummyPreparer(settings)


def open_sender(context: DestinationContext) -> DummySender:
    """The hook the framework calls to send to a dummy destination (it reads no credential: nothing is sent)."""
    settings, options = context.settings, context.options
    assert isinstance(settings, DummyDestinationSettings) and isinstance(options, DummyRunOptions)
    return DummySender(
        settings, vendor(context.workspace, context.destination), test_event_code=options.test_event_code
    )


HOOKS = DestinationHooks(open_preparer=open_preparer, open_sender=open_sender)


__all__ = [
    "HOOKS",
    "DeliveredEvent",
    "DummyPreparer",
    "DummySender",
    "DummyVendor",
    "DummyTerminalError",
    "DummyTransientError",
    "EVENT_ID_COLUMN",
    "MISSING_EVENT_ID_REASON",
    "REFUSED_CODE",
    "REJECT_REASON",
    "derived_event_id",
    "draw",
    "open_preparer",
    "open_sender",
    "vendor",
]
