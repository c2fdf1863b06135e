"""What `offramp bench` measures: size a deployment on this machine with synthetic orders and the TikTok emulator.

Everything happens in a throw-away home (its own state store and key), never in the user's: synthetic store
orders are written to a DuckDB file, an emulator runs in its own process on a free loopback port, and the
orchestration runs twice: as a dry run (preparation only: query, normalize, hash, validate, JSON) and for real
(end to end, every event sent to the emulator and recorded). Then the emulator's ceiling is measured in the same
run: the events offramp sent (at most the last 100,000), read back from the emulator and serialized ahead of time
into request bodies of 1,000 events, replayed (after a reset, so none is a duplicate) over as many keep-alive
connections as offramp keeps requests in flight. End to end is given as a share of that ceiling. Peak memory is
the process's resident set size.

The peer benchmarks (tests/benchmarks/) build on the same pieces: ``write_orders``, ``emulator_process`` (or
``bench_emulator`` for its process id), ``bench_home``, ``send_all``, ``cpu_seconds``, ``emulator_token``.
"""

from __future__ import annotations

import os
import queue
import resource
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb
import httpx
import orjson

from offramp.core.commands import Offramp, RunSummary

if TYPE_CHECKING:
    from offramp.plugins.tiktok.emulator import EmulatorProcess

SECRET_VARIABLE = "OFFRAMP_BENCH_APP_SECRET"  # where the bench credential's app secret is read from
BENCH_SQL = """\
SELECT order_id AS event_id, event_name AS event, ordered_at AS timestamp, email, phone, store_id AS shop_id,
       order_id, sku AS content_id, price, quantity
FROM orders ORDER BY order_id, sku
"""
# Requests offramp keeps in flight by default (the runner's DEFAULT_CONCURRENCY, within TikTok's max_in_flight): the
# ceiling is replayed over as many connections, so that it measures what the emulator can take from such a client.
CONNECTIONS = 4
BATCH = 1000  # events per request body of the ceiling, as offramp and TikTok batch them
# The ceiling replays at most this many of the events a run sent (the newest): a hundred requests give a steady
# rate, and the emulator keeping (and this process reading back) millions of events would cost memory and minutes.
CEILING_EVENTS = 100_000
TRACK = "/open_api/v1.3/event/track/"
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


@contextmanager
def bench_emulator(keep_events: int | None = None) -> Iterator[EmulatorProcess]:
    """The emulator in its own process (so it does not share this one's GIL), its ``process.pid`` there for CPU
    accounting. ``keep_events``: received events it keeps for inspection (None: its default, 100,000)."""
    from offramp.plugins.tiktok.emulator import EmulatorConfig, start_emulator_process

    config = EmulatorConfig() if keep_events is None else EmulatorConfig(keep_events=keep_events)
    with start_emulator_process(config) as emulator:
        yield emulator


@contextmanager
def emulator_process() -> Iterator[str]:
    """The emulator in its own process; yields its base URL."""
    with bench_emulator() as emulator:
        yield emulator.base_url


def emulator_token(base_url: str) -> str:
    """A fresh access token from the emulator's OAuth endpoint (after a reset, the old ones are gone)."""
    from offramp.plugins.tiktok.emulator import ADMIN_AUTH_CODE, DEFAULT_APP_ID, DEFAULT_APP_SECRET

    body = {"app_id": DEFAULT_APP_ID, "secret": DEFAULT_APP_SECRET, "auth_code": ADMIN_AUTH_CODE}
    answer = httpx.post(f"{base_url}/open_api/v1.3/oauth2/access_token/", json=body, timeout=30).json()
    if answer.get("code") != 0:
        raise RuntimeError(f"the emulator gave no token: {answer.get('message')}")
    return str(answer["data"]["access_token"])


