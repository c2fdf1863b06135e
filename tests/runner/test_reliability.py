"""Reliability: a run under faults and a run killed again and again lose nothing, and leak nothing.

Sizes: CI runs these at a reduced size on every stop; the full sizes of issue 6 (200,000 rows, ten kills, 30-second
token expiry) run with::

    OFFRAMP_RELIABILITY_ROWS=200000 OFFRAMP_RELIABILITY_KILLS=10 OFFRAMP_RELIABILITY_TOKEN_TTL=30 \\
        .venv/bin/python -m pytest tests/runner/test_reliability.py

The expected set of event ids is computed from the generated rows with SQL and phonenumbers, not with offramp.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import duckdb
import phonenumbers
import pytest
from conftest import Emulator, set_up

from offramp.plugins.tiktok.commands.benchmark import BENCH_SQL, write_orders
from offramp.plugins.tiktok.emulator import DEFAULT_APP_SECRET

ROWS = int(os.environ.get("OFFRAMP_RELIABILITY_ROWS", "3000"))
KILLS = int(os.environ.get("OFFRAMP_RELIABILITY_KILLS", "3"))
TOKEN_TTL = int(os.environ.get("OFFRAMP_RELIABILITY_TOKEN_TTL", "2"))


def expected_event_ids(path: Path) -> set[str]:
    """Orders TikTok should receive: a standard event after the map, and an email or a valid phone."""
    with duckdb.connect(str(path), read_only=True) as con:
        rows = con.sql("SELECT order_id, event_name, email, phone FROM orders").fetchall()
    good: dict[str, bool] = {}
    for order_id, event, email, phone in rows:
        valid_phone = False
        if phone is not None:
            try:
                valid_phone = phonenumbers.is_valid_number(phonenumbers.parse(phone, "US"))
            except phonenumbers.NumberParseException:
                valid_phone = False
        ok = event == "Order Completed" and (email is not None or valid_phone)
        good[order_id] = good.get(order_id, True) and ok
    return {order_id for order_id, ok in good.items() if ok}


@pytest.fixture
def big_orchestration(cli: Any, initialized: Any, emulator: Emulator, tmp_path: Path,
                      monkeypatch: pytest.MonkeyPatch) -> tuple[str, Path]:  # fmt: skip
    monkeypatch.setenv("EMULATOR_APP_SECRET", DEFAULT_APP_SECRET)
    path = tmp_path / "orders.duckdb"
    write_orders(path, ROWS)
    return set_up(cli, emulator, f"duckdb:{path}", BENCH_SQL), path


def raw_values(path: Path, limit: int = 300) -> list[str]:
    with duckdb.connect(str(path), read_only=True) as con:
        emails = con.sql(f"SELECT DISTINCT email FROM orders WHERE email IS NOT NULL LIMIT {limit}").fetchall()
        phones = con.sql(f"SELECT DISTINCT phone FROM orders WHERE phone <> 'n/a' LIMIT {limit}").fetchall()
    return [email.strip() for (email,) in emails] + [phone for (phone,) in phones]


def test_under_faults_a_run_completes_and_tiktok_receives_exactly_the_expected_events(
    cli: Any, big_orchestration: tuple[str, Path], emulator: Emulator, offramp_home: Path
) -> None:
    name, path = big_orchestration
    emulator.faults(fail={"40100": 0.10, "50000": 0.02}, http_502=0.01, slow_fraction=0.01, slow_ms=2000,
                    access_token_ttl=TOKEN_TTL, random_seed=11)  # fmt: skip
    result = cli("run", name, "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)

    received = [item["payload"]["event_id"] for item in emulator.events()]
    assert set(received) == expected_event_ids(path)
    assert (
        summary["rows"]["queried"]
        == ROWS
        == summary["rows"]["sent"]
        + summary["rows"]["rejected"]
        + summary["rows"]["failed"]
        + summary["rows"]["skipped"]
    )
    duplicates = len(received) - len(set(received))
    print(f"\nfault run: {len(set(received))} events, {duplicates} duplicate deliveries before TikTok's dedup")
    assert duplicates == sum(1 for item in emulator.events() if item["status"] == "duplicate")

    # Leaks: no raw email, phone or secret in the state store's files or the command's output.
    store = b"".join(p.read_bytes() for p in offramp_home.glob("offramp.db*"))
    secrets = [DEFAULT_APP_SECRET]
    for value in [*raw_values(path), *secrets]:
        assert value.encode() not in store, "a raw identifier or secret reached the state store"
        assert value not in result.output


def test_killed_again_and_again_then_resumed_nothing_is_missing(
    cli: Any, big_orchestration: tuple[str, Path], emulator: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    name, path = big_orchestration
    expected = expected_event_ids(path)
    monkeypatch.setenv("OFFRAMP_RUN_LEASE_SECONDS", "1")
    emulator.faults(latency_ms=150)
    rng = random.Random(5)
    command = [sys.executable, "-m", "offramp.core.cli", "run", name, "--concurrency", "2"]
    kills = 0

    def resumable() -> bool:
        runs = json.loads(cli.ok("runs", "list", "--json").stdout)  # marks runs whose lease lapsed interrupted
        return bool(runs) and runs[0]["status"] in ("interrupted", "cancelled", "failed")

    def started(before: int) -> bool:
        runs = json.loads(cli.ok("runs", "list", "--json").stdout)
        return len(runs) > before or (bool(runs) and runs[0]["status"] == "running")

    for _ in range(KILLS):
        before = len(json.loads(cli.ok("runs", "list", "--json").stdout))
        process = subprocess.Popen([*command, *(["--resume"] if resumable() else [])], stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE, text=True)  # fmt: skip
        # Kill at a random moment of the run, not of the interpreter's start (seconds on a busy machine).
        deadline = time.monotonic() + 60
        while process.poll() is None and not started(before) and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(rng.uniform(0.2, 1.5))
        if process.poll() is None:
            process.send_signal(signal.SIGKILL)
            kills += 1
        process.communicate()
        if process.returncode == 0:
            break
        time.sleep(1.2)  # the lease lapses
    emulator.faults(latency_ms=0)
    # Finish what the last kill left, if anything.
    if resumable():
        final = cli("run", name, "--resume", "--json")
        assert final.exit_code == 0, final.output
    received = {item["payload"]["event_id"] for item in emulator.events()}
    assert received == expected  # nothing missing, nothing unexpected
    runs = json.loads(cli.ok("runs", "list", "--json").stdout)
    assert runs[0]["status"] == "succeeded"
    assert kills >= 1, "no run was killed mid-way: the test proved nothing"
    for run in runs:
        counts = run["rows"]
        assert counts["queried"] == counts["sent"] + counts["rejected"] + counts["failed"] + counts["skipped"]
    # The ledger agrees with TikTok: the rows it calls sent are exactly the rows of the events TikTok received.
    with duckdb.connect(str(path), read_only=True) as con:
        rows_of = dict(con.sql("SELECT order_id, count(*) FROM orders GROUP BY order_id").fetchall())
    assert runs[0]["rows"]["sent"] == sum(rows_of[event_id] for event_id in expected)


def test_under_faults_a_refused_event_is_isolated_and_the_rest_delivered(
    cli: Any, big_orchestration: tuple[str, Path], emulator: Emulator
) -> None:
    """Isolating one refused event in a batch of a thousand takes some twenty requests; transient answers that
    interrupt the splitting must not use up the batch's attempts while each attempt still settles events."""
    name, path = big_orchestration
    expected = expected_event_ids(path)
    poisoned = sorted(expected)[len(expected) // 2]
    emulator.faults(fail={"40100": 0.25}, http_502=0.05, poison={"event_id": poisoned}, random_seed=3)
    result = cli("run", name, "--json")
    summary = json.loads(result.stdout)
    assert result.exit_code == 0 and summary["status"] == "partially_failed", result.output  # completed
    received = {item["payload"]["event_id"] for item in emulator.events() if item["status"] != "rejected"}
    assert received == expected - {poisoned}
    failed = json.loads(cli.ok("runs", "show", summary["id"], "--failed", "--format", "json").stdout)
    assert [(row["event_id"], row["vendor_code"]) for row in failed] == [(poisoned, 40002)]
    assert (
        summary["rows"]["queried"]
        == ROWS
        == summary["rows"]["sent"]
        + summary["rows"]["rejected"]
        + summary["rows"]["failed"]
        + summary["rows"]["skipped"]
    )
