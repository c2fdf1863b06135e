"""The vectorized preparer: the rules of ``reference.py``, a record batch at a time.

How the work is split, and why:

- Python, once per *distinct* value (pyarrow dictionary encoding): phone numbers (phonenumbers is slow, so each
  distinct number is parsed once), timestamps given as text, and the rare email or external id that is not ASCII
  (Python's Unicode lower-casing and whitespace rules are the specification; DuckDB's differ outside ASCII). The
  results replace the raw values in the batch: a final hash, ``''`` for a blank value, ``'!'`` for an invalid
  phone, so DuckDB sees values that are already hashed and passes them through.
- DuckDB, over the whole batch: trimming, lower-casing and SHA-256 of emails and external ids, reading typed
  timestamps, numbers and vocabularies, the reason codes, derived event ids, and grouping line items into events.
- Python, once per *event*: writing the JSON (``payload.event_json``), so the bytes on the wire come from the
  same code as the reference path's.

Rows are held back across batches exactly as the reference preparer holds them (the last event of a batch).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from offramp.core.destination_api import PreparedBatch, PreparedEvent, PrepareOptions, RejectedEvent
from offramp.plugins.tiktok.columns import contract_names
from offramp.plugins.tiktok.events import KNOWN_EVENTS
from offramp.plugins.tiktok.identifiers import hash_email, hash_external_id, hash_phone
from offramp.plugins.tiktok.payload import event_json
from offramp.plugins.tiktok.reference import EVENT_ID_VERSION, line_item_total
from offramp.plugins.tiktok.rules import (
    ASCII_WHITESPACE,
    CONTENT_TYPES,
    CURRENCIES,
    DEFAULT_CURRENCY,
    EPOCH_MILLIS_FROM,
    EVENT_CHANNELS,
    NUMBER_TEXT_SQL,
    NUMERIC_COLUMNS,
    PAGE_TEXT,
    PROPERTY_TEXT,
    REASON_ORDER,
    REASONS,
    USER_TEXT,
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
    """Text values; numbers written as Python writes them (DuckDB and pyarrow agree on integers)."""
    return array if pa.types.is_string(array.type) else pc.cast(array, pa.string())


def _map_distinct(
    array: pa.Array, function: Callable[[str], str], only: Callable[[pa.Array], pa.Array] | None = None
) -> pa.Array:
    """``array`` (text, or a list of text) with ``function`` applied once per distinct value.

    ``only`` selects the values to map (a boolean mask over the flat values); the rest stay as they are.
    """
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    if pa.types.is_list(array.type) or pa.types.is_large_list(array.type):
        values = _as_text(pc.list_flatten(array))
        mapped = _map_distinct(values, function, only)
        lengths = pc.fill_null(pc.list_value_length(array), 0)
        offsets = pa.concat_arrays([pa.array([0], pa.int32()), pc.cast(pc.cumulative_sum(lengths), pa.int32())])
        return pa.ListArray.from_arrays(offsets, mapped, mask=array.is_null())
    values = _as_text(array)
    if only is not None:
        mask = only(values)
        if not pc.any(mask).as_py():
            return values
    encoded = pc.dictionary_encode(values)
    distinct = encoded.dictionary.to_pylist()
    if only is None:
        results = pa.array([function(value) for value in distinct], pa.string())
    else:
        chosen = only(encoded.dictionary).to_pylist()
        results = pa.array([function(v) if pick else v for v, pick in zip(distinct, chosen, strict=True)], pa.string())
    return pc.take(results, encoded.indices)


def _not_ascii(values: pa.Array) -> pa.Array:
    return pc.fill_null(pc.invert(pc.string_is_ascii(values)), False)


class VectorizedPreparer:
    """Prepares Arrow record batches with DuckDB; produces exactly what ``ReferencePreparer`` produces."""

    def __init__(self, settings: TikTokOfflineEventsDestinationSettings, options: PrepareOptions) -> None:
        self._settings = settings
        self._options = options
        self._now = options.now if options.now is not None else int(time.time())
        self._unknown: dict[str, None] = {}
        self._held: pa.Table | None = None
        self._next_rn = 0
        self._db = duckdb.connect()

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
        last = rows.column("event_id")[rows.num_rows - 1]
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
        table = pa.Table.from_batches([batch]) if isinstance(batch, pa.RecordBatch) else batch
        columns: dict[str, pa.Array | pa.ChunkedArray] = {}
        for original, name in names.items():
            columns[name] = table.column(original)
        region = self._options.default_phone_region
        if "phone" in columns:
            columns["phone"] = _map_distinct(columns["phone"], lambda value: _phone(value, region))
        if "email" in columns:
            columns["email"] = _map_distinct(columns["email"], lambda value: hash_email(value) or _BLANK, _not_ascii)
        if "external_id" in columns:
            columns["external_id"] = _map_distinct(
                columns["external_id"], lambda value: hash_external_id(value) or _BLANK, _not_ascii
            )
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
        encoded = pc.dictionary_encode(values)
        seconds: list[int | None] = []
        states: list[str] = []
        for value in encoded.dictionary.to_pylist():
            try:
                when = event_time(value, self._options.timezone)
            except TimestampError:
                seconds.append(None)
                states.append("bad")
            else:
                seconds.append(when)
                states.append("missing" if when is None else "ok")
        # A struct so one substituted column carries both; NULL rows stay NULL (missing).
        mapped = pa.StructArray.from_arrays(
            [pa.array(seconds, pa.int64()), pa.array(states, pa.string())], names=["seconds", "state"]
        )
        return pc.take(mapped, encoded.indices)

    def _time_sql(self, kind: pa.DataType | None) -> tuple[str, str]:
        """SQL for (event time in Unix seconds, 'ok' | 'missing' | 'bad')."""
        if kind is None:
            return "NULL::BIGINT", "'missing'"
        tz = self._options.timezone
        if pa.types.is_struct(kind):
            return "b.ts.seconds", "coalesce(b.ts.state, 'missing')"
        if pa.types.is_timestamp(kind) or pa.types.is_date(kind):
            if pa.types.is_timestamp(kind) and kind.tz is not None:
                micros = "epoch_us(b.ts)"
            else:
                moment = "CAST(b.ts AS TIMESTAMP)"
                micros = f"epoch_us({moment})" if tz == "UTC" else f"epoch_us(timezone({_sql(tz)}, {moment}))"
            seconds = f"CAST(floor({micros} / 1000000) AS BIGINT)"
            return seconds, "CASE WHEN b.ts IS NULL THEN 'missing' ELSE 'ok' END"
        number = "CAST(b.ts AS DOUBLE)"
        seconds = (
            f"CASE WHEN isnan({number}) OR isinf({number}) THEN NULL "
            f"WHEN abs({number}) >= {EPOCH_MILLIS_FROM} THEN CAST(floor({number} / 1000) AS BIGINT) "
            f"ELSE CAST(floor({number}) AS BIGINT) END"
        )
        state = (
            f"CASE WHEN b.ts IS NULL THEN 'missing' WHEN isnan({number}) OR isinf({number}) THEN 'bad' "
            "ELSE 'ok' END"
        )
        return seconds, state

    @staticmethod
    def _text_sql(column: str, kinds: dict[str, pa.DataType]) -> str:
        """A plain text cell: NULL when missing or blank."""
        if column not in kinds:
            return "NULL::VARCHAR"
        value = f'CAST(b."{column}" AS VARCHAR)'
        return f"CASE WHEN trim({value}, {_WS}) = '' THEN NULL ELSE {value} END"

    def _word_sql(self, column: str, kinds: dict[str, pa.DataType]) -> str:
        """A vocabulary cell: trimmed, NULL when blank."""
        if column not in kinds:
            return "NULL::VARCHAR"
        return f"nullif(trim(CAST(b.\"{column}\" AS VARCHAR), {_WS}), '')"

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
        bad = f"({invalid} OR isnan({parsed}) OR isinf({parsed}) OR {parsed} < 0)"
        return f"CASE WHEN {bad} THEN NULL ELSE {parsed} END", f"coalesce({bad}, false)"

    @staticmethod
    def _hashes_sql(column: str, kinds: dict[str, pa.DataType], lower: bool) -> str:
        """The distinct hashes of an email or external_id cell (one value or a list), in order."""
        kind = kinds.get(column)
        if kind is None:
            return "[]::VARCHAR[]"
        t = f"trim(CAST(x AS VARCHAR), {_WS})"
        normalized = f"lower({t})" if lower else t
        one = (
            f"CASE WHEN {t} = '' THEN NULL WHEN regexp_full_match({t}, '[0-9A-Fa-f]{{64}}') THEN lower({t}) "
            f"ELSE sha256({normalized}) END"
        )
        if pa.types.is_list(kind) or pa.types.is_large_list(kind):
            values = f'coalesce(b."{column}", [])'
        else:
            values = f'CASE WHEN b."{column}" IS NULL THEN [] ELSE [b."{column}"] END'
        hashed = f"list_filter(list_transform({values}, lambda x: {one}), lambda h: h IS NOT NULL)"
        return hashed

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
        numbers = {column: self._number_sql(column, kinds) for column in NUMERIC_COLUMNS}
        bad_number = " ".join(f"WHEN {numbers[c][1]} THEN {_sql(c)}" for c in NUMERIC_COLUMNS)
        currency = f"upper({self._word_sql('currency', kinds)})"
        content_type = self._word_sql("content_type", kinds)
        channel = self._word_sql("event_channel", kinds)
        if "phone" in kinds:
            phones = (
                "coalesce(b.phone, [])"
                if pa.types.is_list(kinds["phone"]) or pa.types.is_large_list(kinds["phone"])
                else "CASE WHEN b.phone IS NULL THEN [] ELSE [b.phone] END"
            )
        else:
            phones = "[]::VARCHAR[]"
        old = self._now - options.attribution_window_days * 86_400
        future = self._now + options.future_tolerance_seconds
        known = ", ".join(_sql(item) for item in sorted(KNOWN_EVENTS))
        unknown_check = (
            f"WHEN name NOT IN ({known}) THEN 'unknown_event_name'" if settings.event_source == "offline" else ""
        )
        currencies = ", ".join(_sql(item) for item in sorted(CURRENCIES))
        types = ", ".join(_sql(item) for item in sorted(CONTENT_TYPES))
        channels = ", ".join(_sql(item) for item in sorted(EVENT_CHANNELS))
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
                   {currency} AS currency,
                   {content_type} AS content_type_given,
                   {channel} AS channel_given,
                   {texts},
                   {content_texts}
            FROM batch AS b
        ), distinct_lists AS (
            SELECT *,
                   list_filter(emails_all, lambda x, i: list_position(emails_all, x) = i) AS emails,
                   list_filter(phones_all, lambda x, i: list_position(phones_all, x) = i) AS phones,
                   list_filter(external_all, lambda x, i: list_position(external_all, x) = i) AS external_ids
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
               CASE WHEN name IS NULL THEN 'missing_event_name'
                    {unknown_check}
                    WHEN time_state = 'bad' THEN 'invalid_timestamp'
                    WHEN time_state = 'missing' THEN 'missing_timestamp'
                    WHEN time < {old} THEN 'event_too_old'
                    WHEN time > {future} THEN 'event_in_future'
                    WHEN bad_number IS NOT NULL THEN 'invalid_value'
                    WHEN currency IS NOT NULL AND currency NOT IN ({currencies}) THEN 'unsupported_currency'
                    WHEN content_type_given IS NOT NULL AND lower(content_type_given) NOT IN ({types})
                         THEN 'invalid_content_type'
                    WHEN channel_given IS NOT NULL AND lower(channel_given) NOT IN ({channels})
                         THEN 'invalid_event_channel'
               END AS reason,
               bad_number, content_type_given, channel_given,
               coalesce(given_id, substr(sha256(concat_ws(chr(31), {_sql(EVENT_ID_VERSION)}, coalesce(name, ''),
                   coalesce(CAST(time AS VARCHAR), ''), coalesce(order_id, ''), coalesce(shop_id, ''),
                   array_to_string(emails, ','), array_to_string(phones, ','),
                   array_to_string(external_ids, ','))), 1, 32)) AS event_id
        FROM distinct_lists
        ORDER BY rn
        """
        self._db.register("batch", table)
        try:
            return self._db.sql(query).to_arrow_table()
        finally:
            self._db.unregister("batch")

    # -- per event ----------------------------------------------------------------------------------------------

    def _events(self, rows: pa.Table) -> PreparedBatch:
        if rows.num_rows == 0:
            return PreparedBatch()
        ranks = " ".join(f"WHEN {_sql(code)} THEN {rank}" for code, rank in REASON_ORDER.items())
        firsts = ",\n".join(
            f"first({key} ORDER BY rn) FILTER (WHERE {key} IS NOT NULL) AS {key}"
            for key in (*(key for _, key in _TEXT_FIELDS), "currency", "content_type", "event_channel")
        )
        needed = needed_identifiers(self._settings.event_source)
        lists = {"email": "emails", "phone": "phones", "external_id": "external_ids"}
        has_ids = " OR ".join(f"bool_or(len({lists[item]}) > 0)" for item in needed)
        query = f"""
        WITH ranked AS (
            SELECT *, CASE reason {ranks} END AS reason_rank FROM rows
        ), grouped AS (
            SELECT event_id,
                   min(rn) AS first_rn,
                   count(*) AS row_count,
                   count(DISTINCT coalesce(name, chr(0))) > 1
                       OR count(DISTINCT coalesce(time, -9223372036854775807)) > 1 AS conflicting,
                   arg_min({{'reason': reason, 'name': name, 'bad_number': bad_number, 'currency': currency,
                            'content_type': content_type_given, 'channel': channel_given}},
                           reason_rank * 4294967296 + rn) FILTER (WHERE reason IS NOT NULL) AS problem,
                   ({has_ids}) AS has_ids,
                   first(name ORDER BY rn) AS name,
                   first(time ORDER BY rn) AS time,
                   flatten(list(emails ORDER BY rn)) AS emails_all,
                   flatten(list(phones ORDER BY rn)) AS phones_all,
                   flatten(list(external_ids ORDER BY rn)) AS external_all,
                   list(content ORDER BY rn) FILTER (WHERE content IS NOT NULL) AS contents,
                   first(value ORDER BY rn) FILTER (WHERE value IS NOT NULL) AS value,
                   count(*) FILTER (WHERE invalid_phone) AS invalid_phones,
                   {firsts}
            FROM ranked
            GROUP BY event_id
        )
        SELECT * EXCLUDE (emails_all, phones_all, external_all),
               list_filter(emails_all, lambda x, i: list_position(emails_all, x) = i) AS email,
               list_filter(phones_all, lambda x, i: list_position(phones_all, x) = i) AS phone,
               list_filter(external_all, lambda x, i: list_position(external_all, x) = i) AS external_id
        FROM grouped
        ORDER BY first_rn
        """
        self._db.register("rows", rows)
        try:
            events = self._db.sql(query).to_arrow_table()
        finally:
            self._db.unregister("rows")
        return self._assemble(events)

    def _assemble(self, events: pa.Table) -> PreparedBatch:
        result = PreparedBatch()
        columns = {name: events.column(name).to_pylist() for name in events.schema.names}
        needed = " or ".join(needed_identifiers(self._settings.event_source))
        limited = self._settings.limited_data_use
        text_keys = [*(key for _, key in _TEXT_FIELDS), "currency", "content_type", "event_channel"]
        for index in range(events.num_rows):
            event_id: str = columns["event_id"][index]
            rows: int = columns["row_count"][index]
            problem = self._problem(columns, index, needed)
            if problem is not None:
                result.rejected.append(RejectedEvent(event_id, problem[0], problem[1], rows))
                continue
            fields: dict[str, Any] = {
                "event": columns["name"][index],
                "event_time": columns["time"][index],
                "event_id": event_id,
                "email": columns["email"][index],
                "phone": columns["phone"][index],
                "external_id": columns["external_id"][index],
            }
            for key in text_keys:
                fields[key] = columns[key][index]
            contents = columns["contents"][index] or []
            fields["contents"] = contents
            value = columns["value"][index]
            fields["value"] = value if value is not None else line_item_total(contents)
            if fields["value"] is not None and fields["currency"] is None:
                fields["currency"] = DEFAULT_CURRENCY
            warnings = ("invalid_phone",) * columns["invalid_phones"][index]
            result.events.append(PreparedEvent(event_id, event_json(fields, limited_data_use=limited), rows, warnings))
        return result

    def _problem(self, columns: dict[str, list[Any]], index: int, needed: str) -> tuple[str, str] | None:
        if columns["conflicting"][index]:
            event_id = columns["event_id"][index]
            return "conflicting_line_items", REASONS["conflicting_line_items"].format(event_id=event_id)
        problem = columns["problem"][index]
        if problem is not None:
            return problem["reason"], _detail(problem, self._options)
        if not columns["has_ids"][index]:
            return "missing_identifiers", REASONS["missing_identifiers"].format(needed=needed)
        return None


def _detail(problem: dict[str, Any], options: PrepareOptions) -> str:
    """The reason's message, filled in exactly as the reference preparer fills it."""
    reason: str = problem["reason"]
    template = REASONS[reason]
    if reason == "unknown_event_name":
        return template.format(name=problem["name"])
    if reason == "event_too_old":
        return template.format(days=options.attribution_window_days)
    if reason == "event_in_future":
        return template.format(minutes=options.future_tolerance_seconds // 60)
    if reason == "invalid_value":
        return template.format(field=problem["bad_number"])
    if reason == "unsupported_currency":
        return template.format(currency=problem["currency"])
    if reason == "invalid_content_type":
        return template.format(content_type=problem["content_type"])
    if reason == "invalid_event_channel":
        return template.format(channel=problem["channel"])
    return template


def _phone(value: str, region: str) -> str:
    hashed, invalid = hash_phone(value, region)
    if invalid:
        return _INVALID_PHONE
    return hashed or _BLANK


def open_vectorized(settings: TikTokOfflineEventsDestinationSettings, options: PrepareOptions) -> VectorizedPreparer:
    """A vectorized preparer (the default for runs)."""
    return VectorizedPreparer(settings, options)


__all__ = ["VectorizedPreparer", "open_vectorized"]
