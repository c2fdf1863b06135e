"""The vectorized preparer against the per-row reference on hostile tables, byte for byte.

Where ``test_prepare_properties`` draws tables shaped like real exports, these draw the cases a columnar preparer
gets wrong: the rows of one event apart in the batch (the Preparer contract lets them be), line items that disagree
on identifiers and fields, non-ASCII and pre-hashed identifiers, text that JSON must escape, numbers at the edges of
how floats are written (``3e-6``, ``1e-05``, ``123456789012.5``, ``-0.0``) and numbers that are no numbers.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pyarrow as pa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from offramp.core import PreparedBatch
from offramp.plugins.tiktok.options import TikTokPrepareOptions
from offramp.plugins.tiktok.prepare import VectorizedPreparer
from offramp.plugins.tiktok.reference import ReferencePreparer
from offramp.plugins.tiktok.settings import TikTokOfflineEventsDestinationSettings

NOW = int(datetime(2026, 11, 20, 12, 0, tzinfo=UTC).timestamp())
OFFLINE = TikTokOfflineEventsDestinationSettings(
    advertiser_id="7200000000000000001", event_set_id="7300000000000000001"
)
WEB = TikTokOfflineEventsDestinationSettings(
    advertiser_id="7200000000000000001", event_set_id="CPIXEL0123456789", event_source="web", limited_data_use=True
)
HEX = "9F7EC22D72092CD3C0B58726ED9C2D91B92E51A3F29837508FB2948BB22DD2FD"

_IDS = st.sampled_from(["A", "B", "C", "D", " E ", "é", 'q"uote'])
_EMAILS = st.sampled_from(
    ["a@b.c", " A@B.C ", "Ünïcode@Exämple.com", "İstanbul@example.com", "\u00a0x@y.z", HEX, HEX.lower(), "", " "]
)
_PHONES = st.sampled_from(["(206) 555-0100", "+44 20 7946 0018", "call me", "5552671", HEX, "213 373 4253", ""])
_EXTERNAL = st.sampled_from(["user_123", " User_123 ", "ß-kunde", HEX, "7", ""])
# Text JSON must escape (quotes, backslashes, control characters) or must not (DEL, non-ASCII, U+2028).
_TEXT = st.one_of(
    st.sampled_from(['say "hi"', "back\\slash", "tab\there", "nul\x00", "del\x7f", "line\u2028sep", "😀 emoji", "é"]),
    st.text(alphabet='ab"\\\x01\x1f\n é😀', min_size=1, max_size=6),
)
_FLOATS = st.one_of(
    st.floats(min_value=1e-6, max_value=1e-5, exclude_max=True),  # orjson: 3e-6, Arrow and DuckDB: 0.000003
    st.floats(min_value=1e-5, max_value=1e-4),
    st.floats(min_value=1e10, max_value=1e15, exclude_max=True),  # an exponent in Arrow from 1e11, not in orjson
    st.floats(min_value=0, max_value=10_000),
    st.sampled_from([0.0, -0.0, 1.0, 2.5, 3e-6, 1e-5, 1e-7, 1e11, 123456789012.5, 999999999999999.9]),
)
_BAD = st.sampled_from([-1.0, float("nan"), float("inf"), 1e15, 1e16])
_BAD_TEXT = st.sampled_from(["1e3", "$5", "1,000", "-2", " 7 ", "0.000003", "", "12.50", "1_000"])


def _maybe(values: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(st.none(), values)


@st.composite
def tables(draw: st.DrawFn) -> pa.Table:
    count = draw(st.integers(min_value=1, max_value=16))
    as_text = draw(st.booleans())
    numbers = st.one_of(_FLOATS.map(repr), _BAD_TEXT) if as_text else st.one_of(_FLOATS, _BAD)
    columns: dict[str, list[Any]] = {name: [] for name in (
        "event_id", "event", "timestamp", "email", "phone", "external_id", "content_id", "content_name", "price",
        "quantity", "value", "description", "page_url", "currency", "order_id",
    )}  # fmt: skip
    base = datetime(2026, 11, 19, 10, 0)
    for _ in range(count):
        # Ids drawn row by row: an event's rows are anywhere in the batch, and its rows disagree on everything but
        # (mostly) name and time.
        columns["event_id"].append(draw(_maybe(_IDS)))
        columns["event"].append(draw(st.sampled_from(["Purchase", "Purchase", "Purchase", "Contact", "Nope"])))
        columns["timestamp"].append(base if draw(st.integers(0, 9)) else datetime(2026, 11, 19, 11, 0))
        columns["email"].append(draw(_maybe(_EMAILS)))
        columns["phone"].append(draw(_maybe(_PHONES)))
        columns["external_id"].append(draw(_maybe(_EXTERNAL)))
        columns["content_id"].append(draw(_maybe(_TEXT)))
        columns["content_name"].append(draw(_maybe(st.sampled_from(["Socks", "Ünï", "a\\b"]))))
        for name in ("price", "quantity", "value"):
            columns[name].append(draw(st.one_of(st.none(), st.none(), numbers)))
        columns["description"].append(draw(_maybe(_TEXT)))
        columns["page_url"].append(draw(_maybe(_TEXT)))
        columns["currency"].append(draw(_maybe(st.sampled_from(["USD", "eur", "XYZ"]))))
        columns["order_id"].append(draw(_maybe(st.sampled_from(["1", "2"]))))
    chosen = draw(st.sets(st.sampled_from(sorted(columns)))) | {"event", "timestamp", "email", "price"}
    return pa.table({name: values for name, values in columns.items() if name in chosen})


def _prepare(preparer: ReferencePreparer | VectorizedPreparer, rows: pa.Table, cuts: list[int]) -> PreparedBatch:
    total = PreparedBatch()
    edges = sorted({0, rows.num_rows, *(cut for cut in cuts if 0 < cut < rows.num_rows)})
    parts = [rows.slice(start, end - start) for start, end in zip(edges, edges[1:], strict=False)]
    for batch in [*(preparer.prepare(part) for part in parts), preparer.finish()]:
        total.events.extend(batch.all_events())
        total.rejected.extend(batch.all_rejected())
    return total


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows=tables(), cuts=st.lists(st.integers(min_value=0, max_value=16), max_size=2), web=st.booleans())
def test_vectorized_writes_the_references_bytes(rows: pa.Table, cuts: list[int], web: bool) -> None:
    options = TikTokPrepareOptions(now=NOW, timezone="UTC", event_name_map={"Contact": "Contact"})
    destination = WEB if web else OFFLINE
    expected = _prepare(ReferencePreparer(destination, options), rows, cuts)
    actual = _prepare(VectorizedPreparer(destination, options), rows, cuts)
    assert [(e.event_id, e.rows, e.warnings, e.body) for e in actual.events] == [
        (e.event_id, e.rows, e.warnings, e.body) for e in expected.events
    ]
    assert actual.rejected == expected.rejected
    assert actual.rows == rows.num_rows


def test_a_large_batch_prepared_on_two_threads_writes_the_references_bytes() -> None:
    # Large enough to be cut in two at an event boundary and prepared on two threads; rows of some events apart
    # (every 7th row moved to the end), a few with an odd name, escapes and line items disagreeing on identifiers.
    count = 24_000
    columns: dict[str, list[Any]] = {
        "event_id": [f"E{n // 3:05d}" for n in range(count)],
        "event": ["Purchase" if n % 101 else "Nope" for n in range(count)],
        "timestamp": [datetime(2026, 11, 19, 10, 0)] * count,
        "email": [f"c{n // 3}@example.com" if n % 13 else f' "Ünï{n}"@x.y ' for n in range(count)],
        "phone": ["(206) 555-0100" if n % 2 else None for n in range(count)],
        "content_id": [f'SKU-{n}"\\' if n % 17 == 0 else f"SKU-{n}" for n in range(count)],
        "price": [round(1 + n % 997 / 7, 2) if n % 11 else 0.000003 for n in range(count)],
        "quantity": [1 + n % 3 for n in range(count)],
    }
    table = pa.table(columns)
    moved = [n for n in range(count) if n % 7 == 0]
    table = table.take([n for n in range(count) if n % 7] + moved)
    options = TikTokPrepareOptions(now=NOW, timezone="UTC")
    # One batch (the preparer cuts batches of 20,000 rows or more), then finish().
    expected = _prepare(ReferencePreparer(OFFLINE, options), table, [])
    actual = _prepare(VectorizedPreparer(OFFLINE, options), table, [])
    assert [(e.event_id, e.rows, e.warnings, e.body) for e in actual.events] == [
        (e.event_id, e.rows, e.warnings, e.body) for e in expected.events
    ]
    assert actual.rejected == expected.rejected
