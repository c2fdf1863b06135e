"""The dlt peer of bench_peers.py: the same job written as a dlt 1.31 pipeline with a custom destination.

Run on its own (a quick check; bench_peers.py is the benchmark)::

    .venv/bin/python tests/benchmarks/peer_dlt.py ORDERS.duckdb [--base-url URL --token TOKEN]

The way a dlt user would write a reverse-ETL job on dlt's Arrow path:

- the resource reads the DuckDB file with the benchmark's SQL as Arrow record batches
  (``to_arrow_reader``), does the cheap column work with ``pyarrow.compute`` (trim + lower-case emails, event
  times to epoch seconds, quantities to integers), then in one Python pass per batch groups the line items of an
  order (adjacent rows with the same event_id; the order in progress is carried into the next batch, so an order
  split across two record batches still becomes one complete event), maps 'Order Completed' to 'Purchase', drops
  unknown event names, events older than 28 days and events without identifiers, hashes emails (sha256) and phones
  (phonenumbers, region US, valid ones only, E.164, then sha256). It yields one Arrow table of finished events per
  record batch, so raw emails and phones never reach dlt's load package on disk;
- dlt extracts and normalizes that into Parquet (``loader_file_format="parquet"``);
- the ``@dlt.destination`` sink (``batch_size=1000``) receives record batches of 1,000 complete events, turns them
  into the request's ``data`` (nulls left out) and posts them with a kept-alive ``requests`` session to the
  emulator's ``event/track/``, one request per sink call. Each call is self-contained (no state kept between
  calls), so dlt's per-batch progress and retries stay correct and every event is sent exactly once.

dlt runs in a throw-away pipelines directory with its telemetry off; nothing leaves the machine.
"""

from __future__ import annotations

import os

os.environ.setdefault("RUNTIME__DLTHUB_TELEMETRY", "false")  # before dlt reads its configuration

import argparse
import hashlib
import json
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dlt
import duckdb
import phonenumbers
import pyarrow as pa
import pyarrow.compute as pc
import requests
from dlt.common.schema import TTableSchema

from offramp.plugins.tiktok.commands.benchmark import BENCH_SQL
from offramp.plugins.tiktok.emulator import DEFAULT_EVENT_SET_ID
from offramp.plugins.tiktok.events import KNOWN_EVENTS

TRACK = "/open_api/v1.3/event/track/"
READ_ROWS = 100_000  # rows per Arrow record batch read from DuckDB

CONTENT = pa.struct([("content_id", pa.string()), ("price", pa.float64()), ("quantity", pa.int64())])
EVENTS = pa.schema(
    [
        ("event", pa.string()),
        ("event_time", pa.int64()),
        ("event_id", pa.string()),
        ("user", pa.struct([("email", pa.list_(pa.string())), ("phone", pa.list_(pa.string()))])),
        (
            "properties",
            pa.struct(
                [
                    ("contents", pa.list_(CONTENT)),
                    ("currency", pa.string()),
                    ("value", pa.float64()),
                    ("order_id", pa.string()),
                    ("shop_id", pa.string()),
                ]
            ),
        ),
    ]
)


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _phone_hash(phone: str) -> str | None:
    try:
        parsed = phonenumbers.parse(phone, "US")
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(parsed):
        return None
    return _sha(phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164))


