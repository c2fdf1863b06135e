"""An event is sent whole or not at all, even when its rows are not adjacent (docs/reliability.md, issue 11, item 9).

The preparer groups the line items of an event within a record batch of the query's result, and across two batches
when they are adjacent. Rows of an ``event_id`` that come back later (here 60,000 rows after the first ones, in
another batch of 50,000) were sent as a second event with the same id, which TikTok drops, while the run said
``succeeded``; and the ledger kept the first outcome it saw, so it could say ``rejected`` for an event TikTok
accepted. Now those later rows are rejected with ``repeated_event_id`` (its detail names ``ORDER BY event_id``),
under a ledger entry of their own (``<event_id>…repeated``), and the event's own entry is what TikTok received.

The three repeated ids cover both orders of valid and invalid rows:

- ``ORD-A``: two valid line items first, an invalid one (an unknown event name) at the end: sent with its two
  line items; the late row rejected as a repeat.
- ``ORD-B``: an invalid line item first (no email), two valid ones at the end: never sent; its first row rejected
  for what is wrong with it, the late ones as a repeat.
- ``ORD-C``: valid both times: sent once, with its first two line items.

Filler orders of 50 line items each (1,200 of them) put 60,000 rows between the first rows and the repeats, and
straddle the batch boundary, where adjacent line items still merge into one event.
"""

from __future__ import annotations

import json
import subprocess
import tempfile
import threading
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pytest
from conftest import Emulator, set_up

from offramp.core.environment import Environment
from offramp.core.runner import RunRequest, RunSummary, run_orchestration
from offramp.core.runner.ledger import entries
from offramp.core.services.context import Context
from offramp.core.state.store import open_store
from offramp.plugins.tiktok.emulator import DEFAULT_APP_SECRET

HOUR_AGO = (datetime.now(UTC) - timedelta(hours=1)).replace(microsecond=0, tzinfo=None)
FILLER_EVENTS = 1200
FILLER_ITEMS = 50  # 60,000 filler rows: the repeats come more than one source batch (50,000 rows) later
SQL = "SELECT event_id, event, timestamp, email, content_id, price, quantity FROM t ORDER BY n"


FIRST = [  # (event_id, event, email, content_id), the first rows of the query
    ("ORD-A", "Purchase", "a@example.com", "A-1"),
    ("ORD-A", "Purchase", "a@example.com", "A-2"),
    ("ORD-B", "Purchase", None, "B-1"),  # no identifier: missing_identifiers
    ("ORD-C", "Purchase", "c@example.com", "C-1"),
    ("ORD-C", "Purchase", "c@example.com", "C-2"),
]
LATE = [  # the last rows, after the fillers
    ("ORD-A", "Unknown Thing", "a@example.com", "A-3"),  # invalid: unknown_event_name, were it alone
    ("ORD-B", "Purchase", "b@example.com", "B-2"),
    ("ORD-B", "Purchase", "b@example.com", "B-3"),
    ("ORD-C", "Purchase", "c@example.com", "C-3"),
]
FILLER_ROWS = FILLER_EVENTS * FILLER_ITEMS
TOTAL = len(FIRST) + FILLER_ROWS + len(LATE)
SENT_ROWS = FILLER_ROWS + 2 + 2  # the fillers, ORD-A's and ORD-C's first two line items
REASONS = {"missing_identifiers": 1, "repeated_event_id": 4}
REJECTS = {  # runs show --rejects: (event_id, reason, rows)
    ("ORD-B", "missing_identifiers", 1),
    ("ORD-A…repeated", "repeated_event_id", 1),
    ("ORD-B…repeated", "repeated_event_id", 2),
    ("ORD-C…repeated", "repeated_event_id", 1),
}


