"""The per-row ledger of a run: one entry per event, keyed by its ``event_id`` (see :func:`key`), never raw PII.

An entry holds the event's outcome (``sent``, ``rejected``, ``failed``, ``skipped``), the reason code or the
vendor's code and message, attempts, the batch and the vendor's request id, and how many source rows (line items)
it holds. The run's counts are sums over the ledger, so they always add up.

Keys. Users choose their event_id column, so an id may be of any length, but the ledger's key column holds 255
characters (and no database index could hold a 1 MB id). So entries are keyed by :func:`key` of the event id: an
id of at most 255 characters is its own key; a longer one is keyed by a stand-in of exactly 255 characters, readable
and unique: the id's first 183 characters, then ``…sha256:``, then the SHA-256 of the whole id (UTF-8, 64 lower-case
hex digits). The stand-in is what ``runs show --rejects/--failed`` lists; the event itself goes to the vendor with
its id as given. Whatever compares prepared events with ids read from the ledger (resume, replay, mode ``new``)
compares ``key(event_id)``.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from functools import lru_cache
from hashlib import sha256
from typing import Any, NamedTuple

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from offramp.core.state.models import RowOutcome, Run, utcnow
from offramp.core.state.store import StateStore

OUTCOMES = ("sent", "rejected", "failed", "skipped")

KEY_LENGTH = 255  # RowOutcome.event_id's String(255)
_DIGEST_MARK = "…sha256:"
_PREFIX_LENGTH = KEY_LENGTH - len(_DIGEST_MARK) - 64  # 183: the stand-in fills the column exactly


def key(event_id: str) -> str:
    """The ledger's key of an event id: the id itself up to 255 characters, else its readable, unique stand-in."""
    if len(event_id) <= KEY_LENGTH:
        return event_id
    # surrogatepass: an id with a lone surrogate still gets a stand-in instead of stopping the run.
    digest = sha256(event_id.encode("utf-8", "surrogatepass")).hexdigest()
    return f"{event_id[:_PREFIX_LENGTH]}{_DIGEST_MARK}{digest}"


class Entry(NamedTuple):
    """One event's outcome, as the ledger keeps it (a tuple: a run makes one per event)."""

    event_id: str
    outcome: str
    rows: int
    reason_code: str | None = None
    vendor_code: int | None = None
    message: str | None = None
    attempts: int = 0
    batch: int | None = None
    request_id: str | None = None


# The one statement a run executes per event, written out rather than built by SQLAlchemy: through its per-row
# parameter processing the ledger cost more than preparing the events it records. SQLite and PostgreSQL both
# take this upsert; the columns are Entry's, between the run id and the time.
_UPSERT = (
    "INSERT INTO row_outcomes (run_id, " + ", ".join(Entry._fields) + ", updated_at) VALUES ({marks}) "
    "ON CONFLICT (run_id, event_id) DO UPDATE SET rows = row_outcomes.rows + excluded.rows, "
    "updated_at = excluded.updated_at"
)


@lru_cache(maxsize=8)
def _upsert_sql(paramstyle: str) -> str:
    mark = "?" if paramstyle == "qmark" else "%s"
    return _UPSERT.format(marks=", ".join([mark] * (len(Entry._fields) + 2)))


def record(session: Session, run_id: str, entries: Sequence[Entry]) -> None:
    """Write entries under :func:`key` of their event ids; an event id seen again in the same run (line items that
    were not adjacent) adds its rows."""
    if not entries:
        return
    # One entry per event id per call: merge repeats here, the database merges across calls.
    merged: dict[str, Entry] = {}
    for entry in entries:
        if len(entry.event_id) > KEY_LENGTH:
            entry = entry._replace(event_id=key(entry.event_id))
        previous = merged.get(entry.event_id)
        merged[entry.event_id] = entry if previous is None else previous._replace(rows=previous.rows + entry.rows)
    connection = session.connection()
    dialect = connection.dialect
    # The timestamp, the one typed value, is processed once, exactly as the column type would process it.
    process = RowOutcome.__table__.c.updated_at.type.dialect_impl(dialect).bind_processor(dialect)
    stamp = process(utcnow()) if process is not None else utcnow()
    parameters = [(run_id, *entry, stamp) for entry in merged.values()]
    connection.exec_driver_sql(_upsert_sql(dialect.paramstyle), parameters)


