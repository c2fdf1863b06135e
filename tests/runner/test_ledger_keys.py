"""Event ids of any length through real runs: the ledger keys them so that every store can hold and compare them.

Users choose their event_id column, and the ledger's key column holds 255 characters. A longer id is keyed by a
stand-in (core/runner/ledger.py, "Keys"): its first 183 characters, ``…sha256:``, and the SHA-256 of the whole id,
255 characters in all. These runs go to the emulator with ids of 300 characters and of 1 MB, on a SQLite and on a
PostgreSQL store, and check what a user relies on: the run completes, the counts add up, ``runs show --rejects`` and
``--failed`` list the stand-ins, the events reach TikTok with their ids as given, and mode ``new``,
``--replay-failed`` and ``--resume`` recognise the long ids they read back from the ledger.
"""

from __future__ import annotations

import hashlib
import json
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pytest
from conftest import Emulator, set_up

from offramp.core.environment import Environment
from offramp.core.runner import RunRequest, RunSummary, ledger, run_orchestration
from offramp.core.services.context import Context
from offramp.core.state.store import open_store
from offramp.plugins.tiktok.emulator import DEFAULT_APP_SECRET

MB = 1_000_000
HOUR_AGO = (datetime.now(UTC) - timedelta(hours=1)).replace(microsecond=0, tzinfo=None)

LONG = "L" * 300  # two line items: one event of two rows
HUGE = "M" * MB
# Ten ids alike in their first 300 characters: only the digest in their keys tells them apart.
ALIKE = [f"{'P' * 300}-{i}" for i in range(10)]
REJECTED_LONG = "R" * 300
REJECTED_HUGE = "Q" * MB
SHORT = [f"S-{i:04d}" for i in range(190)]

SENT_IDS = {LONG, HUGE, *ALIKE, *SHORT}
REJECTED_IDS = {REJECTED_LONG, REJECTED_HUGE}
SQL = "SELECT event_id, event, timestamp, email, content_id, price, quantity FROM t ORDER BY n"


def stand_in(event_id: str) -> str:
    """The documented key of an event id, computed here from the rule, not by offramp."""
    if len(event_id) <= 255:
        return event_id
    return f"{event_id[:183]}…sha256:{hashlib.sha256(event_id.encode()).hexdigest()}"


def rows() -> list[tuple[Any, ...]]:
    """(n, event_id, event, timestamp, email, content_id, price, quantity): the long ids come first, within the
    first batch of 50 events, so a run stopped after one batch has sent some of them."""
    events: list[tuple[str, str, int]] = [(LONG, "Purchase", 2), (HUGE, "Purchase", 1)]
    events += [(event_id, "Purchase", 1) for event_id in ALIKE]
    events += [(REJECTED_LONG, "Unknown Thing", 1), (REJECTED_HUGE, "Unknown Thing", 1)]
    events += [(event_id, "Purchase", 1) for event_id in SHORT]
    table = []
    for number, (event_id, event, items) in enumerate(events):
        for item in range(items):
            email = f"customer.{number}@example.com"
            table.append((len(table), event_id, event, HOUR_AGO, email, f"SKU-{item}", 10.0, 1))
    return table


TOTAL_ROWS = len(rows())
SENT_ROWS = TOTAL_ROWS - len(REJECTED_IDS)


