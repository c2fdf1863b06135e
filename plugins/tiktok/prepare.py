"""The vectorized preparer: the rules of ``reference.py``, a record batch at a time.

How the work is split, and why:

- Python, once per *distinct* value (pyarrow dictionary encoding): phone numbers (phonenumbers is slow, so each
  distinct number is parsed once, and those in a plain North American shape are not parsed at all: see
  ``phone_shapes``), timestamps given as text, and the rare email or external id that is not ASCII
  (Python's Unicode lower-casing and whitespace rules are the specification; DuckDB's differ outside ASCII). The
  results replace the raw values in the batch: a final hash, ``''`` for a blank value, ``'!'`` for an invalid
  phone, so DuckDB sees values that are already hashed and passes them through.
- DuckDB's SHA-256, once per distinct email and external id (the line items of an order repeat its customer's),
  after pyarrow's trimming and lower-casing (``_hashed``); lists of them are hashed in the row query.
- DuckDB, over the whole batch, one row per source row: reading typed timestamps, numbers and vocabularies, the
  row's first reason code, derived event ids (only for rows without a given one). Only what it computes leaves it:
  text it would pass through unchanged (hashes, order ids, given event ids) is taken from its input as it is
  (``_with_passed``), since exporting a string column from DuckDB copies it. A single identifier stays a single
  value (lists only where the query gives lists): DuckDB's lists cost more than hashing.
- pyarrow, over the rows: events are runs of equal adjacent ``event_id`` s (``segments``; rows of one event that
  are apart in the batch are brought together first, stably, by first appearance), and every per-event value is a
  reduction over the runs: conflicting line items, the first reason, identifiers, the first present field, the
  line-item total. The JSON is written by Arrow string kernels, a level at a time (line item, ``contents``, event;
  ``json_columns``): the keys, order, omissions, escapes and number forms of ``payload.event_json``, which writes
  the reference path's events; the golden, property and fuzz tests hold the two to the same bytes. Prepared events
  leave as columns (``EventColumns``), no Python object per event; a large batch is prepared on two threads.
- Python, once per *rejected* event (they are few): the rejection, with its detail (``rules.REASONS``).

Rows are held back across batches exactly as the reference preparer holds them (the last event of a batch).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from offramp.core import EventColumns, PreparedBatch, RejectedEvent
from offramp.plugins.tiktok import json_columns
from offramp.plugins.tiktok.columns import contract_names
from offramp.plugins.tiktok.events import KNOWN_EVENTS
from offramp.plugins.tiktok.identifiers import hash_email, hash_external_id, hash_phone
from offramp.plugins.tiktok.options import TikTokPrepareOptions
from offramp.plugins.tiktok.phone_shapes import e164_of_plain_shapes
from offramp.plugins.tiktok.reference import EVENT_ID_VERSION
from offramp.plugins.tiktok.rules import (
    ASCII_WHITESPACE,
    CONTENT_TYPES,
    CURRENCIES,
    DEFAULT_CURRENCY,
    EPOCH_MILLIS_FROM,
    EVENT_CHANNELS,
    LABEL_LENGTH,
    MAX_NUMBER,
    NUMBER_TEXT_SQL,
    NUMERIC_COLUMNS,
    PAGE_TEXT,
    PROPERTY_TEXT,
    REASON_ORDER,
    REASONS,
    ROW_REASONS,
    USER_TEXT,
    invalid_timestamp_detail,
    needed_identifiers,
)
from offramp.plugins.tiktok.segments import Segments, ordered_by_first_appearance
from offramp.plugins.tiktok.settings import TikTokOfflineEventsDestinationSettings
from offramp.plugins.tiktok.timestamps import TimestampError, event_time

_BLANK = ""  # a value that normalizes to nothing
_INVALID_PHONE = "!"  # a phone number that is not valid for its region

_TEXT_FIELDS: tuple[tuple[str, str], ...] = (*USER_TEXT, *PROPERTY_TEXT, *PAGE_TEXT)


def _sql(text: str) -> str:
    """A SQL string literal."""
    return "'" + text.replace("'", "''") + "'"


_WS = _sql(ASCII_WHITESPACE)


def _is_text(kind: pa.DataType) -> bool:
    return bool(pa.types.is_string(kind) or pa.types.is_large_string(kind) or pa.types.is_string_view(kind))


def _as_text(array: pa.Array) -> pa.Array:
    """Text values; numbers written as Python writes them (DuckDB and pyarrow agree on integers).

    A value with no text form (a list of lists, a struct, a map) is no identifier and no word: NULL, as if absent,
    so its row is judged by the rest (an event with no other identifier is rejected as missing_identifiers).
    """
    if pa.types.is_string(array.type):
        return array
    try:
        return pc.cast(array, pa.string())
    except pa.ArrowNotImplementedError:
        return pa.nulls(len(array), pa.string())


def _is_list(kind: pa.DataType) -> bool:
    return bool(pa.types.is_list(kind) or pa.types.is_large_list(kind))


def _with_values(lists: pa.Array, values: pa.Array) -> pa.ListArray:
    """``lists`` with its flattened values replaced by ``values`` (same length), NULL lists kept NULL."""
    lengths = pc.fill_null(pc.list_value_length(lists), 0)
    offsets = pa.concat_arrays([pa.array([0], pa.int32()), pc.cast(pc.cumulative_sum(lengths), pa.int32())])
    return pa.ListArray.from_arrays(offsets, values, mask=lists.is_null())


def _map_distinct(
    array: pa.Array,
    function: Callable[[str], str],
    only: Callable[[pa.Array], pa.Array] | None = None,
    decide: Callable[[pa.Array], pa.Array] | None = None,
) -> pa.Array:
    """``array`` (text, or a list of text) with ``function`` applied once per distinct value.

    ``only`` selects the values to map (a boolean mask over the flat values); the rest stay as they are.
    ``decide`` maps the distinct values a column at a time where it can (a text array, NULL where it cannot):
    ``function`` is called for the undecided ones only. Python sees only the values it must map.
    """
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    if _is_list(array.type):
        return _with_values(array, _map_distinct(_as_text(pc.list_flatten(array)), function, only, decide))
    values = _as_text(array)
    if only is not None:
        mask = only(values)
        if not pc.any(mask).as_py():
            return values
    encoded = pc.dictionary_encode(values)
    distinct = encoded.dictionary
    if only is not None:
        results, todo = distinct, pc.fill_null(only(distinct), False)
    elif decide is not None:
        results = decide(distinct)
        todo = pc.and_(results.is_null(), distinct.is_valid())
    else:
        results, todo = pa.nulls(len(distinct), pa.string()), distinct.is_valid()
    if pc.any(todo).as_py():
        mapped = pa.array([function(value) for value in distinct.filter(todo).to_pylist()], pa.string())
        results = pc.replace_with_mask(results, todo, mapped)
    return pc.take(results, encoded.indices)


def _all_except(chars: bytes) -> bytes:
    return bytes(byte for byte in range(256) if byte not in chars)


_NOT_WHITESPACE = _all_except(ASCII_WHITESPACE.encode())
_ASCII = bytes(range(128))


def _holds_any(values: pa.Array, others: bytes) -> bool:
    """Whether any value's text holds a byte that is not in ``others``: one pass of C over all the text (a kernel
    per value costs several times more), True when the values are not a ``string`` array (unknown)."""
    text = json_columns.text_bytes(values)
    return text is None or bool(bytes(text).translate(None, others))


def _none_blank(values: pa.Array) -> bool:
    """Whether no value is blank or has ASCII whitespace at all (nearly always, for ids and emails): then trimming
    and blank tests change nothing."""
    if _holds_any(values, _NOT_WHITESPACE):
        return False
    shortest = pc.min(pc.binary_length(values)).as_py()
    return shortest is None or shortest > 0


def _trimmed(array: pa.Array) -> pa.Array:
    """Text (or lists of text) with ASCII whitespace trimmed; the non-ASCII values were already hashed."""
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    if pa.types.is_string(array.type) and not _holds_any(array, _NOT_WHITESPACE):
        return array
    if _is_list(array.type):
        return _with_values(array, pc.utf8_trim(_as_text(pc.list_flatten(array)), ASCII_WHITESPACE))
    return pc.utf8_trim(_as_text(array), ASCII_WHITESPACE)


_WORD_COLUMNS = ("event", "event_id", "currency", "content_type", "event_channel")
_PLAIN_COLUMNS = (*(column for column, _ in _TEXT_FIELDS), "content_id", "content_name", "content_category", "brand")


def _blank_to_null(column: pa.Array | pa.ChunkedArray, *, trim: bool) -> pa.Array:
    """Text with blank cells (empty or ASCII whitespace only) NULL; trimmed too when ``trim``."""
    values = _as_text(column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column)
    if pa.types.is_string(values.type) and _none_blank(values):
        return values
    trimmed = pc.ascii_trim(values, ASCII_WHITESPACE)
    kept = trimmed if trim else values
    blank = pc.equal(trimmed, "")
    if not pc.any(blank).as_py():
        return kept  # nearly always: no copy of the text
    return pc.if_else(blank, pa.scalar(None, pa.string()), kept)


def _not_ascii(values: pa.Array) -> pa.Array:
    if pa.types.is_string(values.type) and not _holds_any(values, _ASCII):
        return pc.fill_null(pa.nulls(len(values), pa.bool_()), False)  # one scan of the text said so
    return pc.fill_null(pc.invert(pc.string_is_ascii(values)), False)


_LISTS = {"email": "emails", "phone": "phones", "external_id": "external_ids"}
_CONTENT_FIELDS = ("content_id", "content_name", "content_category", "price", "quantity", "brand")
_EVENT_FIELDS = (*(key for _, key in _TEXT_FIELDS), "currency", "content_type", "event_channel", "value")


# Rows from which a batch's events are prepared on two threads (a small batch has little to share out).
_SPLIT_FROM = 20_000


def _event_boundary(ids: pa.Array, near: int) -> int:
    """The first row at or after ``near`` that starts an event (``len(ids)`` when none does)."""
    position = max(near, 1)
    while position < len(ids) and ids[position] == ids[position - 1]:
        position += 1
    return min(position, len(ids))


def _has_hashes(values: pa.Array) -> pa.Array:
    """Per row, whether an identifier column (hashes: one per row, or a list) holds any."""
    if _is_list(values.type):
        return pc.greater(pc.fill_null(pc.list_value_length(values), 0), 0)
    return values.is_valid()


def _field(table: pa.Table, name: str) -> pa.Array | None:
    """A field's column, None when the query did not give it (its column is not in the batch) or no row has it."""
    if name not in table.schema.names:
        return None
    values = _column(table, name)
    return values if json_columns.present(values) else None


