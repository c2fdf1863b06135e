"""Preparation throughput of the TikTok destination: vectorized preparer against per-row Python, same run.

Run: ``.venv/bin/python tests/benchmarks/bench_prepare.py [--rows N] [--batch N] [--repeat K]``

Three ways to prepare the same synthetic orders (1 to 5 line items per order, most rows with an email, about
half with a phone, a few percent bad rows) are timed in one process, on the same data, best of ``--repeat``:

- ``per-row``: the reference rules one row at a time, parsing every phone number as it comes (what a
  straightforward script does);
- ``per-row, cached phones``: the same with phonenumbers results cached by distinct value;
- ``vectorized``: ``VectorizedPreparer`` (DuckDB over each Arrow batch), which is what runs use.

The figures are ratios against ``per-row`` measured in the same run: this machine is shared and noisy. All three
must produce the same events (checked before timing), so the ratio compares equal work.
"""

from __future__ import annotations

import argparse
import random
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pyarrow as pa

from offramp.core.destination_api import PreparedBatch
from offramp.plugins.tiktok.identifiers import e164, parse_e164
from offramp.plugins.tiktok.options import TikTokPrepareOptions
from offramp.plugins.tiktok.prepare import VectorizedPreparer
from offramp.plugins.tiktok.reference import ReferencePreparer
from offramp.plugins.tiktok.settings import TikTokOfflineEventsDestinationSettings

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
SETTINGS = TikTokOfflineEventsDestinationSettings(
    advertiser_id="7200000000000000001", event_set_id="7300000000000000001"
)
OPTIONS = TikTokPrepareOptions(
    now=int(NOW.timestamp()), timezone="America/New_York", event_name_map={"Order Completed": "Purchase"}
)


def synthetic_orders(rows: int, seed: int = 7) -> pa.Table:
    """Store orders as a warehouse would hold them: one row per line item."""
    rng = random.Random(seed)
    customers = max(1, rows // 6)
    area_codes = (206, 212, 213, 305, 312, 404, 415, 503, 512, 602, 617, 702, 713, 808, 919)
    columns: dict[str, list[object]] = {
        name: []
        for name in ("order_id", "event", "timestamp", "email", "phone", "external_id", "shop_id", "content_id",
                     "content_name", "price", "quantity", "currency")
    }  # fmt: skip
    order = 0
    while len(columns["order_id"]) < rows:
        order += 1
        customer = rng.randrange(customers)
        email = f"  Customer.{customer}@Example.com " if rng.random() < 0.9 else None
        area, exchange = area_codes[customer % len(area_codes)], 200 + customer // 10_000 % 800
        phone = f"({area}) {exchange}-{customer % 10_000:04d}" if rng.random() < 0.5 else None
        if rng.random() < 0.02:
            phone = "n/a"  # an invalid phone: dropped with a warning
        event = "Order Completed" if rng.random() < 0.97 else "Refund"  # a few unknown names: rejected
        moment = NOW.replace(tzinfo=None) - timedelta(seconds=rng.randrange(35 * 86_400))  # some too old
        for item in range(rng.randint(1, 5)):
            columns["order_id"].append(f"ORD-{order}")
            columns["event"].append(event)
            columns["timestamp"].append(moment)
            columns["email"].append(email)
            columns["phone"].append(phone)
            columns["external_id"].append(f"cust-{customer}")
            columns["shop_id"].append(f"store-{order % 120}")
            columns["content_id"].append(f"SKU-{rng.randrange(20_000)}")
            columns["content_name"].append(f"Item {item}")
            columns["price"].append(round(rng.uniform(1, 200), 2))
            columns["quantity"].append(rng.randint(1, 4))
            columns["currency"].append("USD")
    table = pa.table({name: values[:rows] for name, values in columns.items()})
    return table.rename_columns(["event_id" if name == "order_id" else name for name in table.schema.names])


Make = Callable[[], ReferencePreparer | VectorizedPreparer]


def prepare_all(make: Make, data: pa.Table, batch: int) -> PreparedBatch:
    preparer = make()
    total = PreparedBatch()
    for record_batch in data.to_batches(max_chunksize=batch):
        result = preparer.prepare(record_batch)
        total.events.extend(result.events)
        total.rejected.extend(result.rejected)
    result = preparer.finish()
    total.events.extend(result.events)
    total.rejected.extend(result.rejected)
    return total


def timed(make: Make, data: pa.Table, batch: int, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        e164.cache_clear()  # every contender starts cold: no phone parsed by an earlier one
        started = time.perf_counter()
        prepare_all(make, data, batch)
        best = min(best, time.perf_counter() - started)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--batch", type=int, default=50_000, help="rows per Arrow record batch")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    data = synthetic_orders(args.rows)
    contenders: dict[str, Make] = {
        "per-row": lambda: ReferencePreparer(SETTINGS, OPTIONS, parse_phone=parse_e164),
        "per-row, cached phones": lambda: ReferencePreparer(SETTINGS, OPTIONS),
        "vectorized": lambda: VectorizedPreparer(SETTINGS, OPTIONS),
    }
    check = data.slice(0, min(args.rows, 20_000))
    outputs = {name: prepare_all(make, check, args.batch) for name, make in contenders.items()}
    reference = outputs["per-row"]
    for name, output in outputs.items():
        same = [(e.event_id, e.body) for e in output.events] == [(e.event_id, e.body) for e in reference.events]
        assert same and output.rejected == reference.rejected, f"{name} prepared different events"
    print(f"{args.rows:,} rows, {reference.rows:,} checked; batches of {args.batch:,}; best of {args.repeat}")
    baseline = None
    for name, make in contenders.items():
        seconds = timed(make, data, args.batch, args.repeat)
        baseline = baseline or seconds
        print(f"  {name:24} {args.rows / seconds:>10,.0f} rows/s   {baseline / seconds:5.1f}x per-row")


if __name__ == "__main__":
    main()
