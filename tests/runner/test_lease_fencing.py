"""One process per run: a run paused past its lease and taken over by `--resume` stops when it continues.

Real processes: the first `offramp run` is paused with SIGSTOP (a suspended VM), its lease lapses, a second process
resumes the run, then the first continues (SIGCONT). Before the fix both drove the run to the end, both exited 0,
and the ledger counted the rows both sent (`sent 58000` for a 30,000-row query).
"""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from conftest import Emulator, set_up, start_run, wait_until, write_orders

from offramp.core.environment import Environment
from offramp.plugins.tiktok.emulator import DEFAULT_APP_SECRET

ORDERS = 1200  # 1,200 events (2,400 rows) in 24 batches of 50: long enough to pause and take over half-way
BATCH = 50
LEASE = 3  # seconds: a short lease, so the test waits only a little past it


def store_is_free(url: str) -> bool:
    """Whether the store's write lock (SQLite) or the runs' row locks (PostgreSQL) are free right now.

    A process paused inside a write transaction would hold them for as long as it is paused, and then nobody can
    take the run over (what any database does with a stopped client); the test pauses the run between writes.
    """
    parsed = sa.engine.make_url(url)
    if parsed.get_backend_name() == "sqlite":
        connection = sqlite3.connect(str(parsed.database), timeout=0.5)
        try:
            connection.isolation_level = None
            connection.execute("BEGIN IMMEDIATE")
            connection.execute("ROLLBACK")
            return True
        except sqlite3.OperationalError:
            return False
        finally:
            connection.close()
    engine = sa.create_engine(url)
    try:
        with engine.connect() as connection, connection.begin():
            connection.exec_driver_sql("SET LOCAL lock_timeout = '500ms'")
            connection.exec_driver_sql("SELECT id FROM runs FOR UPDATE")
        return True
    except sa.exc.OperationalError:
        return False
    finally:
        engine.dispose()


def pause_between_writes(process: subprocess.Popen[str], url: str) -> None:
    for _ in range(50):
        process.send_signal(signal.SIGSTOP)
        if store_is_free(url):
            return
        process.send_signal(signal.SIGCONT)
        time.sleep(0.05)
    raise AssertionError("the run never paused outside a write transaction")


@pytest.fixture
def long_orchestration(
    store: str, cli: Any, initialized: Any, emulator: Emulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> tuple[str, int]:
    monkeypatch.setenv("EMULATOR_APP_SECRET", DEFAULT_APP_SECRET)
    monkeypatch.setenv("OFFRAMP_RUN_LEASE_SECONDS", str(LEASE))
    path = tmp_path / "orders.duckdb"
    rows = write_orders(path, ORDERS)
    return set_up(cli, emulator, f"duckdb:{path}"), rows


def test_a_run_taken_over_while_paused_stops_when_it_continues_and_counts_never_exceed_the_query(
    store: str, cli: Any, long_orchestration: tuple[str, int], emulator: Emulator
) -> None:
    name, rows = long_orchestration
    url = Environment().store_url
    emulator.faults(latency_ms=150)  # every request takes a while, so the run lasts long enough to pause
    first = start_run(name, "--concurrency", "1")
    try:
        wait_until(lambda: len(emulator.accepted_ids()) >= 3 * BATCH, "the first run sent three batches")
        pause_between_writes(first, url)
        received_when_paused = len(emulator.events())

        # The lease lapses: the paused run is taken for dead, and --resume takes it over in a second process.
        wait_until(
            lambda: json.loads(cli.ok("runs", "list", "--json").stdout)[0]["status"] == "interrupted",
            "the paused run's lease lapsed",
        )
        # Reading runs writes nothing: the takeover is the second process's, so wait until it holds the run (its
        # own lease owner) before the first continues, or the first would simply go on, alone, as it may.
        [paused] = json.loads(cli.ok("runs", "list", "--json").stdout)
        second = start_run(name, "--resume", "--json")
        wait_until(
            lambda: f":{second.pid}\n" in cli.ok("runs", "show", paused["id"]).stdout,  # heartbeat: ... from OWNER
            "the second process took the run over",
        )
        wait_until(lambda: len(emulator.events()) > received_when_paused, "the second process sent")
    finally:
        first.send_signal(signal.SIGCONT)
    first_out, first_err = first.communicate(timeout=300)
    second_out, second_err = second.communicate(timeout=300)

    # The first process stopped at its next send or write, saying why, with a non-zero exit.
    assert first.returncode == 1, first_out + first_err + second_out + second_err
    assert "this run" in first_out and "lost its lease" in first_out, first_out + first_err
    assert "Traceback" not in first_err
    # The second finished the run.
    assert second.returncode == 0, second_out + second_err
    summary = json.loads(second_out)
    assert summary["status"] == "succeeded"
    assert summary["rows"]["queried"] == rows, summary
    assert (
        summary["rows"]["sent"] == rows
        and summary["rows"]["sent"] + summary["rows"]["rejected"] + summary["rows"]["failed"] == rows
    )
    [run] = json.loads(cli.ok("runs", "list", "--json").stdout)
    assert run["id"] == summary["id"] and run["status"] == "succeeded"
    assert run["rows"]["queried"] == rows and run["rows"]["sent"] <= rows and run["counts_add_up"]

    # TikTok received every event; the requests in flight at the takeover may have arrived twice (within its
    # deduplication window, so they count once).
    expected = {f"ORD-{order}" for order in range(1, ORDERS + 1)}
    accepted = emulator.accepted_ids()
    assert set(accepted) == expected and len(accepted) == len(expected)


def test_a_run_marked_interrupted_while_paused_stops_when_it_continues_and_a_new_run_is_alone(
    store: str, cli: Any, long_orchestration: tuple[str, int], emulator: Emulator
) -> None:
    # Nobody resumes it: `runs list` shows the paused run interrupted once its lease lapsed (computed: reading
    # writes nothing), and a new run of the orchestration may start, marking it interrupted in the store. The paused
    # process, when it continues, must not go on beside that new run.
    name, rows = long_orchestration
    url = Environment().store_url
    emulator.faults(latency_ms=150)
    first = start_run(name, "--concurrency", "1")
    try:
        wait_until(lambda: len(emulator.accepted_ids()) >= 3 * BATCH, "the first run sent three batches")
        pause_between_writes(first, url)
        wait_until(
            lambda: json.loads(cli.ok("runs", "list", "--json").stdout)[0]["status"] == "interrupted",
            "the paused run's lease lapsed",
        )
        emulator.faults(latency_ms=0)
        second = json.loads(cli.ok("run", name, "--json").stdout)  # alone: the paused run is marked interrupted
    finally:
        first.send_signal(signal.SIGCONT)
    first_out, first_err = first.communicate(timeout=300)

    assert first.returncode == 1, first_out + first_err
    assert "lost its lease" in first_out and "--resume" in first_out, first_out + first_err
    assert second["status"] == "succeeded", second
    paused = [run for run in json.loads(cli.ok("runs", "list", "--json").stdout) if run["id"] != second["id"]]
    assert [run["status"] for run in paused] == ["interrupted"]
    assert paused[0]["rows"]["queried"] < rows and paused[0]["counts_add_up"], paused
    # The new run sent what the paused one had not (mode new skips what it delivered): each event reached TikTok.
    assert set(emulator.accepted_ids()) == {f"ORD-{order}" for order in range(1, ORDERS + 1)}
