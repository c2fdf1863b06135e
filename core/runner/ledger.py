"""The ledger of a run: every event's outcome, keyed by its ``event_id`` (see :func:`key`), never raw PII.

Two shapes. Events with a story of their own (rejected, failed, unknown: a reason, a vendor's code and message) are
one ``row_outcomes`` entry each (:class:`Entry`). Events settled together with one outcome (a batch the vendor
accepted, a dry run's batch, events skipped whole by mode ``new`` or a replay) are one ``ledger_batches`` row per
batch (:class:`SettledBatch`): its event and row counts, and its events' keys and rows packed into one blob
(``offramp.core.runner.packed_keys``). Writing one row per batch instead of one per event is what keeps the ledger
off a run's critical path (docs/benchmarks.md); every reader here reads both shapes, so the runs recorded before the
batch shape existed (all per event) read as they always did.

An entry holds the event's outcome (``sent``, ``rejected``, ``failed``, ``skipped``), the reason code or the
vendor's code and message, attempts, the batch and the vendor's request id, and how many source rows (line items)
it holds; a settled batch holds the same for all its events at once. The run's counts are sums over the ledger, so
they always add up: rows are the sums of ``rows``, events the number of entries plus the events of the settled
batches (:func:`totals`; the made-up entry of rows never prepared counts as no event). The warnings
of an event (names only, ``invalid_phone``) are written with its entry, in the same transaction, to
``run_warnings`` (:func:`record_warnings`), for ``runs show --warnings``.

Keys. Users choose their event_id column, so an id may be of any length, but the ledger's key column holds 255
characters (and no database index could hold a 1 MB id). So entries are keyed by :func:`key` of the event id: an
id of at most 255 characters is its own key; a longer one is keyed by a stand-in of exactly 255 characters, readable
and unique: the id's first 183 characters, then ``…sha256:``, then the SHA-256 of the whole id (UTF-8, 64 lower-case
hex digits). The stand-in is what ``runs show --rejects/--failed`` lists; the event itself goes to the vendor with
its id as given. Whatever compares prepared events with ids read from the ledger (resume, replay, mode ``new``)
compares ``key(event_id)``.

An id that a store cannot hold as it is (a NUL, which PostgreSQL refuses in text, or an unpaired surrogate, which
is no UTF-8) is keyed by the same kind of stand-in, with those characters shown as U+FFFD, so that every store keys
it alike; the runner rejects such events (``invalid_event_id``) rather than send an id it could not record. The
later rows of an event id the run already prepared are kept under :func:`repeat_key` of the id, so the id's own
entry says what the vendor received. Every other text an entry holds is made storable before it is written (NUL
replaced, cut to its column's length), so that a ledger write never fails on a value after the vendor accepted.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from functools import lru_cache
from hashlib import sha256
from typing import Any, Final, NamedTuple

import pyarrow as pa
import pyarrow.compute as pc
from sqlalchemy import delete, func, insert, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from offramp.core.errors import StateError
from offramp.core.hints import offramp_command
from offramp.core.runner import inflight
from offramp.core.runner.fencing import Lease
from offramp.core.runner.packed_keys import pack_keys, unpack_keys
from offramp.core.state.models import EventWarning, LedgerBatch, RowOutcome, Run, utcnow
from offramp.core.state.store import StateStore

OUTCOMES = ("sent", "rejected", "failed", "skipped", "unknown")  # unknown: see offramp.core.runner.inflight

KEY_LENGTH = 255  # RowOutcome.event_id's String(255)
_DIGEST_MARK = "…sha256:"
_PREFIX_LENGTH = KEY_LENGTH - len(_DIGEST_MARK) - 64  # 183: the stand-in fills the column exactly


def storable(text: str) -> bool:
    """Whether every store holds ``text`` as it is: no NUL (PostgreSQL refuses it), valid UTF-8 (no lone surrogate)."""
    if "\x00" in text:
        return False
    if text.isascii():
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _shown(text: str) -> str:
    """``text`` with what a store cannot hold (NUL, unpaired surrogates) shown as U+FFFD."""
    if storable(text):
        return text
    return "".join("\ufffd" if char == "\x00" or "\ud800" <= char <= "\udfff" else char for char in text)


def key(event_id: str) -> str:
    """The ledger's key of an event id: the id itself up to 255 characters, else its readable, unique stand-in."""
    if len(event_id) <= KEY_LENGTH and storable(event_id) and _OWN_KEYS not in event_id:
        return event_id
    # surrogatepass: an id with a lone surrogate still gets a stand-in instead of stopping the run.
    digest = sha256(event_id.encode("utf-8", "surrogatepass")).hexdigest()
    return f"{_shown(event_id[:_PREFIX_LENGTH])}{_DIGEST_MARK}{digest}"


