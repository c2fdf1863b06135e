"""The vectorized preparer against the reference on the bench's store orders, in batches as large as the runner's.

The property and fuzz suites use small tables; these batches are large enough for what only large batches do: the
rows of a batch prepared on two threads, identifiers hashed once per distinct value over thousands of rows, ids
derived for thousands of orders, events held back across batches.
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import pyarrow as pa
import pytest

from offramp.core.destination_api import PreparedBatch
from offramp.plugins.tiktok.commands.benchmark import BENCH_SQL, write_orders
from offramp.plugins.tiktok.options import TikTokPrepareOptions
from offramp.plugins.tiktok.prepare import VectorizedPreparer
from offramp.plugins.tiktok.reference import ReferencePreparer
from offramp.plugins.tiktok.settings import TikTokOfflineEventsDestinationSettings

SETTINGS = TikTokOfflineEventsDestinationSettings(
    advertiser_id="7200000000000000001", event_set_id="7300000000000000001"
)
OPTIONS = TikTokPrepareOptions(event_name_map={"Order Completed": "Purchase"})
# The bench's query without its event ids: every id is derived from the order's fields.
DERIVED_SQL = BENCH_SQL.replace("order_id AS event_id, ", "")


def _prepare_all(preparer: VectorizedPreparer | ReferencePreparer, batches: list[pa.RecordBatch]) -> PreparedBatch:
    total = PreparedBatch()
    for part in [*(preparer.prepare(batch) for batch in batches), preparer.finish()]:
        total.events.extend(part.all_events())
        total.rejected.extend(part.all_rejected())
    return total


@pytest.mark.parametrize("sql", [BENCH_SQL, DERIVED_SQL], ids=["given ids", "derived ids"])
def test_large_batches_of_store_orders_give_the_reference_events(tmp_path: Path, sql: str) -> None:
    orders = tmp_path / "orders.duckdb"
    write_orders(orders, 45_000)
    with duckdb.connect(str(orders), read_only=True) as con:
        batches = con.sql(sql).to_arrow_table().to_batches(max_chunksize=30_000)
    assert DERIVED_SQL != BENCH_SQL
    expected = _prepare_all(ReferencePreparer(SETTINGS, OPTIONS), batches)
    vectorized = VectorizedPreparer(SETTINGS, OPTIONS)
    try:
        actual = _prepare_all(vectorized, batches)
    finally:
        vectorized.close()
    assert len(expected.events) > 10_000 and expected.rejected  # events and rejections both, as in the bench
    assert [(e.event_id, e.rows, e.warnings, e.body) for e in actual.events] == [
        (e.event_id, e.rows, e.warnings, e.body) for e in expected.events
    ]
    assert actual.rejected == expected.rejected
