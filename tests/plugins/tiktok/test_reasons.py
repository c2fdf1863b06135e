"""The reason codes and their order are defined once (rules.REASONS): both preparers reject a row with several
problems for the same, first one."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pyarrow as pa
import pytest

from offramp.plugins.tiktok.options import TikTokPrepareOptions
from offramp.plugins.tiktok.prepare import VectorizedPreparer
from offramp.plugins.tiktok.reference import ReferencePreparer
from offramp.plugins.tiktok.rules import EVENT_REASONS, REASON_ORDER, REASONS, ROW_REASONS
from offramp.plugins.tiktok.settings import TikTokOfflineEventsDestinationSettings

NOW = int(datetime(2026, 11, 20, tzinfo=UTC).timestamp())
SETTINGS = TikTokOfflineEventsDestinationSettings(advertiser_id="7200000000000000001")
SCHEMA = pa.schema({"event_id": pa.string(), "event": pa.string(), "timestamp": pa.string(), "email": pa.string(),
                    "currency": pa.string(), "content_type": pa.string(), "event_channel": pa.string(),
                    "value": pa.string()})  # fmt: skip
GOOD: dict[str, Any] = {
    "event": "Purchase", "timestamp": "2026-11-19T12:00:00Z", "email": "a@example.com", "currency": "USD",
    "content_type": "product", "event_channel": "in_store", "value": "1.5",
}  # fmt: skip


def test_every_reason_is_judged_by_row_or_by_event_in_one_order() -> None:
    assert [*ROW_REASONS] == [code for code in REASONS if code not in EVENT_REASONS]
    assert list(REASON_ORDER) == list(REASONS)


@pytest.mark.parametrize(
    ("problems", "first"),
    [
        ({"event": "Dance", "timestamp": "yesterday", "currency": "XXX"}, "unknown_event_name"),
        ({"timestamp": None, "currency": "XXX", "event_channel": "fax"}, "missing_timestamp"),
        ({"timestamp": "2026-01-01T00:00:00Z", "value": "-3"}, "event_too_old"),
        ({"value": "abc", "currency": "XXX"}, "invalid_value"),
        ({"currency": "XXX", "content_type": "service", "event_channel": "fax"}, "unsupported_currency"),
        ({"content_type": "service", "event_channel": "fax", "email": None}, "invalid_content_type"),
        ({"event_channel": "fax", "email": None}, "invalid_event_channel"),
    ],
)
@pytest.mark.parametrize("preparer", [VectorizedPreparer, ReferencePreparer])
def test_a_row_with_several_problems_is_rejected_for_the_first_in_order(
    preparer: Any, problems: dict[str, Any], first: str
) -> None:
    table = pa.Table.from_pylist([{**GOOD, "event_id": "e1", **problems}], schema=SCHEMA)
    opened = preparer(SETTINGS, TikTokPrepareOptions(now=NOW))
    try:
        result = opened.prepare(table)
        finished = opened.finish()
    finally:
        opened.close()

    [rejected] = result.rejected + finished.rejected
    assert rejected.reason == first
