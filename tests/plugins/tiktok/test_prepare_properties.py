"""Properties of preparation: normalization is idempotent, and the vectorized preparer agrees with the per-row
reference on every generated table, event for event and rejection for rejection."""

from __future__ import annotations

import string
from datetime import UTC, datetime, timedelta
from typing import Any

import pyarrow as pa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from offramp.core import PreparedBatch
from offramp.plugins.tiktok.events import KNOWN_EVENTS
from offramp.plugins.tiktok.identifiers import e164, hash_email, hash_external_id, hash_phone
from offramp.plugins.tiktok.options import TikTokPrepareOptions as PrepareOptions
from offramp.plugins.tiktok.prepare import VectorizedPreparer
from offramp.plugins.tiktok.reference import ReferencePreparer
from offramp.plugins.tiktok.settings import TikTokOfflineEventsDestinationSettings

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
SETTINGS = TikTokOfflineEventsDestinationSettings(
    advertiser_id="7200000000000000001", event_set_id="7300000000000000001"
)
WEB = TikTokOfflineEventsDestinationSettings(
    advertiser_id="7200000000000000001", event_set_id="CPIXEL0123456789", event_source="web", limited_data_use=True
)


def _rarely(good: st.SearchStrategy[Any], bad: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """``good`` nine times in ten, else ``bad``."""
    return st.integers(min_value=0, max_value=9).flatmap(lambda pick: bad if pick == 0 else good)


# Text with the characters real exports carry: ASCII, Latin-1 letters, whitespace of every kind at the ends.
_TEXT = st.text(alphabet=string.ascii_letters + string.digits + "@._-+ \t\n\u00a0éÉßİ", max_size=24)
_HEX = st.text(alphabet="0123456789abcdefABCDEF", min_size=64, max_size=64)
_PHONES = st.sampled_from(
    ["(206) 555-0100", "+44 20 7946 0018", "020 7946 0018", "5552671", "call me", "", " +1 (213) 373-4253 ",
     "+33 1 42 68 53 00", "12", "(+1)2133734253", "9f7ec22d72092cd3c0b58726ed9c2d91b92e51a3f29837508fb2948bb22dd2fd",
     "206.555.0100", "+1 415-555-2671", "(555) 555-0100", "213 373 4253"]
)  # fmt: skip
# Mostly good values, so that most tables yield events as well as rejections.
_NAMES = _rarely(
    st.sampled_from(sorted(KNOWN_EVENTS)),
    # A long unmapped name: its label is cut to 64 characters alike in both preparers.
    st.sampled_from(["Order Completed", " Purchase ", "purchase", "", "Signup", None, "Loyalty " * 12]),
)
_WORDS = st.sampled_from(["USD", "usd", " EUR ", "XYZ", "", "product", "Product_Group", "sku", "in_store", "fax"])
_MAYBE_WORD = st.one_of(st.none(), st.none(), st.none(), _WORDS)


def _identifier(values: st.SearchStrategy[str]) -> st.SearchStrategy[Any]:
    return _rarely(st.one_of(values, _HEX), st.none())


def _times(kind: str) -> st.SearchStrategy[Any]:
    moments = st.datetimes(min_value=datetime(2026, 10, 21), max_value=datetime(2026, 11, 20, 12, 30))
    if kind == "datetime":
        return _rarely(moments, st.none())
    if kind == "epoch":
        return _rarely(moments.map(lambda m: int(m.replace(tzinfo=UTC).timestamp())), st.none())
    texts = st.one_of(
        moments.map(lambda m: m.isoformat()),
        moments.map(lambda m: m.replace(tzinfo=UTC).isoformat()),
        moments.map(lambda m: (m.replace(tzinfo=UTC) + timedelta(hours=3)).isoformat(sep=" ")),
        moments.map(lambda m: m.date().isoformat()),
        moments.map(lambda m: str(int(m.replace(tzinfo=UTC).timestamp() * 1000))),
    )
    # Text in shapes that are not ISO 8601: the rejection's detail says which format to read it with.
    odd = ["garbage", "", "  ", None, "11/20/2026 11:45 PM", "20.11.2026", "2026/11/20 08:00:00", "13/13/2026"]
    return _rarely(texts, st.sampled_from(odd))


def _numbers(as_text: bool) -> st.SearchStrategy[Any]:
    floats = st.one_of(
        st.floats(min_value=0, max_value=10_000, allow_nan=False).map(lambda x: round(x, 2)),
        st.floats(min_value=0, max_value=10_000, allow_nan=False),
        st.sampled_from([0.0, 3.0, 1e-7]),
        st.sampled_from([0.0, -1.5, float("nan"), 1e16, 3.0]),
    )
    if as_text:
        return _rarely(st.one_of(st.none(), floats.map(lambda x: f"{x}")), st.sampled_from(["$20", "1,000", " 7 ", ""]))
    return st.one_of(st.none(), floats)


@st.composite
def tables(draw: st.DrawFn) -> pa.Table:
    count = draw(st.integers(min_value=1, max_value=14))
    time_kind = draw(st.sampled_from(["datetime", "epoch", "text"]))
    numbers_as_text = draw(st.booleans())
    listed = draw(st.booleans())
    rows: dict[str, list[Any]] = {name: [] for name in (
        "event", "timestamp", "email", "phone", "external_id", "event_id", "order_id", "content_id", "price",
        "quantity", "value", "currency", "content_type", "event_channel", "ip", "page_url",
    )}  # fmt: skip
    shared = ("event", "timestamp", "email", "phone", "external_id", "event_id", "order_id")
    while len(rows["event"]) < count:
        # An order: fields its line items share (sometimes they disagree), then one to three line items.
        order: dict[str, Any] = {"event": draw(_NAMES), "timestamp": draw(_times(time_kind))}
        if listed:
            order["email"] = draw(st.one_of(st.none(), st.lists(_identifier(_TEXT), max_size=3)))
            order["phone"] = draw(st.one_of(st.none(), st.lists(st.one_of(st.none(), _PHONES), max_size=3)))
        else:
            order["email"] = draw(_identifier(_TEXT))
            order["phone"] = draw(st.one_of(st.none(), _PHONES))
        order["external_id"] = draw(_identifier(_TEXT))
        order["event_id"] = draw(st.one_of(st.none(), st.sampled_from(["A", "B", " C ", "", "7"])))
        order["order_id"] = draw(st.one_of(st.none(), st.sampled_from(["1", "2", " "])))
        for _ in range(draw(st.integers(min_value=1, max_value=3))):
            for column in shared:
                disagree = column in ("event", "timestamp") and draw(st.integers(0, 19)) == 0
                rows[column].append(draw(_NAMES if column == "event" else _times(time_kind)) if disagree
                                    else order[column])  # fmt: skip
            rows["content_id"].append(draw(st.one_of(st.none(), _TEXT)))
            for column in ("price", "quantity", "value"):
                rows[column].append(draw(_numbers(numbers_as_text)))
            for column in ("currency", "content_type", "event_channel"):
                rows[column].append(draw(_MAYBE_WORD))
            rows["ip"].append(draw(st.one_of(st.none(), st.just("203.0.113.9"), st.just(""))))
            rows["page_url"].append(draw(st.one_of(st.none(), _TEXT)))
    chosen = draw(st.sets(st.sampled_from(sorted(rows)))) | {"event", "timestamp", "email"}
    return pa.table({name: values for name, values in rows.items() if name in chosen})


def _prepare(preparer: ReferencePreparer | VectorizedPreparer, rows: pa.Table, cut: int) -> PreparedBatch:
    total = PreparedBatch()
    parts = [rows.slice(0, cut), rows.slice(cut)] if 0 < cut < rows.num_rows else [rows]
    for batch in [*(preparer.prepare(part) for part in parts), preparer.finish()]:
        total.events.extend(batch.all_events())
        total.rejected.extend(batch.all_rejected())
    return total


def _comparable(result: PreparedBatch) -> tuple[list[Any], list[Any]]:
    # Bytes, not parsed JSON: what goes on the wire is the same, number formats and escapes included.
    events = [(e.event_id, e.rows, e.warnings, e.body) for e in result.events]
    return events, result.rejected


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows=tables(), cut=st.integers(min_value=0, max_value=12), web=st.booleans(),
       timezone=st.sampled_from(["UTC", "America/New_York", "Asia/Kolkata"]),
       mapped=st.booleans())  # fmt: skip