def _column(table: pa.Table, name: str) -> pa.Array:
    return json_columns.single(table.column(name))


def _in_row_order(rows: pa.Table) -> pa.Table:
    """``rows`` sorted by row number (DuckDB keeps the order of a projection; this only checks it, cheaply)."""
    numbers = _column(rows, "rn")
    if len(numbers) < 2 or pc.all(pc.greater(numbers[1:], numbers[:-1])).as_py():
        return rows
    return rows.take(pc.sort_indices(numbers))


def _identifier_json(lists: pa.Array, runs: Segments) -> json_columns.Value:
    """Per event, its distinct hashes in order of first appearance as a JSON array (NULL when it has none).

    Hashes are lower-case hex, so they need no escaping and a comma-joined list is a key for "same list". Where an
    event's rows hold the same list (nearly always: the line items of an order share the customer), the event's is
    its first row's, which the row query made distinct; the others are joined in Python, one event at a time.
    """
    listed = _is_list(lists.type)
    # A single hash per row is never '' (a blank value has none: NULL), so NULL marks "none" as '' does for lists.
    keys = pc.fill_null(pc.binary_join(lists, '","'), "") if listed else lists
    joined = runs.first(keys)
    agree = runs.agree(keys)
    blanks = listed
    if not pc.all(agree).as_py():
        blanks = True
        events = pc.indices_nonzero(pc.invert(agree)).to_pylist()
        starts, ends = runs.starts.to_pylist(), runs.ends.to_pylist()
        fixed = []
        for event in events:
            values = lists.slice(starts[event], ends[event] - starts[event]).to_pylist()
            rows = values if listed else [[value] for value in values if value is not None]
            fixed.append('","'.join(dict.fromkeys(value for row in rows if row for value in row)))
        joined = pc.replace_with_mask(joined, pc.invert(agree), pa.array(fixed, pa.string()))
    if blanks:
        joined = pc.if_else(pc.equal(joined, ""), pa.scalar(None, pa.string()), joined)
    return json_columns.Value(joined, around=('["', '"]'))


