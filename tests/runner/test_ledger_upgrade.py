"""Runs recorded before the ledger kept settled batches (schema 0008: one ``row_outcomes`` row per event) stay
readable after the upgrade to 0009, and resume and mode ``new`` treat them as they always did.

The old shape is made the way the old writer made it: a real run through the CLI against the emulator, its ledger
rewritten one entry per event with ``ledger.record`` (the statement the runner used for every event before 0009),
the ``ledger_batches`` table dropped and the schema set back to 0008. ``offramp init`` then upgrades the store.
Both stores: SQLite, then PostgreSQL when ``OFFRAMP_TEST_POSTGRES_URL`` is set.
"""

from __future__ import annotations

import json
from typing import Any

import sqlalchemy as sa
from conftest import Emulator

from offramp.core.environment import Environment
from offramp.core.runner import ledger
from offramp.core.state.models import Run
from offramp.core.state.store import open_store

UNSENT = 5  # events of the old run turned into "failed, not sent": what a resume must send


def summary_of(cli: Any, *args: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(cli.ok(*args, "--json").stdout)
    return data


def to_the_old_shape(run_id: str) -> list[str]:
    """Rewrite the run's ledger one entry per event, as schema 0008 kept it; return the keys made unsent."""
    store = open_store(Environment())
    try:
        with store.session() as session:
            entries = ledger.entries(session, run_id)
            sent = sorted(entry.event_id for entry in entries if entry.outcome == "sent")
            unsent = set(sent[-UNSENT:])
            old = [
                entry._replace(outcome="failed", reason_code="not_sent", request_id=None)
                if entry.event_id in unsent
                else entry
                for entry in entries
            ]
            session.execute(sa.text("DELETE FROM row_outcomes WHERE run_id = :run"), {"run": run_id})
            ledger.record(session, run_id, old)
            run = session.get(Run, run_id)
            assert run is not None
            run.status = "interrupted"  # as if it had been killed before it sent the last events
        with store.engine.begin() as connection:
            connection.execute(sa.text("DROP TABLE ledger_batches"))
            connection.execute(sa.text("UPDATE alembic_version SET version_num = '0008'"))
    finally:
        store.dispose()
    return sorted(unsent)


def test_a_run_recorded_per_event_reads_resumes_and_is_skipped_by_mode_new_after_the_upgrade(
    store: str, cli: Any, orchestration: str, emulator: Emulator
) -> None:
    first = summary_of(cli, "run", orchestration)
    assert first["status"] == "succeeded" and first["counts_add_up"] is True
    unsent = to_the_old_shape(first["id"])

    cli.ok("init")  # the upgrade to 0009
    shown = summary_of(cli, "runs", "show", first["id"])
    assert shown["status"] == "interrupted" and shown["counts_add_up"] is True
    assert shown["events"]["sent"] == first["events"]["sent"] - UNSENT
    assert shown["events"]["failed"] == UNSENT and shown["vendor_codes"] == {"not_sent": shown["rows"]["failed"]}
    assert shown["rows"]["queried"] == first["rows"]["queried"]
    failed = json.loads(cli.ok("runs", "show", first["id"], "--failed", "--format", "json").stdout)
    assert sorted(row["event_id"] for row in failed) == unsent

    before = len(emulator.events())
    resumed = summary_of(cli, "run", orchestration, "--resume")
    assert resumed["id"] == first["id"] and resumed["status"] == "succeeded"
    # Only what the old ledger had not settled reaches TikTok again (which drops it as a duplicate: it had it).
    assert sorted(item["payload"]["event_id"] for item in emulator.events()[before:]) == unsent
    assert resumed["events"]["sent"] == first["events"]["sent"] and resumed["counts_add_up"] is True

    cli.ok("orchestrations", "update", orchestration, "--mode", "new")
    before = len(emulator.events())
    again = summary_of(cli, "run", orchestration)
    assert emulator.events()[before:] == []  # everything was delivered, before the upgrade and after it
    assert again["events"]["skipped"] == first["events"]["sent"] and again["events"]["sent"] == 0
    assert again["reasons"]["skipped"] == {"already_delivered": first["rows"]["sent"]}
