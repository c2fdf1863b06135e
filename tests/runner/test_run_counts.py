"""Counts that say what they count: rows and events told apart in every summary, listing, export and JSON.

Through the CLI, a DuckDB orders file (1 to 3 line items per order: an event of several rows) -> the TikTok
destination -> the emulator over loopback. Expected numbers come from the file itself, by SQL.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import duckdb
import pytest
import sqlalchemy as sa
from conftest import ORDERS_SQL, Emulator, set_up

from offramp.core.environment import Environment
from offramp.core.runner.types import RunSummary

# The run summary JSON, version 1 (docs: the contract of issue 13), keys in this order.
SUMMARY_KEYS = [
    "version", "id", "workspace", "orchestration", "status", "mode", "dry_run", "actor", "started_at", "finished_at",
    "duration_seconds", "rows", "events", "counts_add_up", "counted_from", "reasons", "vendor_codes", "warnings",
    "unknown_columns", "column_suggestions", "labels", "request_ids", "options", "error", "hint", "sample_requests",
    "group_run_id",
]  # fmt: skip
OUTCOMES = ("sent", "rejected", "failed", "skipped", "unknown")


def expected_counts(path: Path) -> dict[str, int]:
    """Rows and events of the orders file, and those of the orders without identifiers (rejected), by SQL."""
    with duckdb.connect(str(path), read_only=True) as con:
        rows, events, bad_rows, bad_events = con.sql(
            "SELECT count(*), count(DISTINCT order_id), count(*) FILTER (email IS NULL), "
            "count(DISTINCT order_id) FILTER (email IS NULL) FROM orders"
        ).fetchall()[0]
    return {"rows": rows, "events": events, "bad_rows": bad_rows, "bad_events": bad_events}


def run(cli: Any, *args: str, code: int = 0) -> dict[str, Any]:
    result = cli("run", *args, "--json")
    assert result.exit_code == code, result.output
    summary: dict[str, Any] = json.loads(result.stdout)
    assert summary["counts_add_up"] is True
    return summary


def test_rows_and_events_are_counted_apart_and_both_add_up(
    store: str, cli: Any, orchestration: str, emulator: Emulator, orders_file: tuple[Path, int]
) -> None:
    expected = expected_counts(orders_file[0])
    assert expected["rows"] > expected["events"]  # line items: events of several rows

    result = cli.ok("run", orchestration)
    out = result.stdout
    sent_events = expected["events"] - expected["bad_events"]
    sent_rows = expected["rows"] - expected["bad_rows"]
    line = (
        f"queried {expected['rows']} rows -> {expected['events']} events: "
        f"sent {sent_events} events ({sent_rows} rows), "
        f"rejected {expected['bad_events']} events ({expected['bad_rows']} rows), failed 0, skipped 0, unknown 0"
    )
    assert line in out.splitlines()
    assert f"rejected by reason: missing_identifiers {expected['bad_rows']} rows" in out
    assert len(set(emulator.accepted_ids())) == sent_events  # what TikTok received: events

    [listed] = json.loads(cli.ok("runs", "list", "--json").stdout)
    assert listed["rows"] == {"queried": expected["rows"], "sent": sent_rows, "rejected": expected["bad_rows"],
                              "failed": 0, "skipped": 0, "unknown": 0}  # fmt: skip
    events = {"prepared": expected["events"], "sent": sent_events, "rejected": expected["bad_events"]}
    assert listed["events"] == {**events, "failed": 0, "skipped": 0, "unknown": 0}
    table = cli.ok("runs", "list").stdout
    assert f"{sent_events} ({sent_rows})" in table and f"{expected['bad_events']} ({expected['bad_rows']})" in table
    shown = cli.ok("runs", "show", listed["id"]).stdout
    assert line in shown
    assert "rows: queried" in shown and "holds" in shown and "does NOT hold" not in shown

    said = cli.ok("runs", "show", listed["id"], "--rejects", "--output", "rejects.csv").stdout
    assert f"Wrote {expected['bad_events']} rejected events ({expected['bad_rows']} rows) of run" in said


def test_a_mode_new_rerun_lists_its_skipped_rows_under_skipped_not_under_rejected(
    store: str, cli: Any, orchestration: str, emulator: Emulator, orders_file: tuple[Path, int]
) -> None:
    expected = expected_counts(orders_file[0])
    cli.ok("orchestrations", "add", "fresh", "--destination", "stores", "--source", f"duckdb:{orders_file[0]}",
           "--sql", ORDERS_SQL, "--map", "Order Completed=Purchase", "--mode", "new")  # fmt: skip
    first = run(cli, "fresh")
    result = cli.ok("run", "fresh")
    delivered_events, delivered_rows = first["events"]["sent"], first["rows"]["sent"]
    assert (
        f"skipped {delivered_events} events ({delivered_rows} rows)" in result.stdout
        and f"rejected {expected['bad_events']} events ({expected['bad_rows']} rows)" in result.stdout
    )
    assert f"skipped by reason: already_delivered {delivered_rows} rows" in result.stdout
    [rejected_line] = [line for line in result.stdout.splitlines() if line.startswith("rejected by reason")]
    assert "already_delivered" not in rejected_line

    [second, _] = json.loads(cli.ok("runs", "list", "--orchestration", "fresh", "--json").stdout)
    assert second["reasons"] == {"rejected": {"missing_identifiers": expected["bad_rows"]},
                                 "skipped": {"already_delivered": delivered_rows}, "unknown": {}}  # fmt: skip
    assert second["events"]["skipped"] == delivered_events and second["events"]["sent"] == 0
    shown = cli.ok("runs", "show", second["id"]).stdout
    skipped_at, rejected_at = shown.index("skipped by reason"), shown.index("rejected by reason")
    assert "already_delivered" in shown[skipped_at:] and "already_delivered" not in shown[rejected_at:skipped_at]


def test_a_dry_run_says_would_send_and_keeps_its_requests_as_json(
    cli: Any, orchestration: str, emulator: Emulator, orders_file: tuple[Path, int]
) -> None:
    expected = expected_counts(orders_file[0])
    out = cli.ok("run", orchestration, "--dry-run").stdout
    counts = next(line for line in out.splitlines() if line.startswith("queried "))
    sent_events = expected["events"] - expected["bad_events"]
    assert f"would send {sent_events} events ({expected['rows'] - expected['bad_rows']} rows)" in counts
    assert " sent " not in counts
    assert emulator.events() == []

    summary = run(cli, orchestration, "--dry-run")
    [body, *_] = summary["sample_requests"]
    assert isinstance(body, dict) and body["data"][0]["event"] == "Purchase"  # a JSON object, not JSON text


def test_the_progress_bar_counts_events_and_rows() -> None:
    from offramp.core.commands import progress_counts

    summary = RunSummary("r", "orders", "running", sent=12, rejected=2, seconds=1.0)
    summary.events.update(sent=5, rejected=2, prepared=7)
    assert "sent 5 events (12 rows)  rejected 2 (2 rows)" in progress_counts(summary)
    summary.dry_run = True
    assert "would send 5 events (12 rows)" in progress_counts(summary) and " sent " not in progress_counts(summary)


def test_run_runs_show_and_runs_list_print_one_json_shape(cli: Any, orchestration: str, emulator: Emulator) -> None:
    real = run(cli, orchestration, "--limit", "30")
    dry = run(cli, orchestration, "--dry-run", "--limit", "30")
    listed = json.loads(cli.ok("runs", "list", "--json").stdout)
    for summary in (real, dry):
        assert list(summary) == SUMMARY_KEYS
        shown = json.loads(cli.ok("runs", "show", summary["id"], "--json").stdout)
        assert list(shown) == SUMMARY_KEYS
        [item] = [item for item in listed if item["id"] == summary["id"]]
        assert list(item) == SUMMARY_KEYS
        assert shown == item  # the same run, the same summary
        for key in ("rows", "events", "reasons", "status", "options", "request_ids", "sample_requests"):
            assert summary[key] == shown[key], key
        assert summary["version"] == 1 and summary["workspace"] == "production"
        assert summary["duration_seconds"] == round(summary["duration_seconds"], 3)
    assert (
        real["sample_requests"] == []
        and dry["sample_requests"]
        and all(isinstance(body, dict) for body in dry["sample_requests"])
    )
    extra = json.loads(cli.ok("runs", "show", real["id"], "--json", "--rejects", "--warnings").stdout)
    assert list(extra) == [*SUMMARY_KEYS, "rejected_rows", "warning_events"]


def test_runs_are_in_the_audit_trail_with_their_actor(cli: Any, orchestration: str, emulator: Emulator) -> None:
    summary = run(cli, orchestration, "--limit", "20", "--actor", "nightly-scheduler")
    assert summary["actor"] == "nightly-scheduler"
    events = json.loads(cli.ok("audit", "--type", "run", "--json").stdout)
    finish, start = events
    assert (start["action"], start["object_type"], start["object_name"]) == ("start", "run", summary["id"])
    assert start["actor"] == finish["actor"] == "nightly-scheduler"
    assert start["details"] == {"orchestration": orchestration, "dry_run": False}
    assert finish["action"] == "finish" and finish["details"]["status"] == "succeeded"
    assert finish["details"]["rows"] == summary["rows"] and finish["details"]["events"] == summary["events"]

    run(cli, orchestration, "--dry-run", "--limit", "5")
    [dry_finish, dry_start, *_] = json.loads(cli.ok("audit", "--type", "run", "--json").stdout)
    assert dry_start["details"]["dry_run"] is True and dry_finish["details"]["dry_run"] is True
    assert dry_start["actor"]  # the OS user by default


def test_runs_list_finds_an_orchestrations_runs_from_before_a_rename_and_after_a_delete(
    store: str, cli: Any, orchestration: str, emulator: Emulator
) -> None:
    first = run(cli, orchestration, "--limit", "10")
    engine = sa.create_engine(Environment().store_url)
    try:
        with engine.begin() as connection:  # what a rename does: the same orchestration, a new name
            connection.execute(sa.text("UPDATE orchestrations SET name = 'store-orders' WHERE name = 'orders'"))
    finally:
        engine.dispose()
    second = run(cli, "store-orders", "--limit", "10")
    listed = json.loads(cli.ok("runs", "list", "--orchestration", "store-orders", "--json").stdout)
    assert [item["id"] for item in listed] == [second["id"], first["id"]]
    assert {item["orchestration"] for item in listed} == {"store-orders"}

    cli.ok("orchestrations", "delete", "store-orders")
    gone = json.loads(cli.ok("runs", "list", "--orchestration", "store-orders", "--json").stdout)
    assert [item["id"] for item in gone] == [second["id"]]  # by the name its runs were stored under


@pytest.mark.parametrize("workspace", ["sandbox"])
def test_hints_of_a_run_outside_production_name_the_workspace(
    cli: Any, initialized: Any, emulator: Emulator, orders_file: tuple[Path, int], workspace: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip

    from offramp.plugins.tiktok.emulator import DEFAULT_APP_SECRET

    monkeypatch.setenv("EMULATOR_APP_SECRET", DEFAULT_APP_SECRET)
    cli.ok("workspaces", "add", workspace)
    monkeypatch.setenv("OFFRAMP_WORKSPACE", workspace)
    set_up(cli, emulator, f"duckdb:{orders_file[0]}")
    out = cli.ok("run", "orders", "--test-event-code", "TEST123").stdout  # a sandbox sends test traffic only
    [run_id] = re.findall(r"^run (\w+) succeeded", out, flags=re.MULTILINE)
    assert f"rejected rows by event_id: offramp runs show {run_id} --rejects -w {workspace}" in out
    shown = cli.ok("runs", "show", run_id).stdout
    assert f"offramp runs show {run_id} --rejects -w {workspace}" in shown
