"""A run's life across processes: killed (SIGKILL) and resumed, interrupted with Ctrl-C, never run twice at once."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from typing import Any

import pytest
from conftest import Emulator, start_run

ORDERS_WITH_IDENTIFIERS = 300 - 300 // 50
BATCH = 50  # the destination's batch_size in conftest


def wait_for_accepted(emulator: Emulator, count: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while len(emulator.accepted_ids()) < count:
        assert time.monotonic() < deadline, "the run never got going"
        time.sleep(0.05)


def runs(cli: Any) -> list[dict[str, Any]]:
    data: list[dict[str, Any]] = json.loads(cli.ok("runs", "list", "--json").stdout)
    return data


@pytest.fixture
def slow_emulator(emulator: Emulator, monkeypatch: pytest.MonkeyPatch) -> Emulator:
    emulator.faults(latency_ms=400)
    monkeypatch.setenv("OFFRAMP_RUN_LEASE_SECONDS", "2")
    return emulator


def test_a_killed_run_is_interrupted_once_its_lease_lapses_and_resume_sends_only_the_rest(
    cli: Any, orchestration: str, slow_emulator: Emulator
) -> None:
    process = start_run(orchestration, "--concurrency", "1")
    wait_for_accepted(slow_emulator, 2 * BATCH)
    process.send_signal(signal.SIGKILL)
    process.communicate()  # reaps it and closes its pipes
    killed_at = len(slow_emulator.accepted_ids())
    assert killed_at < ORDERS_WITH_IDENTIFIERS, "the run finished before it could be killed"

    [live] = runs(cli)
    assert live["status"] == "running"  # its lease has not lapsed yet: nobody may take it for dead
    time.sleep(2.5)
    [dead] = runs(cli)
    assert dead["status"] == "interrupted"

    slow_emulator.faults(latency_ms=0)
    result = cli("run", orchestration, "--resume", "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["id"] == dead["id"] and summary["status"] == "succeeded"
    assert (
        summary["rows"]["queried"]
        == summary["rows"]["sent"]
        + summary["rows"]["rejected"]
        + summary["rows"]["failed"]
        + summary["rows"]["skipped"]
    )
    statuses = [item["status"] for item in slow_emulator.events()]
    assert statuses.count("accepted") == ORDERS_WITH_IDENTIFIERS  # every event arrived
    # Batches acknowledged before the kill were not sent again; at most the batch in flight was.
    assert statuses.count("duplicate") <= BATCH


def test_ctrl_c_finishes_the_batch_in_flight_marks_the_run_cancelled_and_says_how_to_resume(
    cli: Any, orchestration: str, slow_emulator: Emulator
) -> None:
    process = start_run(orchestration, "--concurrency", "1")
    wait_for_accepted(slow_emulator, BATCH)
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=30)
    assert process.returncode == 1, err
    assert "cancelled" in out
    assert f"offramp run {orchestration} --resume" in out
    [run] = runs(cli)
    assert run["status"] == "cancelled"
    counts = run["rows"]
    assert counts["queried"] == counts["sent"] + counts["rejected"] + counts["failed"] + counts["skipped"]
    # What TikTok acknowledged is exactly what the ledger calls sent: the batch in flight was finished, not lost.
    accepted = [item["payload"] for item in slow_emulator.events() if item["status"] == "accepted"]
    assert counts["sent"] == sum(len(event["properties"]["contents"]) for event in accepted)  # rows, not events


def test_two_runs_of_one_orchestration_never_run_at_once(cli: Any, orchestration: str, slow_emulator: Emulator) -> None:
    process = start_run(orchestration, "--concurrency", "1")
    try:
        wait_for_accepted(slow_emulator, BATCH)
        [first] = runs(cli)
        line = cli("run", orchestration).one_line_error("already running")
        assert first["id"] in line
    finally:
        process.send_signal(signal.SIGINT)
        process.communicate(timeout=30)


def test_replay_failed_sends_only_the_rows_that_failed(cli: Any, orchestration: str, emulator: Emulator) -> None:
    emulator.faults(poison={"event_id": "ORD-7"})
    first = json.loads(cli("run", orchestration, "--json").stdout)
    assert first["status"] == "partially_failed"
    assert first["vendor_codes"] == {"40002": 2}  # ORD-7 has 2 line items: one event, two rows
    emulator.faults(poison={})
    replay = cli("run", orchestration, "--replay-failed", first["id"], "--json")
    assert replay.exit_code == 0, replay.output
    summary = json.loads(replay.stdout)
    assert summary["rows"]["sent"] == 2
    assert summary["reasons"]["skipped"]["not_failed_in_replayed_run"] == summary["rows"]["skipped"] > 0
    assert "ORD-7" in emulator.accepted_ids()


def test_on_a_terminal_a_progress_bar_shows_rows_per_second_and_counts(
    cli: Any, orchestration: str, slow_emulator: Emulator
) -> None:
    import pty

    controller, terminal = pty.openpty()
    command = [sys.executable, "-m", "offramp.core.cli", "run", orchestration, "--concurrency", "1"]
    process = subprocess.Popen(command, stdin=terminal, stdout=terminal, stderr=terminal)
    os.close(terminal)
    seen = b""
    while True:
        try:
            chunk = os.read(controller, 65536)
        except OSError:  # the run ended and closed the terminal
            break
        if not chunk:
            break
        seen += chunk
    process.wait()
    os.close(controller)
    text = seen.decode(errors="replace")
    assert process.returncode == 0, text
    assert "rows/s" in text and "sent" in text and "rejected" in text
    assert "succeeded" in text