@pytest.fixture
def orders(cli: Any, initialized: Any, emulator: Emulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("EMULATOR_APP_SECRET", DEFAULT_APP_SECRET)
    path = tmp_path / "orders.duckdb"
    with duckdb.connect(str(path)) as con:
        con.execute(
            "CREATE TABLE t (n INTEGER, event_id VARCHAR, event VARCHAR, timestamp TIMESTAMP, email VARCHAR,"
            " content_id VARCHAR, price DOUBLE, quantity INTEGER)"
        )
        insert = "INSERT INTO t VALUES (?, ?, ?, ?, ?, ?, 10.0, 1)"
        con.executemany(insert, [(n, i, e, HOUR_AGO, m, c) for n, (i, e, m, c) in enumerate(FIRST)])
        con.execute(
            "INSERT INTO t SELECT ? + r, printf('F-%05d', r // ?), 'Purchase', ?, 'customer.' || (r // ?) || "
            "'@example.com', 'SKU-' || (r % ?), 10.0, 1 FROM range(?) AS x(r)",
            [len(FIRST), FILLER_ITEMS, HOUR_AGO, FILLER_ITEMS, FILLER_ITEMS, FILLER_ROWS],
        )
        late = len(FIRST) + FILLER_ROWS
        con.executemany(insert, [(late + n, i, e, HOUR_AGO, m, c) for n, (i, e, m, c) in enumerate(LATE)])
    return set_up(cli, emulator, f"duckdb:{path}", SQL)


def ledger_entries(run_id: str) -> dict[str, tuple[str, int]]:
    """The run's ledger, read from the store itself: key -> (outcome, rows)."""
    store = open_store(Environment())
    try:
        with store.read_session() as session:
            return {entry.event_id: (entry.outcome, entry.rows) for entry in entries(session, run_id)}
    finally:
        store.dispose()


def check_summary(cli: Any, summary: dict[str, Any]) -> None:
    assert summary["status"] == "succeeded", summary["error"]
    assert summary["counts_add_up"] is True
    assert summary["rows"]["queried"] == TOTAL
    assert (
        summary["rows"]["sent"],
        summary["rows"]["rejected"],
        summary["rows"]["failed"],
        summary["rows"]["skipped"],
    ) == (SENT_ROWS, 5, 0, 0)
    assert summary["reasons"]["rejected"] == REASONS
    listed = json.loads(cli.ok("runs", "show", summary["id"], "--rejects", "--format", "json").stdout)
    assert {(row["event_id"], row["reason"], row["rows"]) for row in listed} == REJECTS
    for row in listed:
        if row["reason"] == "repeated_event_id":
            assert "ORDER BY event_id" in row["message"]
    entries = ledger_entries(summary["id"])
    # The ledger's entry of each id is what TikTok received (or would have, in a dry run): ORD-A and ORD-C sent
    # with their first two line items, ORD-B rejected for its own problem.
    assert entries["ORD-A"] == ("sent", 2)
    assert entries["ORD-C"] == ("sent", 2)
    assert entries["ORD-B"] == ("rejected", 1)
    assert sum(rows for _, rows in entries.values()) == TOTAL


def test_a_repeated_event_id_is_rejected_and_each_event_reaches_tiktok_once_whole(
    cli: Any, orders: str, emulator: Emulator
) -> None:
    result = cli("run", orders, "--json")
    assert result.exit_code == 0, result.output[:3000]
    summary = json.loads(result.stdout)
    check_summary(cli, summary)

    received = emulator.events()
    assert all(item["status"] == "accepted" for item in received)  # no duplicate for TikTok to drop
    ids = Counter(item["payload"]["event_id"] for item in received)
    assert set(ids.values()) == {1}
    assert "ORD-B" not in ids
    assert len(ids) == FILLER_EVENTS + 2
    contents = {item["payload"]["event_id"]: item["payload"]["properties"]["contents"] for item in received}
    assert [item["content_id"] for item in contents["ORD-A"]] == ["A-1", "A-2"]
    assert [item["content_id"] for item in contents["ORD-C"]] == ["C-1", "C-2"]
    # Line items that straddle the batch boundary but are adjacent still make one event.
    assert all(len(contents[f"F-{event:05d}"]) == FILLER_ITEMS for event in range(FILLER_EVENTS))

    shown = cli.ok("runs", "show", summary["id"]).stdout
    assert "repeated_event_id" in shown, shown


def test_a_dry_run_rejects_the_repeats_the_same_way(cli: Any, orders: str, emulator: Emulator) -> None:
    result = cli("run", orders, "--dry-run", "--json")
    assert result.exit_code == 0, result.output[:3000]
    check_summary(cli, json.loads(result.stdout))
    assert emulator.events() == []


def test_a_resumed_run_counts_the_repeats_once(cli: Any, orders: str, emulator: Emulator) -> None:
    """A run stopped once it has rejected the repeats is resumed: they are not rejected a second time, and what the
    first pass left is sent, each event once."""
    stop = threading.Event()

    def stop_once_the_repeats_are_rejected(summary: RunSummary) -> None:
        if summary.rejected >= 4:  # ORD-B and the repeats in the last record batch (ORD-C's is held back)
            stop.set()

    env = Environment()
    state_store = open_store(env)
    try:
        request = RunRequest(workspace="production", orchestration=orders, concurrency=1)
        ctx = Context(env=env, store=state_store)
        stopped = run_orchestration(ctx, request, progress=stop_once_the_repeats_are_rejected, stop=stop)
    finally:
        state_store.dispose()
    assert stopped.status == "cancelled", stopped.error
    assert stopped.rejected == 5 and stopped.failed > 0

    result = cli("run", orders, "--resume", "--json")
    assert result.exit_code == 0, result.output[:3000]
    resumed = json.loads(result.stdout)
    assert resumed["id"] == stopped.run_id
    check_summary(cli, resumed)
    accepted = Counter(item["payload"]["event_id"] for item in emulator.events() if item["status"] == "accepted")
    assert set(accepted.values()) == {1} and len(accepted) == FILLER_EVENTS + 2


def test_the_index_of_ids_lives_in_a_private_temporary_directory_and_is_removed(
    cli: Any, orders: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The run's index of ids is removed when the run ends, and so is one a killed run left behind."""
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setenv("TMPDIR", str(scratch))
    monkeypatch.setattr(tempfile, "tempdir", None)  # read TMPDIR again
    dead = subprocess.Popen(["true"])
    dead.wait()
    orphan = scratch / f"offramp-run-ids-{dead.pid}-abc"  # as a run killed with SIGKILL leaves it
    orphan.mkdir()
    (orphan / "seen.sqlite").write_bytes(b"")

    result = cli("run", orders, "--dry-run", "--json")
    assert result.exit_code == 0, result.output[:3000]
    assert json.loads(result.stdout)["reasons"]["rejected"] == REASONS
    assert list(scratch.iterdir()) == []
