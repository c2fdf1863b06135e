"""The TikTok destination's row rules, one row at a time: the readable specification.

This is the plain per-row implementation of every rule (renames, normalization and hashing, derived fields,
line-item grouping, validation). The vectorized preparer in ``prepare.py`` must produce exactly the same events
and rejections; the property tests hold both to that, and the preparation benchmark measures one against the
other. Read this file to learn what a rule does; read ``prepare.py`` to see how it is made fast.
"""

from __future__ import annotations

import hashlib
import math
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import pyarrow as pa

from offramp.core import PreparedBatch, PreparedEvent, RejectedEvent
from offramp.plugins.tiktok.events import KNOWN_EVENTS
from offramp.plugins.tiktok.identifiers import e164, normalize_emails, normalize_external_ids, normalize_phones
from offramp.plugins.tiktok.options import TikTokPrepareOptions
from offramp.plugins.tiktok.payload import event_json
from offramp.plugins.tiktok.rules import (
    ASCII_WHITESPACE,
    CONTENT_COLUMNS,
    CONTENT_TEXT,
    CONTENT_TYPES,
    CURRENCIES,
    DEFAULT_CURRENCY,
    EVENT_CHANNELS,
    LABEL_LENGTH,
    MAX_NUMBER,
    NUMBER_TEXT,
    NUMERIC_COLUMNS,
    PAGE_TEXT,
    PROPERTY_TEXT,
    REASON_ORDER,
    REASONS,
    USER_TEXT,
    invalid_timestamp_detail,
    needed_identifiers,
)
from offramp.plugins.tiktok.settings import TikTokOfflineEventsDestinationSettings
from offramp.plugins.tiktok.timestamps import TimestampError, event_time

EVENT_ID_VERSION = "offramp.event_id.v1"
_INVALID = object()  # a numeric cell that is not a number


def derive_event_id(
    name: str | None,
    when: int | None,
    order_id: str | None,
    shop_id: str | None,
    emails: Sequence[str],
    phones: Sequence[str],
    external_ids: Sequence[str],
) -> str:
    """The event id of a row without one: the first 32 hex characters of SHA-256 over its identifying values.

    The values are the version tag, the event name (after the event-name map), the event time in Unix seconds,
    order_id, shop_id and the hashed emails, phones and external ids (comma-joined, in order), joined by the
    unit separator U+001F. Line items of one order share all of them, so they share the id; a re-run gives the
    same id, so TikTok deduplicates a resend. Hashes, not raw identifiers, go in, so the id reveals no PII.
    """
    parts = (
        EVENT_ID_VERSION,
        name or "",
        "" if when is None else str(when),
        order_id or "",
        shop_id or "",
        ",".join(emails),
        ",".join(phones),
        ",".join(external_ids),
    )
    return hashlib.sha256("\x1f".join(parts).encode("utf-8")).hexdigest()[:32]


def text(value: object) -> str | None:
    """A plain text cell: None for a missing or blank one; numbers written as Python writes them."""
    if value is None:
        return None
    result = value if isinstance(value, str) else str(value)
    return result if result.strip(ASCII_WHITESPACE) else None


def word(value: object) -> str | None:
    """A vocabulary cell (event name, currency, content type, channel): trimmed, None when blank."""
    result = text(value)
    return None if result is None else result.strip(ASCII_WHITESPACE)


def number(value: object) -> float | None | object:
    """A numeric cell as a float; None when missing or blank; ``_INVALID`` when negative, huge, NaN or not a number."""
    if value is None:
        return None
    if isinstance(value, bool):
        return _INVALID
    if isinstance(value, int | float | Decimal):
        result = float(value)
    elif isinstance(value, str):
        if not value.strip(ASCII_WHITESPACE):
            return None
        if not NUMBER_TEXT.fullmatch(value):
            return _INVALID
        result = float(value)
    else:
        return _INVALID
    if math.isnan(result) or math.isinf(result) or result < 0 or result >= MAX_NUMBER:
        return _INVALID
    return result


@dataclass
class Row:
    """One source row after normalization (hashes, not raw identifiers)."""

    event_id: str
    name: str | None
    time: int | None
    emails: tuple[str, ...]
    phones: tuple[str, ...]
    external_ids: tuple[str, ...]
    invalid_phone: bool
    fields: dict[str, Any]
    content: dict[str, Any] | None
    value: float | None
    reason: tuple[str, str] | None = None  # (code, detail)


@dataclass
class _Group:
    rows: list[Row] = field(default_factory=list)


