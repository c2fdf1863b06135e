"""`offramp runs list|show` over real runs: a DuckDB orders file -> the TikTok destination -> the emulator.

What is listed and exported is checked against the ledger itself (SQL on the state store), never against itself.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from conftest import ORDERS_SQL, Emulator, set_up
from sqlalchemy.orm import Session

from offramp.core.environment import Environment
from offramp.core.state.models import RowOutcome, Run, utcnow
from offramp.core.state.store import open_store
from offramp.plugins.tiktok.emulator import DEFAULT_APP_SECRET

COUNTS = ("queried", "sent", "rejected", "failed", "skipped", "unknown")
LEDGER_HEADER = ["event_id", "outcome", "reason", "vendor_code", "message", "rows", "attempts", "request_id"]
REJECTED_ORDERS = {f"ORD-{order}" for order in range(50, 301, 50)}  # every 50th order of the file has no email


@contextmanager
def state_store() -> Iterator[Session]:
    """A session on the test's state store (its OFFRAMP_HOME), committed at the end of the block."""
    store = open_store(Environment())
    try:
        with store.session() as session:
            yield session
    finally:
        store.dispose()


def run(cli: Any, *args: str, code: int = 0) -> dict[str, Any]:
    result = cli("run", *args, "--json")
    assert result.exit_code == code, result.output
    summary: dict[str, Any] = json.loads(result.stdout)
    return summary


def runs_json(cli: Any, *args: str) -> Any:
    return json.loads(cli.ok("runs", *args, "--json").stdout)


def ledger(run_id: str, outcome: str) -> dict[str, tuple[str | None, int | None, int]]:
    """{event_id: (reason code, vendor code, rows)} of a run's entries of one outcome, read with SQL."""
    with state_store() as session:
        rows = session.execute(
            sa.text(
                "SELECT event_id, reason_code, vendor_code, rows FROM row_outcomes "
                "WHERE run_id = :run_id AND outcome = :outcome"
            ),
            {"run_id": run_id, "outcome": outcome},
        )
        return {event_id: (reason, vendor, count) for event_id, reason, vendor, count in rows}


def test_list_shows_runs_newest_first_with_counts_that_add_up(
    cli: Any, orchestration: str, orders_file: tuple[Path, int]
) -> None:
    cli.ok("orchestrations", "add", "other", "--destination", "stores", "--source", f"duckdb:{orders_file[0]}",
           "--sql", ORDERS_SQL, "--map", "Order Completed=Purchase")  # fmt: skip
    first = run(cli, orchestration)
    second = run(cli, orchestration, "--limit", "40")
    third = run(cli, "other", "--dry-run", "--limit", "10")

    listed = runs_json(cli, "list")
    assert [item["id"] for item in listed] == [third["id"], second["id"], first["id"]]
    for item, summary in zip(listed, (third, second, first), strict=True):
        assert list(item) == list(summary)  # one shape: `runs list --json` items are `run --json` summaries
        assert (item["rows"], item["events"]) == (summary["rows"], summary["events"])
        assert item["rows"]["queried"] == sum(item["rows"][name] for name in COUNTS[1:])
        assert item["counts_add_up"] is True
        assert item["status"] == "succeeded"
        assert datetime.fromisoformat(item["finished_at"]) >= datetime.fromisoformat(item["started_at"])
        assert item["duration_seconds"] >= 0
    assert listed[0]["dry_run"] is True and listed[0]["orchestration"] == "other"
    assert first["rows"]["queried"] == orders_file[1] and second["rows"]["queried"] == 40

    assert [item["id"] for item in runs_json(cli, "list", "--orchestration", orchestration)] == [
        second["id"],
        first["id"],
    ]
    assert [item["id"] for item in runs_json(cli, "list", "--limit", "1")] == [third["id"]]
    assert runs_json(cli, "list", "--orchestration", "nothing-ran") == []

    table = cli.ok("runs", "list").stdout
    header = next(line for line in table.splitlines() if "orchestration" in line)
    for column in ("id", "status", "started", "duration", "rows", "events", *COUNTS[1:]):
        assert column in header
    positions = [table.index(summary["id"][:12]) for summary in (third, second, first)]
    assert positions == sorted(positions)
    assert "succeeded (dry run)" in table


