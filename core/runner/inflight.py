"""Requests in flight: what a run sent without knowing yet what became of it, and what that means on resume.

Before each request, the sender records it (one ``run_requests`` row: its number, when, the ledger keys of its
events) in a transaction that also checks the run's lease (offramp.core.runner.fencing): check, record, send. The
ledger checkpoint that records the answer marks the request settled in the same transaction. A process killed
with requests in flight leaves them unsettled: their events may be at the vendor although the ledger does not
hold them (the vendor may have accepted the request; the ledger writer may have lagged behind its answer).

Resending such an event is harmless within the vendor's deduplication window (TikTok: 48 hours after the first
send, a property of the destination type: ``DestinationCapabilities.dedup_window_seconds``), and a double-counted
conversion after it. So a resume, or a mode ``new`` run, sends them again only while the window lasts; after it,
they are not sent unless the user asks (``--resend-unknown``), and the ledger counts them ``unknown`` with
:data:`UNKNOWN_PAST_DEDUP_WINDOW`.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import pyarrow as pa
import pyarrow.compute as pc
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from offramp.core.destination_api import EventColumns, PreparedEvent
from offramp.core.hints import offramp_command
from offramp.core.plugin_types import DestinationCapabilities
from offramp.core.runner.fencing import Lease
from offramp.core.runner.packed_keys import unpack_keys
from offramp.core.runner.types import UNKNOWN_PAST_DEDUP_WINDOW, RunSummary
from offramp.core.state.models import InFlightRequest, LedgerBatch, RowOutcome, utcnow
from offramp.core.state.store import StateStore

log = logging.getLogger(__name__)

UNKNOWN_MESSAGE = (
    "this event was in a request whose answer was never recorded (the run stopped), longer ago than the "
    "destination's deduplication window: the vendor may hold it, and a resend could count it twice; send it anyway "
    "with --resend-unknown"
)


def dedup_window(capabilities: DestinationCapabilities) -> timedelta | None:
    """How long a resend stays harmless: None when the vendor deduplicates forever, zero when it does not at all."""
    if not capabilities.supports_dedupe:
        return timedelta(0)
    if capabilities.dedup_window_seconds is None:
        return None
    return timedelta(seconds=capabilities.dedup_window_seconds)


class RequestLog:
    """Records a run's requests before they are sent (called by the sender threads, so thread-safe).

    ``key`` gives the ledger's keys of events' ids (offramp.core.runner.ledger.keys_of), what resume compares.
    """

    def __init__(self, store: StateStore, lease: Lease, key: Callable[[list[str] | pa.Array], list[str]]) -> None:
        self._store, self._lease, self._key = store, lease, key
        self._lock = threading.Lock()
        with store.read_session() as session:
            last = session.scalar(
                select(func.max(InFlightRequest.request_no)).where(InFlightRequest.run_id == lease.run_id)
            )
        self._next = int(last or 0) + 1  # numbers go on across resumes: this process alone holds the run

    def open(self, events: Sequence[PreparedEvent]) -> int | None:
        """Record a request of ``events`` about to be sent: its number, or None when the lease is lost (then the
        request must not be sent)."""
        with self._lock:
            number, self._next = self._next, self._next + 1
        ids = events.event_ids if isinstance(events, EventColumns) else [event.event_id for event in events]
        keys = self._key(ids)
        with self._store.session() as session:
            if not self._lease.hold(session):
                return None
            run_id = self._lease.run_id
            session.add(InFlightRequest(run_id=run_id, request_no=number, sent_at=utcnow(), event_keys=keys))
        return number


def settle(session: Session, run_id: str, numbers: Sequence[int]) -> None:
    """Mark requests answered (in the ledger checkpoint that records their events); their keys are no longer kept."""
    if numbers:
        session.execute(
            update(InFlightRequest)
            .where(InFlightRequest.run_id == run_id, InFlightRequest.request_no.in_(list(numbers)))
            .values(settled=True, event_keys=[])
            .execution_options(synchronize_session=False)
        )


@dataclass
class Unknown:
    """Events of unsettled requests that were sent longer ago than the deduplication window."""

    keys: set[str] = field(default_factory=set)
    oldest: datetime | None = None  # when the oldest of those requests was sent


def _not_in(keys: list[str], known: pa.Array) -> list[str]:
    """``keys`` that ``known`` (a string array) does not hold, in order."""
    if not keys or len(known) == 0:
        return list(keys)
    array = pa.array(keys, pa.string())
    return list(array.filter(pc.invert(pc.is_in(array, value_set=known))).to_pylist())


def unsettled(session: Session, run_ids: Iterable[str], settled: pa.Array, window: timedelta | None) -> Unknown:
    """The ledger keys of events in unsettled requests of ``run_ids``, sent more than ``window`` ago, that are not
    in ``settled`` (the keys whose outcome the ledger knows).

    Only unsettled requests are read (those in flight when a process died), so memory stays small.
    """
    found = Unknown()
    ids = list(run_ids)
    if not ids:
        return found
    now = utcnow()
    query = select(InFlightRequest).where(InFlightRequest.run_id.in_(ids), InFlightRequest.settled.is_(False))
    for request in session.scalars(query):
        left = _not_in(list(request.event_keys), settled)
        if not left:
            continue
        if window is not None and now - request.sent_at > window:
            found.keys.update(left)
            found.oldest = min(found.oldest or request.sent_at, request.sent_at)
    return found


def tidy(session: Session, run_id: str) -> None:
    """At the end of a pass: mark settled the run's unsettled requests whose every event the ledger now holds (a
    resume sent them again under new request numbers). Only when the run has unsettled requests (a pass that was
    killed) does it read the run's settled keys, once, and compare each request's keys with them as arrays."""
    requests = list(
        session.scalars(
            select(InFlightRequest).where(InFlightRequest.run_id == run_id, InFlightRequest.settled.is_(False))
        )
    )
    if not requests:
        return
    # Not "unknown": such a request stays unresolved, for --resend-unknown to find.
    parts = [pa.array(list(session.scalars(select(RowOutcome.event_id).where(
        RowOutcome.run_id == run_id, RowOutcome.outcome.in_(("sent", "rejected", "skipped"))
    ))), pa.string())]  # fmt: skip
    for blob in session.scalars(select(LedgerBatch.keys).where(LedgerBatch.run_id == run_id)):
        parts.append(unpack_keys(blob)[0])
    known = pa.concat_arrays(parts)
    done = [request.request_no for request in requests if not _not_in(list(request.event_keys), known)]
    settle(session, run_id, done)


def unknown_keys(session: Session, run_ids: Iterable[str]) -> list[str]:
    """Ledger keys the runs recorded as ``unknown`` (one entry each: never a batch)."""
    ids = list(run_ids)
    if not ids:
        return []
    query = select(RowOutcome.event_id).where(RowOutcome.run_id.in_(ids), RowOutcome.outcome == "unknown")
    return list(session.scalars(query))


def notice(found: Unknown, window: timedelta | None, *, resend: bool) -> str | None:
    """What a resume or mode-``new`` run says before it sends anything, when requests are older than the window."""
    if found.oldest is None or window is None:
        return None
    hours = (utcnow() - found.oldest).total_seconds() / 3600
    limit = window.total_seconds() / 3600
    head = (
        f"{len(found.keys)} events were in requests whose answers were never recorded (a run of this orchestration "
        f"stopped with them in flight), sent {hours:.0f} h ago, longer than the destination's {limit:.0f} h "
        "deduplication window"
    )
    if resend:
        return f"{head}: sending them again (--resend-unknown); any the vendor already had will count twice"
    return (
        f"{head}: they are not sent again and count as unknown ({UNKNOWN_PAST_DEDUP_WINDOW}), since a resend could "
        "count them twice; add --resend-unknown to send them anyway"
    )


def plan(
    session: Session,
    run_id: str,
    *,
    resumed: bool,
    earlier: Sequence[str],
    settled: pa.Array,
    delivered: pa.Array,
    window: timedelta | None,
    resend: bool,
) -> tuple[pa.Array, str | None]:
    """The ledger keys a run must not send because their outcome is unknown, and the notice to print first.

    ``resumed``: the run is a resume of ``run_id`` (its own unsettled requests count; ``settled`` holds the keys
    its ledger settled). ``earlier``: for mode ``new``, the orchestration's earlier runs, whose unsettled requests
    and ``unknown`` entries count unless ``delivered`` (sent by one of them) holds the key. With ``resend`` nothing
    is held back; the notice still says what is sent again.
    """
    found = Unknown()
    if resumed:
        found = unsettled(session, [run_id], settled, window)
    if earlier:
        before = unsettled(session, earlier, delivered, window)
        found.keys |= before.keys
        if before.oldest is not None:
            found.oldest = min(found.oldest or before.oldest, before.oldest)
        found.keys |= set(_not_in(unknown_keys(session, earlier), delivered))
    said = notice(found, window, resend=resend)
    return pa.array([] if resend else sorted(found.keys), pa.string()), said


def report_unknown(summary: RunSummary, rows: int, orchestration: str) -> None:
    """A finished run that holds unknown events is not a plain success: say so, and how to send them anyway."""
    if summary.status == "succeeded":
        summary.status = "partially_failed"
    advice = (
        f"{rows} rows were not sent again because their outcome is unknown ({UNKNOWN_PAST_DEDUP_WINDOW}); if the "
        "vendor did not receive them, send them with: "
        + offramp_command("run", orchestration, "--resume", "--resend-unknown", workspace=summary.workspace)
    )
    summary.hint = f"{summary.hint}; {advice}" if summary.hint else advice


__all__ = [
    "UNKNOWN_MESSAGE",
    "RequestLog",
    "Unknown",
    "dedup_window",
    "notice",
    "plan",
    "report_unknown",
    "settle",
    "tidy",
    "unknown_keys",
    "unsettled",
]
