"""Whole events: an ``event_id`` the run already prepared is not sent again, and an id the ledger cannot hold is not
sent at all.

The preparer groups the rows of one event when they are adjacent (within a record batch, or across two), so an
``event_id`` that comes back later in the query's result is a second event with the same id. TikTok keeps the first
event it receives with an id (48 hours) and drops the next, so sending the repeat would report the order without
its late line items while the run said ``sent``. The runner rejects those later rows instead, with
:data:`REPEATED_EVENT_ID`, under a ledger key of their own (:func:`offramp.core.runner.ledger.repeat_key`), so
the event's own entry keeps what the vendor received.

Which ids a run has prepared is kept on disk, not in memory: a run of 50 million events would otherwise hold 50
million strings. :class:`SeenIndex` is a SQLite file in a private temporary directory (mode 0700, removed when the
run ends), checked a batch at a time: one ``INSERT OR IGNORE`` of the batch's keys, and a second query only when
the count of rows it added shows that some key was there before.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
from collections.abc import Sequence
from typing import Final

import pyarrow as pa
import pyarrow.compute as pc

from offramp.core.destination_api import EventColumns, PreparedEvent, RejectedEvent
from offramp.core.runner import ledger
from offramp.core.scratch import private_directory

REPEATED_EVENT_ID: Final = ledger.REPEATED_EVENT_ID
INVALID_EVENT_ID: Final = "invalid_event_id"

# Details name the field and the fix, never the row's values (see plugins/tiktok/rules.py).
REASONS: Final[dict[str, str]] = {
    REPEATED_EVENT_ID: "rows with this event_id came after other events' rows, once its event had been prepared "
    "(the ledger's entry for the event_id says what became of it); an event is sent whole or not at all: make "
    "its rows adjacent with ORDER BY event_id (or the order id) in the query",
    INVALID_EVENT_ID: "the event_id holds a character the run ledger cannot store (NUL, or an unpaired "
    "surrogate); remove it in the query, e.g. replace(event_id, chr(0), '')",
}


class SeenIndex:
    """The ledger keys a run has prepared so far, in a SQLite file of its own (bounded memory, any run size)."""

    def __init__(self) -> None:
        # 0700: event ids may be order numbers or customer ids; named after this process, so that a later run
        # removes the index of a process that was killed (offramp.core.scratch).
        self._directory = private_directory(_PREFIX)
        self._db = sqlite3.connect(self._directory / "seen.sqlite", isolation_level=None, check_same_thread=False)
        # A scratch file: nothing to recover after a crash, so no journal and no syncs. 4 MiB of page cache: batches
        # are inserted in sorted order, so a small cache serves them, and a larger one is resident memory that grows
        # with the run (16 MiB was most of what SQLite added to a 5,000,000-row run, docs/benchmarks.md).
        for pragma in ("journal_mode = OFF", "synchronous = OFF", "locking_mode = EXCLUSIVE", "cache_size = -4096"):
            self._db.execute(f"PRAGMA {pragma}")
        self._db.execute("CREATE TABLE seen (k TEXT PRIMARY KEY, call INTEGER NOT NULL) WITHOUT ROWID")
        self._calls = 0

    def repeats(self, keys: Sequence[str]) -> set[int]:
        """Add ``keys``; return the positions of those added before (by an earlier call, or earlier in ``keys``)."""
        if not keys:
            return set()
        self._calls += 1
        call = self._calls
        before = self._db.total_changes
        # One statement for the whole batch: SQLite reads the keys from one JSON text (no per-key binding in Python),
        # in sorted order (neighbouring inserts touch neighbouring pages of the index: several times faster).
        values = json.dumps(list(keys))
        self._db.execute("INSERT OR IGNORE INTO seen SELECT value, ? FROM json_each(?) ORDER BY value", (call, values))
        if self._db.total_changes - before == len(keys):
            return set()  # every key was new: the common case costs one statement
        query = "SELECT k FROM seen WHERE call < ? AND k IN (SELECT value FROM json_each(?))"
        earlier = {row[0] for row in self._db.execute(query, (call, values))}
        positions: set[int] = set()
        first: set[str] = set()
        for position, k in enumerate(keys):
            if k in earlier or k in first:
                positions.add(position)
            else:
                first.add(k)
        return positions

    def close(self) -> None:
        """Drop the index and its directory."""
        self._db.close()
        shutil.rmtree(self._directory, ignore_errors=True)


_PREFIX = "offramp-run-ids-"


def screen(
    index: SeenIndex, events: EventColumns, rejected: Sequence[RejectedEvent]
) -> tuple[EventColumns, list[RejectedEvent]]:
    """``events`` and ``rejected`` with repeated event ids and ids the ledger cannot hold moved to the rejected.

    A repeat is rejected under :func:`ledger.repeat_key` of its id, whatever the preparer made of its rows, so that
    the ledger's entry of the id itself stays the first event's (sent, failed or rejected) and the repeat's rows are
    counted, once, under :data:`REPEATED_EVENT_ID`. Compared a column at a time; objects are made only for the
    events moved.
    """
    keys = ledger.keys_of(events.event_ids)
    keys += [ledger.entry_key(item.event_id, item.reason) for item in rejected]
    repeated = index.repeats(keys)
    # Arrow text is valid UTF-8, so a NUL is what a store cannot hold.
    unstorable = pc.fill_null(pc.match_substring(events.event_ids.cast(pa.string()), "\x00"), False)
    if not repeated and not pc.any(unstorable).as_py():
        return events, list(rejected)
    moved = [position in repeated for position in range(len(events))]
    refused = pc.or_(pa.array(moved, pa.bool_()), unstorable)
    result: list[RejectedEvent] = []
    for position in pc.indices_nonzero(refused).to_pylist():
        event = events[position]
        if position in repeated:
            result.append(_repeat(event.event_id, event.rows))
        else:
            result.append(RejectedEvent(event.event_id, INVALID_EVENT_ID, REASONS[INVALID_EVENT_ID], event.rows))
    for position, item in enumerate(rejected, start=len(events)):
        result.append(_repeat(item.event_id, item.rows) if position in repeated else item)
    return events.filter(pc.invert(refused)), result


def split_unstorable(events: Sequence[PreparedEvent]) -> tuple[list[PreparedEvent], list[RejectedEvent]]:
    """Event objects whose ids the ledger can hold, and the rejections of the others (``invalid_event_id``).

    Checked before objects become columns: an id with an unpaired surrogate has no UTF-8, so no Arrow text either.
    """
    if all(ledger.storable(event.event_id) for event in events):
        return list(events), []
    kept = [event for event in events if ledger.storable(event.event_id)]
    refused = [
        RejectedEvent(event.event_id, INVALID_EVENT_ID, REASONS[INVALID_EVENT_ID], event.rows)
        for event in events
        if not ledger.storable(event.event_id)
    ]
    return kept, refused


def _repeat(event_id: str, rows: int) -> RejectedEvent:
    # The id as it is: the ledger keeps these rows under ledger.repeat_key(event_id) (ledger.entry_key), a key no
    # event id is ever kept under.
    return RejectedEvent(event_id, REPEATED_EVENT_ID, REASONS[REPEATED_EVENT_ID], rows)


__all__ = ["INVALID_EVENT_ID", "REASONS", "REPEATED_EVENT_ID", "SeenIndex", "screen", "split_unstorable"]
