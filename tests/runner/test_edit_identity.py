"""Editing objects that runs depend on: an orchestration stays itself through `update` and `rename` (its mode-`new`
history is kept, nothing delivered is sent again), and `destinations add|update` run the connection test against
the TikTok emulator, printing its warnings.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from offramp.plugins.tiktok.emulator import DEFAULT_ADVERTISER_ID, DEFAULT_EVENT_SET_ID

ORDERS_WITH_IDENTIFIERS = 300 - 300 // 50  # every 50th order of the orders file has no email: rejected


def test_a_mode_new_orchestration_renamed_and_updated_does_not_resend_what_was_delivered(
    store: str, cli: Any, orchestration: str, emulator: Any, orders_file: tuple[Path, int]
) -> None:
    """On SQLite, then on PostgreSQL when OFFRAMP_TEST_POSTGRES_URL is set (``store`` comes first: it picks the
    store the other fixtures set up)."""
    cli.ok("orchestrations", "update", orchestration, "--mode", "new")
    first = json.loads(cli.ok("run", orchestration, "--json").stdout)
    delivered = emulator.accepted_ids()
    assert len(delivered) == len(set(delivered)) == ORDERS_WITH_IDENTIFIERS

    cli.ok("orchestrations", "rename", orchestration, "store-orders")
    cli.ok(
        "orchestrations", "update", "store-orders", "--attribution-window-days", "7", "--max-reject-rate", "0.5",
        "--test-event-code", "TEST42",
    )  # fmt: skip
    result = cli("run", "store-orders", "--json")

    assert len(emulator.events()) == len(delivered)  # nothing sent again: the history followed the orchestration
    summary = json.loads(result.stdout)
    assert (summary["status"], summary["rows"]["sent"]) == ("succeeded", 0)
    assert summary["events"]["skipped"] == ORDERS_WITH_IDENTIFIERS
    assert summary["rows"]["skipped"] == first["rows"]["sent"]
    runs = json.loads(cli.ok("runs", "list", "--orchestration", "store-orders", "--json").stdout)
    assert [run["id"] for run in runs] == [summary["id"], first["id"]]  # the run from before the rename is its own
    assert {run["orchestration"] for run in runs} == {"store-orders"}


def test_destinations_update_runs_the_connection_test_before_it_stores_the_change(
    cli: Any, orchestration: str, emulator: Any
) -> None:
    before = json.loads(cli.ok("destinations", "show", "stores", "--json").stdout)

    line = cli("destinations", "update", "stores", "--set", "event_set_id=7300000000000000999").one_line_error(
        "destination 'stores' failed its connection test", "7300000000000000999", "--no-test"
    )

    assert "update it anyway with --no-test" in line
    assert json.loads(cli.ok("destinations", "show", "stores", "--json").stdout) == before
    result = cli.ok("destinations", "update", "stores", "--no-test", "--set", "event_set_id=7300000000000000999")
    assert result.stdout.strip() == "Updated destination stores: event_set_id changed."

    result = cli.ok("destinations", "update", "stores", "--set", f"event_set_id={DEFAULT_EVENT_SET_ID}")
    assert result.stdout.strip() == "Updated destination stores: event_set_id changed."


def test_destinations_add_and_update_print_the_connection_tests_warnings(
    cli: Any, orchestration: str, emulator: Any
) -> None:
    result = cli.ok(
        "destinations", "add", "shops", "--type", "tiktok-ads-offline-events", "--credential", "tt",
        "--set", f"advertiser_id={DEFAULT_ADVERTISER_ID}", "--set", f"event_set_id={DEFAULT_EVENT_SET_ID}",
        "--set", "event_set_name=Not Its Name",
    )  # fmt: skip

    lines = result.stdout.splitlines()
    assert lines[0] == "Added destination shops (tiktok-ads-offline-events, credential tt)."
    [warning] = [line.strip() for line in lines[1:] if "event set name" in line]
    assert warning.startswith("warning  event set name: ")
    assert "'Not Its Name'" in warning  # what the destination says, beside what TikTok calls the event set

    result = cli.ok("destinations", "update", "stores", "--set", "event_set_name=Also Wrong")
    lines = result.stdout.splitlines()
    assert lines[0] == "Updated destination stores: event_set_name changed."
    assert any(line.strip().startswith("warning  event set name:") and "'Also Wrong'" in line for line in lines[1:])
