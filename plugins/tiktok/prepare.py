"""The vectorized preparer: the rules of ``reference.py``, a record batch at a time.

How the work is split, and why:

- Python, once per *distinct* value (pyarrow dictionary encoding): phone numbers (phonenumbers is slow, so each
  distinct number is parsed once, and those in a plain North American shape are not parsed at all: see
  ``phone_shapes``), timestamps given as text, and the rare email or external id that is not ASCII
  (Python's Unicode lower-casing and whitespace rules are the specification; DuckDB's differ outside ASCII). The
  results replace the raw values in the batch: a final hash, ``''`` for a blank value, ``'!'`` for an invalid
  phone, so DuckDB sees values that are already hashed and passes them through.
- DuckDB, over the whole batch: trimming, lower-casing and SHA-256 of emails and external ids, reading typed
  timestamps, numbers and vocabularies, the reason codes, derived event ids, and grouping line items into events.
- DuckDB, once per *event*: writing the JSON (``_event_json_sql``): the keys, order, omissions and escapes of
  ``payload.event_json``, which writes the reference path's events; the golden and property tests hold the two to
  the same bytes.
- Python, once per event: the prepared or rejected event objects, with the rejection's detail
  (``rules.REASONS``).

Rows are held back across batches exactly as the reference preparer holds them (the last event of a batch).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from offramp.core import PreparedBatch, PreparedEvent, RejectedEvent
from offramp.plugins.tiktok.columns import contract_names
from offramp.plugins.tiktok.events import KNOWN_EVENTS
from offramp.plugins.tiktok.identifiers import hash_email, hash_external_id, hash_phone, sha256_hex
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
    decide: Callable[[pa.Array], list[str | None]] | None = None,
) -> pa.Array:
    """``array`` (text, or a list of text) with ``function`` applied once per distinct value.

    ``only`` selects the values to map (a boolean mask over the flat values); the rest stay as they are.
    ``decide`` maps the distinct values a column at a time where it can (None where it cannot): ``function`` is
    called for the undecided ones only.
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
    distinct = encoded.dictionary.to_pylist()
    if only is not None:
        chosen = only(encoded.dictionary).to_pylist()
        results = pa.array([function(v) if pick else v for v, pick in zip(distinct, chosen, strict=True)], pa.string())
    elif decide is not None:
        decided = decide(encoded.dictionary)
        results = pa.array(
            [function(v) if d is None else d for v, d in zip(distinct, decided, strict=True)], pa.string()
        )
    else:
        results = pa.array([function(value) for value in distinct], pa.string())
    return pc.take(results, encoded.indices)


def _row_starts(ends: pa.Array, counts: pa.Array) -> pa.Array:
    """Offsets [0, c1, c1+c2, ...] over a flat array, taken at the ends of each group (``ends``: cumulative rows)."""
    cumulative = pa.concat_arrays([pa.array([0], pa.int64()), pc.cumulative_sum(pc.cast(counts, pa.int64()))])
    starts = pa.concat_arrays([pa.array([0], pa.int64()), ends.cast(pa.int64())])
    return pc.cast(pc.take(cumulative, starts), pa.int32())


def _concatenated_lists(column: pa.ChunkedArray, group_ends: pa.Array) -> pa.Array:
    """Per group, the rows' lists joined in row order (rows sorted by group; ``group_ends`` cumulative sizes)."""
    lists = column.combine_chunks()
    lengths = pc.fill_null(pc.list_value_length(lists), 0)
    return pa.ListArray.from_arrays(_row_starts(group_ends, lengths), pc.list_flatten(lists))


def _present_items(column: pa.ChunkedArray, group_ends: pa.Array) -> pa.Array:
    """Per group, the rows' non-null values in row order, as a list."""
    items = column.combine_chunks()
    present = pc.cast(items.is_valid(), pa.int64())
    return pa.ListArray.from_arrays(_row_starts(group_ends, present), items.filter(items.is_valid()))


def _trimmed(array: pa.Array) -> pa.Array:
    """Text (or lists of text) with ASCII whitespace trimmed; the non-ASCII values were already hashed."""
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    if _is_list(array.type):
        return _with_values(array, pc.utf8_trim(_as_text(pc.list_flatten(array)), ASCII_WHITESPACE))
    return pc.utf8_trim(_as_text(array), ASCII_WHITESPACE)


_WORD_COLUMNS = ("event", "event_id", "currency", "content_type", "event_channel")
_PLAIN_COLUMNS = (*(column for column, _ in _TEXT_FIELDS), "content_id", "content_name", "content_category", "brand")