# A noncharacter (U+FFFF, "not for interchange"): the keys offramp makes up (repeats) hold it, and an id that holds
# it is kept under its digest stand-in, so no event id is ever its own key and a made-up key at once.
_OWN_KEYS = "\uffff"
_REPEAT_MARK = f"{_OWN_KEYS}…repeated"


REPEATED_EVENT_ID: Final = "repeated_event_id"  # the reason of the later rows of an event the run already prepared
NOT_PREPARED: Final = "not_prepared"  # the reason of rows read that no preparer gave back (it raised, or held them)
_NOT_PREPARED_KEY = f"{_OWN_KEYS}…not prepared"


def not_prepared_key() -> str:
    """The made-up key of a run's rows that were read but never prepared: they have no event id yet. It holds the
    mark no event id's key holds (:func:`key`), so it cannot be a real event's; its rows add up across calls."""
    return _NOT_PREPARED_KEY


def entry_key(event_id: str, reason: str | None) -> str:
    """The key of a ledger entry: :func:`repeat_key` for the repeated rows of an event, the made-up key itself for
    rows not prepared, else :func:`key`."""
    if reason == NOT_PREPARED and event_id == _NOT_PREPARED_KEY:
        return event_id
    return repeat_key(event_id) if reason == REPEATED_EVENT_ID else key(event_id)


def shown_key(stored: str) -> str:
    """A ledger key as people read it: the made-up keys' mark (a noncharacter) left out."""
    return stored.replace(_OWN_KEYS, "")


def repeat_key(event_id: str) -> str:
    """The key of the later rows of an event id the run already prepared: ``key(event_id)`` then ``…repeated``.

    When that would not fit, the id's first 174 characters, ``…sha256:``, its digest and ``…repeated`` (255).
    """
    own = key(event_id)
    if len(own) + len(_REPEAT_MARK) <= KEY_LENGTH:
        return own + _REPEAT_MARK
    digest = sha256(event_id.encode("utf-8", "surrogatepass")).hexdigest()
    prefix = KEY_LENGTH - len(_DIGEST_MARK) - 64 - len(_REPEAT_MARK)
    return f"{_shown(event_id[:prefix])}{_DIGEST_MARK}{digest}{_REPEAT_MARK}"


def keys(event_ids: pa.Array | pa.ChunkedArray) -> pa.Array:
    """:func:`key` of every id of a string array, a column at a time: the ids that are their own key (nearly all)
    are kept as they are, and only the others are given their stand-in in Python."""
    if isinstance(event_ids, pa.ChunkedArray):
        event_ids = event_ids.combine_chunks()
    if not pa.types.is_string(event_ids.type):
        event_ids = event_ids.cast(pa.string())
    if len(event_ids) == 0:
        return event_ids
    # Arrow strings are valid UTF-8 (no lone surrogate): too long, a NUL, or the made-up keys' mark.
    odd = pc.or_(
        pc.greater(pc.utf8_length(event_ids), KEY_LENGTH),
        pc.or_(pc.match_substring(event_ids, "\x00"), pc.match_substring(event_ids, _OWN_KEYS)),
    )
    if not pc.any(odd).as_py():
        return event_ids
    values = event_ids.to_pylist()
    flags = odd.to_pylist()
    return pa.array([key(value) if flag else value for value, flag in zip(values, flags, strict=True)], pa.string())