@pytest.fixture
def orders(store: str, cli: Any, emulator: Emulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """Orchestration `orders` over a DuckDB file of the rows above (and `fresh`, the same in mode new)."""
    monkeypatch.setenv("EMULATOR_APP_SECRET", DEFAULT_APP_SECRET)
    cli.ok("init")
    path = tmp_path / "long-ids.duckdb"
    with duckdb.connect(str(path)) as con:
        con.execute(
            "CREATE TABLE t (n INTEGER, event_id VARCHAR, event VARCHAR, timestamp TIMESTAMP, email VARCHAR,"
            " content_id VARCHAR, price DOUBLE, quantity INTEGER)"
        )
        con.executemany("INSERT INTO t VALUES (?, ?, ?, ?, ?, ?, ?, ?)", rows())
    set_up(cli, emulator, f"duckdb:{path}", SQL)
    cli.ok("orchestrations", "add", "fresh", "--destination", "stores", "--source", f"duckdb:{path}",
           "--sql", SQL, "--mode", "new")  # fmt: skip
    return "orders"


def run_json(cli: Any, *args: str, code: int = 0) -> dict[str, Any]:
    result = cli("run", *args, "--json")
    assert result.exit_code == code, result.output[:3000]
    assert "Traceback" not in result.output
    data: dict[str, Any] = json.loads(result.stdout)
    assert data["counts_add_up"] is True
    assert (
        data["rows"]["queried"]
        == data["rows"]["sent"] + data["rows"]["rejected"] + data["rows"]["failed"] + data["rows"]["skipped"]
        == TOTAL_ROWS
    )
    return data


def ledger_rows(cli: Any, run_id: str, which: str) -> list[dict[str, Any]]:
    listed: list[dict[str, Any]] = json.loads(cli.ok("runs", "show", run_id, which, "--format", "json").stdout)
    return listed


def test_long_ids_are_sent_as_given_and_listed_by_their_stand_ins(cli: Any, orders: str, emulator: Emulator) -> None:
    summary = run_json(cli, orders)

    assert summary["status"] == "succeeded"
    assert (summary["rows"]["sent"], summary["rows"]["rejected"]) == (SENT_ROWS, len(REJECTED_IDS))
    assert summary["reasons"]["rejected"] == {"unknown_event_name": len(REJECTED_IDS)}
    accepted = emulator.accepted_ids()
    assert sorted(accepted) == sorted(SENT_IDS)  # each once, the 1 MB id whole
    rejects = ledger_rows(cli, summary["id"], "--rejects")
    assert sorted(row["event_id"] for row in rejects) == sorted(stand_in(event_id) for event_id in REJECTED_IDS)
    assert all(len(row["event_id"]) == 255 and row["reason"] == "unknown_event_name" for row in rejects)
    shown = json.loads(cli.ok("runs", "show", summary["id"], "--json").stdout)
    assert shown["rows"]["queried"] == TOTAL_ROWS and shown["counts_add_up"] is True


def test_mode_new_recognises_the_long_ids_it_delivered(cli: Any, orders: str, emulator: Emulator) -> None:
    first = run_json(cli, "fresh")
    second = run_json(cli, "fresh")

    assert first["rows"]["sent"] == SENT_ROWS and first["rows"]["skipped"] == 0
    assert (
        second["rows"]["sent"] == 0 and second["rows"]["skipped"] == SENT_ROWS
    )  # the line items of LONG count as its 2 rows
    assert second["reasons"]["skipped"]["already_delivered"] == SENT_ROWS
    assert len(emulator.events()) == len(SENT_IDS)  # nothing went twice


def test_replay_failed_sends_again_the_1_mb_id_that_failed(cli: Any, orders: str, emulator: Emulator) -> None:
    emulator.faults(poison={"event_id": HUGE})
    first = run_json(cli, orders)
    assert first["status"] == "partially_failed"
    assert first["vendor_codes"] == {"40002": 1}
    [failed] = ledger_rows(cli, first["id"], "--failed")
    assert failed["event_id"] == stand_in(HUGE) and failed["vendor_code"] == 40002
    assert "poisoned" in failed["message"]
    assert HUGE not in emulator.accepted_ids()

    emulator.faults(poison={})
    replay = run_json(cli, orders, "--replay-failed", first["id"])
    assert replay["status"] == "succeeded"
    assert replay["rows"]["sent"] == 1  # the 1 MB id alone, matched to its stand-in in the replayed run's ledger
    assert replay["rows"]["skipped"] == SENT_ROWS - 1
    assert replay["reasons"]["skipped"]["not_failed_in_replayed_run"] == SENT_ROWS - 1
    assert emulator.accepted_ids().count(HUGE) == 1


def test_resume_sends_only_what_the_stopped_run_left(cli: Any, orders: str, emulator: Emulator) -> None:
    # The first pass is stopped (as by Ctrl-C) once a batch, holding the long ids, was sent.
    stop = threading.Event()

    def stop_after_a_sent_batch(summary: RunSummary) -> None:
        if summary.sent:
            stop.set()

    env = Environment()
    state_store = open_store(env)
    try:
        ctx = Context(env=env, store=state_store)
        request = RunRequest(workspace="production", orchestration=orders, concurrency=1)
        stopped = run_orchestration(ctx, request, progress=stop_after_a_sent_batch, stop=stop)
    finally:
        state_store.dispose()
    assert stopped.status == "cancelled", stopped.error
    assert 0 < stopped.sent < SENT_ROWS and stopped.failed > 0
    sent_first = set(emulator.accepted_ids())
    assert {LONG, HUGE, *ALIKE} <= sent_first

    resumed = run_json(cli, orders, "--resume")
    assert resumed["id"] == stopped.run_id
    assert resumed["status"] == "succeeded"
    # Settled long ids were recognised: not sent again, and their rejections not recorded twice.
    assert (resumed["rows"]["sent"], resumed["rows"]["rejected"], resumed["rows"]["failed"]) == (
        SENT_ROWS,
        len(REJECTED_IDS),
        0,
    )
    statuses = [item["status"] for item in emulator.events()]
    assert statuses.count("duplicate") == 0
    assert sorted(emulator.accepted_ids()) == sorted(SENT_IDS)
    rejects = ledger_rows(cli, stopped.run_id, "--rejects")
    assert sorted((row["event_id"], row["rows"]) for row in rejects) == sorted(
        (stand_in(event_id), 1) for event_id in REJECTED_IDS
    )


def test_a_refused_replay_writes_nothing_and_blocks_no_run(cli: Any, orders: str, emulator: Emulator) -> None:
    def runs() -> list[dict[str, Any]]:
        listed: list[dict[str, Any]] = json.loads(cli.ok("runs", "list", "--json").stdout)
        return listed

    cli("run", orders, "--replay-failed", "nosuch").one_line_error("no run with id 'nosuch'", "runs list")
    assert runs() == []
    fresh = run_json(cli, "fresh")  # another orchestration's run, and a dry run: neither can be replayed here
    dry = run_json(cli, orders, "--dry-run")
    before = runs()
    cli("run", orders, "--replay-failed", fresh["id"]).one_line_error("orchestration 'fresh'", "offramp run fresh")
    cli("run", orders, "--replay-failed", dry["id"]).one_line_error("dry run")
    assert runs() == before
    # At once: no run was left running, holding the orchestration's lease.
    summary = run_json(cli, orders)
    assert summary["status"] == "succeeded"
    assert [run["id"] for run in runs()][0] == summary["id"]


def test_an_unexpected_error_is_shown_whole_but_stored_without_its_text(
    cli: Any, orders: str, emulator: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A library's message may quote a statement's parameters: a raw email, here.
    def explode(*args: Any) -> None:
        raise RuntimeError("INSERT failed for parameters ('customer.7@example.com',)")

    monkeypatch.setattr("offramp.core.runner.engine.RunExecution._guard", explode)
    result = cli("run", orders)
    line = result.one_line_error("unexpected RuntimeError", "customer.7@example.com", "--debug")
    assert "Traceback" not in line
    [run] = json.loads(cli.ok("runs", "list", "--json").stdout)
    assert run["status"] == "failed"
    assert "RuntimeError" in run["error"] and "@" not in json.dumps(run)
    shown = json.loads(cli.ok("runs", "show", run["id"], "--json").stdout)
    assert "--debug" in shown["hint"] and "@" not in json.dumps(shown)


def test_no_event_id_is_the_key_offramp_makes_up_for_another_ids_repeats() -> None:
    # Found by review: an id written as `O-5…repeated` was recorded under the key of O-5's repeated rows, so the
    # ledger said "rejected" for an event TikTok accepted. Made-up keys hold a noncharacter no id is kept under.
    ids = ["O-5", "O-5…repeated", "O-5\uffff…repeated", "O-5\uffff", "x" * 300, "x" * 300 + "…repeated", "a\x00b"]
    own = [ledger.key(event_id) for event_id in ids]
    repeats = [ledger.entry_key(event_id, ledger.REPEATED_EVENT_ID) for event_id in ids]
    assert len(set(own) | set(repeats)) == 2 * len(ids)
    assert ledger.key("O-5…repeated") == "O-5…repeated"  # an ordinary id is still its own key
    assert ledger.shown_key(ledger.repeat_key("O-5")) == "O-5…repeated"  # and people read the made-up one so