class ReferencePreparer:
    """Prepares rows one at a time (see the module docstring); same interface as the vectorized preparer."""

    def __init__(
        self,
        settings: TikTokOfflineEventsDestinationSettings,
        options: TikTokPrepareOptions,
        *,
        parse_phone: Callable[[str, str], str | None] = e164,
    ) -> None:
        self._settings = settings
        self._parse_phone = parse_phone
        self._options = options
        self._now = options.now if options.now is not None else int(time.time())
        self._unknown: dict[str, None] = {}
        self._held: list[Row] = []

    @property
    def unknown_columns(self) -> tuple[str, ...]:
        """Columns seen so far that this destination does not read."""
        return tuple(self._unknown)

    def prepare(self, batch: pa.RecordBatch | pa.Table) -> PreparedBatch:
        """Prepare an Arrow batch; see ``prepare_rows``."""
        from offramp.plugins.tiktok.columns import contract_names

        names, unknown = contract_names(batch.schema.names)
        self._unknown.update(dict.fromkeys(unknown))
        renamed = batch.rename_columns([names.get(name, name) for name in batch.schema.names])
        return self.prepare_rows(renamed.to_pylist())

    def prepare_rows(self, rows: Iterable[Mapping[str, Any]]) -> PreparedBatch:
        """Prepare rows given as dicts keyed by contract column names (lower case)."""
        prepared = [self._row(raw) for raw in rows]
        if not prepared:
            return PreparedBatch()
        # The last event may continue in the next batch: hold it back.
        last = prepared[-1].event_id
        pending = self._held + prepared
        self._held = [row for row in pending if row.event_id == last]
        return self._events([row for row in pending if row.event_id != last])

    def finish(self) -> PreparedBatch:
        """Everything held back."""
        held, self._held = self._held, []
        return self._events(held)

    def close(self) -> None:
        """Nothing to release."""

    # -- one row ------------------------------------------------------------------------------------------------

    def _name(self, raw: Mapping[str, Any]) -> str | None:
        if self._settings.fixed_event_name:
            return self._settings.fixed_event_name
        name = word(raw.get("event"))
        if name is None:
            return None
        return self._options.event_name_map.get(name, name)

    def _row(self, raw: Mapping[str, Any]) -> Row:
        reasons: list[tuple[str, str]] = []
        name = self._name(raw)
        if name is None:
            reasons.append(("missing_event_name", REASONS["missing_event_name"]))
        elif self._settings.event_source == "offline" and name not in KNOWN_EVENTS:
            reasons.append(("unknown_event_name", REASONS["unknown_event_name"]))
        when: int | None = None
        try:
            when = event_time(raw.get("timestamp"), self._options.timezone)
        except TimestampError as exc:
            reasons.append(("invalid_timestamp", invalid_timestamp_detail(exc.fix)))
        else:
            if when is None:
                reasons.append(("missing_timestamp", REASONS["missing_timestamp"]))
            elif when < self._now - self._options.attribution_window_days * 86_400:
                days = self._options.attribution_window_days
                reasons.append(("event_too_old", REASONS["event_too_old"].format(days=days)))
            elif when > self._now + self._options.future_tolerance_seconds:
                minutes = self._options.future_tolerance_seconds // 60
                reasons.append(("event_in_future", REASONS["event_in_future"].format(minutes=minutes)))
        numbers = {column: number(raw.get(column)) for column in NUMERIC_COLUMNS}
        for column in NUMERIC_COLUMNS:
            if numbers[column] is _INVALID:
                reasons.append(("invalid_value", REASONS["invalid_value"].format(field=column)))
                break
        currency = word(raw.get("currency"))
        if currency is not None:
            currency = currency.upper()
            if currency not in CURRENCIES:
                reasons.append(("unsupported_currency", REASONS["unsupported_currency"]))
        content_type = word(raw.get("content_type"))
        if content_type is not None and content_type.lower() not in CONTENT_TYPES:
            reasons.append(("invalid_content_type", REASONS["invalid_content_type"]))
        channel = word(raw.get("event_channel"))
        if channel is not None and channel.lower() not in EVENT_CHANNELS:
            reasons.append(("invalid_event_channel", REASONS["invalid_event_channel"]))

        emails = normalize_emails(raw.get("email")).hashes
        phone_result = normalize_phones(raw.get("phone"), self._options.default_phone_region, self._parse_phone)
        external_ids = normalize_external_ids(raw.get("external_id")).hashes
        fields: dict[str, Any] = {}
        for column, key in (*USER_TEXT, *PROPERTY_TEXT, *PAGE_TEXT):
            fields[key] = text(raw.get(column))
        fields["currency"] = currency
        fields["content_type"] = None if content_type is None else content_type.lower()
        fields["event_channel"] = None if channel is None else channel.lower()
        content: dict[str, Any] | None = None
        if any(raw.get(column) is not None for column in CONTENT_COLUMNS):
            content = {key: text(raw.get(column)) for column, key in CONTENT_TEXT}
            content["brand"] = text(raw.get("brand"))
            content["price"] = numbers["price"] if numbers["price"] is not _INVALID else None
            content["quantity"] = numbers["quantity"] if numbers["quantity"] is not _INVALID else None
            if not any(value is not None for value in content.values()):
                content = None
        given_id = word(raw.get("event_id"))
        event_id = given_id or derive_event_id(
            name, when, fields["order_id"], fields["shop_id"], emails, phone_result.hashes, external_ids
        )
        value = numbers["value"]
        reasons.sort(key=lambda item: REASON_ORDER[item[0]])
        return Row(
            event_id=event_id,
            name=name,
            time=when,
            emails=emails,
            phones=phone_result.hashes,
            external_ids=external_ids,
            invalid_phone=bool(phone_result.invalid),
            fields=fields,
            content=content,
            value=None if value is _INVALID else value,  # type: ignore[arg-type]
            reason=reasons[0] if reasons else None,
        )

    # -- one event ----------------------------------------------------------------------------------------------

    def _events(self, rows: list[Row]) -> PreparedBatch:
        groups: dict[str, list[Row]] = {}
        for row in rows:
            groups.setdefault(row.event_id, []).append(row)
        result = PreparedBatch()
        for event_id, members in groups.items():
            rejection = self._rejection(event_id, members)
            if rejection is not None:
                # An unmapped event name is a category label, not personal data: the run's report lists them.
                label = members[0].name if rejection[0] == "unknown_event_name" else None
                cut = None if label is None else label[:LABEL_LENGTH]
                result.rejected.append(RejectedEvent(event_id, rejection[0], rejection[1], len(members), cut))
                continue
            warnings = tuple("invalid_phone" for row in members if row.invalid_phone)
            body = event_json(self._fields(event_id, members), limited_data_use=self._settings.limited_data_use)
            result.events.append(PreparedEvent(event_id, body, len(members), warnings))
        return result

    def _rejection(self, event_id: str, rows: list[Row]) -> tuple[str, str] | None:
        if len({row.name for row in rows}) > 1 or len({row.time for row in rows}) > 1:
            return "conflicting_line_items", REASONS["conflicting_line_items"]
        reasons = [row.reason for row in rows if row.reason is not None]
        if reasons:
            return min(reasons, key=lambda item: REASON_ORDER[item[0]])
        needed = needed_identifiers(self._settings.event_source)
        have = {"email": rows_have(rows, "emails"), "phone": rows_have(rows, "phones")}
        have["external_id"] = rows_have(rows, "external_ids")
        if not any(have[name] for name in needed):
            wanted = " or ".join(needed)
            return "missing_identifiers", REASONS["missing_identifiers"].format(needed=wanted)
        return None

    def _fields(self, event_id: str, rows: list[Row]) -> dict[str, Any]:
        first = rows[0]
        fields: dict[str, Any] = {"event": first.name, "event_time": first.time, "event_id": event_id}
        fields["email"] = _distinct(hash_ for row in rows for hash_ in row.emails)
        fields["phone"] = _distinct(hash_ for row in rows for hash_ in row.phones)
        fields["external_id"] = _distinct(hash_ for row in rows for hash_ in row.external_ids)
        for key in first.fields:
            fields[key] = next((row.fields[key] for row in rows if row.fields[key] is not None), None)
        contents = [row.content for row in rows if row.content is not None]
        fields["contents"] = contents
        # The query's value (the first line item's that has one), else the sum of the line items.
        value = next((row.value for row in rows if row.value is not None), None)
        if value is None:
            value = line_item_total(contents)
        fields["value"] = value
        if value is not None and fields["currency"] is None:
            fields["currency"] = DEFAULT_CURRENCY
        return fields


def rows_have(rows: Sequence[Row], attribute: str) -> bool:
    """Whether any row holds at least one hash in ``attribute``."""
    return any(getattr(row, attribute) for row in rows)


def line_item_total(contents: Sequence[Mapping[str, Any]]) -> float | None:
    """Sum of price times quantity (1 when missing) over the line items with a price, in order, rounded to 3
    decimals; None if no line item has a price."""
    amounts = [
        float(item["price"]) * (1.0 if item.get("quantity") is None else float(item["quantity"]))
        for item in contents
        if item.get("price") is not None
    ]
    if not amounts:
        return None
    total = 0.0
    for amount in amounts:
        total += amount
    # Binary floats turn 35.00 + 2 * 9.99 into 54.980000000000004; round to 3 decimals (the finest minor unit
    # among TikTok's currencies) with operations SQL repeats exactly: x * 1000 + 0.5, floor, / 1000.
    return math.floor(total * 1000 + 0.5) / 1000


def _distinct(values: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(values))


__all__ = ["EVENT_ID_VERSION", "ReferencePreparer", "Row", "derive_event_id", "line_item_total", "number", "text"]