def send_all(base_url: str, token: str, bodies: list[bytes], connections: int) -> float:
    """Post every prebuilt ``event/track/`` body over ``connections`` keep-alive connections, each taking the next
    body as soon as it has its answer; returns the elapsed seconds. Raises RuntimeError if any request failed."""
    work: queue.SimpleQueue[bytes | None] = queue.SimpleQueue()
    for body in bodies:
        work.put(body)
    for _ in range(connections):
        work.put(None)
    failures: list[str] = []
    headers = {"Access-Token": token, "Content-Type": "application/json"}

    def worker() -> None:
        with httpx.Client(base_url=base_url, headers=headers, timeout=60) as client:
            while (body := work.get()) is not None:
                answer = client.post(TRACK, content=body)
                if answer.status_code != 200 or answer.json()["code"] != 0:
                    failures.append(answer.text[:200])

    threads = [threading.Thread(target=worker) for _ in range(connections)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    if failures:
        raise RuntimeError(f"{len(failures)} requests failed, e.g. {failures[0]}")
    return elapsed


def cpu_seconds(pid: int) -> float | None:
    """CPU time (user + system, all threads) a process has used so far, from /proc (None where there is none)."""
    try:
        # The command name in field 2 may hold spaces or parentheses: count fields from its closing parenthesis.
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def request_bodies(events: list[dict[str, Any]], event_set_id: str) -> list[bytes]:
    """``event/track/`` bodies of ``BATCH`` events each, serialized ahead of time (what the ceiling replays)."""
    return [
        orjson.dumps({"event_source": "offline", "event_source_id": event_set_id, "data": events[i : i + BATCH]})
        for i in range(0, len(events), BATCH)
    ]


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
    """What `offramp bench` measured. Rates are over each run's wall time; events/s count the events the run sent
    (the dry run: would send), rows/s every row it read. ``ceiling_share`` is ``end_to_end_events_per_second`` over
    ``ceiling_events_per_second``."""

    rows: int
    events: int  # events sent in the real run
    emulator_accepted: int  # events the emulator accepted in the real run
    prepare_rows_per_second: float
    prepare_events_per_second: float
    end_to_end_rows_per_second: float
    end_to_end_events_per_second: float
    ceiling_events_per_second: float  # the emulator alone, on prebuilt bodies of the events offramp sent
    ceiling_connections: int
    ceiling_share: float
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
    keys = ("status", "queried", "sent", "rejected", "failed", "skipped", "seconds", "reason_counts", "events")
    return {key: getattr(summary, key) for key in keys}


def _timed_run(offramp: Offramp, *, dry_run: bool) -> tuple[RunSummary, float]:
    from offramp.plugins.tiktok.identifiers import e164

    # Each measured run starts with cold phone parsing, as a run in its own process would.
    e164.cache_clear()
    started = time.perf_counter()
    summary = offramp.run("production", "bench", dry_run=dry_run)
    return summary, time.perf_counter() - started


def _stats(base_url: str) -> dict[str, Any]:
    answer: dict[str, Any] = httpx.get(f"{base_url}/_emulator/stats", timeout=30).json()
    return answer


def measure_ceiling(base_url: str, connections: int = CONNECTIONS) -> tuple[float, int]:
    """The emulator's ceiling on the events it holds (the newest a run just sent): read them back, serialize them into
    bodies of ``BATCH``, reset the emulator (so none is a duplicate) and replay them over ``connections``
    connections. Returns (seconds of the replay, events replayed); checks that the emulator accepted each once."""
    from offramp.plugins.tiktok.emulator import DEFAULT_EVENT_SET_ID

    found = httpx.get(f"{base_url}/_emulator/events", params={"status": "accepted"}, timeout=300).json()
    events = [entry["payload"] for entry in found["events"]]
    bodies = request_bodies(events, DEFAULT_EVENT_SET_ID)
    httpx.post(f"{base_url}/_emulator/reset", timeout=30).raise_for_status()
    token = emulator_token(base_url)
    seconds = send_all(base_url, token, bodies, connections)
    stats = _stats(base_url)
    if stats.get("events_accepted") != len(events) or stats.get("duplicates_dropped"):
        raise RuntimeError(f"the ceiling replayed {len(events)} events; the emulator's counters: {stats}")
    return seconds, len(events)


def _rate(count: int, seconds: float) -> float:
    return count / seconds if seconds > 0 else 0.0


def run_bench(rows: int) -> BenchResult:
    """Write ``rows`` synthetic rows, run a dry run and a real run against the emulator, then the emulator's ceiling
    on the events the real run sent; measure all three."""
    # The emulator keeps the events it receives (at most one per row), so that the ceiling replays offramp's own.
    keep = min(rows, CEILING_EVENTS)
    with tempfile.TemporaryDirectory(prefix="offramp-bench-") as home, bench_emulator(keep_events=keep) as emulator:
        base_url = emulator.base_url
        orders = Path(home) / "orders.duckdb"
        written = write_orders_elsewhere(orders, rows)
        with bench_home(Path(home), base_url, orders) as offramp:
            # A small run first, so that the measured ones do not pay for imports and DuckDB's first queries.
            offramp.run("production", "bench", dry_run=True, limit=100)
            dry, dry_seconds = _timed_run(offramp, dry_run=True)
            real, real_seconds = _timed_run(offramp, dry_run=False)
            accepted = int(_stats(base_url).get("events_accepted", 0))
            # Before the ceiling, which holds every event in this process as Python objects: the peak is the runs'.
            peak_memory_mb = _peak_rss_mb()
            ceiling_seconds, replayed = measure_ceiling(base_url)
    sent = real.events["sent"]
    end_to_end_events = _rate(sent, real_seconds)
    ceiling = _rate(replayed, ceiling_seconds)
    return BenchResult(
        rows=written,
        events=sent,
        emulator_accepted=accepted,
        prepare_rows_per_second=_rate(dry.queried, dry_seconds),
        prepare_events_per_second=_rate(dry.events["sent"], dry_seconds),
        end_to_end_rows_per_second=_rate(real.queried, real_seconds),
        end_to_end_events_per_second=end_to_end_events,
        ceiling_events_per_second=ceiling,
        ceiling_connections=CONNECTIONS,
        ceiling_share=end_to_end_events / ceiling if ceiling else 0.0,
        peak_memory_mb=peak_memory_mb,
        dry_run=_summary(dry),
        run=_summary(real),
    )


__all__ = [
    "BATCH",
    "BENCH_SQL",
    "CEILING_EVENTS",
    "CONNECTIONS",
    "SECRET_VARIABLE",
    "TRACK",
    "BenchResult",
    "bench_emulator",
    "bench_home",
    "cpu_seconds",
    "emulator_process",
    "emulator_token",
    "measure_ceiling",
    "request_bodies",
    "run_bench",
    "send_all",
    "write_orders",
    "write_orders_elsewhere",
]
