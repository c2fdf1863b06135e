"""End-to-end run throughput against the emulator in its own process, by requests in flight.

Run: ``.venv/bin/python tests/benchmarks/bench_run.py [--orders N] [--concurrency 1,2,4,8]``

Sets up a throw-away home (credential authorized against the emulator, destination, orchestration over a DuckDB
orders file), then times ``offramp run`` at each concurrency, in one process run after another, on the same data
and the same emulator. The figures are ratios against concurrency 1 in the same run: this machine is shared.
This is the measurement behind the runner's default of 4 requests in flight.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

OFFRAMP = [sys.executable, "-m", "offramp.core.cli"]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def offramp(env: dict[str, str], *args: str, stdin: str | None = None) -> str:
    done = subprocess.run([*OFFRAMP, *args], env=env, input=stdin, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"offramp {' '.join(args)} failed: {done.stderr}")
    return done.stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=20_000)
    parser.add_argument("--concurrency", default="1,2,4,8")
    args = parser.parse_args()
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "runner"))
    from conftest import ORDERS_SQL, write_orders  # the runner tests' orders generator

    from offramp.plugins.tiktok.emulator import (
        ADMIN_AUTH_CODE,
        DEFAULT_ADVERTISER_ID,
        DEFAULT_APP_ID,
        DEFAULT_APP_SECRET,
        DEFAULT_EVENT_SET_ID,
    )

    with tempfile.TemporaryDirectory() as home:
        port = free_port()
        emulator = subprocess.Popen([*OFFRAMP, "emulator", "tiktok", "--port", str(port)], stdout=subprocess.DEVNULL)
        base = f"http://127.0.0.1:{port}"
        env = {**os.environ, "OFFRAMP_HOME": home, "EMULATOR_APP_SECRET": DEFAULT_APP_SECRET}
        try:
            time.sleep(2.0)
            rows = write_orders(Path(home) / "orders.duckdb", args.orders)
            offramp(env, "init")
            offramp(env, "credentials", "add", "tt", "--type", "tiktok-offline-events", "--set",
                    f"app_id={DEFAULT_APP_ID}", "--set", "app_secret=env:EMULATOR_APP_SECRET", "--set",
                    f"api_base_url={base}", "--set", f"auth_url={base}/portal/auth")  # fmt: skip
            offramp(env, "credentials", "authorize", "tt", stdin=f"{ADMIN_AUTH_CODE}\n")
            offramp(env, "destinations", "add", "stores", "--type", "tiktok-ads-offline-events", "--credential",
                    "tt", "--set", f"advertiser_id={DEFAULT_ADVERTISER_ID}", "--set",
                    f"event_set_id={DEFAULT_EVENT_SET_ID}")  # fmt: skip
            source = f"duckdb:{home}/orders.duckdb"
            offramp(env, "orchestrations", "add", "orders", "--destination", "stores", "--source", source,
                    "--sql", ORDERS_SQL, "--map", "Order Completed=Purchase")  # fmt: skip
            print(f"{rows:,} rows ({args.orders:,} orders); emulator in its own process")
            baseline = None
            for level in (int(item) for item in args.concurrency.split(",")):
                started = time.perf_counter()
                out = offramp(env, "run", "orders", "--concurrency", str(level), "--json")
                try:
                    summary = json.loads(out)
                except ValueError:
                    raise SystemExit(f"not JSON: {out[:500]!r}") from None
                seconds = time.perf_counter() - started
                assert summary["status"] == "succeeded", summary
                rate = summary["queried"] / seconds
                baseline = baseline or rate
                print(f"  concurrency {level:2}: {rate:>9,.0f} rows/s  {rate / baseline:4.2f}x concurrency 1")
        finally:
            emulator.terminate()
            emulator.wait()


if __name__ == "__main__":
    main()