def keys_of(event_ids: Sequence[str] | pa.Array) -> list[str]:
    """:func:`key` of each id, as a list (an Arrow array is keyed a column at a time)."""
    if isinstance(event_ids, (pa.Array, pa.ChunkedArray)):
        return list(keys(event_ids).to_pylist())
    return [key(event_id) for event_id in event_ids]


class SettledBatch(NamedTuple):
    """Events settled together with one outcome (``sent``, or ``skipped`` with a reason): one ledger row.

    ``keys`` are the events' ledger keys (:func:`keys` of their ids), distinct; ``rows`` each event's source rows.
    """

    outcome: str
    keys: pa.Array
    rows: pa.Array
    reason_code: str | None = None
    message: str | None = None
    attempts: int = 0
    batch: int | None = None
    request_id: str | None = None


def total_rows(batch: SettledBatch) -> int:
    """The source rows of a settled batch's events."""
    return int(pc.sum(batch.rows).as_py() or 0) if len(batch.rows) else 0


BATCH_OUTCOMES = ("sent", "skipped")  # what a SettledBatch may hold; every other outcome is per event


def record_batches(session: Session, run_id: str, batches: Sequence[SettledBatch]) -> None:
    """Write settled batches, one row each."""
    rows = []
    for item in batches:
        if item.outcome not in BATCH_OUTCOMES:
            raise ValueError(f"a settled batch is sent or skipped, not {item.outcome}")
        if len(item.keys) == 0:
            continue
        total = total_rows(item)
        fitted = _fitted(Entry("", item.outcome, total, item.reason_code, None, item.message, item.attempts,
                               item.batch, item.request_id))  # fmt: skip
        rows.append(
            {
                "run_id": run_id, "outcome": item.outcome, "reason_code": fitted.reason_code,
                "message": fitted.message, "events": len(item.keys), "rows": total, "attempts": item.attempts,
                "batch": item.batch, "request_id": fitted.request_id, "keys": pack_keys(item.keys, item.rows),
                "updated_at": utcnow(),
            }
        )  # fmt: skip
    if rows:
        session.execute(insert(LedgerBatch), rows)


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
        stored = entry_key(entry.event_id, entry.reason_code)
        if stored != entry.event_id:
            entry = entry._replace(event_id=stored)
        if not _fits(entry):
            entry = _fitted(entry)
        previous = merged.get(entry.event_id)
        merged[entry.event_id] = entry if previous is None else previous._replace(rows=previous.rows + entry.rows)
    connection = session.connection()
    dialect = connection.dialect
    # The timestamp, the one typed value, is processed once, exactly as the column type would process it.
    process = RowOutcome.__table__.c.updated_at.type.dialect_impl(dialect).bind_processor(dialect)
    stamp = process(utcnow()) if process is not None else utcnow()
    parameters = [(run_id, *entry, stamp) for entry in merged.values()]
    connection.exec_driver_sql(_upsert_sql(dialect.paramstyle), parameters)


_WARNINGS_UPSERT = (
    "INSERT INTO run_warnings (run_id, event_id, warnings) VALUES ({marks}) "
    "ON CONFLICT (run_id, event_id) DO UPDATE SET warnings = excluded.warnings"
)

# An event's warnings as the writer is handed them: (event id, warning names).
Warned = tuple[str, tuple[str, ...]]


