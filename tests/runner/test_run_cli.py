"""`offramp run` end to end: a DuckDB orders file -> the TikTok destination -> the emulator over loopback.

Every test checks the accounting a user depends on: queried = sent + rejected + failed + skipped, in the summary,
the stored run and the ledger, and what the emulator received.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from conftest import ORDERS_SQL, Emulator, set_up, write_orders

ORDERS_WITH_IDENTIFIERS = 300 - 300 // 50  # every 50th order has no email: rejected


def run_json(cli: Any, *args: str, code: int = 0) -> dict[str, Any]:
    result = cli("run", *args, "--json")
    assert result.exit_code == code, result.output
    data: dict[str, Any] = json.loads(result.stdout)
    assert data["version"] == 1 and data["counts_add_up"] is True
    rows, events = data["rows"], data["events"]
    assert rows["queried"] == rows["sent"] + rows["rejected"] + rows["failed"] + rows["skipped"] + rows["unknown"]
    assert events["prepared"] == sum(events[name] for name in ("sent", "rejected", "failed", "skipped", "unknown"))
    return data


def test_a_run_sends_every_event_once_and_accounts_for_every_row(
    cli: Any, orchestration: str, emulator: Emulator, orders_file: tuple[Path, int]
) -> None:
    summary = run_json(cli, orchestration)

    rows = orders_file[1]
    assert summary["status"] == "succeeded"
    assert summary["rows"]["queried"] == rows
    assert summary["reasons"]["rejected"] == {"missing_identifiers": summary["rows"]["rejected"]}
    received = emulator.accepted_ids()
    assert len(received) == len(set(received)) == ORDERS_WITH_IDENTIFIERS
    assert summary["rows"]["sent"] + summary["rows"]["rejected"] == rows
    shown = json.loads(cli.ok("runs", "show", summary["id"], "--json", "--rejects").stdout)
    assert shown["status"] == "succeeded"
    assert (shown["rows"], shown["events"]) == (summary["rows"], summary["events"])
    assert {row["reason"] for row in shown["rejected_rows"]} == {"missing_identifiers"}
    assert shown["counts_add_up"] is True
    assert shown["request_ids"] and all(len(request_id) == 34 for request_id in shown["request_ids"])
    assert "@" not in json.dumps(shown)  # no raw email anywhere in the report
    exported = cli.ok("runs", "show", summary["id"], "--rejects", "--format", "csv").stdout
    import csv
    import io

    table = list(csv.DictReader(io.StringIO(exported)))
    assert sorted(row["event_id"] for row in table) == sorted(row["event_id"] for row in shown["rejected_rows"])
    assert {row["reason"] for row in table} == {"missing_identifiers"}
    assert sum(int(row["rows"]) for row in table) == summary["rows"]["rejected"]


def test_a_second_run_resends_the_same_ids_and_tiktok_deduplicates_them(
    cli: Any, orchestration: str, emulator: Emulator
) -> None:
    first = run_json(cli, orchestration)
    second = run_json(cli, orchestration)
    assert second["rows"]["sent"] == first["rows"]["sent"]
    statuses = [item["status"] for item in emulator.events()]
    assert statuses.count("accepted") == ORDERS_WITH_IDENTIFIERS
    assert statuses.count("duplicate") == ORDERS_WITH_IDENTIFIERS  # TikTok deduplicates on the stable event_id


def test_mode_new_skips_what_the_orchestration_already_delivered(
    cli: Any, orchestration: str, emulator: Emulator, orders_file: tuple[Path, int]
) -> None:
    cli.ok("orchestrations", "add", "fresh", "--destination", "stores", "--source", f"duckdb:{orders_file[0]}",
           "--sql", ORDERS_SQL, "--map", "Order Completed=Purchase", "--mode", "new")  # fmt: skip
    first = run_json(cli, "fresh")
    second = run_json(cli, "fresh")
    assert first["rows"]["sent"] > 0 and first["rows"]["skipped"] == 0
    assert second["rows"]["sent"] == 0 and second["rows"]["skipped"] == first["rows"]["sent"]
    assert second["reasons"]["skipped"]["already_delivered"] == first["rows"]["sent"]
    assert len(emulator.events()) == ORDERS_WITH_IDENTIFIERS


def test_dry_run_sends_nothing_and_keeps_sample_bodies(cli: Any, orchestration: str, emulator: Emulator) -> None:
    summary = run_json(cli, orchestration, "--dry-run")
    assert summary["dry_run"] is True
    assert emulator.events() == []
    [request, *_] = summary["sample_requests"]  # JSON objects, not JSON text inside JSON
    assert request["event_source"] == "offline" and len(request["data"]) == 5
    assert request["data"][0]["event"] == "Purchase"
    assert len(request["data"][0]["user"]["email"][0]) == 64  # hashed, as it would go


def test_limit_reads_only_that_many_rows(cli: Any, orchestration: str) -> None:
    summary = run_json(cli, orchestration, "--limit", "10")
    assert summary["rows"]["queried"] == 10


def test_transient_faults_are_retried_and_nothing_is_lost(cli: Any, orchestration: str, emulator: Emulator) -> None:
    emulator.faults(fail={"40100": 0.2, "50000": 0.05}, http_502=0.05, random_seed=7)
    summary = run_json(cli, orchestration, "--concurrency", "3")
    assert summary["status"] == "succeeded"
    accepted = emulator.accepted_ids()
    assert len(set(accepted)) == ORDERS_WITH_IDENTIFIERS


def test_a_revoked_grant_fails_the_run_and_resume_finishes_it(cli: Any, orchestration: str, emulator: Emulator) -> None:
    emulator.revoke()
    summary = run_json(cli, orchestration, code=1)
    assert summary["status"] == "failed"
    assert "authorize" in (summary["hint"] or "") + (summary["error"] or "")
    assert summary["rows"]["sent"] == 0
    assert summary["vendor_codes"].get("not_sent", 0) == summary["rows"]["failed"] > 0

    # Until someone re-authorizes, a run is refused before it reads anything; a dry run (no call) still runs.
    runs_before = cli.ok("runs", "list", "--json").stdout
    refused = cli("run", orchestration)
    assert refused.exit_code != 0 and "needs authorizing again" in refused.stderr
    assert "offramp credentials authorize tt" in refused.stderr
    assert cli.ok("runs", "list", "--json").stdout == runs_before
    assert run_json(cli, orchestration, "--dry-run")["status"] == "succeeded"

    cli.ok("credentials", "authorize", "tt", input=f"{emulator.state.issue_auth_code('admin')}\n")
    resumed = run_json(cli, orchestration, "--resume")
    assert resumed["id"] == summary["id"]
    assert resumed["status"] == "succeeded"
    assert resumed["rows"]["failed"] == 0
    assert len(set(emulator.accepted_ids())) == ORDERS_WITH_IDENTIFIERS


def test_max_reject_rate_stops_a_broken_query(cli: Any, orchestration: str, tmp_path: Path) -> None:

    broken = tmp_path / "broken.duckdb"
    write_orders(broken, 3000, bad_every=2)  # half the orders have no identifiers
    cli.ok("orchestrations", "add", "broken", "--destination", "stores", "--source", f"duckdb:{broken}",
           "--sql", ORDERS_SQL, "--map", "Order Completed=Purchase")  # fmt: skip
    summary = run_json(cli, "broken", "--max-reject-rate", "0.2", code=1)
    assert summary["status"] == "failed"
    assert "over --max-reject-rate 20.0%" in summary["error"]


def test_fail_on_empty(cli: Any, orchestration: str) -> None:
    cli.ok("orchestrations", "delete", orchestration)
    cli.ok("orchestrations", "add", "empty", "--destination", "stores", "--sql", "SELECT 1 AS x WHERE false")
    summary = run_json(cli, "empty", "--fail-on-empty", code=1)
    assert summary["status"] == "failed" and "no rows" in summary["error"]
    assert run_json(cli, "empty")["status"] == "succeeded"


def test_only_a_read_query_runs(cli: Any, orchestration: str) -> None:
    # Refused when the query is stored (the statement kind is checked then), so no run can start on it.
    cli("orchestrations", "add", "evil", "--destination", "stores", "--sql", "DELETE FROM orders").one_line_error(
        "SELECT"
    )


def test_postgresql_source_and_store(
    cli: Any,
    emulator: Emulator,
    postgres_url: str,
    postgres_reader_url: str,
    orders_file: tuple[Path, int],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The warehouse and the state store both on PostgreSQL: the same rows, the same events."""
    import duckdb
    import sqlalchemy as sa

    from offramp.plugins.tiktok.emulator import DEFAULT_APP_SECRET

    with duckdb.connect(str(orders_file[0]), read_only=True) as con:
        rows = con.sql("SELECT * FROM orders").fetchall()
    engine = sa.create_engine(postgres_url)
    with engine.begin() as connection:
        connection.exec_driver_sql(
            "CREATE TABLE orders (order_id text, ordered_at timestamp, email text, sku text, price numeric, qty int)"
        )
        connection.execute(
            sa.text("INSERT INTO orders VALUES (:a, :b, :c, :d, :e, :f)"),
            [dict(zip("abcdef", row, strict=True)) for row in rows],
        )
    engine.dispose()
    monkeypatch.setenv("OFFRAMP_DATABASE_URL", postgres_url)
    monkeypatch.setenv("WAREHOUSE_URL", postgres_reader_url)  # a read-only role: a superuser is refused
    monkeypatch.setenv("EMULATOR_APP_SECRET", DEFAULT_APP_SECRET)
    cli.ok("init")
    set_up(cli, emulator, "env:WAREHOUSE_URL")
    summary = run_json(cli, "orders")
    assert summary["status"] == "succeeded"
    assert summary["rows"]["queried"] == orders_file[1]
    assert len(set(emulator.accepted_ids())) == ORDERS_WITH_IDENTIFIERS
    shown = json.loads(cli.ok("runs", "show", summary["id"], "--json").stdout)
    assert shown["rows"]["sent"] == summary["rows"]["sent"]