def _contents_json(rows: pa.Table, runs: Segments) -> json_columns.Value | None:
    """Per event, the JSON array of its line items (``payload.content_item``), NULL when it has none; None when no
    row has one."""
    given = pc.fill_null(_column(rows, "has_content"), False)
    if not pc.any(given).as_py():
        return None
    keys = [key for key in _CONTENT_FIELDS if key in rows.schema.names]
    items = rows.select(keys)
    items = items if pc.all(given).as_py() else items.filter(given)
    members: list[tuple[str, json_columns.Value]] = []
    for key in keys:
        values = _column(items, key)
        if not json_columns.present(values):
            continue
        if key == "price":
            members.append((key, json_columns.floats(values)))
        elif key == "quantity":
            members.append((key, json_columns.quantities(values)))
        else:
            members.append((key, json_columns.strings(values)))
    parts, _ = json_columns.object_parts(members, items.num_rows)
    assert parts, "a line item has a member (else has_content is false)"
    objects = json_columns.concat("{", *parts, "}")
    per_event = runs.sums(given)
    offsets = pa.concat_arrays([pa.array([0], pa.int64()), pc.cumulative_sum(per_event)])
    written = pc.binary_join(pa.LargeListArray.from_arrays(offsets, objects), ",")
    if pc.all(pc.greater(per_event, 0)).as_py():
        return json_columns.Value(written, around=("[", "]"))
    given = pc.if_else(pc.greater(per_event, 0), written, pa.scalar(None, pa.string()))
    return json_columns.Value(given, around=("[", "]"))