def record_warnings(session: Session, run_id: str, warned: Sequence[Warned]) -> None:
    """Write the warning names of events under :func:`key` of their ids (``runs show --warnings``); names only."""
    merged: dict[str, set[str]] = {}
    for event_id, names in warned:
        if names:
            merged.setdefault(key(event_id), set()).update(_shown(name)[:_TEXT_LENGTH] for name in names)
    if not merged:
        return
    connection = session.connection()
    mark = "?" if connection.dialect.paramstyle == "qmark" else "%s"
    statement = _WARNINGS_UPSERT.format(marks=", ".join([mark] * 3))
    connection.exec_driver_sql(statement, [(run_id, k, ",".join(sorted(v))) for k, v in merged.items()])


def warned_events(session: Session, run_id: str) -> list[tuple[str, list[str]]]:
    """(ledger key, warning names) of a run's events that had warnings, by key."""
    query = select(EventWarning.event_id, EventWarning.warnings).where(EventWarning.run_id == run_id)
    return [(event_id, names.split(",")) for event_id, names in session.execute(query.order_by(EventWarning.event_id))]


# What the columns hold (models.RowOutcome): a longer or unstorable value from a vendor would fail the write after
# the vendor accepted the batch, and every --resume would send it again and fail again.
_TEXT_LENGTH = 64  # reason_code, request_id
_INT_RANGE = range(-(2**31), 2**31)  # vendor_code: INTEGER


def _fits(entry: Entry) -> bool:
    return (
        (entry.reason_code is None or (len(entry.reason_code) <= _TEXT_LENGTH and storable(entry.reason_code)))
        and (entry.request_id is None or (len(entry.request_id) <= _TEXT_LENGTH and storable(entry.request_id)))
        and (entry.message is None or storable(entry.message))
        and (entry.vendor_code is None or entry.vendor_code in _INT_RANGE)
    )


def _fitted(entry: Entry) -> Entry:
    """``entry`` with each value made storable: NUL shown as U+FFFD, text cut to its column, an out-of-range vendor
    code kept as text in reason_code."""
    reason, vendor = entry.reason_code, entry.vendor_code
    if vendor is not None and vendor not in _INT_RANGE:
        reason, vendor = reason or str(vendor), None
    return entry._replace(
        reason_code=None if reason is None else _shown(reason)[:_TEXT_LENGTH],
        vendor_code=vendor,
        request_id=None if entry.request_id is None else _shown(entry.request_id)[:_TEXT_LENGTH],
        message=None if entry.message is None else _shown(entry.message),
    )


def _what_failed(exc: BaseException) -> str:
    """The kind of a failed ledger write, and the driver's words only where they are known to quote no value (the
    run's error is stored, and a driver's message may quote an event id)."""
    text = str(getattr(exc, "orig", None) or exc).lower()
    for known in ("database is locked", "database or disk is full", "disk i/o error", "no space left on device"):
        if known in text:
            return f"{type(exc).__name__}: {known}"
    return type(exc).__name__