def test_vectorized_agrees_with_the_reference(rows: pa.Table, cut: int, web: bool, timezone: str, mapped: bool) -> None:
    names = {"Order Completed": "Purchase", "Signup": "CompleteRegistration"} if mapped else {}
    options = PrepareOptions(timezone=timezone, event_name_map=names, now=int(NOW.timestamp()))
    destination = WEB if web else SETTINGS
    expected = _prepare(ReferencePreparer(destination, options), rows, cut)
    actual = _prepare(VectorizedPreparer(destination, options), rows, cut)
    assert _comparable(actual) == _comparable(expected)
    assert actual.rows == rows.num_rows


@given(value=_TEXT)
def test_email_and_external_id_hashing_is_idempotent(value: str) -> None:
    for hash_ in (hash_email, hash_external_id):
        once = hash_(value)
        assert once is None or hash_(once) == once


@given(value=st.one_of(_PHONES, st.text(alphabet="0123456789 +()-", max_size=16)), region=st.sampled_from(["US", "GB"]))
def test_phone_normalization_is_idempotent(value: str, region: str) -> None:
    number = e164(value, region)
    if number is not None:
        assert e164(number, region) == number
    hashed, invalid = hash_phone(value, region)
    if hashed is not None:
        assert hash_phone(hashed, region) == (hashed, False)
    assert not (hashed and invalid)