def _blank_to_null(column: pa.Array | pa.ChunkedArray, *, trim: bool) -> pa.Array:
    """Text with blank cells (empty or ASCII whitespace only) NULL; trimmed too when ``trim``."""
    values = _as_text(column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column)
    trimmed = pc.ascii_trim(values, ASCII_WHITESPACE)
    kept = trimmed if trim else values
    return pc.if_else(pc.equal(trimmed, ""), pa.scalar(None, pa.string()), kept)


def _not_ascii(values: pa.Array) -> pa.Array:
    return pc.fill_null(pc.invert(pc.string_is_ascii(values)), False)


class VectorizedPreparer:
    """Prepares Arrow record batches with DuckDB; produces exactly what ``ReferencePreparer`` produces."""

    def __init__(self, settings: TikTokOfflineEventsDestinationSettings, options: TikTokPrepareOptions) -> None:
        self._settings = settings
        self._options = options
        self._now = options.now if options.now is not None else int(time.time())
        self._unknown: dict[str, None] = {}
        self._present: set[str] = set()  # contract columns the query has
        self._held: pa.Table | None = None
        self._next_rn = 0
        # No progress bar: DuckDB draws one on stdout for long queries, which would corrupt `--json` output.
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
        """Release the in-memory DuckDB."""
        self._db.close()

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
                decide=lambda values: _plain_phones(values, region),
            )
        if "email" in columns:
            email = _map_distinct(columns["email"], lambda value: hash_email(value) or _BLANK, _not_ascii)
            columns["email"] = _trimmed(email)
        if "external_id" in columns:
            external = _map_distinct(
                columns["external_id"], lambda value: hash_external_id(value) or _BLANK, _not_ascii
            )
            columns["external_id"] = _trimmed(external)
        # Trimming and blank tests in pyarrow: its ASCII kernels are some thirty times faster than DuckDB's trim
        # with a character set. Plain text keeps its value (blank becomes NULL); vocabulary is trimmed as well.
        for name in (*_PLAIN_COLUMNS, *_WORD_COLUMNS):
            if name in columns and _is_text(columns[name].type):
                columns[name] = _blank_to_null(columns[name], trim=name in _WORD_COLUMNS)
        if "timestamp" in columns and not self._typed_time(columns["timestamp"].type):
            columns["timestamp"] = self._python_times(columns["timestamp"])
        if "timestamp" in columns:
            columns["ts"] = columns.pop("timestamp")
        columns["__rn"] = pa.array(range(self._next_rn, self._next_rn + table.num_rows), pa.int64())
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
            return "[]::VARCHAR[]"
        # Values arrive trimmed (``_trimmed``); the 64-hex test is guarded by the cheap length test first.
        hashed = "_hash_lower" if lower else "_hash_plain"
        cell = f'b."{column}"'
        if _is_list(kind):
            return f"list_filter(list_transform(coalesce({cell}, []), lambda x: {hashed}(x)), lambda h: h IS NOT NULL)"
        return f"list_filter([{hashed}({cell})], lambda h: h IS NOT NULL)"

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
        if "phone" in kinds:
            phones = (
                "coalesce(b.phone, [])"
                if _is_list(kinds["phone"])
                else "CASE WHEN b.phone IS NULL THEN [] ELSE [b.phone] END"
            )
        else:
            phones = "[]::VARCHAR[]"
        old = self._now - options.attribution_window_days * 86_400
        future = self._now + options.future_tolerance_seconds
        known = ", ".join(_sql(item) for item in sorted(KNOWN_EVENTS))
        currencies = ", ".join(_sql(item) for item in sorted(CURRENCIES))
        types = ", ".join(_sql(item) for item in sorted(CONTENT_TYPES))
        channels = ", ".join(_sql(item) for item in sorted(EVENT_CHANNELS))
        # Each row reason's test, by code; the CASE checks them in the order of rules.REASONS.
        conditions: dict[str, str | None] = {
            "missing_event_name": "name IS NULL",
            "unknown_event_name": f"NOT list_contains([{known}], name)" if settings.event_source == "offline" else None,
            "missing_timestamp": "time_state = 'missing'",
            "invalid_timestamp": "time_state = 'bad'",
            "event_too_old": f"time < {old}",
            "event_in_future": f"time > {future}",
            "invalid_value": "bad_number IS NOT NULL",
            "unsupported_currency": f"currency IS NOT NULL AND NOT list_contains([{currencies}], currency)",
            "invalid_content_type": "content_type_given IS NOT NULL "
            f"AND NOT list_contains([{types}], lower(content_type_given))",
            "invalid_event_channel": "channel_given IS NOT NULL "
            f"AND NOT list_contains([{channels}], lower(channel_given))",
        }
        texts = ",\n".join(f"{self._text_sql(column, kinds)} AS {key}" for column, key in _TEXT_FIELDS)
        content_texts = ",\n".join(
            f"{self._text_sql(column, kinds)} AS {column}"
            for column in ("content_id", "content_name", "content_category", "brand")
        )
        query = f"""
        WITH base AS (
            SELECT b.__rn AS rn,
                   {name} AS name,
                   {seconds} AS time, {state} AS time_state,
                   {self._word_sql("event_id", kinds)} AS given_id,
                   {self._hashes_sql("email", kinds, lower=True)} AS emails_all,
                   {self._hashes_sql("external_id", kinds, lower=False)} AS external_all,
                   list_filter({phones}, lambda p: p IS NOT NULL AND p <> '' AND p <> '!') AS phones_all,
                   list_contains({phones}, '!') AS invalid_phone,
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
                   _distinct_in_order(emails_all) AS emails,
                   _distinct_in_order(phones_all) AS phones,
                   _distinct_in_order(external_all) AS external_ids
            FROM base
        )
        SELECT rn, name, time, emails, phones, external_ids, coalesce(invalid_phone, false) AS invalid_phone,
               {", ".join(key for _, key in _TEXT_FIELDS)},
               currency, lower(content_type_given) AS content_type, lower(channel_given) AS event_channel,
               value,
               CASE WHEN coalesce(content_id, content_name, content_category, brand) IS NOT NULL
                         OR price IS NOT NULL OR quantity IS NOT NULL
                    THEN {{'content_id': content_id, 'content_name': content_name,
                          'content_category': content_category, 'price': price, 'quantity': quantity,
                          'brand': brand}} END AS content,
               {_reason_case(conditions)} AS reason,
               {argument} AS argument,
               coalesce(given_id, substr(sha256(concat_ws(chr(31), {_sql(EVENT_ID_VERSION)}, coalesce(name, ''),
                   coalesce(CAST(time AS VARCHAR), ''), coalesce(order_id, ''), coalesce(shop_id, ''),
                   array_to_string(emails, ','), array_to_string(phones, ','),
                   array_to_string(external_ids, ','))), 1, 32)) AS event_id
        FROM distinct_lists
        """
        self._db.register("batch", table)
        try:
            return self._db.sql(query).to_arrow_table()
        finally:
            self._db.unregister("batch")

    # -- per event ----------------------------------------------------------------------------------------------

    def _events(self, rows: pa.Table) -> PreparedBatch:
        """Group rows into events (in order of first appearance) and write each event's JSON.

        Scalars are aggregated by DuckDB; the per-event lists (identifiers, line items) are built by pyarrow from
        the rows sorted by event, as offsets over the flattened values: DuckDB's ordered list aggregates cost more
        than the rest of the work together.
        """
        if rows.num_rows == 0:
            return PreparedBatch()
        rows = rows.append_column("pos", pa.array(range(rows.num_rows), pa.int64()))
        ranks = " ".join(f"WHEN {_sql(code)} THEN {rank}" for code, rank in REASON_ORDER.items())
        event_fields = (*(key for _, key in _TEXT_FIELDS), "currency", "content_type", "event_channel")
        # "The first line item's value that is present": arg_min over the row number, not an ordered aggregate.
        # Fields whose column the query lacks are NULL throughout: no aggregate needed.
        present = {key for column, key in _TEXT_FIELDS if column in self._present}
        present |= self._present & {"currency", "content_type", "event_channel"}
        firsts = ",\n".join(
            f"arg_min({key}, rn) FILTER (WHERE {key} IS NOT NULL) AS {key}"
            if key in present
            else f"NULL::VARCHAR AS {key}"
            for key in event_fields
        )
        needed = needed_identifiers(self._settings.event_source)
        lists = {"email": "emails", "phone": "phones", "external_id": "external_ids"}
        has_ids = " OR ".join(f"bool_or(len({lists[item]}) > 0)" for item in needed)
        scalars = f"""
            SELECT event_id,
                   min(rn) AS first_rn,
                   count(*) AS row_count,
                   -- min <> max: "more than one distinct value", without DISTINCT's hash tables.
                   min(coalesce(name, chr(0))) <> max(coalesce(name, chr(0)))
                       OR min(coalesce(time, -9223372036854775807)) <> max(coalesce(time, -9223372036854775807))
                       AS conflicting,
                   arg_min({{'reason': reason, 'argument': argument,
                             'label': CASE WHEN reason = 'unknown_event_name' THEN name END}},
                           (CASE reason {ranks} END) * 4294967296 + rn) FILTER (WHERE reason IS NOT NULL) AS problem,
                   ({has_ids}) AS has_ids,
                   count(*) FILTER (WHERE invalid_phone) AS invalid_phones,
                   arg_min(name, rn) AS name,
                   arg_min(time, rn) AS time,
                   arg_min(value, rn) FILTER (WHERE value IS NOT NULL) AS given_value,
                   {firsts}
            FROM rows
            GROUP BY event_id
            ORDER BY first_rn
        """
        order = """
            SELECT r.pos FROM rows AS r
            JOIN (SELECT event_id, min(rn) AS first_rn FROM rows GROUP BY event_id) AS g USING (event_id)
            ORDER BY g.first_rn, r.rn
        """
        self._db.register("rows", rows)
        try:
            events = self._db.sql(scalars).to_arrow_table()
            positions = self._db.sql(order).to_arrow_table().column("pos")
        finally:
            self._db.unregister("rows")
        ordered = rows.select(["emails", "phones", "external_ids", "content"]).take(positions)
        group_ends = pc.cumulative_sum(events.column("row_count").combine_chunks())
        for column, name in (("emails", "emails_all"), ("phones", "phones_all"), ("external_ids", "external_all")):
            events = events.append_column(name, _concatenated_lists(ordered.column(column), group_ends))
        events = events.append_column("contents", _present_items(ordered.column("content"), group_ends))
        query = f"""
        WITH valued AS (
            SELECT *,
                   _distinct_in_order(emails_all) AS email,
                   _distinct_in_order(phones_all) AS phone,
                   _distinct_in_order(external_all) AS external_id,
                   list_transform(list_filter(contents, lambda c: c.price IS NOT NULL),
                                  lambda c: c.price * coalesce(c.quantity, 1.0)) AS amounts
            FROM events
        ), totals AS (
            SELECT *,
                   -- A sum in row order from 0.0, exactly as Python's loop adds.
                   -- Rounded to 3 decimals as line_item_total rounds (the same IEEE operations).
                   coalesce(given_value, CASE WHEN len(amounts) > 0
                            THEN floor(list_reduce(list_prepend(0.0, amounts), lambda a, b: a + b) * 1000 + 0.5)
                                 / 1000 END) AS value
            FROM valued
        ), parts AS (
            SELECT *, {_json_parts_sql(self._present)} FROM totals
        )
        -- No ORDER BY: a projection keeps the events' order (first appearance), and sorting costs.
        SELECT event_id, row_count, conflicting, problem, has_ids, invalid_phones,
               -- encode(): UTF-8 bytes as they are (a cast to BLOB would read backslash escapes).
               CASE WHEN NOT conflicting AND problem IS NULL AND has_ids
                    THEN encode({_event_json_sql(self._settings)}) END AS body
        FROM parts
        """
        self._db.register("events", events)
        try:
            prepared = self._db.sql(query).to_arrow_table()
        finally:
            self._db.unregister("events")
        return self._assemble(prepared)

    def _assemble(self, events: pa.Table) -> PreparedBatch:
        result = PreparedBatch()
        columns = {name: events.column(name).to_pylist() for name in events.schema.names}
        needed = " or ".join(needed_identifiers(self._settings.event_source))
        for event_id, rows, body, invalid_phones, index in zip(
            columns["event_id"],
            columns["row_count"],
            columns["body"],
            columns["invalid_phones"],
            range(events.num_rows),
            strict=True,
        ):
            if body is None:
                problem = self._problem(columns, index, needed)
                assert problem is not None  # the query writes a body exactly when there is no problem
                result.rejected.append(RejectedEvent(event_id, problem[0], problem[1], rows, problem[2]))
            else:
                warnings = ("invalid_phone",) * invalid_phones
                result.events.append(PreparedEvent(event_id, body, rows, warnings))
        return result

    def _problem(self, columns: dict[str, list[Any]], index: int, needed: str) -> tuple[str, str, str | None] | None:
        """(reason, detail, label) of an event without a body."""
        if columns["conflicting"][index]:
            return "conflicting_line_items", REASONS["conflicting_line_items"], None
        problem = columns["problem"][index]
        if problem is not None:
            label = problem["label"]
            return problem["reason"], _detail(problem, self._options), None if label is None else label[:LABEL_LENGTH]
        if not columns["has_ids"][index]:
            return "missing_identifiers", REASONS["missing_identifiers"].format(needed=needed), None
        return None


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