class Writer:
    """Writes one run's entries on a thread of its own, in order, a few writes behind the caller at most.

    Writing the ledger (SQLite's or PostgreSQL's work, outside the GIL) then overlaps with preparing the next
    batch instead of following it. What is queued but not yet written when the process dies is not lost in effect:
    those events are not settled in the ledger, so ``--resume`` sends them again and TikTok drops the duplicates by
    event_id, the same as for an event whose answer arrived just before a crash. A failed write is raised by the
    next call.
    """

    def __init__(
        self,
        store: StateStore,
        run_id: str,
        depth: int = 4,
        *,
        lease: Lease | None = None,
        orchestration: str,
        workspace: str | None = None,
    ) -> None:
        self._store, self._run_id, self._depth = store, run_id, depth
        self._resume = offramp_command("run", orchestration, "--resume", workspace=workspace)  # the hint's command
        self._lease = lease  # fencing: once another process took the run over, nothing more is written
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ledger")
        self._pending: deque[Future[None]] = deque()

    def write(
        self,
        entries: Sequence[Entry],
        settles: Sequence[int] = (),
        warned: Sequence[Warned] = (),
        batches: Sequence[SettledBatch] = (),
    ) -> None:
        """Queue entries and settled batches, the requests (inflight.RequestLog numbers) they settle and the warnings
        of their events; waits while ``depth`` writes are already queued."""
        while self._pending and (self._pending[0].done() or len(self._pending) >= self._depth):
            self._pending.popleft().result()
        self._pending.append(self._pool.submit(self._write, entries, settles, warned, batches))

    def _write(
        self,
        entries: Sequence[Entry],
        settles: Sequence[int] = (),
        warned: Sequence[Warned] = (),
        batches: Sequence[SettledBatch] = (),
    ) -> None:
        try:
            with self._store.session() as session:
                if self._lease is not None and not self._lease.hold(session):
                    return  # lease.lost is set: the run's threads stop, and the run ends saying it was taken over
                record(session, self._run_id, entries)
                record_batches(session, self._run_id, batches)
                record_warnings(session, self._run_id, warned)  # with the events' entries: one checkpoint
                inflight.settle(session, self._run_id, settles)  # in the same checkpoint as their answers
        except SQLAlchemyError as exc:
            # Not a value (record makes every value storable): the store itself (disk full, connection lost). The
            # run stops; what was in flight is known from its request records, so a resume does not lose it.
            raise StateError(
                f"cannot write the run's ledger to the state store ({_what_failed(exc)}); the run stopped",
                hint="fix the state store (disk space, a connection, or another process holding SQLite's write lock "
                f"for longer than the busy timeout), then resume: {self._resume}",
            ) from exc

    def close(self) -> None:
        """Wait until everything queued is written; raise the first failed write."""
        try:
            while self._pending:
                self._pending.popleft().result()
        finally:
            self._pool.shutdown(wait=True)


def event_keys(session: Session, run_ids: Iterable[str], outcomes: Sequence[str]) -> pa.Array:
    """Ledger keys (:func:`key` of the event ids) with one of ``outcomes`` in any of the runs, distinct, as a string
    array (compared a column at a time: ``pyarrow.compute.is_in``)."""
    ids = list(run_ids)
    if not ids:
        return pa.array([], pa.string())
    parts: list[pa.Array] = []
    query = select(RowOutcome.event_id).where(RowOutcome.run_id.in_(ids), RowOutcome.outcome.in_(outcomes))
    single = list(session.scalars(query))
    if single:
        parts.append(pa.array(single, pa.string()))
    packed = [outcome for outcome in outcomes if outcome in BATCH_OUTCOMES]
    if packed:
        blobs = select(LedgerBatch.keys).where(LedgerBatch.run_id.in_(ids), LedgerBatch.outcome.in_(packed))
        parts.extend(unpack_keys(blob)[0] for blob in session.scalars(blobs))
    if not parts:
        return pa.array([], pa.string())
    return pc.unique(pa.concat_arrays(parts))


def entries(session: Session, run_id: str) -> list[Entry]:
    """Every event's entry of a run, whichever shape it was written in (a settled batch gives one per event, its
    fields the batch's), under its ledger key; the made-up entries (rows never prepared, repeats) included."""
    found = [
        Entry(row.event_id, row.outcome, row.rows, row.reason_code, row.vendor_code, row.message, row.attempts,
              row.batch, row.request_id)
        for row in session.scalars(select(RowOutcome).where(RowOutcome.run_id == run_id))
    ]  # fmt: skip
    for batch in session.scalars(select(LedgerBatch).where(LedgerBatch.run_id == run_id).order_by(LedgerBatch.id)):
        stored, rows = unpack_keys(batch.keys)
        found += [
            Entry(k, batch.outcome, count, batch.reason_code, None, batch.message, batch.attempts, batch.batch,
                  batch.request_id)
            for k, count in zip(stored.to_pylist(), rows.to_pylist(), strict=True)
        ]  # fmt: skip
    return found


