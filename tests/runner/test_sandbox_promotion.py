"""Sandbox to production: create, change, diff, validate, promote, pull, revert, over the CLI, against the TikTok
emulator, on SQLite and on PostgreSQL (``store`` comes first in each test: it picks the store the other fixtures
set up)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from offramp.plugins.tiktok.emulator import DEFAULT_ADVERTISER_ID, DEFAULT_APP_SECRET, DEFAULT_EVENT_SET_ID

LEGACY_SQL = "SELECT order_id AS event_id, 'Order Completed' AS event, ordered_at AS timestamp, email FROM orders"


def production_export(cli: Any) -> dict[str, Any]:
    document = yaml.safe_load(cli.ok("export").stdout)
    return dict(document)


def everything_printed(*results: Any) -> str:
    return "\n".join(result.stdout + result.stderr for result in results)


@pytest.fixture
def production(store: str, cli: Any, orchestration: str, orders_file: tuple[Path, int]) -> str:
    """Production: `orders` -> `stores` (the runner's fixture) and a second orchestration `legacy`."""
    cli.ok(
        "orchestrations", "add", "legacy", "--destination", "stores", "--source", f"duckdb:{orders_file[0]}",
        "--sql", LEGACY_SQL, "--map", "Order Completed=Purchase",
    )  # fmt: skip
    return orchestration


def change_in_sandbox(cli: Any, sandbox: str, orders_file: tuple[Path, int]) -> None:
    """Add a destination and an orchestration on it, change `orders`' SQL and map, remove `legacy`."""
    cli.ok(
        "destinations", "add", "stores-eu", "-w", sandbox, "--type", "tiktok-ads-offline-events", "--credential", "tt",
        "--set", f"advertiser_id={DEFAULT_ADVERTISER_ID}", "--set", f"event_set_id={DEFAULT_EVENT_SET_ID}",
        "--set", "batch_size=20",
    )  # fmt: skip
    cli.ok(
        "orchestrations", "add", "eu-orders", "-w", sandbox, "--destination", "stores-eu",
        "--source", f"duckdb:{orders_file[0]}", "--sql", LEGACY_SQL + " WHERE order_id LIKE 'ORD-1%'",
        "--map", "Order Completed=Purchase",
    )  # fmt: skip
    cli.ok(
        "orchestrations", "update", "orders", "-w", sandbox, "--map", "Order Completed=CompletePayment",
        "--sql", LEGACY_SQL + " WHERE order_id LIKE 'ORD-2%'",
    )  # fmt: skip
    cli.ok("orchestrations", "delete", "legacy", "-w", sandbox)


def test_create_change_diff_validate_promote_and_production_runs_the_change(
    store: str, cli: Any, production: str, emulator: Any, orders_file: tuple[Path, int]
) -> None:
    before = production_export(cli)
    created = json.loads(cli.ok("sandboxes", "create", "spring", "--description", "EU stores", "--json").stdout)
    assert created["copied"] == {"destination": 1, "orchestration": 2, "group": 0}
    # A copy, not a move: the sandbox's export names the same objects, production is untouched.
    sandbox_export = yaml.safe_load(cli.ok("export", "-w", "spring").stdout)
    assert [o["name"] for o in sandbox_export["orchestrations"]] == ["legacy", "orders"]
    assert sandbox_export["credentials"] == []  # shared, never copied
    assert production_export(cli) == before

    change_in_sandbox(cli, "spring", orders_file)
    assert production_export(cli) == before  # nothing reaches production before promotion

    diff = cli.ok("sandboxes", "diff", "spring")
    text = diff.stdout
    assert "+ destination stores-eu" in text
    assert "+ orchestration eu-orders" in text
    assert "~ orchestration orders" in text
    assert "- orchestration legacy" in text
    assert "CompletePayment" in text and "Purchase" in text
    assert "-SELECT" in text or "+SELECT" in text or "ORD-2%" in text  # the SQL as a unified diff
    document = json.loads(cli.ok("sandboxes", "diff", "spring", "--json").stdout)
    actions = {(c["action"], c["kind"], c["name"]) for c in document["changes"]}
    assert actions == {
        ("add", "destination", "stores-eu"),
        ("add", "orchestration", "eu-orders"),
        ("change", "orchestration", "orders"),
        ("remove", "orchestration", "legacy"),
    }
    assert yaml.safe_load(cli.ok("sandboxes", "diff", "spring", "--format", "yaml").stdout) == document

    listed = json.loads(cli.ok("sandboxes", "list", "--json").stdout)
    [item] = listed
    assert (item["name"], item["changes"], item["updates"], item["description"]) == ("spring", 4, 0, "EU stores")

    validation = cli("sandboxes", "validate", "spring")
    assert validation.exit_code == 0, validation.output

    refused = cli("sandboxes", "promote", "spring", "--message", "   ")
    assert refused.exit_code == 1 and "needs a message" in refused.one_line_error()
    assert production_export(cli) == before

    promoted = json.loads(
        cli.ok("sandboxes", "promote", "spring", "--message", "EU stores, CompletePayment", "--json").stdout
    )
    assert promoted["revision_after"] > promoted["revision_before"]
    after = production_export(cli)
    assert sorted(o["name"] for o in after["orchestrations"]) == ["eu-orders", "orders"]
    assert sorted(d["name"] for d in after["destinations"]) == ["stores", "stores-eu"]
    in_sandbox = yaml.safe_load(cli.ok("export", "-w", "spring").stdout)
    assert (after["destinations"], after["orchestrations"]) == (
        in_sandbox["destinations"],
        in_sandbox["orchestrations"],
    )

    summary = json.loads(cli.ok("run", "orders", "--json").stdout)
    assert summary["status"] == "succeeded"
    names = {item["payload"]["event"] for item in emulator.events()}
    assert names == {"CompletePayment"}  # the promoted map
    assert all(item["payload"]["event_id"].startswith("ORD-2") for item in emulator.events())  # the promoted SQL
    assert all(item["test_event_code"] is None for item in emulator.events())  # production traffic is live
    assert json.loads(cli.ok("run", "eu-orders", "--json").stdout)["status"] == "succeeded"

    # After the promotion the sandbox is in step: nothing to promote, nothing to pull.
    [item] = json.loads(cli.ok("sandboxes", "list", "--json").stdout)
    assert (item["changes"], item["updates"], item["base_revision"]) == (0, 0, promoted["revision_after"])
    history = json.loads(cli.ok("promotions", "list", "--json").stdout)
    assert [(p["id"], p["sandbox"], p["message"]) for p in history] == [
        (promoted["promotion"], "spring", "EU stores, CompletePayment")
    ]
    shown = cli.ok("promotions", "show", str(promoted["promotion"])).stdout
    assert "EU stores, CompletePayment" in shown and "- orchestration legacy" in shown
    audit = json.loads(cli.ok("audit", "--json").stdout)
    promoted_events = [e for e in audit if e["details"].get("promotion") == promoted["promotion"]]
    assert {e["object_name"] for e in promoted_events} >= {"stores-eu", "eu-orders", "orders", "legacy"}
    assert all(e["details"]["message"] == "EU stores, CompletePayment" for e in promoted_events)
    assert all(e["workspace"] == "production" for e in promoted_events)


def test_promotion_keeps_the_orchestration_itself_so_mode_new_history_follows(
    store: str, cli: Any, production: str, emulator: Any
) -> None:
    cli.ok("orchestrations", "update", "orders", "--mode", "new")
    first = json.loads(cli.ok("run", "orders", "--json").stdout)
    sent = len(emulator.accepted_ids())
    cli.ok("sandboxes", "create", "window")
    cli.ok("orchestrations", "update", "orders", "-w", "window", "--attribution-window-days", "7")
    cli.ok("sandboxes", "promote", "window", "--message", "7-day window", "--delete-sandbox")

    again = json.loads(cli.ok("run", "orders", "--json").stdout)
    assert len(emulator.accepted_ids()) == sent  # nothing resent: the promoted orchestration is the same one
    assert again["rows"]["skipped"] == first["rows"]["sent"]
    assert json.loads(cli.ok("sandboxes", "list", "--json").stdout) == []


def test_pull_brings_production_changes_in_and_conflicts_are_resolved_field_by_field(
    store: str, cli: Any, production: str
) -> None:
    cli.ok("sandboxes", "create", "work")
    cli.ok("orchestrations", "update", "orders", "-w", "work", "--attribution-window-days", "7")
    # Production changes meanwhile: another field of the same orchestration, and another orchestration.
    cli.ok("orchestrations", "update", "orders", "--timezone", "Europe/Berlin")
    cli.ok("orchestrations", "update", "legacy", "--attribution-window-days", "14")

    [item] = json.loads(cli.ok("sandboxes", "list", "--json").stdout)
    assert (item["changes"], item["updates"], item["conflicts"]) == (1, 2, 0)
    assert (
        "2 update(s) to pull" in cli.ok("sandboxes", "list").stdout or "2 updates" in cli.ok("sandboxes", "list").stdout
    )
    refused = cli("sandboxes", "promote", "work", "--message", "window")
    line = refused.one_line_error("update(s) to pull")
    assert "offramp sandboxes pull work" in line

    pulled = cli.ok("sandboxes", "pull", "work")
    assert "base revision" in pulled.stdout
    orders = yaml.safe_load(cli.ok("export", "-w", "work").stdout)["orchestrations"]
    by_name = {o["name"]: o for o in orders}
    assert by_name["orders"]["options"]["timezone"] == "Europe/Berlin"  # production's change, merged in
    assert by_name["orders"]["options"]["attribution_window_days"] == 7  # the sandbox's own, kept
    assert by_name["legacy"]["options"]["attribution_window_days"] == 14
    [item] = json.loads(cli.ok("sandboxes", "list", "--json").stdout)
    assert (item["changes"], item["updates"]) == (1, 0)

    # Now both change one field differently: a conflict, listed field by field; nothing pulled until resolved.
    cli.ok("orchestrations", "update", "orders", "-w", "work", "--attribution-window-days", "28")
    cli.ok("orchestrations", "update", "orders", "--attribution-window-days", "1")
    conflict = cli("sandboxes", "pull", "work")
    assert conflict.exit_code == 1
    assert "options.attribution_window_days" in conflict.stderr
    assert "offramp sandboxes pull work --take production orchestration:orders" in conflict.stderr
    assert yaml.safe_load(cli.ok("export", "-w", "work").stdout)["orchestrations"][1]["options"][
        "attribution_window_days"
    ] == 28  # fmt: skip

    cli.ok("sandboxes", "pull", "work", "--take", "sandbox", "orchestration:orders")
    [item] = json.loads(cli.ok("sandboxes", "list", "--json").stdout)
    assert (item["updates"], item["conflicts"]) == (0, 0)
    cli.ok("sandboxes", "promote", "work", "--message", "28 days", "--delete-sandbox")
    orders = {o["name"]: o for o in production_export(cli)["orchestrations"]}["orders"]
    assert orders["options"]["attribution_window_days"] == 28
    assert orders["options"]["timezone"] == "Europe/Berlin"


def test_take_production_resolves_a_conflict_with_productions_value(store: str, cli: Any, production: str) -> None:
    cli.ok("sandboxes", "create", "work")
    cli.ok("orchestrations", "update", "orders", "-w", "work", "--attribution-window-days", "28")
    cli.ok("orchestrations", "update", "orders", "--attribution-window-days", "1")
    cli.ok("sandboxes", "pull", "work", "--take", "production", "orders")
    orders = {o["name"]: o for o in yaml.safe_load(cli.ok("export", "-w", "work").stdout)["orchestrations"]}
    assert orders["orders"]["options"]["attribution_window_days"] == 1
    [item] = json.loads(cli.ok("sandboxes", "list", "--json").stdout)
    assert (item["changes"], item["updates"]) == (0, 0)


def test_revert_round_trip_leaves_production_as_it_was(
    store: str, cli: Any, production: str, orders_file: tuple[Path, int]
) -> None:
    before = production_export(cli)
    cli.ok("sandboxes", "create", "spring")
    change_in_sandbox(cli, "spring", orders_file)
    promoted = json.loads(cli.ok("sandboxes", "promote", "spring", "--message", "spring", "--json").stdout)
    assert production_export(cli) != before

    reverted = cli.ok("promotions", "revert", str(promoted["promotion"]))
    assert "revert-" in reverted.stdout
    name = f"revert-{promoted['promotion']}"
    diff = cli.ok("sandboxes", "diff", name).stdout
    assert "- destination stores-eu" in diff and "+ orchestration legacy" in diff
    cli.ok("sandboxes", "promote", name, "--message", "undo spring", "--delete-sandbox")

    assert production_export(cli) == before
    history = json.loads(cli.ok("promotions", "list", "--json").stdout)
    assert history[0]["reverts"] == promoted["promotion"]


def test_sandbox_changes_and_refusals_never_show_a_secret(
    store: str, cli: Any, production: str, stored_secrets: Any
) -> None:
    outputs = [cli.ok("sandboxes", "create", "secretive", "--test-event-code", "TEST123")]
    # The credential's secret is shared, never copied: a sandbox cannot change it, and nothing prints it.
    outputs.append(cli.ok("orchestrations", "update", "orders", "-w", "secretive", "--attribution-window-days", "7"))
    for args in (
        ("sandboxes", "diff", "secretive"),
        ("sandboxes", "diff", "secretive", "--json"),
        ("sandboxes", "diff", "secretive", "--format", "yaml"),
        ("sandboxes", "list"),
        ("sandboxes", "list", "--json"),
        ("sandboxes", "validate", "secretive", "--json"),
        ("export", "-w", "secretive"),
        ("credentials", "list", "-w", "secretive", "--json"),
    ):
        outputs.append(cli(*args))
    outputs.append(cli("sandboxes", "promote", "nosuch", "--message", "x"))
    outputs.append(cli.ok("sandboxes", "promote", "secretive", "--message", "window"))
    outputs.append(cli.ok("promotions", "show", "1", "--json"))
    printed = everything_printed(*outputs)
    assert DEFAULT_APP_SECRET not in printed
    secrets = [value for value in stored_secrets("tt").values() if len(value) >= 8]
    assert secrets  # the app secret and the tokens
    for value in secrets:
        assert value not in printed


def test_sandboxes_refuse_what_they_cannot_do(store: str, cli: Any, production: str) -> None:
    assert "production is not a sandbox" in cli("sandboxes", "diff", "production").one_line_error()
    assert "no sandbox named 'nosuch'" in cli("sandboxes", "diff", "nosuch").one_line_error()
    cli.ok("workspaces", "add", "empty")
    assert "not made from production" in cli("sandboxes", "diff", "empty").one_line_error()
    cli.ok("sandboxes", "create", "same")
    assert "matches production" in cli("sandboxes", "promote", "same", "--message", "x").one_line_error(
        "no changes to promote"
    )
    assert "already exists" in cli("sandboxes", "create", "same").one_line_error()
    assert cli("sandboxes", "create", "Bad Name").exit_code != 0


def test_deleting_a_sandbox_keeps_its_runs_and_frees_its_name(store: str, cli: Any, production: str) -> None:
    cli.ok("sandboxes", "create", "trial")
    summary = json.loads(cli.ok("run", "orders", "-w", "trial", "--dry-run", "--json").stdout)
    deleted = cli.ok("sandboxes", "delete", "trial")
    assert "1 run(s) stay as history" in deleted.stdout
    assert json.loads(cli.ok("sandboxes", "list", "--json").stdout) == []
    assert "trial" not in [w["name"] for w in json.loads(cli.ok("workspaces", "list", "--json").stdout)]
    cli.ok("sandboxes", "create", "trial")  # the name is free again
    assert summary["id"]
    # production's shared credential is still there, and still production's
    assert [c["name"] for c in json.loads(cli.ok("credentials", "list", "--json").stdout)] == ["tt"]


def test_every_production_change_advances_its_revision_and_a_run_does_not(
    store: str, cli: Any, production: str
) -> None:
    cli.ok("sandboxes", "create", "watch")
    [item] = json.loads(cli.ok("sandboxes", "list", "--json").stdout)
    start = item["production_revision"]
    cli.ok("run", "orders")  # a run (and its token use) is no configuration change
    [item] = json.loads(cli.ok("sandboxes", "list", "--json").stdout)
    assert item["production_revision"] == start and item["updates"] == 0
    cli.ok("orchestrations", "update", "orders", "--attribution-window-days", "3")
    cli.ok("orchestrations", "rename", "legacy", "old-legacy")
    [item] = json.loads(cli.ok("sandboxes", "list", "--json").stdout)
    assert item["production_revision"] == start + 2
    assert item["updates"] == 2


def test_names_swapped_or_removed_and_added_again_promote_and_pull(store: str, cli: Any, production: str) -> None:
    cli.ok("sandboxes", "create", "swap")
    cli.ok("orchestrations", "rename", "orders", "tmp", "-w", "swap")
    cli.ok("orchestrations", "rename", "legacy", "orders", "-w", "swap")
    cli.ok("orchestrations", "rename", "tmp", "legacy", "-w", "swap")
    before = {o["name"]: o["sql"] for o in production_export(cli)["orchestrations"]}
    cli.ok("sandboxes", "promote", "swap", "--message", "swap the names", "--delete-sandbox")
    after = {o["name"]: o["sql"] for o in production_export(cli)["orchestrations"]}
    assert after == {"orders": before["legacy"], "legacy": before["orders"]}

    # Production removes an orchestration and adds another of the same name: a sandbox pulls both in one go.
    cli.ok("sandboxes", "create", "later")
    cli.ok("orchestrations", "delete", "legacy")
    cli.ok("orchestrations", "add", "legacy", "--destination", "stores", "--sql", LEGACY_SQL + " LIMIT 5")
    cli.ok("sandboxes", "pull", "later")
    in_sandbox = {o["name"]: o["sql"] for o in yaml.safe_load(cli.ok("export", "-w", "later").stdout)["orchestrations"]}
    assert in_sandbox["legacy"].strip().endswith("LIMIT 5")
    [item] = json.loads(cli.ok("sandboxes", "list", "--json").stdout)
    assert (item["changes"], item["updates"]) == (0, 0)


def test_a_revert_that_would_remove_what_a_later_change_uses_is_refused_and_creates_nothing(
    store: str, cli: Any, production: str, orders_file: tuple[Path, int]
) -> None:
    cli.ok("sandboxes", "create", "spring")
    change_in_sandbox(cli, "spring", orders_file)
    promoted = json.loads(cli.ok("sandboxes", "promote", "spring", "-m", "spring", "--delete-sandbox", "--json").stdout)
    cli.ok(
        "orchestrations", "add", "eu-more", "--destination", "stores-eu", "--source", f"duckdb:{orders_file[0]}",
        "--sql", LEGACY_SQL,
    )  # fmt: skip
    line = cli("promotions", "revert", str(promoted["promotion"])).one_line_error(
        f"cannot revert promotion {promoted['promotion']}"
    )
    assert "'stores-eu'" in line and "'eu-more'" in line and "nothing was created" in line
    assert json.loads(cli.ok("sandboxes", "list", "--json").stdout) == []


def test_a_deleted_sandbox_takes_no_change(store: str, cli: Any, production: str) -> None:
    cli.ok("sandboxes", "create", "gone")
    cli.ok("run", "orders", "-w", "gone", "--dry-run")
    cli.ok("sandboxes", "delete", "gone")
    audit = json.loads(cli.ok("audit", "--json", "--type", "sandbox").stdout)
    [deleted] = [event for event in audit if event["action"] == "delete"]
    tombstone = deleted["details"]["renamed"]
    assert tombstone.startswith("gone~deleted-")
    assert len(json.loads(cli.ok("runs", "list", "-w", tombstone, "--json").stdout)) == 1  # history stays readable
    line = cli(
        "orchestrations", "add", "x", "-w", tombstone, "--destination", "stores", "--sql", LEGACY_SQL
    ).one_line_error("was deleted")
    assert "offramp sandboxes create gone" in line
