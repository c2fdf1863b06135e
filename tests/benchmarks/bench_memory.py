"""Peak memory of offramp at 5,000,000 rows against 100,000 rows: streaming keeps the ratio at 1.3 or less.

Run (not a pytest module)::

    .venv/bin/python tests/benchmarks/bench_memory.py [--rows-small N] [--rows-large N] [--via cli|run|both]
        [--repeat N] [--timeout SECONDS] [--json]

For each size, every measured process is a fresh ``.venv/bin/offramp`` process, so the sizes cannot share a peak:

- ``cli``: ``offramp bench --rows N --json``; its own ``peak_memory_mb`` (``ru_maxrss`` of that process alone, not
  of the emulator it starts as a child). It covers the whole bench: DuckDB writing the synthetic orders in that
  process, the warm-up, the dry run and the real run.
- ``run``: the orchestration alone, dry run and real run separately. This script writes the orders (``write_orders``),
  starts the emulator (``emulator_process``) and configures a throw-away home (``bench_home``), then runs
  ``offramp run bench --dry-run --json`` and ``offramp run bench --json`` with ``OFFRAMP_HOME`` pointing at it and
  takes each one's peak resident set from ``os.wait4`` (that process only: the emulator and this script are others).

  Besides the orchestration as ``offramp bench`` has it (its query sorts with ORDER BY), the same dry run with
  ``OFFRAMP_DUCKDB_MEMORY_LIMIT`` set to 256MB and to 80% (DuckDB's own default, which offramp used before it gave
  DuckDB sources a small limit of their own), and a dry and a real run of the same rows read without ORDER BY (the
  synthetic table is stored in order, so the events are the same; the script checks that every variant sent the
  same rows). DuckDB runs inside offramp's process, so a sort of the whole result is offramp's memory too; the
  variants tell that part from offramp's own.

Prints the peaks, the large/small ratio of each (target <= 1.3) and the rows/s each run reported; with
``--repeat N`` each `offramp run` variant runs N times (in rounds) and its median peak is kept. A process that
runs longer than ``--timeout`` (default 15 minutes) is stopped and reported; the sizes that finished are kept.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from offramp.plugins.tiktok.commands.benchmark import (
    BENCH_SQL,
    SECRET_VARIABLE,
    bench_home,
    emulator_process,
    write_orders_elsewhere,
)
from offramp.plugins.tiktok.emulator import DEFAULT_APP_SECRET

OFFRAMP = Path(sys.executable).with_name("offramp")  # the console script of this venv
TARGET = 1.3
SORT_MEMORY_LIMIT = "256MB"
DUCKDB_DEFAULT_LIMIT = "80%"  # DuckDB's own default memory limit, offramp's until DuckDB sources got one of their own


class TimedOut(Exception):
    pass


def _child_env(home: Path | None) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("OFFRAMP_")}
    env[SECRET_VARIABLE] = DEFAULT_APP_SECRET
    if home is not None:
        env["OFFRAMP_HOME"] = str(home)
    return env


def _measure(command: list[str], env: dict[str, str], timeout: float) -> tuple[dict[str, Any], float, float]:
    """Run one offramp process; returns (its JSON answer, its peak RSS in MB from wait4, wall seconds)."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        started = time.monotonic()
        # Its own session, so that on a timeout its whole group (with any emulator it started) can be stopped.
        pid = os.posix_spawn(command[0], command, env, file_actions=[(os.POSIX_SPAWN_DUP2, out.fileno(), 1),
                             (os.POSIX_SPAWN_DUP2, err.fileno(), 2)], setsid=True)  # fmt: skip
        while True:
            done, status, usage = os.wait4(pid, os.WNOHANG)
            if done:
                break
            if time.monotonic() - started > timeout:
                os.killpg(pid, signal.SIGTERM)
                os.wait4(pid, 0)
                raise TimedOut(f"{' '.join(command[1:])} ran over {timeout:.0f} s and was stopped")
            time.sleep(0.2)
        elapsed = time.monotonic() - started
        out.seek(0)
        err.seek(0)
        text = out.read().decode()
        if os.waitstatus_to_exitcode(status) != 0:
            raise SystemExit(f"{' '.join(command[1:])} failed: {err.read().decode()[-2000:]}{text[-500:]}")
    return json.loads(text), usage.ru_maxrss / 1024, elapsed  # ru_maxrss is in kilobytes on Linux


def _row_counts(summary: dict[str, Any]) -> dict[str, Any]:
    """Rows queried and sent, and the run's seconds, from `offramp run --json` (row counts nested under ``rows``
    since the summary counts events too; flat before)."""
    rows = summary.get("rows")
    if isinstance(rows, dict):
        return {"queried": rows["queried"], "sent": rows["sent"], "seconds": summary["duration_seconds"]}
    return {"queried": summary.get("queried"), "sent": summary.get("sent"), "seconds": summary.get("seconds")}


def measure_cli(rows: int, timeout: float) -> dict[str, Any]:
    answer, _, elapsed = _measure([str(OFFRAMP), "bench", "--rows", str(rows), "--json"], _child_env(None), timeout)
    return {"peak_mb": answer["peak_memory_mb"], "seconds": elapsed, "rows": answer["rows"],
            "prepare_rows_per_second": answer["prepare_rows_per_second"],
            "end_to_end_rows_per_second": answer["end_to_end_rows_per_second"]}  # fmt: skip


