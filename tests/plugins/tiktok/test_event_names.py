"""TikTok event names are checked when they are stored, with the likely name and the valid ones; names that no map
translates are named in the run's report (they are category labels, not personal data); time text in a format
offramp does not read is rejected with the format to read it with."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import duckdb
import pytest

from offramp.plugins.tiktok.events import KNOWN_EVENTS


@pytest.fixture
def stores(cli: Any, initialized: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """A TikTok destination `stores` (its credential not authorized: nothing here reaches TikTok) and a DuckDB file."""
    monkeypatch.setenv("TT_SECRET", "s3cret")
    cli.ok("credentials", "add", "tt", "--type", "tiktok-offline-events", "--set", "app_id=123",
           "--set", "app_secret=env:TT_SECRET")  # fmt: skip
    cli.ok("destinations", "add", "stores", "--type", "tiktok-ads-offline-events", "--credential", "tt",
           "--set", "advertiser_id=7000000001", "--no-test")  # fmt: skip
    path = tmp_path / "orders.duckdb"
    with duckdb.connect(str(path)) as db:
        db.execute("CREATE TABLE orders AS SELECT 'Order Completed' AS event")
    return path


def add_orchestration_args(source: Path, *maps: str) -> list[str]:
    args = [arg for pair in maps for arg in ("--map", pair)]
    return ["orchestrations", "add", "orders", "--destination", "stores", "--source", f"duckdb:{source}",
            "--sql", "SELECT * FROM orders", *args]  # fmt: skip


def add_orchestration(cli: Any, source: Path, *maps: str) -> Any:
    return cli(*add_orchestration_args(source, *maps))


def test_a_misspelt_map_target_is_refused_on_add_naming_the_option_the_likely_name_and_the_valid_ones(
    cli: Any, stores: Path
) -> None:
    line = add_orchestration(cli, stores, "Order Completed=Purchse").one_line_error(
        "event_name_map", "'Purchse' is not a TikTok event (did you mean Purchase?)", "valid: AddPaymentInfo"
    )

    assert all(name in line for name in KNOWN_EVENTS)
    assert json.loads(cli.ok("orchestrations", "list", "--json").stdout) == []  # nothing was stored


def test_event_names_are_case_sensitive_as_tiktok_takes_them_and_every_wrong_target_is_named(
    cli: Any, stores: Path
) -> None:
    add_orchestration(
        cli, stores, "Order Completed=purchase", "Signup=complete registration", "Gift=Zork"
    ).one_line_error(
        "'purchase' is not a TikTok event (did you mean Purchase?)",
        "'complete registration' is not a TikTok event (did you mean CompleteRegistration?)",
        "'Zork' is not a TikTok event;",
    )

    add_orchestration(cli, stores, "Order Completed=Purchase", "Lead form=SubmitForm")
    stored = json.loads(cli.ok("orchestrations", "show", "orders", "--json").stdout)
    assert stored["options"]["event_name_map"] == {"Order Completed": "Purchase", "Lead form": "SubmitForm"}


def test_a_fixed_event_name_is_checked_with_the_likely_name_and_the_valid_ones(cli: Any, stores: Path) -> None:
    line = cli("destinations", "add", "other", "--type", "tiktok-ads-offline-events", "--credential", "tt",
               "--set", "advertiser_id=7000000001", "--set", "fixed_event_name=CompletePaymnet",
               "--no-test").one_line_error("fixed_event_name")  # fmt: skip

    assert "'CompletePaymnet' is not a TikTok event (did you mean CompletePayment?)" in line
    assert "valid: AddPaymentInfo" in line and "ViewContent" in line


def test_a_run_names_the_unmapped_event_names_and_how_to_read_time_text_in_another_format(
    cli: Any, stores: Path, tmp_path: Path
) -> None:
    path = tmp_path / "orders.duckdb"
    with duckdb.connect(str(path)) as db:
        db.execute("DROP TABLE orders")
        db.execute(
            "CREATE TABLE orders AS SELECT * FROM (VALUES "
            "('o1', 'Gift Card Reload', strftime(now() - INTERVAL 1 HOUR, '%Y-%m-%dT%H:%M:%S'), 'a@example.com'), "
            "('o2', 'Order Completed', '12/31/2026 11:45 PM', 'b@example.com'), "
            "('o3', 'Order Completed', strftime(now() - INTERVAL 1 HOUR, '%Y-%m-%dT%H:%M:%S'), 'c@example.com')"
            ") AS v(event_id, event, timestamp, email)"
        )
    cli.ok("destinations", "add", "sending", "--type", "tiktok-ads-offline-events", "--credential", "tt",
           "--set", "advertiser_id=7000000001", "--set", "event_set_id=7300000000000000001", "--no-test")  # fmt: skip
    cli.ok("orchestrations", "add", "orders", "--destination", "sending", "--source", f"duckdb:{path}",
           "--sql", "SELECT * FROM orders", "--map", "Order Completed=Purchase")  # fmt: skip

    summary = json.loads(cli.ok("run", "orders", "--dry-run", "--json").stdout)

    assert summary["reasons"]["rejected"] == {"unknown_event_name": 1, "invalid_timestamp": 1}
    assert summary["labels"] == {"unknown_event_name": ["Gift Card Reload"]}
    rejected = json.loads(cli.ok("runs", "show", summary["id"], "--rejects", "--format", "json").stdout)
    [detail] = [row["message"] for row in rejected if row["reason"] == "invalid_timestamp"]
    assert "strptime(col, '%m/%d/%Y %I:%M %p') AS timestamp" in detail
    assert "12/31/2026" not in detail  # the format, never the value


def test_a_misspelt_map_target_is_refused_on_update_and_the_stored_map_kept(cli: Any, stores: Path) -> None:
    cli.ok(*add_orchestration_args(stores, "Order Completed=Purchase"))

    cli("orchestrations", "update", "orders", "--map", "Signup=CompleteRegistraton").one_line_error(
        "event_name_map", "'CompleteRegistraton' is not a TikTok event (did you mean CompleteRegistration?)"
    )

    stored = json.loads(cli.ok("orchestrations", "show", "orders", "--json").stdout)
    assert stored["options"]["event_name_map"] == {"Order Completed": "Purchase"}