def test_a_run_whose_heartbeat_lapsed_shows_as_interrupted_and_stays_so(
    cli: Any, orchestration: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    summary = run(cli, orchestration, "--limit", "60")
    beat = utcnow() - timedelta(seconds=30)
    with state_store() as session:
        # What a run killed with SIGKILL leaves: status running, no counts yet, only its ledger and an old heartbeat.
        row = session.get(Run, summary["id"])
        assert row is not None
        row.status, row.finished_at, row.heartbeat_at, row.error = "running", None, beat, None
        row.queried = row.sent = row.rejected = row.failed = row.skipped = 0
        row.reason_counts = {}

    monkeypatch.setenv("OFFRAMP_RUN_LEASE_SECONDS", "3600")
    [live] = runs_json(cli, "list")
    assert live["status"] == "running"
    assert live["finished_at"] is None

    monkeypatch.setenv("OFFRAMP_RUN_LEASE_SECONDS", "1")
    [listed] = runs_json(cli, "list")
    assert listed["status"] == "interrupted"
    assert "stopped without finishing" in listed["error"]
    with state_store() as session:  # shown, not written: reading runs never writes
        row = session.get(Run, summary["id"])
        assert row is not None
        assert row.status == "running" and row.finished_at is None

    # The run row holds no counts yet; the ledger does, and they add up.
    shown = runs_json(cli, "show", summary["id"])
    assert shown["status"] == "interrupted"
    assert shown["finished_at"] == beat.isoformat()
    assert shown["counted_from"] == "ledger"
    assert (shown["rows"], shown["events"]) == (summary["rows"], summary["events"])
    assert shown["reasons"]["rejected"] == summary["reasons"]["rejected"]
    text = cli.ok("runs", "show", summary["id"]).stdout
    assert "status: interrupted" in text and "so far, from the ledger" in text

    # The next run of the orchestration writes it: interrupted when its heartbeat stopped, for good.
    run(cli, orchestration, "--limit", "1")
    with state_store() as session:
        row = session.get(Run, summary["id"])
        assert row is not None
        assert row.status == "interrupted"
        assert row.finished_at == beat
    assert runs_json(cli, "show", summary["id"])["status"] == "interrupted"


def test_show_gives_the_summary_timings_and_tiktoks_request_ids(
    cli: Any, orchestration: str, stored_secrets: Callable[..., dict[str, str]]
) -> None:
    summary = run(cli, orchestration)
    prefix = summary["id"][:8]

    shown = runs_json(cli, "show", prefix)
    assert shown["id"] == summary["id"]
    assert shown["status"] == "succeeded"
    assert (shown["rows"], shown["events"]) == (summary["rows"], summary["events"])
    assert shown["counts_add_up"] is True
    assert shown["reasons"]["rejected"] == {"missing_identifiers": summary["rows"]["rejected"]}
    assert shown["vendor_codes"] == {} and shown["error"] is None
    assert shown["request_ids"] == summary["request_ids"]
    assert shown["request_ids"] and all(len(request_id) == 34 for request_id in shown["request_ids"])
    started, finished = (datetime.fromisoformat(shown[key]) for key in ("started_at", "finished_at"))
    assert shown["duration_seconds"] == pytest.approx((finished - started).total_seconds(), abs=0.001)

    text = cli.ok("runs", "show", prefix).stdout
    rows, events = summary["rows"], summary["events"]
    assert f"queried {rows['queried']} rows -> {events['prepared']} events: sent {events['sent']} events" in text
    assert f"rejected {events['rejected']} events ({rows['rejected']} rows)" in text
    assert "rows: queried" in text and "does NOT hold" not in text
    assert f"missing_identifiers: {rows['rejected']} rows" in text
    assert all(request_id in text for request_id in summary["request_ids"])
    assert f"offramp runs show {summary['id']} --rejects" in text

    outputs = [
        cli.ok("runs", "list", "--json").stdout,
        cli.ok("runs", "show", prefix, "--json", "--rejects", "--failed").stdout,
        text,
    ]
    secrets = [DEFAULT_APP_SECRET, *stored_secrets("tt").values()]
    assert len(secrets) >= 2  # the app secret and at least the access token
    for output in outputs:
        assert "@" not in output  # no raw email
        for secret in secrets:
            assert secret not in output


def test_rejects_export_as_csv_lists_exactly_the_rejected_events_with_their_reasons(
    cli: Any, orchestration: str, tmp_path: Path
) -> None:
    summary = run(cli, orchestration)
    expected = ledger(summary["id"], "rejected")
    assert set(expected) == REJECTED_ORDERS

    exported = cli.ok("runs", "show", summary["id"], "--rejects", "--format", "csv").stdout
    reader = csv.DictReader(io.StringIO(exported))
    assert reader.fieldnames == LEDGER_HEADER
    table = list(reader)
    assert len(table) == len(expected)
    assert {row["event_id"]: (row["reason"], None, int(row["rows"])) for row in table} == expected
    assert {row["outcome"] for row in table} == {"rejected"}
    assert sum(int(row["rows"]) for row in table) == summary["rows"]["rejected"]
    assert all(row["message"] for row in table)

    as_json = json.loads(cli.ok("runs", "show", summary["id"], "--rejects", "--format", "json").stdout)
    assert [row["event_id"] for row in as_json] == [row["event_id"] for row in table]

    target = tmp_path / "out" / "rejects.csv"
    target.parent.mkdir()
    said = cli.ok("runs", "show", summary["id"], "--rejects", "--output", str(target)).stdout
    rows = sum(count for _, _, count in expected.values())
    assert f"Wrote {len(expected)} rejected events ({rows} rows)" in said and str(target) in said
    assert target.read_text(encoding="utf-8") == exported

    in_table = cli.ok("runs", "show", summary["id"], "--rejects").stdout
    assert "Rejected events" in in_table and all(event_id in in_table for event_id in expected)


def test_failed_lists_the_event_tiktok_refused_with_its_code_and_message(
    cli: Any, orchestration: str, emulator: Emulator, tmp_path: Path
) -> None:
    emulator.faults(poison={"event_id": "ORD-13"})
    summary = run(cli, orchestration)
    assert summary["status"] == "partially_failed"
    assert ledger(summary["id"], "failed") == {"ORD-13": (None, 40002, summary["rows"]["failed"])}
    assert "ORD-13" not in emulator.accepted_ids()

    target = tmp_path / "failed.json"
    cli.ok("runs", "show", summary["id"], "--failed", "--output", str(target))
    [failed] = json.loads(target.read_text(encoding="utf-8"))
    assert failed["event_id"] == "ORD-13" and failed["outcome"] == "failed"
    assert failed["vendor_code"] == 40002
    poisoned = "Invalid value for event_id: value refused (poisoned by the emulator's fault injection)."
    assert failed["message"] == poisoned  # TikTok's message, as the emulator words it
    assert failed["rows"] == summary["rows"]["failed"] and failed["attempts"] >= 1
    assert failed["request_id"] and len(failed["request_id"]) == 34

    both = list(csv.DictReader(io.StringIO(
        cli.ok("runs", "show", summary["id"], "--rejects", "--failed", "--format", "csv").stdout
    )))  # fmt: skip
    assert {row["event_id"]: row["outcome"] for row in both} == {
        **dict.fromkeys(REJECTED_ORDERS, "rejected"),
        "ORD-13": "failed",
    }
    shown = runs_json(cli, "show", summary["id"], "--failed")
    assert shown["vendor_codes"] == {"40002": summary["rows"]["failed"]}
    assert [row["event_id"] for row in shown["failed_rows"]] == ["ORD-13"]
    text = cli.ok("runs", "show", summary["id"], "--failed").stdout
    assert "Failed events" in text and "40002" in text and "poisoned" in text


def test_free_text_of_a_run_never_shows_a_secret(cli: Any, orchestration: str) -> None:
    summary = run(cli, orchestration, "--limit", "20")
    leaky = (
        "HTTPError for https://business-api.tiktok.com/open_api/v1.3/oauth2/access_token/?app_id=1&app_secret=S3CR3T "
        "with Access-Token: T0K3N via postgresql://offramp:PA55W0RD@db.internal/state"
    )
    with state_store() as session:
        row = session.get(Run, summary["id"])
        assert row is not None
        row.error = leaky
        row.report = {**row.report, "hint": leaky}
        session.add(RowOutcome(run_id=row.id, event_id="leaky", outcome="failed", vendor_code=50000, message=leaky))

    outputs = [
        cli.ok("runs", "show", summary["id"], "--json", "--failed").stdout,
        cli.ok("runs", "show", summary["id"], "--failed").stdout,
        cli.ok("runs", "show", summary["id"], "--failed", "--format", "csv").stdout,
        cli.ok("runs", "list", "--json").stdout,
    ]
    for output in outputs:
        assert "leaky" in output or "HTTPError" in output
        for secret in ("S3CR3T", "T0K3N", "PA55W0RD"):
            assert secret not in output
    assert "postgresql://offramp:***@db.internal/state" in outputs[2]


def test_run_ids_and_options_are_checked(cli: Any, orchestration: str, tmp_path: Path) -> None:
    summary = run(cli, orchestration, "--limit", "10")
    cli("runs", "show", "ffffffffff").one_line_error("no run", "offramp runs list")
    cli("runs", "show", summary["id"], "--format", "csv").one_line_error("--rejects")
    cli("runs", "show", summary["id"], "--output", str(tmp_path / "x.csv")).one_line_error("--rejects")
    cli("runs", "show", summary["id"], "--rejects", "--json", "--format", "csv").one_line_error("--json")
    nowhere = str(tmp_path / "no" / "such" / "dir.csv")
    cli("runs", "show", summary["id"], "--rejects", "--output", nowhere).one_line_error("cannot write")
    assert cli("runs", "show", summary["id"], "--rejects", "--format", "xml").exit_code == 2
    assert cli("runs", "list", "--limit", "0").exit_code == 2
    cli.ok("workspaces", "add", "sandbox")
    cli("runs", "show", summary["id"], "--workspace", "sandbox").one_line_error("no run", "sandbox")
    assert runs_json(cli, "list", "--workspace", "sandbox") == []


def test_list_show_and_export_on_a_postgresql_state_store(
    cli: Any, emulator: Emulator, postgres_url: str, orders_file: tuple[Path, int], monkeypatch: pytest.MonkeyPatch
) -> None:

    monkeypatch.setenv("OFFRAMP_DATABASE_URL", postgres_url)
    monkeypatch.setenv("EMULATOR_APP_SECRET", DEFAULT_APP_SECRET)
    cli.ok("init")
    set_up(cli, emulator, f"duckdb:{orders_file[0]}")
    emulator.faults(poison={"event_id": "ORD-13"})
    first = run(cli, "orders", "--limit", "30")
    second = run(cli, "orders")
    assert [item["id"] for item in runs_json(cli, "list")] == [second["id"], first["id"]]

    table = list(csv.DictReader(io.StringIO(
        cli.ok("runs", "show", second["id"][:10], "--rejects", "--failed", "--format", "csv").stdout
    )))  # fmt: skip
    rejected, failed = ledger(second["id"], "rejected"), ledger(second["id"], "failed")
    assert set(rejected) == REJECTED_ORDERS and set(failed) == {"ORD-13"}
    assert {row["event_id"]: row["outcome"] for row in table} == {
        **dict.fromkeys(rejected, "rejected"),
        **dict.fromkeys(failed, "failed"),
    }

    with state_store() as session:
        row = session.get(Run, first["id"])
        assert row is not None
        row.status, row.finished_at, row.heartbeat_at = "running", None, utcnow() - timedelta(minutes=5)
    monkeypatch.setenv("OFFRAMP_RUN_LEASE_SECONDS", "1")
    assert [item["status"] for item in runs_json(cli, "list")] == ["partially_failed", "interrupted"]
    with state_store() as session:  # shown, not written: the next run of the orchestration writes it
        assert session.scalar(sa.select(Run.status).where(Run.id == first["id"])) == "running"
    run(cli, "orders", "--limit", "1")
    with state_store() as session:
        assert session.scalar(sa.select(Run.status).where(Run.id == first["id"])) == "interrupted"
