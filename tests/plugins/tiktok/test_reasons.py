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


def rejections(preparer: Any, rows: list[dict[str, Any]], **options: Any) -> list[Any]:
    table = pa.Table.from_pylist([{**GOOD, "event_id": f"e{n}", **row} for n, row in enumerate(rows)], schema=SCHEMA)
    opened = preparer(SETTINGS, TikTokPrepareOptions(now=NOW, **options))
    try:
        return opened.prepare(table).rejected + opened.finish().rejected
    finally:
        opened.close()


@pytest.mark.parametrize("preparer", [VectorizedPreparer, ReferencePreparer])
def test_unmapped_event_names_are_kept_as_labels_after_the_map_cut_to_64_characters(preparer: Any) -> None:
    long_name = "Loyalty points redeemed in store " * 3
    rejected = rejections(
        preparer,
        [{"event": "Gift Card Reload"}, {"event": "Order Completed"}, {"event": long_name}, {"value": "abc"}],
        event_name_map={"Order Completed": "Order Complete"},
    )

    assert (
        [(item.reason, item.label) for item in rejected]
        == [
            ("unknown_event_name", "Gift Card Reload"),
            ("unknown_event_name", "Order Complete"),  # the name the map gave it: the one to fix
            ("unknown_event_name", long_name[:64]),
            ("invalid_value", None),  # other reasons carry no value: they could be personal data
        ]
    )


@pytest.mark.parametrize(
    ("text", "strptime", "to_timestamp"),
    [
        ("12/31/2026 11:45 PM", "%m/%d/%Y %I:%M %p", "MM/DD/YYYY HH12:MI AM"),
        ("31/12/2026 23:45", "%d/%m/%Y %H:%M", "DD/MM/YYYY HH24:MI"),
        ("11/19/2026", "%m/%d/%Y", "MM/DD/YYYY"),
        ("19.11.2026 08:30:00", "%d.%m.%Y %H:%M:%S", "DD.MM.YYYY HH24:MI:SS"),
        ("2026/11/19 08:30", "%Y/%m/%d %H:%M", "YYYY/MM/DD HH24:MI"),
        ("Nov 19, 2026", "%b %d, %Y", "Mon DD, YYYY"),
    ],
)
@pytest.mark.parametrize("preparer", [VectorizedPreparer, ReferencePreparer])
def test_time_text_in_a_common_shape_is_rejected_with_the_format_to_read_it_with(
    preparer: Any, text: str, strptime: str, to_timestamp: str
) -> None:
    [rejected] = rejections(preparer, [{"timestamp": text}])

    assert rejected.reason == "invalid_timestamp"
    assert f"strptime(col, '{strptime}') AS timestamp" in rejected.detail
    assert f"to_timestamp(col, '{to_timestamp}') AS timestamp" in rejected.detail
    assert text not in rejected.detail  # the format, never the value


def test_the_suggested_format_reads_the_text_in_duckdb() -> None:
    import duckdb

    [rejected] = rejections(VectorizedPreparer, [{"timestamp": "12/31/2026 11:45 PM"}])
    sql = rejected.detail.split("strptime(col, ", 1)[1].split(") AS timestamp", 1)[0]

    with duckdb.connect() as db:
        read = db.execute(f"SELECT strptime('12/31/2026 11:45 PM', {sql})").fetchall()
    assert read == [(datetime(2026, 12, 31, 23, 45),)]


@pytest.mark.parametrize("preparer", [VectorizedPreparer, ReferencePreparer])
def test_time_text_in_no_known_shape_gets_the_general_fix_and_other_values_none(preparer: Any) -> None:
    shapeless, impossible = rejections(preparer, [{"timestamp": "last tuesday"}, {"timestamp": "13/13/2026"}])

    for rejected in (shapeless, impossible):
        assert rejected.detail == (
            f"{REASONS['invalid_timestamp']}; convert it in the query: strptime(col, FORMAT) AS timestamp in DuckDB "
            "and CSV sources, to_timestamp(col, FORMAT) AS timestamp in PostgreSQL"
        )


@pytest.mark.parametrize("preparer", [VectorizedPreparer, ReferencePreparer])
def test_a_date_whose_day_could_be_a_month_names_both_readings(preparer: Any) -> None:
    month_first, day_first = rejections(preparer, [{"timestamp": "11/05/2026"}, {"timestamp": "25/11/2026"}])

    assert "reads as '%m/%d/%Y' ('%d/%m/%Y' if the day comes first)" in month_first.detail
    assert "reads as '%d/%m/%Y':" in day_first.detail  # 25 is no month: one reading only
