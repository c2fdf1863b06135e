"""What `offramp bench` measures: size a deployment on this machine with synthetic orders and the TikTok emulator.

Everything happens in a throw-away home (its own state store and key), never in the user's: synthetic store
orders are written to a DuckDB file, an emulator runs in its own process on a free loopback port, and the
orchestration runs twice: as a dry run (preparation only: query, normalize, hash, validate, JSON) and for real
(end to end, every event sent to the emulator and recorded). Peak memory is the process's resident set size.

The peer benchmarks (tests/benchmarks/) build on the same pieces: ``write_orders``, ``emulator_process``,
``bench_home``.
"""

from __future__ import annotations

import os
import resource
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import duckdb
import httpx

from offramp.core.commands import Offramp, RunSummary

SECRET_VARIABLE = "OFFRAMP_BENCH_APP_SECRET"  # where the bench credential's app secret is read from
BENCH_SQL = """\
SELECT order_id AS event_id, event_name AS event, ordered_at AS timestamp, email, phone, store_id AS shop_id,
       order_id, sku AS content_id, price, quantity
FROM orders ORDER BY order_id, sku
"""
_AREAS = "['206', '212', '305', '312', '415', '512', '617', '702', '713', '919']"


def write_orders(path: Path, rows: int) -> int:
    """Synthetic store orders, ``rows`` line items: 1 to 5 per order, over 90% with an email, about half with a phone,
    a few percent bad (no identifiers, unknown event names, invalid phones). Built by DuckDB, so millions of rows
    take seconds. Returns the row count."""
    orders = max(1, rows // 3 + 1)
    with duckdb.connect(str(path)) as con:
        con.execute("SET enable_progress_bar = false")  # DuckDB would draw it on stdout, into `bench --json`
        con.execute(
            f"""
            CREATE OR REPLACE TABLE orders AS
            WITH o AS (SELECT i AS n, hash(i) AS h FROM range(1, {orders} + 1) AS r(i)),
                 items AS (SELECT n, h, j FROM o, range(0, 5) AS l(j) WHERE j < 1 + h % 5)
            SELECT printf('ORD-%09d', n) AS order_id,
                   CASE WHEN h % 100 < 2 THEN 'Refund Issued' ELSE 'Order Completed' END AS event_name,
                   (now()::TIMESTAMP - to_seconds(CAST(h % (20 * 86400) AS BIGINT))) AS ordered_at,
                   CASE WHEN h % 100 BETWEEN 2 AND 4 THEN NULL WHEN (h >> 8) % 100 < 96
                        THEN 'Customer.' || ((h >> 12) % 1000003) || '@Example.com ' END AS email,
                   CASE WHEN (h >> 20) % 100 < 1 THEN 'n/a'
                        WHEN (h >> 20) % 100 < 50 THEN '(' || {_AREAS}[CAST(1 + (h >> 24) % 10 AS INTEGER)] || ') '
                             || (200 + (h >> 28) % 700) || '-' || lpad(CAST((h >> 12) % 10000 AS VARCHAR), 4, '0')
                   END AS phone,
                   'store-' || (n % 120) AS store_id,
                   'SKU-' || ((h >> (j * 3)) % 20000) || '-' || j AS sku,
                   round(1 + ((h >> (j * 5)) % 20000) / 100.0, 2) AS price,
                   1 + (h >> (j * 7)) % 3 AS quantity
            FROM items
            ORDER BY n, j  -- stored in order: the line items of an order are adjacent even without ORDER BY
            LIMIT {rows}
            """
        )
        return int(con.execute("SELECT count(*) FROM orders").fetchall()[0][0])


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def emulator_process() -> Iterator[str]:
    """The emulator in its own process (so it does not share this one's GIL); yields its base URL."""
    port = _free_port()
    command = [sys.executable, "-m", "offramp.core.cli", "emulator", "tiktok", "--port", str(port)]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(f"{base}/_emulator/health", timeout=1).raise_for_status()
                break
            except httpx.HTTPError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise RuntimeError("the emulator did not start") from None
                time.sleep(0.1)
        yield base
    finally:
        process.terminate()
        process.wait(timeout=30)


def write_orders_elsewhere(path: Path, rows: int) -> int:
    """``write_orders`` in a process of its own, so the peak memory reported is the runs', not the generator's
    (DuckDB building millions of rows takes more memory than offramp sending them)."""
    code = "import sys; from pathlib import Path; from offramp.plugins.tiktok.commands.benchmark import write_orders; "
    code += "print(write_orders(Path(sys.argv[1]), int(sys.argv[2])))"
    command = [sys.executable, "-c", code, str(path), str(rows)]
    return int(subprocess.run(command, check=True, capture_output=True, text=True).stdout)


def _peak_rss_mb() -> float:
    # ru_maxrss is in kilobytes on Linux.
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


@dataclass
class BenchResult:
    """What `offramp bench` measured."""

    rows: int
    emulator_accepted: int  # events the emulator accepted in the real run
    prepare_rows_per_second: float
    end_to_end_rows_per_second: float
    peak_memory_mb: float
    dry_run: dict[str, Any]
    run: dict[str, Any]

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _configure(offramp: Offramp, base_url: str, orders: Path) -> None:
    from offramp.plugins.tiktok.emulator import (
        ADMIN_AUTH_CODE,
        DEFAULT_ADVERTISER_ID,
        DEFAULT_APP_ID,
        DEFAULT_EVENT_SET_ID,
    )

    document = {
        "workspace": "production",
        "credentials": [{"name": "bench", "type": "tiktok-offline-events", "settings": {
            "app_id": DEFAULT_APP_ID, "app_secret": f"env:{SECRET_VARIABLE}", "api_base_url": base_url,
            "auth_url": f"{base_url}/portal/auth"}}],
        "destinations": [{"name": "bench", "type": "tiktok-ads-offline-events", "credential": "bench",
                          "settings": {"advertiser_id": DEFAULT_ADVERTISER_ID, "event_set_id": DEFAULT_EVENT_SET_ID}}],
        "orchestrations": [{"name": "bench", "destination": "bench", "source": f"duckdb:{orders}", "sql": BENCH_SQL,
                            "options": {"event_name_map": {"Order Completed": "Purchase"}}}],
    }  # fmt: skip
    offramp.apply(document)
    credential = offramp.credential("production", "bench")
    complete = offramp.registry.credential_hooks(credential.type).complete_authorization
    assert complete is not None
    complete(credential, ADMIN_AUTH_CODE)


@contextmanager
def bench_home(home: Path, base_url: str, orders: Path) -> Iterator[Offramp]:
    """A throw-away state store in ``home`` holding the ``bench`` orchestration over ``orders``, its credential
    authorized at the emulator ``base_url``. The emulator's app secret is in the environment (where the credential
    reads it) while the block runs, and the store is closed after it."""
    from offramp.plugins.tiktok.emulator import DEFAULT_APP_SECRET

    previous = os.environ.get(SECRET_VARIABLE)
    os.environ[SECRET_VARIABLE] = DEFAULT_APP_SECRET
    try:
        with Offramp.throwaway(home) as offramp:
            _configure(offramp, base_url, orders)
            yield offramp
    finally:
        if previous is None:
            os.environ.pop(SECRET_VARIABLE, None)
        else:
            os.environ[SECRET_VARIABLE] = previous


def _summary(summary: RunSummary) -> dict[str, Any]:
    keys = ("status", "queried", "sent", "rejected", "failed", "skipped", "seconds", "reason_counts")
    return {key: getattr(summary, key) for key in keys}


def run_bench(rows: int) -> BenchResult:
    """Write ``rows`` synthetic rows, run a dry run and a real run against the emulator, measure both."""
    from offramp.plugins.tiktok.identifiers import e164

    with tempfile.TemporaryDirectory(prefix="offramp-bench-") as home, emulator_process() as base_url:
        orders = Path(home) / "orders.duckdb"
        written = write_orders_elsewhere(orders, rows)
        with bench_home(Path(home), base_url, orders) as offramp:
            # A small run first, so that the measured ones do not pay for imports and DuckDB's first queries; then
            # each measured run starts with cold phone parsing, as a run in its own process would.
            offramp.run("production", "bench", dry_run=True, limit=100)
            e164.cache_clear()
            dry = offramp.run("production", "bench", dry_run=True)
            e164.cache_clear()
            real = offramp.run("production", "bench")
            stats = httpx.get(f"{base_url}/_emulator/stats", timeout=30).json()
    return BenchResult(
        rows=written,
        emulator_accepted=int(stats.get("events_accepted", 0)),
        prepare_rows_per_second=dry.queried / dry.seconds if dry.seconds else 0.0,
        end_to_end_rows_per_second=real.queried / real.seconds if real.seconds else 0.0,
        peak_memory_mb=_peak_rss_mb(),
        dry_run=_summary(dry),
        run=_summary(real),
    )


__all__ = [
    "BENCH_SQL",
    "SECRET_VARIABLE",
    "BenchResult",
    "bench_home",
    "emulator_process",
    "run_bench",
    "write_orders",
    "write_orders_elsewhere",
]