class Writer:
    """Writes one run's entries on a thread of its own, in order, a few writes behind the caller at most.

    Writing the ledger (SQLite's or PostgreSQL's work, outside the GIL) then overlaps with preparing the next
    batch instead of following it. What is queued but not yet written when the process dies is not lost in effect:
    those events are not settled in the ledger, so ``--resume`` sends them again and TikTok drops the duplicates by
    event_id, the same as for an event whose answer arrived just before a crash. A failed write is raised by the
    next call.
    """

    def __init__(self, store: StateStore, run_id: str, depth: int = 4) -> None:
        self._store, self._run_id, self._depth = store, run_id, depth
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ledger")
        self._pending: deque[Future[None]] = deque()

    def write(self, entries: Sequence[Entry]) -> None:
        """Queue entries (waiting while ``depth`` writes are already queued)."""
        while self._pending and (self._pending[0].done() or len(self._pending) >= self._depth):
            self._pending.popleft().result()
        self._pending.append(self._pool.submit(self._write, entries))

    def _write(self, entries: Sequence[Entry]) -> None:
        with self._store.session() as session:
            record(session, self._run_id, entries)

    def close(self) -> None:
        """Wait until everything queued is written; raise the first failed write."""
        try:
            while self._pending:
                self._pending.popleft().result()
        finally:
            self._pool.shutdown(wait=True)


def event_ids(session: Session, run_ids: Iterable[str], outcomes: Sequence[str]) -> set[str]:
    """Ledger keys (:func:`key` of the event ids) with one of ``outcomes`` in any of the runs."""
    ids = list(run_ids)
    if not ids:
        return set()
    query = select(RowOutcome.event_id).where(RowOutcome.run_id.in_(ids), RowOutcome.outcome.in_(outcomes))
    return set(session.scalars(query))


def forget(session: Session, run_id: str, outcome: str) -> None:
    """Drop a run's entries of one outcome (a resumed run sends its unsettled and failed events again)."""
    session.execute(delete(RowOutcome).where(RowOutcome.run_id == run_id, RowOutcome.outcome == outcome))


def totals(session: Session, run_id: str) -> dict[str, Any]:
    """Row counts by outcome, rejected rows by reason, failed rows by vendor code."""
    counts = dict.fromkeys(OUTCOMES, 0)
    for outcome, rows in session.execute(
        select(RowOutcome.outcome, func.sum(RowOutcome.rows))
        .where(RowOutcome.run_id == run_id)
        .group_by(RowOutcome.outcome)
    ):
        counts[outcome] = int(rows or 0)
    reasons = {
        code: int(rows or 0)
        for code, rows in session.execute(
            select(RowOutcome.reason_code, func.sum(RowOutcome.rows))
            .where(RowOutcome.run_id == run_id, RowOutcome.outcome.in_(("rejected", "skipped")))
            .group_by(RowOutcome.reason_code)
        )
        if code is not None
    }
    # Failed rows by the vendor's code, or by our own reason (not_sent) when the vendor never answered for them.
    vendor: dict[str, int] = {}
    for code, reason, rows in session.execute(
        select(RowOutcome.vendor_code, RowOutcome.reason_code, func.sum(RowOutcome.rows))
        .where(RowOutcome.run_id == run_id, RowOutcome.outcome == "failed")
        .group_by(RowOutcome.vendor_code, RowOutcome.reason_code)
    ):
        label = str(code) if code is not None else (reason or "unknown")
        vendor[label] = vendor.get(label, 0) + int(rows or 0)
    return {"counts": counts, "reasons": reasons, "vendor_codes": vendor}


def earlier_runs(session: Session, orchestration_id: int, before: str) -> list[str]:
    """Ids of the orchestration's earlier runs that really sent (not dry runs)."""
    query = select(Run.id).where(Run.orchestration_id == orchestration_id, Run.id != before, Run.dry_run.is_(False))
    return list(session.scalars(query))


__all__ = [
    "KEY_LENGTH",
    "OUTCOMES",
    "Entry",
    "Writer",
    "earlier_runs",
    "event_ids",
    "forget",
    "key",
    "record",
    "totals",
]
