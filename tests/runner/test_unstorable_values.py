"""A value the store cannot hold never fails a run after TikTok accepted it (docs/reliability.md, issue 11, item 10).

An ``event_id`` with a NUL byte went to TikTok, and on a PostgreSQL store (which refuses NUL in text) the ledger
write then failed the whole run: nothing recorded, and every ``--resume`` sent the batch again and failed again. On
SQLite the same run succeeded, so the result depended on the store. Now such an event is rejected before it is sent,
on every store alike, with ``invalid_event_id``, and listed by a stand-in key (U+FFFD for the NUL, then
``…sha256:`` and the digest of the id); the other events are sent and the run is complete: there is nothing to
resume. And whatever else an entry holds that a column cannot (a vendor's NUL, a request id or code longer than its
column, a vendor code beyond INTEGER) is made storable when it is written, so a ledger write does not fail on a
value after the vendor accepted.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pytest
import sqlalchemy as sa
from conftest import Emulator, set_up

from offramp.core.environment import Environment
from offramp.core.runner import ledger
from offramp.core.state.models import Run, Workspace
from offramp.core.state.store import open_store
from offramp.plugins.tiktok.emulator import DEFAULT_APP_SECRET

HOUR_AGO = (datetime.now(UTC) - timedelta(hours=1)).replace(microsecond=0, tzinfo=None)
NUL_ID = "BAD\x00ID"
GOOD = [f"G-{i:03d}" for i in range(20)]
SQL = "SELECT event_id, 'Purchase' AS event, timestamp, email, content_id, 10.0 AS price FROM t ORDER BY n"


def stand_in(event_id: str) -> str:
    """The documented key of an id a store cannot hold, computed from the rule, not by offramp."""
    shown = event_id[:183].replace("\x00", "\ufffd")
    return f"{shown}…sha256:{hashlib.sha256(event_id.encode()).hexdigest()}"


@pytest.fixture
def orders(store: str, cli: Any, emulator: Emulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("EMULATOR_APP_SECRET", DEFAULT_APP_SECRET)
    cli.ok("init")
    path = tmp_path / "orders.duckdb"
    ids = [GOOD[0], NUL_ID, NUL_ID, *GOOD[1:]]  # the NUL id's two line items among good events
    with duckdb.connect(str(path)) as con:
        con.execute(
            "CREATE TABLE t (n INTEGER, event_id VARCHAR, timestamp TIMESTAMP, email VARCHAR, content_id VARCHAR)"
        )
        con.executemany(
            "INSERT INTO t VALUES (?, ?, ?, ?, ?)",
            [(n, event_id, HOUR_AGO, f"customer.{n}@example.com", f"SKU-{n}") for n, event_id in enumerate(ids)],
        )
    return set_up(cli, emulator, f"duckdb:{path}", SQL)


def test_an_event_id_with_a_nul_is_rejected_before_sending_and_nothing_needs_resuming(
    cli: Any, orders: str, emulator: Emulator
) -> None:
    result = cli("run", orders, "--json")
    assert result.exit_code == 0, result.output[:3000]
    assert "Traceback" not in result.output
    summary = json.loads(result.stdout)
    assert summary["status"] == "succeeded", summary["error"]
    assert summary["counts_add_up"] is True
    assert (
        summary["rows"]["queried"],
        summary["rows"]["sent"],
        summary["rows"]["rejected"],
        summary["rows"]["failed"],
    ) == (22, 20, 2, 0)
    assert summary["reasons"]["rejected"] == {"invalid_event_id": 2}

    assert sorted(emulator.accepted_ids()) == GOOD  # each good event once; the NUL id never left
    [row] = json.loads(cli.ok("runs", "show", summary["id"], "--rejects", "--format", "json").stdout)
    assert (row["event_id"], row["reason"], row["rows"]) == (stand_in(NUL_ID), "invalid_event_id", 2)
    assert "NUL" in row["message"]

    # The run is complete: a resume has nothing to do and sends nothing.
    before = len(emulator.events())
    cli("run", orders, "--resume").one_line_error("no cancelled, interrupted or failed run to resume")
    assert len(emulator.events()) == before
    # And a dry run says the same as the run, on every store.
    dry = json.loads(cli.ok("run", orders, "--dry-run", "--json").stdout)
    assert (dry["rows"]["sent"], dry["rows"]["rejected"], dry["reasons"]["rejected"]) == (
        20,
        2,
        {"invalid_event_id": 2},
    )


def test_a_vendor_answer_the_columns_cannot_hold_is_still_recorded(store: str, cli: Any) -> None:
    """What a vendor says (a message with a NUL, a request id or code longer than its column, a code beyond
    INTEGER) is written storable instead of failing the ledger write after the vendor accepted."""
    cli.ok("init")
    env = Environment()
    state = open_store(env)
    try:
        with state.session() as session:
            workspace = session.scalars(sa.select(Workspace).where(Workspace.name == "production")).one()
            session.add(Run(id="r1", workspace_id=workspace.id, orchestration_name="o", status="running", mode="all"))
        entries = [
            ledger.Entry("E-1", "sent", 1, request_id="R" * 100),
            ledger.Entry("E-2", "failed", 1, vendor_code=2**40, message="bad\x00value"),
            ledger.Entry("E-3", "failed", 2, reason_code="C" * 100 + "\x00", message="x"),
            ledger.Entry(NUL_ID, "rejected", 1, reason_code="invalid_event_id"),
        ]
        with state.session() as session:
            ledger.record(session, "r1", entries)
        with state.session() as session:
            totals = ledger.totals(session, "r1")
            stored = {
                key: (outcome, vendor, reason, message, request)
                for key, outcome, vendor, reason, message, request in session.execute(
                    sa.text("SELECT event_id, outcome, vendor_code, reason_code, message, request_id FROM row_outcomes")
                )
            }
    finally:
        state.dispose()
    counts = totals["counts"]
    assert (counts["sent"], counts["rejected"], counts["failed"], counts["skipped"]) == (1, 1, 3, 0)
    assert stored["E-1"] == ("sent", None, None, None, "R" * 64)
    assert stored["E-2"] == ("failed", None, str(2**40), "bad\ufffdvalue", None)
    assert stored["E-3"] == ("failed", None, "C" * 64, "x", None)
    assert stored[stand_in(NUL_ID)][0] == "rejected"