def _member(key: str, value: str) -> str:
    """SQL for `"key":<json of value>`, or NULL when the value is NULL (concat_ws then leaves it out)."""
    return f"""CASE WHEN {value} IS NOT NULL THEN '"{key}":' || to_json({value}) END"""


def _list_member(key: str, value: str) -> str:
    return f"""CASE WHEN len({value}) > 0 THEN '"{key}":' || to_json({value}) END"""


def _joined(members: list[str]) -> str:
    """SQL joining the present members with commas ('' when none is)."""
    return f"concat_ws(',', {', '.join(members)})" if members else "''"


def _object(key: str, inner: str) -> str:
    """SQL for `,"key":{...}` around a column of joined members, or '' when it is empty."""
    return f"""CASE WHEN {inner} <> '' THEN ',"{key}":{{' || {inner} || '}}' ELSE '' END"""


def _json_parts_sql(present: set[str]) -> str:
    """SQL for the insides of the user, properties and page objects, as columns user_json, properties_json and
    page_json (computed once each, then wrapped by ``_event_json_sql``).

    Members whose column the query lacks are left out of the SQL altogether (``present``: contract columns).
    """
    user = [_list_member(key, key) for key in ("email", "phone", "external_id") if key in present]
    user += [_member(key, key) for column, key in USER_TEXT if column in present]
    quantity = (
        "CASE WHEN c.quantity = floor(c.quantity) THEN CAST(CAST(c.quantity AS BIGINT) AS VARCHAR) "
        "ELSE CAST(to_json(c.quantity) AS VARCHAR) END"
    )
    texts = ("content_id", "content_name", "content_category", "price")
    item_members = [_member(key, f"c.{key}") for key in texts if key in present]
    if "quantity" in present:
        item_members.append(f"""CASE WHEN c.quantity IS NOT NULL THEN '"quantity":' || {quantity} END""")
    if "brand" in present:
        item_members.append(_member("brand", "c.brand"))
    properties = []
    if item_members:
        item = f"'{{' || {_joined(item_members)} || '}}'"
        properties.append(
            f"""CASE WHEN len(contents) > 0 THEN '"contents":[' || """
            f"array_to_string(list_transform(contents, lambda c: {item}), ',') || ']' END"
        )
    if "content_type" in present:
        properties.append(_member("content_type", "content_type"))
    if present & {"currency", "value", "price"}:
        currency = f"CASE WHEN value IS NOT NULL THEN coalesce(currency, {_sql(DEFAULT_CURRENCY)}) ELSE currency END"
        properties.append(_member("currency", currency))
    if present & {"value", "price"}:
        properties.append(_member("value", "value"))
    properties += [_member(key, key) for column, key in PROPERTY_TEXT if column in present]
    if "event_channel" in present:
        properties.append(_member("event_channel", "event_channel"))
    page = [_member(key, key) for column, key in PAGE_TEXT if column in present]
    return f"{_joined(user)} AS user_json, {_joined(properties)} AS properties_json, {_joined(page)} AS page_json"