def measure_runs(rows: int, timeout: float, repeat: int = 1) -> dict[str, Any]:
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="offramp-memory-") as folder, emulator_process() as base_url:
        home = Path(folder) / "home"
        orders = Path(folder) / "orders.duckdb"
        # In a process of its own: a child's peak as wait4 reports it starts from this process's size when it
        # forks, and DuckDB writing millions of rows here would make that 1.3 GB for every child measured after it.
        written = write_orders_elsewhere(orders, rows)
        with bench_home(home, base_url, orders):
            pass  # configured; the runs below are processes of their own
        # The same rows read without ORDER BY: write_orders stores them in order, so line items stay adjacent and
        # the events are the same; what is left is offramp's own memory, without DuckDB's sort of the result.
        stored_order = BENCH_SQL.replace("ORDER BY order_id, sku", "")
        add = [str(OFFRAMP), "orchestrations", "add", "bench-stored-order", "--destination", "bench", "--source",
               f"duckdb:{orders}", "--sql", stored_order, "--map", "Order Completed=Purchase"]  # fmt: skip
        subprocess.run(add, env=_child_env(home), check=True, capture_output=True)
        limited = {"OFFRAMP_DUCKDB_MEMORY_LIMIT": SORT_MEMORY_LIMIT}
        duckdb_default = {"OFFRAMP_DUCKDB_MEMORY_LIMIT": DUCKDB_DEFAULT_LIMIT}
        variants: tuple[tuple[str, str, list[str], dict[str, str]], ...] = (
            ("dry run", "bench", ["--dry-run"], {}),
            ("real run", "bench", [], {}),
            (f"dry run, DuckDB limited to {SORT_MEMORY_LIMIT}", "bench", ["--dry-run"], limited),
            (f"dry run, DuckDB limited to {DUCKDB_DEFAULT_LIMIT}", "bench", ["--dry-run"], duckdb_default),
            ("dry run, no ORDER BY", "bench-stored-order", ["--dry-run"], {}),
            ("real run, no ORDER BY", "bench-stored-order", [], {}),
        )
        sent: dict[str, int] = {}
        # Rounds (each variant once per round), so that a busy moment of the shared machine falls on all of them;
        # each figure is the median of its rounds (a peak varies by some 20 MB from one process to the next).
        measured: dict[str, list[dict[str, float]]] = {label: [] for label, *_ in variants}
        for _ in range(repeat):
            for label, orchestration, extra, variables in variants:
                command = [str(OFFRAMP), "run", orchestration, *extra, "--json"]
                summary, peak, elapsed = _measure(command, {**_child_env(home), **variables}, timeout)
                counts = _row_counts(summary)
                if summary.get("status") != "succeeded" or counts["queried"] != written:
                    raise SystemExit(
                        f"{label} at {rows:,} rows: {counts} ({summary.get('status')}: {summary.get('error')})"
                    )
                sent[label] = counts["sent"]
                measured[label].append({"peak_mb": peak, "seconds": elapsed,
                                        "rows_per_second": written / counts["seconds"]})  # fmt: skip
        for label, rounds in measured.items():
            results[label] = {key: statistics.median(round_[key] for round_ in rounds) for key in rounds[0]}
            results[label]["peaks_mb"] = [round_["peak_mb"] for round_ in rounds]
        if len(set(sent.values())) != 1:
            raise SystemExit(f"the variants did not send the same rows: {sent}")
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows-small", type=int, default=100_000)
    parser.add_argument("--rows-large", type=int, default=5_000_000)
    parser.add_argument("--via", choices=("cli", "run", "both"), default="both", help="what to measure (see above)")
    parser.add_argument("--timeout", type=float, default=900, help="seconds one offramp process may take")
    parser.add_argument("--repeat", type=int, default=1, help="rounds of `offramp run` variants; medians are kept")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args()
    log = sys.stderr if args.json else sys.stdout
    sizes = {"small": args.rows_small, "large": args.rows_large}
    figures: dict[str, dict[str, Any]] = {}  # measurement -> size -> figures
    problems: list[str] = []
    for size, rows in sizes.items():
        try:
            if args.via in ("cli", "both"):
                figures.setdefault("offramp bench", {})[size] = cli = measure_cli(rows, args.timeout)
                print(f"{rows:>10,} rows  offramp bench: peak {cli['peak_mb']:,.0f} MB in {cli['seconds']:.0f} s "
                      f"(prepare {cli['prepare_rows_per_second']:,.0f} rows/s, end to end "
                      f"{cli['end_to_end_rows_per_second']:,.0f} rows/s)", file=log, flush=True)  # fmt: skip
            if args.via in ("run", "both"):
                for label, run in measure_runs(rows, args.timeout, max(1, args.repeat)).items():
                    figures.setdefault(f"offramp run, {label}", {})[size] = run
                    line = f"offramp run, {label}: peak {run['peak_mb']:,.0f} MB in {run['seconds']:.0f} s"
                    print(f"{rows:>10,} rows  {line} ({run['rows_per_second']:,.0f} rows/s)", file=log, flush=True)
        except TimedOut as exc:
            problems.append(f"{rows:,} rows: {exc}")
            print(problems[-1], file=log, flush=True)
            break
    ratios = {name: by_size["large"]["peak_mb"] / by_size["small"]["peak_mb"]
              for name, by_size in figures.items() if "large" in by_size}  # fmt: skip
    if args.json:
        result = {"rows": sizes, "figures": figures, "ratios": ratios, "target": TARGET, "problems": problems}
        print(json.dumps(result, indent=2))
        return
    print(f"peak resident memory, {sizes['large']:,} rows against {sizes['small']:,} (target <= {TARGET}):")
    for name, by_size in figures.items():
        peaks = "  ".join(f"{size} {figure['peak_mb']:>7,.0f} MB" for size, figure in by_size.items())
        verdict = f"{ratios[name]:.2f}x {'ok' if ratios[name] <= TARGET else 'ABOVE'}" if name in ratios else "n/a"
        print(f"  {name:50} {peaks}  ratio {verdict}")
    for problem in problems:
        print(f"  {problem}")


if __name__ == "__main__":
    main()