class VectorizedPreparer:
    """Prepares Arrow record batches with DuckDB and pyarrow; produces exactly what ``ReferencePreparer`` produces,
    prepared events as columns."""

    def __init__(self, settings: TikTokOfflineEventsDestinationSettings, options: TikTokPrepareOptions) -> None:
        self._settings = settings
        self._options = options
        self._now = options.now if options.now is not None else int(time.time())
        self._unknown: dict[str, None] = {}
        self._present: set[str] = set()  # contract columns the query has
        self._held: pa.Table | None = None
        self._next_rn = 0
        # No progress bar: DuckDB draws one on stdout for long queries, which would corrupt `--json` output.
        # A second thread for the other half of large batches, where the machine has a second core.
        self._pool = ThreadPoolExecutor(max_workers=1) if (os.cpu_count() or 1) > 1 else None
        self._db = duckdb.connect()
        self._db.execute("SET enable_progress_bar = false")
        # Lists of one value (nearly all) need no work; longer ones keep each value's first occurrence.
        self._db.execute(
            "CREATE TEMP MACRO _distinct_in_order(l) AS "
            "CASE WHEN len(l) < 2 THEN l ELSE list_filter(l, lambda x, i: list_position(l, x) = i) END"
        )
        for name, normalized in (("_hash_lower", "lower(t)"), ("_hash_plain", "t")):
            self._db.execute(
                f"CREATE TEMP MACRO {name}(t) AS CASE WHEN t IS NULL OR t = '' THEN NULL "
                f"WHEN strlen(t) = 64 AND regexp_full_match(t, '[0-9A-Fa-f]{{64}}') THEN lower(t) "
                f"ELSE sha256({normalized}) END"
            )

    @property
    def unknown_columns(self) -> tuple[str, ...]:
        """Columns seen so far that this destination does not read."""
        return tuple(self._unknown)

    def close(self) -> None:
        """Release the in-memory DuckDB and the second thread."""
        self._db.close()
        if self._pool is not None:
            self._pool.shutdown()

    def prepare(self, batch: pa.RecordBatch | pa.Table) -> PreparedBatch:
        """Prepare a batch; the last event is held back for the next call (see ``Preparer``)."""
        if batch.num_rows == 0:
            return PreparedBatch()
        rows = self._rows(batch)
        if self._held is not None:
            rows = pa.concat_tables([self._held, rows])
        # Row order is carried by rn, not by position (no query here sorts): the last row has the largest rn.
        last = rows.column("event_id")[pc.index(rows.column("rn"), pc.max(rows.column("rn"))).as_py()]
        keep = pc.equal(rows.column("event_id"), last)
        kept = int(pc.sum(pc.cast(keep, pa.int64())).as_py() or 0)
        rest = rows.num_rows - kept
        if pc.all(keep.slice(rest)).as_py():
            # Nearly always: the held event is the batch's tail. Slices give the same rows in the same order as
            # the filters below, sharing the buffers where a filter copies every column.
            self._held = rows.slice(rest)
            return self._events(rows.slice(0, rest))
        self._held = rows.filter(keep)
        return self._events(rows.filter(pc.invert(keep)))

    def finish(self) -> PreparedBatch:
        """Everything held back."""
        held, self._held = self._held, None
        return PreparedBatch() if held is None else self._events(held)

    # -- per row ------------------------------------------------------------------------------------------------

    def _inputs(self, batch: pa.RecordBatch | pa.Table) -> tuple[pa.Table, dict[str, pa.DataType]]:
        """The batch with contract names, a row number, and the values Python normalizes substituted in."""
        names, unknown = contract_names(batch.schema.names)
        self._unknown.update(dict.fromkeys(unknown))
        self._present.update(names.values())
        table = pa.Table.from_batches([batch]) if isinstance(batch, pa.RecordBatch) else batch
        columns: dict[str, pa.Array | pa.ChunkedArray] = {}
        for original, name in names.items():
            columns[name] = table.column(original)
        region = self._options.default_phone_region
        if "phone" in columns:
            columns["phone"] = _map_distinct(
                columns["phone"],
                lambda value: _phone(value, region),
                decide=lambda values: _plain_phones(self._db, values, region),
            )
        if "email" in columns:
            email = _map_distinct(columns["email"], lambda value: hash_email(value) or _BLANK, _not_ascii)
            columns["email"] = _hashed(self._db, _trimmed(email), "_hash_lower")
        if "external_id" in columns:
            external = _map_distinct(
                columns["external_id"], lambda value: hash_external_id(value) or _BLANK, _not_ascii
            )
            columns["external_id"] = _hashed(self._db, _trimmed(external), "_hash_plain")
        # Trimming and blank tests in pyarrow: its ASCII kernels are some thirty times faster than DuckDB's trim
        # with a character set. Plain text keeps its value (blank becomes NULL); vocabulary is trimmed as well.
        for name in (*_PLAIN_COLUMNS, *_WORD_COLUMNS):
            if name in columns and _is_text(columns[name].type):
                columns[name] = _blank_to_null(columns[name], trim=name in _WORD_COLUMNS)
        if "timestamp" in columns and not self._typed_time(columns["timestamp"].type):
            columns["timestamp"] = self._python_times(columns["timestamp"])
        if "timestamp" in columns:
            columns["ts"] = columns.pop("timestamp")
        # Row numbers by a kernel: a Python range would build an object per row.
        ones = pa.repeat(pa.scalar(1, pa.int64()), table.num_rows)
        columns["__rn"] = pc.cumulative_sum(ones, start=self._next_rn - 1)
        self._next_rn += table.num_rows
        result = pa.table(columns)
        return result, {name: result.schema.field(name).type for name in result.schema.names}

    @staticmethod
    def _typed_time(kind: pa.DataType) -> bool:
        return bool(
            pa.types.is_timestamp(kind)
            or pa.types.is_date(kind)
            or pa.types.is_integer(kind)
            or pa.types.is_floating(kind)
            or pa.types.is_decimal(kind)
        )

    def _python_times(self, column: pa.Array | pa.ChunkedArray) -> pa.Array:
        """Text (or odd) timestamps read in Python once per distinct value: epoch seconds, or NULL plus a flag."""
        values = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
        if pa.types.is_nested(values.type):
            # A list, struct or map is no time: every value is invalid (NULL stays missing).
            invalid = pc.if_else(values.is_valid(), pa.scalar("bad"), pa.scalar(None, pa.string()))
            return pa.StructArray.from_arrays([pa.nulls(len(values), pa.int64()), invalid], names=["seconds", "state"])
        encoded = pc.dictionary_encode(values)
        seconds: list[int | None] = []
        states: list[str] = []
        fixes: list[str | None] = []
        for value in encoded.dictionary.to_pylist():
            try:
                when = event_time(value, self._options.timezone)
            except TimestampError as exc:
                seconds.append(None)
                states.append("bad")
                fixes.append(exc.fix)
            else:
                seconds.append(when)
                states.append("missing" if when is None else "ok")
                fixes.append(None)
        # A struct so one substituted column carries them all; NULL rows stay NULL (missing). How to read a value
        # (``fix``, for the rejection's detail) is carried only when a value needs it: valid data pays nothing.
        arrays = [pa.array(seconds, pa.int64()), pa.array(states, pa.string())]
        names = ["seconds", "state"]
        if any(fix is not None for fix in fixes):
            arrays.append(pa.array(fixes, pa.string()))
            names.append("fix")
        return pc.take(pa.StructArray.from_arrays(arrays, names=names), encoded.indices)

    def _time_sql(self, kind: pa.DataType | None) -> tuple[str, str]:
        """SQL for (event time in Unix seconds, 'ok' | 'missing' | 'bad')."""
        if kind is None:
            return "NULL::BIGINT", "'missing'"
        tz = self._options.timezone
        if pa.types.is_struct(kind):
            return "b.ts.seconds", "coalesce(b.ts.state, 'missing')"
        # A value with no Unix time (infinity, a date past the last timestamp, an epoch beyond 64 bits) has NULL
        # seconds (TRY_CAST), and a present value with NULL seconds is invalid.
        if pa.types.is_timestamp(kind) or pa.types.is_date(kind):
            if pa.types.is_timestamp(kind) and kind.tz is not None:
                micros = "epoch_us(b.ts)"
            else:
                moment = "TRY_CAST(b.ts AS TIMESTAMP)"
                micros = f"epoch_us({moment})" if tz == "UTC" else f"epoch_us(timezone({_sql(tz)}, {moment}))"
            seconds = f"TRY_CAST(floor({micros} / 1000000) AS BIGINT)"
        else:
            number = "CAST(b.ts AS DOUBLE)"
            seconds = (
                f"CASE WHEN isnan({number}) OR isinf({number}) THEN NULL "
                f"WHEN abs({number}) >= {EPOCH_MILLIS_FROM} THEN TRY_CAST(floor({number} / 1000) AS BIGINT) "
                f"ELSE TRY_CAST(floor({number}) AS BIGINT) END"
            )
        state = f"CASE WHEN b.ts IS NULL THEN 'missing' WHEN ({seconds}) IS NULL THEN 'bad' ELSE 'ok' END"
        return seconds, state

    @staticmethod
    def _text_sql(column: str, kinds: dict[str, pa.DataType]) -> str:
        """A text cell (plain or vocabulary); text columns arrive trimmed or blank-nulled by ``_inputs``."""
        if column not in kinds:
            return "NULL::VARCHAR"
        # Numbers, dates and the like are never blank: their text is Python's and DuckDB's alike.
        return f'b."{column}"' if _is_text(kinds[column]) else f'CAST(b."{column}" AS VARCHAR)'

    def _word_sql(self, column: str, kinds: dict[str, pa.DataType]) -> str:
        """A vocabulary cell: trimmed, NULL when blank (done by ``_inputs``)."""
        return self._text_sql(column, kinds)

    @staticmethod
    def _number_sql(column: str, kinds: dict[str, pa.DataType]) -> tuple[str, str]:
        """SQL for (the cell as DOUBLE or NULL, whether it is invalid)."""
        kind = kinds.get(column)
        if kind is None:
            return "NULL::DOUBLE", "false"
        cell = f'b."{column}"'
        if pa.types.is_boolean(kind):
            return "NULL::DOUBLE", f"({cell} IS NOT NULL)"
        if _is_text(kind):
            blank = f"trim({cell}, {_WS}) = ''"
            parsed = f"CASE WHEN {blank} THEN NULL WHEN regexp_full_match({cell}, {_sql(NUMBER_TEXT_SQL)}) "
            parsed += f"THEN CAST(trim({cell}, ' ' || chr(9)) AS DOUBLE) END"
            invalid = f"({cell} IS NOT NULL AND NOT {blank} AND NOT regexp_full_match({cell}, {_sql(NUMBER_TEXT_SQL)}))"
        elif pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_decimal(kind):
            parsed = f"CAST({cell} AS DOUBLE)"
            invalid = "false"
        else:
            return "NULL::DOUBLE", f"({cell} IS NOT NULL)"
        bad = f"({invalid} OR isnan({parsed}) OR isinf({parsed}) OR {parsed} < 0 OR {parsed} >= {MAX_NUMBER!r})"
        return f"CASE WHEN {bad} THEN NULL ELSE {parsed} END", f"coalesce({bad}, false)"

    @staticmethod
    def _hashes_sql(column: str, kinds: dict[str, pa.DataType], lower: bool) -> str:
        """The distinct hashes of an email or external_id cell (one value or a list), in order."""
        kind = kinds.get(column)
        if kind is None:
            return "NULL::VARCHAR"
        # Values arrive trimmed (``_trimmed``); the 64-hex test is guarded by the cheap length test first.
        hashed = "_hash_lower" if lower else "_hash_plain"
        cell = f'b."{column}"'
        if _is_list(kind):
            return f"list_filter(list_transform(coalesce({cell}, []), lambda x: {hashed}(x)), lambda h: h IS NOT NULL)"
        # A single value stays a single value (NULL: none), hashed by ``_inputs`` already (once per distinct value).
        return cell

    def _rows(self, batch: pa.RecordBatch | pa.Table) -> pa.Table:
        """One row per source row: normalized fields, the row's first reason, its event id."""
        table, kinds = self._inputs(batch)
        settings, options = self._settings, self._options
        if settings.fixed_event_name:
            name = _sql(settings.fixed_event_name)
        else:
            name = self._word_sql("event", kinds)
            if options.event_name_map:
                cases = " ".join(f"WHEN {_sql(k)} THEN {_sql(v)}" for k, v in options.event_name_map.items())
                name = f"(CASE {name} {cases} ELSE {name} END)"
        seconds, state = self._time_sql(kinds.get("ts"))
        ts_kind = kinds.get("ts")
        has_fix = ts_kind is not None and pa.types.is_struct(ts_kind) and ts_kind.get_field_index("fix") >= 0
        time_fix = "b.ts.fix" if has_fix else "NULL::VARCHAR"
        # What the row's reason detail is filled with: how to read its time text, or its bad number.
        argument = "CASE WHEN time_state = 'bad' THEN time_fix ELSE bad_number END" if has_fix else "bad_number"
        numbers = {column: self._number_sql(column, kinds) for column in NUMERIC_COLUMNS}
        bad_number = " ".join(f"WHEN {numbers[c][1]} THEN {_sql(c)}" for c in NUMERIC_COLUMNS)
        currency = f"upper({self._word_sql('currency', kinds)})"
        content_type = self._word_sql("content_type", kinds)
        channel = self._word_sql("event_channel", kinds)
        if "phone" in kinds and _is_list(kinds["phone"]):
            phones = "list_filter(coalesce(b.phone, []), lambda p: p IS NOT NULL AND p <> '' AND p <> '!')"
            invalid_phone = "list_contains(coalesce(b.phone, []), '!')"
        elif "phone" in kinds:
            phones = "CASE WHEN b.phone <> '' AND b.phone <> '!' THEN b.phone END"
            invalid_phone = "b.phone = '!'"
        else:
            phones, invalid_phone = "NULL::VARCHAR", "false"
        listed = {key: key in kinds and _is_list(kinds[key]) for key in ("email", "phone", "external_id")}

        def distinct(key: str, values: str) -> str:
            return f"_distinct_in_order({values})" if listed[key] else values

        def joined(key: str, values: str) -> str:
            return f"array_to_string({values}, ',')" if listed[key] else f"coalesce({values}, '')"

        old = self._now - options.attribution_window_days * 86_400
        future = self._now + options.future_tolerance_seconds
        known = ", ".join(_sql(item) for item in sorted(KNOWN_EVENTS))
        currencies = ", ".join(_sql(item) for item in sorted(CURRENCIES))
        types = ", ".join(_sql(item) for item in sorted(CONTENT_TYPES))
        channels = ", ".join(_sql(item) for item in sorted(EVENT_CHANNELS))
        # Each row reason's test, by code; the CASE checks them in the order of rules.REASONS. Vocabularies are tested
        # with IN over constants (cheaper than list_contains over a list literal; the values tested are not NULL).
        conditions: dict[str, str | None] = {
            "missing_event_name": "name IS NULL",
            "unknown_event_name": f"name NOT IN ({known})" if settings.event_source == "offline" else None,
            "missing_timestamp": "time_state = 'missing'",
            "invalid_timestamp": "time_state = 'bad'",
            "event_too_old": f"time < {old}",
            "event_in_future": f"time > {future}",
            "invalid_value": "bad_number IS NOT NULL",
            "unsupported_currency": f"currency IS NOT NULL AND currency NOT IN ({currencies})",
            "invalid_content_type": f"content_type_given IS NOT NULL AND lower(content_type_given) NOT IN ({types})",
            "invalid_event_channel": f"channel_given IS NOT NULL AND lower(channel_given) NOT IN ({channels})",
        }
        texts = ",\n".join(f"{self._text_sql(column, kinds)} AS {key}" for column, key in _TEXT_FIELDS)
        content_texts = ",\n".join(
            f"{self._text_sql(column, kinds)} AS {column}"
            for column in ("content_id", "content_name", "content_category", "brand")
        )
        # Only the fields of columns the batch has leave the query: exporting columns of NULLs costs DuckDB about
        # as much as the rest of the query together (``_events`` takes a field it does not find as absent). And only
        # what DuckDB computes leaves it: a text column it would pass through unchanged (an identifier hashed by
        # ``_inputs``, an order id, a given event id) is taken from the input as it is, since exporting a string
        # column from DuckDB copies it (about 1 ms per 50k rows each).
        passed: dict[str, str] = {}  # output field -> input column
        for column, key in (
            *_TEXT_FIELDS,
            *((c, c) for c in ("content_id", "content_name", "content_category", "brand")),
        ):
            if column in kinds and _is_text(kinds[column]):
                passed[key] = column
        for key, column in (("emails", "email"), ("external_ids", "external_id")):
            if column in kinds and not _is_list(kinds[column]):
                passed[key] = column
        fields = {key: key for column, key in _TEXT_FIELDS if column in kinds}
        given = {"currency": "currency", "content_type": "lower(content_type_given)",
                 "event_channel": "lower(channel_given)", "value": "value"}  # fmt: skip
        fields |= {key: value for key, value in given.items() if key in kinds}
        items = [column for column in _CONTENT_FIELDS if column in kinds]
        fields |= {column: column for column in items}
        order = ["rn", "name", "time", "emails", "phones", "external_ids", "invalid_phone", *fields]
        order += ["has_content", "reason", "argument", "event_id"]
        computed = {key: value for key, value in fields.items() if key not in passed}
        optional = "".join(f"{value} AS {key}, " for key, value in computed.items())
        tests = [f"{column} IS NOT NULL" for column in items]
        has_content = " OR ".join(tests) if tests else "false"
        derived = (
            f"substr(sha256(concat_ws(chr(31), {_sql(EVENT_ID_VERSION)}, coalesce(name, ''), "
            f"coalesce(CAST(time AS VARCHAR), ''), coalesce(order_id, ''), coalesce(shop_id, ''), "
            f"{joined('email', 'emails')}, {joined('phone', 'phones')}, "
            f"{joined('external_id', 'external_ids')})), 1, 32)"
        )
        # A given event id (text) is passed through; the derived one is computed only for rows without one.
        given_text = "event_id" in kinds and _is_text(kinds["event_id"])
        event_id = f"CASE WHEN given_id IS NULL THEN {derived} END" if given_text else f"coalesce(given_id, {derived})"
        if given_text and table.column("event_id").null_count == 0:
            event_id = "NULL::VARCHAR"  # every row has its id: nothing to derive (nor to scan for it)
        identifiers = "".join(f"{key}, " for key in ("emails", "external_ids") if key not in passed)
        # A single phone per row arrives as a hash, '' or '!' (``_inputs``): pyarrow tells them apart for less than
        # DuckDB's export of the column costs.
        single_phone = "phone" in kinds and not _is_list(kinds["phone"])
        if not single_phone:
            identifiers += "phones, coalesce(invalid_phone, false) AS invalid_phone, "
        query = f"""
        WITH base AS (
            SELECT b.__rn AS rn,
                   {name} AS name,
                   {seconds} AS time, {state} AS time_state,
                   {self._word_sql("event_id", kinds)} AS given_id,
                   {self._hashes_sql("email", kinds, lower=True)} AS emails_all,
                   {self._hashes_sql("external_id", kinds, lower=False)} AS external_all,
                   {phones} AS phones_all,
                   {invalid_phone} AS invalid_phone,
                   {numbers["price"][0]} AS price, {numbers["quantity"][0]} AS quantity,
                   {numbers["value"][0]} AS value,
                   CASE {bad_number} ELSE NULL END AS bad_number,
                   {time_fix} AS time_fix,
                   {currency} AS currency,
                   {content_type} AS content_type_given,
                   {channel} AS channel_given,
                   {texts},
                   {content_texts}
            FROM batch AS b
        ), distinct_lists AS (
            SELECT *,
                   {distinct("email", "emails_all")} AS emails,
                   {distinct("phone", "phones_all")} AS phones,
                   {distinct("external_id", "external_all")} AS external_ids
            FROM base
        )
        SELECT rn, name, time, {identifiers}
               {optional}
               {has_content} AS has_content,
               {_reason_case(conditions)} AS reason,
               {argument} AS argument,
               {event_id} AS event_id
        FROM distinct_lists
        """
        self._db.register("batch", table)
        try:
            result = self._db.sql(query).to_arrow_table()
        finally:
            self._db.unregister("batch")
        return _with_passed(result, table, passed, order, given_text, single_phone)

    # -- per event ----------------------------------------------------------------------------------------------

    def _events(self, rows: pa.Table) -> PreparedBatch:
        """Group rows into events (in order of first appearance): the prepared ones as columns, with their JSON, and
        the rejected ones as objects (they are few).

        An event is a run of equal adjacent ``event_id`` s (``segments``); rows of one event that are apart in the
        batch are first brought together, stably. Every per-event value is a reduction over the runs, and the JSON
        is written by Arrow string kernels a level at a time (line item, ``contents``, event): no Python object per
        event or per row. A large batch is cut in two at an event boundary and the halves are prepared on two
        threads (pyarrow's kernels release the GIL), then put back in order.
        """
        if rows.num_rows == 0:
            return PreparedBatch()
        # One copy of the columns into single arrays (held rows and the new ones are two chunks), then none.
        rows = _in_row_order(rows).combine_chunks()
        order = ordered_by_first_appearance(_column(rows, "event_id"))
        if order is not None:
            rows = rows.take(order)
        cut = _event_boundary(_column(rows, "event_id"), rows.num_rows // 2)
        if self._pool is None or rows.num_rows < _SPLIT_FROM or cut in (0, rows.num_rows):
            return self._whole_events(rows)
        later = self._pool.submit(self._whole_events, rows.slice(cut))
        first = self._whole_events(rows.slice(0, cut))
        second = later.result()
        parts = [part.columns for part in (first, second) if part.columns is not None]
        return PreparedBatch(
            rejected=first.rejected + second.rejected,
            columns=EventColumns.concat(parts) if parts else None,
        )

    def _whole_events(self, rows: pa.Table) -> PreparedBatch:
        """``_events`` of rows in which each event's rows are adjacent."""
        ids = _column(rows, "event_id")
        runs = Segments.of(ids)
        counts = runs.counts()
        names, times = _column(rows, "name"), _column(rows, "time")
        conflicting = pc.invert(pc.and_(runs.agree(names), runs.agree(times)))
        reason = _column(rows, "reason")
        reasoned = runs.any(reason.is_valid())
        holds: pa.Array | None = None
        for item in needed_identifiers(self._settings.event_source):
            some = _has_hashes(_column(rows, _LISTS[item]))
            holds = some if holds is None else pc.or_(holds, some)
        assert holds is not None  # every source needs some identifier
        has_ids = runs.any(holds)
        ok = pc.and_(pc.invert(pc.or_(conflicting, reasoned)), has_ids)
        result = PreparedBatch()
        if not pc.all(ok).as_py():
            result.rejected = self._rejected(rows, runs, pc.invert(ok), conflicting)
        prepared = pc.sum(pc.cast(ok, pa.int64())).as_py() or 0
        if prepared == 0:
            return result
        bodies = pc.cast(self._bodies(rows, runs, names, times, ids), pa.binary())
        warned = pc.cast(runs.sums(_column(rows, "invalid_phone")), pa.int32())
        columns = [runs.first(ids), counts, bodies, warned]
        if prepared < len(runs):
            columns = [column.filter(ok) for column in columns]
        warnings = {"invalid_phone": columns[3]} if pc.max(warned).as_py() else {}
        result.columns = EventColumns(columns[0], columns[1], columns[2], warnings)
        return result

    def _rejected(
        self, rows: pa.Table, runs: Segments, rejected: pa.Array, conflicting: pa.Array
    ) -> list[RejectedEvent]:
        """The rejected events (``rejected``: a mask over the events), in order, each with its first reason."""
        needed = " or ".join(needed_identifiers(self._settings.event_source))
        # The first reason of an event: the smallest REASON_ORDER rank, then the first row (few rows have one).
        reasons = _column(rows, "reason")
        positions = pc.indices_nonzero(reasons.is_valid())
        first: dict[int, tuple[int, int]] = {}
        for run, code, position in zip(
            pc.take(runs.run, positions).to_pylist(),
            pc.take(reasons, positions).to_pylist(),
            positions.to_pylist(),
            strict=True,
        ):
            key = (REASON_ORDER[code], position)
            if run not in first or key < first[run]:
                first[run] = key
        chosen = pa.array([position for _, position in first.values()], pa.int64())
        found = dict(
            zip(
                first,
                zip(
                    pc.take(reasons, chosen).to_pylist(),
                    pc.take(_column(rows, "argument"), chosen).to_pylist(),
                    pc.take(_column(rows, "name"), chosen).to_pylist(),
                    strict=True,
                ),
                strict=True,
            )
        )
        events = pc.indices_nonzero(rejected)
        result: list[RejectedEvent] = []
        for event, event_id, count, clash in zip(
            events.to_pylist(),
            pc.take(runs.first(_column(rows, "event_id")), events).to_pylist(),
            pc.take(runs.counts(), events).to_pylist(),
            pc.take(conflicting, events).to_pylist(),
            strict=True,
        ):
            if clash:
                result.append(
                    RejectedEvent(event_id, "conflicting_line_items", REASONS["conflicting_line_items"], count)
                )
            elif event in found:
                code, argument, name = found[event]
                label = name[:LABEL_LENGTH] if code == "unknown_event_name" and name is not None else None
                detail = _detail({"reason": code, "argument": argument}, self._options)
                result.append(RejectedEvent(event_id, code, detail, count, label))
            else:
                detail = REASONS["missing_identifiers"].format(needed=needed)
                result.append(RejectedEvent(event_id, "missing_identifiers", detail, count))
        return result

    def _bodies(self, rows: pa.Table, runs: Segments, names: pa.Array, times: pa.Array, ids: pa.Array) -> pa.Array:
        """Every event's JSON (NULL or meaningless for events that are rejected: the caller filters them out)."""
        size = len(runs)
        strings = json_columns.strings
        firsts = self._firsts(rows, runs)
        user = [(key, _identifier_json(_column(rows, _LISTS[key]), runs)) for key in ("email", "phone", "external_id")]
        user += [(key, strings(firsts[key])) for _, key in USER_TEXT if key in firsts]
        properties: list[tuple[str, json_columns.Value]] = []
        contents = _contents_json(rows, runs)
        if contents is not None:
            properties.append(("contents", contents))
        if "content_type" in firsts:
            properties.append(("content_type", strings(firsts["content_type"])))
        value = firsts.get("value")
        if value is not None:
            currency = firsts.get("currency", pa.nulls(size, pa.string()))
            currency = pc.if_else(value.is_valid(), pc.fill_null(currency, DEFAULT_CURRENCY), currency)
            properties.append(("currency", strings(currency)))
            properties.append(("value", json_columns.floats(value, repeat=False)))
        elif "currency" in firsts:
            properties.append(("currency", strings(firsts["currency"])))
        properties += [(key, strings(firsts[key])) for _, key in PROPERTY_TEXT if key in firsts]
        if "event_channel" in firsts:
            properties.append(("event_channel", strings(firsts["event_channel"])))
        page = [(key, strings(firsts[key])) for _, key in PAGE_TEXT if key in firsts]
        limited = ',"limited_data_use":true}' if self._settings.limited_data_use else "}"
        name, event_id = strings(runs.first(names)), strings(runs.first(ids))
        return json_columns.concat(
            '{"event":"' if name.quote else '{"event":',
            name.text,
            '","event_time":' if name.quote else ',"event_time":',
            pc.cast(runs.first(times), pa.string()),
            ',"event_id":"' if event_id.quote else ',"event_id":',
            event_id.text,
            '"' if event_id.quote else "",
            *json_columns.wrapped("user", user, size),
            *json_columns.wrapped("properties", properties, size),
            *json_columns.wrapped("page", page, size),
            limited,
        )

    def _firsts(self, rows: pa.Table, runs: Segments) -> dict[str, pa.Array]:
        """Per event, the first present value of each text field, and its value: the first line item's that has one,
        else the line items' total (price times quantity, 1 when missing), summed in row order from 0.0 and
        rounded to 3 decimals as ``reference.line_item_total`` does. Fields no row has are left out."""
        columns: dict[str, pa.Array] = {"run": runs.run}
        agreed: dict[str, pa.Array] = {}
        for key in _EVENT_FIELDS:
            values = _field(rows, key)
            if values is None:
                continue
            # Where every event's rows agree (the line items of an order share its shop), the first row's value is
            # the first present one: no aggregation needed.
            if pc.all(runs.agree(values)).as_py():
                agreed[key] = runs.first(values)
            else:
                columns[key] = values
        price = _field(rows, "price")
        if price is not None:
            # NULL where there is no price: such a line item adds nothing (and an event without one has no total).
            quantity = _field(rows, "quantity")
            columns["amount"] = price if quantity is None else pc.multiply(price, pc.fill_null(quantity, 1.0))
        if len(columns) == 1:
            return agreed
        # One thread: the hash aggregation then visits rows in order, so "first" is the first row's and the sum
        # adds in row order from 0.0, as Python's loop does; groups come out in order of their first row.
        aggregates = [(key, "first") for key in columns if key not in ("run", "amount")]
        if "amount" in columns:
            aggregates.append(("amount", "sum"))
        grouped = pa.table(columns).group_by("run", use_threads=False).aggregate(aggregates)
        result = agreed | {
            key: grouped.column(f"{key}_first").combine_chunks() for key, _ in aggregates if key != "amount"
        }
        if "amount" in columns:
            total = grouped.column("amount_sum").combine_chunks()
            rounded = pc.divide(pc.floor(pc.add(pc.multiply(total, 1000.0), 0.5)), 1000.0)
            given = result.get("value")
            result["value"] = rounded if given is None else pc.coalesce(given, rounded)
        return result


def _with_passed(
    result: pa.Table, table: pa.Table, passed: dict[str, str], order: list[str], given_id: bool, phone: bool
) -> pa.Table:
    """The query's ``result`` with the input columns it passed over (``passed``: field -> column of ``table``) put
    back, row for row, the given event ids where the query derived none, and (``phone``) the phone hashes and
    invalid-phone flags of a single phone column; fields in ``order``."""
    numbers = json_columns.single(result.column("rn"))
    start = json_columns.single(table.column("__rn"))
    # DuckDB keeps a projection's order; should it not, the input's rows are taken in the result's order.
    positions = None
    if not numbers.equals(start):
        positions = pc.subtract(numbers, start[0] if len(start) else 0)

    def source(column: str) -> pa.Array:
        values = json_columns.single(table.column(column))
        if not pa.types.is_string(values.type):
            values = pc.cast(values, pa.string())
        return values if positions is None else pc.take(values, positions)

    phones: dict[str, pa.Array] = {}
    if phone:
        given = source("phone")  # a hash, '' (blank), '!' (invalid) or NULL
        invalid = pc.equal(given, _INVALID_PHONE)
        none = pc.fill_null(pc.or_(invalid, pc.equal(given, _BLANK)), True)
        phones = {"phones": pc.if_else(none, pa.scalar(None, pa.string()), given)}
        phones["invalid_phone"] = pc.fill_null(invalid, False)
    columns: dict[str, pa.Array | pa.ChunkedArray] = {}
    for key in order:
        if key in phones:
            columns[key] = phones[key]
        elif key in passed:
            columns[key] = source(passed[key])
        elif key == "event_id" and given_id:
            derived = json_columns.single(result.column("event_id"))
            given = source("event_id")
            columns[key] = given if derived.null_count == len(derived) else pc.coalesce(given, derived)
        else:
            columns[key] = result.column(key)
    return pa.table(columns)


def _reason_case(conditions: dict[str, str | None]) -> str:
    """SQL giving a row's first reason: one ``WHEN`` per row reason, in the order of ``rules.REASONS``.

    ``conditions`` maps every row reason (``rules.ROW_REASONS``) to its test, None where it does not apply (an
    unknown event name is no reason for the web source).
    """
    if set(conditions) != set(ROW_REASONS):
        raise AssertionError(f"row reasons without a SQL test, or tests of no row reason: {sorted(conditions)}")
    whens = " ".join(f"WHEN {conditions[code]} THEN {_sql(code)}" for code in ROW_REASONS if conditions[code])
    return f"CASE {whens} END"


def _detail(problem: dict[str, Any], options: TikTokPrepareOptions) -> str:
    """The reason's message, filled in exactly as the reference preparer fills it."""
    reason: str = problem["reason"]
    template = REASONS[reason]
    if reason == "event_too_old":
        return template.format(days=options.attribution_window_days)
    if reason == "event_in_future":
        return template.format(minutes=options.future_tolerance_seconds // 60)
    if reason == "invalid_value":
        return template.format(field=problem["argument"])
    if reason == "invalid_timestamp":
        return invalid_timestamp_detail(problem["argument"])
    return template


def _hashed(db: duckdb.DuckDBPyConnection, values: pa.Array, macro: str) -> pa.Array:
    """Single text values (trimmed) as the hashes ``macro`` gives, once per distinct value; lists as they are (the
    row query hashes those).

    The line items of an order repeat its customer's email: hashing each distinct value once, by DuckDB's SHA-256
    a column at a time, costs a third of hashing every row. Equal values are mostly adjacent (rows come grouped by
    order), so runs are collapsed first by one comparison with the previous row, which makes the dictionary small.
    """
    if _is_list(values.type) or len(values) == 0:
        return values
    opens = pa.concat_arrays([pa.array([True]), pc.fill_null(pc.not_equal(values[1:], values[:-1]), True)])
    starts = pc.indices_nonzero(opens)
    heads = pc.take(values, starts)
    encoded = pc.dictionary_encode(heads)
    texts = encoded.dictionary
    # What the row query's macros (``_hash_lower``, ``_hash_plain``) do, with only SHA-256 left to DuckDB: the values
    # are ASCII (``_inputs`` hashed the others in Python), so ASCII lower-casing is DuckDB's ``lower``.
    hexes = pc.and_(pc.equal(pc.binary_length(texts), 64), pc.match_substring_regex(texts, "^[0-9A-Fa-f]{64}$"))
    normalized = pc.ascii_lower(texts) if macro == "_hash_lower" else texts
    todo = pc.invert(pc.or_(hexes, pc.equal(texts, "")))
    db.register("_texts", pa.table({"t": normalized.filter(todo)}))
    try:
        # A projection keeps the rows' order (no ORDER BY needed).
        digests = db.sql("SELECT sha256(t) AS h FROM _texts").to_arrow_table().column("h").combine_chunks()
    finally:
        db.unregister("_texts")
    hashed = pc.if_else(hexes, pc.ascii_lower(texts), pa.scalar(None, pa.string()))
    if len(digests):
        hashed = pc.replace_with_mask(hashed, todo, digests)
    per_run = pc.take(hashed, encoded.indices)
    if len(starts) == len(values):
        return per_run
    run = pc.subtract(pc.cumulative_sum(pc.cast(opens, pa.int32())), pa.scalar(1, pa.int32()))
    return pc.take(per_run, run)


def _plain_phones(db: duckdb.DuckDBPyConnection, values: pa.Array, region: str) -> pa.Array:
    """Hashes of the numbers ``phone_shapes`` decides (valid, in a plain North American shape), by DuckDB's SHA-256
    a column at a time; NULL for the rest."""
    db.register("_numbers", pa.table({"number": e164_of_plain_shapes(values, region)}))
    try:
        # A projection keeps the rows' order (no ORDER BY needed); sha256 of NULL is NULL.
        hashed = db.sql("SELECT sha256(number) AS hashed FROM _numbers").to_arrow_table().column("hashed")
    finally:
        db.unregister("_numbers")
    return hashed.combine_chunks()


def _phone(value: str, region: str) -> str:
    hashed, invalid = hash_phone(value, region)
    if invalid:
        return _INVALID_PHONE
    return hashed or _BLANK


__all__ = ["VectorizedPreparer"]