def _event_json_sql(settings: TikTokOfflineEventsDestinationSettings) -> str:
    """SQL writing one event's JSON: the same keys, order and omissions as ``payload.event_json``.

    Numbers are written by DuckDB (plain decimals, no exponent for the amounts TikTok takes); strings and lists
    by its JSON writer, which escapes as orjson does.
    """
    limited = """',"limited_data_use":true'""" if settings.limited_data_use else "''"
    return (
        """'{"event":' || to_json(name) || ',"event_time":' || CAST(time AS VARCHAR) || ',"event_id":' || """
        f"to_json(event_id) || {_object('user', 'user_json')} || {_object('properties', 'properties_json')} || "
        f"{_object('page', 'page_json')} || {limited} || '}}'"
    )


def _plain_phones(values: pa.Array, region: str) -> list[str | None]:
    """Hashes of the numbers ``phone_shapes`` decides (valid, in a plain North American shape); None for the rest."""
    return [
        None if number is None else sha256_hex(number) for number in e164_of_plain_shapes(values, region).to_pylist()
    ]


def _phone(value: str, region: str) -> str:
    hashed, invalid = hash_phone(value, region)
    if invalid:
        return _INVALID_PHONE
    return hashed or _BLANK


__all__ = ["VectorizedPreparer"]
