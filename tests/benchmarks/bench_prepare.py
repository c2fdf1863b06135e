"""Preparation throughput of the TikTok destination: the vectorized preparer alone, against the per-row script.

Run: ``.venv/bin/python tests/benchmarks/bench_prepare.py [--rows N] [--batch N] [--repeat K] [--profile]``

The data is the bench's (``write_orders`` of ``offramp.plugins.tiktok.commands.benchmark``: 1 to 5 line items per
order, most with an email, about half with a phone, a few percent bad), read once with ``BENCH_SQL`` into Arrow
record batches of ``--batch`` rows (the runner's default is 50,000). Timed in one process, best of ``--repeat``:

- ``vectorized``: ``VectorizedPreparer`` alone, from the record batches in memory to prepared columns (the query,
  the ledger and the sender are not in the figure), phones parsed cold each time;
- ``script``: the per-row script's preparation of ``bench_peers.py`` (its DuckDB fetch of the same query included,
  which is how a script runs), as a baseline measured in the same run: this machine is shared and noisy, so compare
  the ratio, not the rates;
- ``query``: reading ``BENCH_SQL`` into Arrow alone, for scale.

The contenders take turns within each repetition; each figure is its best wall-clock time, and the CPU time of all
its threads (``rows/CPU s``, which load elsewhere on the machine disturbs less than wall-clock time).

Before timing, the vectorized preparer's bodies, ids, rows, warnings and rejections are checked byte for byte against
the reference preparer's on the first ``--check`` rows. ``--profile`` prints where the preparer's time goes
(cProfile, by cumulative time).
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import duckdb
import pyarrow as pa

sys.path.insert(0, str(Path(__file__).resolve().parent))  # bench_peers, however this file is started

from offramp.core.destination_api import PreparedBatch
from offramp.plugins.tiktok.commands.benchmark import BENCH_SQL, write_orders
from offramp.plugins.tiktok.identifiers import e164
from offramp.plugins.tiktok.options import TikTokPrepareOptions
from offramp.plugins.tiktok.prepare import VectorizedPreparer
from offramp.plugins.tiktok.reference import ReferencePreparer
from offramp.plugins.tiktok.settings import TikTokOfflineEventsDestinationSettings

# As the bench orchestration (``offramp bench``) configures them.
SETTINGS = TikTokOfflineEventsDestinationSettings(
    advertiser_id="7200000000000000001", event_set_id="7300000000000000001"
)
OPTIONS = TikTokPrepareOptions(event_name_map={"Order Completed": "Purchase"})


def read_batches(orders: Path, batch: int) -> list[pa.RecordBatch]:
    with duckdb.connect(str(orders), read_only=True) as con:
        return con.sql(BENCH_SQL).to_arrow_table().to_batches(max_chunksize=batch)


def prepare_all(preparer: VectorizedPreparer | ReferencePreparer, batches: list[pa.RecordBatch]) -> PreparedBatch:
    """Everything the preparer makes of ``batches``, ``finish()`` included, as objects (for the check only)."""
    total = PreparedBatch()
    for part in [*(preparer.prepare(batch) for batch in batches), preparer.finish()]:
        total.events.extend(part.all_events())
        total.rejected.extend(part.all_rejected())
    return total


def vectorized(batches: list[pa.RecordBatch]) -> int:
    """The preparer alone, as the runner drives it; returns the events prepared (columns, no object per event)."""
    preparer = VectorizedPreparer(SETTINGS, OPTIONS)
    events = 0
    for part in [*(preparer.prepare(batch) for batch in batches), preparer.finish()]:
        events += len(part.events) + (len(part.columns) if part.columns is not None else 0)
    preparer.close()
    return events


def check(batches: list[pa.RecordBatch], rows: int) -> int:
    """The vectorized preparer against the reference on the first ``rows`` rows; returns the rows checked."""
    table = pa.Table.from_batches(batches).slice(0, rows)
    parts = table.to_batches(max_chunksize=max(1, rows // 3))  # a few batches: events held back across them
    expected = prepare_all(ReferencePreparer(SETTINGS, OPTIONS), parts)
    actual = prepare_all(VectorizedPreparer(SETTINGS, OPTIONS), parts)
    key = [(e.event_id, e.rows, e.warnings, e.body) for e in expected.events]
    assert [(e.event_id, e.rows, e.warnings, e.body) for e in actual.events] == key, "different events"
    assert actual.rejected == expected.rejected, "different rejections"
    return table.num_rows


def timed(contenders: dict[str, Callable[[], object]], repeat: int) -> dict[str, tuple[float, float]]:
    """Per contender, the best wall-clock and the best CPU seconds (all threads) over ``repeat`` runs. The
    contenders take turns within each repetition, so a burst of load elsewhere hits them alike."""
    walls = {name: float("inf") for name in contenders}
    cpus = dict(walls)
    for _ in range(repeat):
        for name, run in contenders.items():
            e164.cache_clear()  # phones parsed cold, as in a run of its own
            wall, cpu = time.perf_counter(), time.process_time()
            run()
            walls[name] = min(walls[name], time.perf_counter() - wall)
            cpus[name] = min(cpus[name], time.process_time() - cpu)
    return {name: (walls[name], cpus[name]) for name in contenders}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--batch", type=int, default=50_000, help="rows per Arrow record batch")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--check", type=int, default=20_000, help="rows checked against the reference first")
    parser.add_argument("--no-script", action="store_true", help="skip the per-row script's baseline")
    parser.add_argument("--profile", action="store_true", help="print a cProfile of one vectorized run")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        orders = Path(tmp) / "orders.duckdb"
        rows = write_orders(orders, args.rows)
        batches = read_batches(orders, args.batch)
        checked = check(batches, args.check)
        events = vectorized(batches)
        print(f"{rows:,} rows, {events:,} events; batches of {args.batch:,}; {checked:,} rows checked against the "
              f"reference byte for byte; best of {args.repeat}")  # fmt: skip
        contenders: dict[str, Callable[[], object]] = {
            "vectorized": lambda: vectorized(batches),
            "query": lambda: read_batches(orders, args.batch),
        }
        if not args.no_script:
            from bench_peers import script_events

            contenders["script"] = lambda: sum(1 for _ in script_events(orders))
        timings = timed(contenders, args.repeat)
        print(f"  {'':12} {'rows/s':>10} {'wall ms':>8} {'CPU ms':>8} {'rows/CPU s':>11}")
        for name, (wall, cpu) in timings.items():
            ratio = f"   {timings['script'][0] / wall:5.2f}x script" if "script" in timings else ""
            print(f"  {name:12} {rows / wall:>10,.0f} {wall * 1000:8.0f} {cpu * 1000:8.0f} {rows / cpu:>11,.0f}{ratio}")
        if args.profile:
            e164.cache_clear()
            profile = cProfile.Profile()
            profile.runcall(vectorized, batches)
            pstats.Stats(profile).sort_stats("cumulative").print_stats(40)


if __name__ == "__main__":
    main()