def test_test_event_code_goes_to_tiktoks_test_view(cli: Any, orchestration: str, emulator: Emulator) -> None:
    summary = run_json(cli, orchestration, "--test-event-code", "TEST123", "--limit", "20")
    assert summary["rows"]["sent"] > 0
    assert {item["test_event_code"] for item in emulator.events()} == {"TEST123"}


def test_a_failing_cast_is_reported_to_the_user_but_its_value_is_not_stored(
    cli: Any, orchestration: str, orders_file: tuple[Path, int], offramp_home: Path
) -> None:
    cli.ok("orchestrations", "add", "casting", "--destination", "stores", "--source", f"duckdb:{orders_file[0]}",
           "--sql", "SELECT CAST(email AS INTEGER) AS event_id FROM orders WHERE email IS NOT NULL")  # fmt: skip
    result = cli("run", "casting", "--json")
    assert result.exit_code == 1
    summary = json.loads(result.stdout)
    assert "Could not convert string '***'" in summary["error"]  # the user sees what failed, the value masked
    assert "@Example.com" not in summary["error"]
    assert "@Example.com" in cli("--debug", "run", "casting").stderr  # the engine's own words under --debug
    assert "offramp orchestrations show casting" in summary["hint"]
    store = b"".join(path.read_bytes() for path in offramp_home.glob("offramp.db*"))
    assert b"@Example.com" not in store  # the warehouse's value is not kept
    shown = json.loads(cli.ok("runs", "show", summary["id"], "--json").stdout)
    assert shown["error"].startswith("the query failed (Conversion Error")