@dlt.resource(name="tiktok_events", write_disposition="append")
def tiktok_events(orders: str, sql: str = BENCH_SQL) -> Iterator[pa.Table]:
    """One Arrow table of finished TikTok events (hashed identifiers, grouped line items) per DuckDB record batch."""
    oldest = time.time() - 28 * 86400
    con = duckdb.connect(orders, read_only=True)
    try:
        reader = con.sql(sql).to_arrow_reader(READ_ROWS)
        current: dict[str, Any] | None = None  # the order being grouped; may continue in the next batch
        current_id: str | None = None
        for batch in reader:
            emails = pc.utf8_lower(pc.utf8_trim_whitespace(batch.column("email"))).to_pylist()
            seconds = pc.divide(pc.cast(batch.column("timestamp"), pa.int64()), 1_000_000).to_pylist()
            quantities = pc.cast(batch.column("quantity"), pa.int64()).to_pylist()
            columns = [batch.column(name).to_pylist() for name in ("event_id", "event", "phone", "shop_id",
                                                                      "order_id", "content_id", "price")]  # fmt: skip
            finished: list[dict[str, Any]] = []
            rows = zip(*columns, emails, seconds, quantities, strict=True)
            for event_id, name, phone, shop, order_id, sku, price, email, when, quantity in rows:
                if event_id == current_id:  # another line item of the same order
                    if current is not None:
                        properties = current["properties"]
                        properties["contents"].append({"content_id": sku, "price": price, "quantity": quantity})
                        properties["value"] += price * quantity
                    continue
                if current is not None:
                    finished.append(current)
                current, current_id = None, event_id
                name = "Purchase" if name == "Order Completed" else name
                if name not in KNOWN_EVENTS or when < oldest:
                    continue
                user: dict[str, list[str]] = {}
                if email:
                    user["email"] = [_sha(email)]
                if phone and (hashed := _phone_hash(phone)) is not None:
                    user["phone"] = [hashed]
                if not user:
                    continue
                current = {"event": name, "event_time": when, "event_id": event_id, "user": user,
                           "properties": {"contents": [{"content_id": sku, "price": price, "quantity": quantity}],
                                          "currency": "USD", "value": price * quantity, "order_id": order_id,
                                          "shop_id": shop}}  # fmt: skip
            if finished:
                yield pa.Table.from_pylist(finished, schema=EVENTS)
        if current is not None:
            yield pa.Table.from_pylist([current], schema=EVENTS)
    finally:
        con.close()


def tiktok_sink(base_url: str | None, token: str, delivered: list[str]) -> Any:
    """A ``@dlt.destination`` posting each batch of 1,000 events as one request (``base_url`` None: prepare only).

    ``delivered`` collects the event_id of every event the sink handled, so the caller can check exactly-once."""
    session = requests.Session()
    headers = {"Access-Token": token, "Content-Type": "application/json"}

    @dlt.destination(batch_size=1000, loader_file_format="parquet", name="tiktok_offline_events")
    def post_events(items: pa.RecordBatch, table: TTableSchema) -> None:
        data = []
        for event in items.to_pylist():
            event["user"] = {key: value for key, value in event["user"].items() if value is not None}
            data.append(event)
        delivered.extend(event["event_id"] for event in data)
        if base_url is None:
            return
        body = {"event_source": "offline", "event_source_id": DEFAULT_EVENT_SET_ID, "data": data}
        answer = session.post(f"{base_url}{TRACK}", data=json.dumps(body), headers=headers, timeout=60)
        answer.raise_for_status()
        if answer.json()["code"] != 0:
            raise RuntimeError(f"TikTok refused a batch: {answer.text[:300]}")

    return post_events


def dlt_run(orders: Path, base_url: str | None, token: str, workdir: Path | None = None) -> list[str]:
    """Run the pipeline once in a fresh pipelines directory; returns the event_ids the sink handled, in order."""
    delivered: list[str] = []
    with tempfile.TemporaryDirectory(prefix="dlt-peer-", dir=workdir) as pipelines_dir:
        pipeline = dlt.pipeline(
            pipeline_name="tiktok_offline",
            pipelines_dir=pipelines_dir,
            destination=tiktok_sink(base_url, token, delivered),
            dataset_name="tiktok",
        )
        pipeline.run(tiktok_events(str(orders)), loader_file_format="parquet")
    return delivered


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("orders", type=Path, help="DuckDB file with the benchmark's orders table")
    parser.add_argument("--base-url", help="emulator base URL (none: prepare only)")
    parser.add_argument("--token", default="", help="access token for the emulator")
    args = parser.parse_args()
    started = time.perf_counter()
    delivered = dlt_run(args.orders, args.base_url, args.token)
    elapsed = time.perf_counter() - started
    print(f"{len(delivered):,} events ({len(set(delivered)):,} distinct) in {elapsed:.2f} s")


if __name__ == "__main__":
    main()