def forget(session: Session, run_id: str, outcome: str) -> None:
    """Drop a run's entries of one outcome (a resumed run sends its unsettled and failed events again)."""
    session.execute(delete(RowOutcome).where(RowOutcome.run_id == run_id, RowOutcome.outcome == outcome))
    if outcome in BATCH_OUTCOMES:
        session.execute(delete(LedgerBatch).where(LedgerBatch.run_id == run_id, LedgerBatch.outcome == outcome))


def totals(session: Session, run_id: str) -> dict[str, Any]:
    """Row counts by outcome, event counts by outcome (``events``: one per entry, the made-up key of the rows never
    prepared counting none, and ``prepared``, their sum), rejected rows by reason, failed rows by vendor code."""
    counts = dict.fromkeys(OUTCOMES, 0)
    events = dict.fromkeys(("prepared", *OUTCOMES), 0)
    for outcome, rows, entries in session.execute(
        select(RowOutcome.outcome, func.sum(RowOutcome.rows), func.count())
        .where(RowOutcome.run_id == run_id)
        .group_by(RowOutcome.outcome)
    ):
        counts[outcome] = int(rows or 0)
        events[outcome] = int(entries or 0)
    for outcome, rows, entries in session.execute(
        select(LedgerBatch.outcome, func.sum(LedgerBatch.rows), func.sum(LedgerBatch.events))
        .where(LedgerBatch.run_id == run_id)
        .group_by(LedgerBatch.outcome)
    ):
        counts[outcome] += int(rows or 0)
        events[outcome] += int(entries or 0)
    held = session.scalar(
        select(func.count()).where(RowOutcome.run_id == run_id, RowOutcome.event_id == _NOT_PREPARED_KEY)
    )
    events["failed"] -= int(held or 0)  # rows never prepared are no event
    events["prepared"] = sum(events[outcome] for outcome in OUTCOMES)
    reasons: dict[str, int] = {}
    for table in (RowOutcome, LedgerBatch):
        for code, rows in session.execute(
            select(table.reason_code, func.sum(table.rows))
            .where(table.run_id == run_id, table.outcome.in_(("rejected", "skipped", "unknown")))
            .group_by(table.reason_code)
        ):
            if code is not None:
                reasons[code] = reasons.get(code, 0) + int(rows or 0)
    # Failed rows by the vendor's code, or by our own reason (not_sent) when the vendor never answered for them.
    vendor: dict[str, int] = {}
    for vendor_code, reason, rows in session.execute(
        select(RowOutcome.vendor_code, RowOutcome.reason_code, func.sum(RowOutcome.rows))
        .where(RowOutcome.run_id == run_id, RowOutcome.outcome == "failed")
        .group_by(RowOutcome.vendor_code, RowOutcome.reason_code)
    ):
        label = str(vendor_code) if vendor_code is not None else (reason or "unknown")
        vendor[label] = vendor.get(label, 0) + int(rows or 0)
    return {"counts": counts, "events": events, "reasons": reasons, "vendor_codes": vendor}


def earlier_runs(session: Session, orchestration_id: int, before: str) -> list[str]:
    """Ids of the orchestration's earlier runs that really sent (not dry runs)."""
    query = select(Run.id).where(Run.orchestration_id == orchestration_id, Run.id != before, Run.dry_run.is_(False))
    return list(session.scalars(query))


__all__ = [
    "BATCH_OUTCOMES",
    "Entry",
    "KEY_LENGTH",
    "Warned",
    "NOT_PREPARED",
    "OUTCOMES",
    "REPEATED_EVENT_ID",
    "SettledBatch",
    "Writer",
    "earlier_runs",
    "entries",
    "entry_key",
    "event_keys",
    "forget",
    "key",
    "keys",
    "keys_of",
    "not_prepared_key",
    "record",
    "record_batches",
    "record_warnings",
    "repeat_key",
    "shown_key",
    "storable",
    "total_rows",
    "totals",
    "warned_events",
]
