"""`offramp destinations add|list|show|delete`: typed targets bound to a credential of the right type."""

from __future__ import annotations

import pytest


@pytest.fixture
def tiktok_credential(cli, initialized, monkeypatch) -> str:
    monkeypatch.setenv("TT_APP_SECRET", "app-secret-1234")
    cli.ok(
        "credentials", "add", "tiktok-main", "--type", "tiktok-offline-events",
        "--set", "app_id=7001", "--set", "app_secret=env:TT_APP_SECRET",
    )  # fmt: skip
    return "tiktok-main"


def add_tiktok_destination(cli, name: str = "tiktok-stores", *settings: str) -> None:
    args = ["--set", "advertiser_id=7002", *(arg for s in settings for arg in ("--set", s))]
    cli.ok(
        "destinations",
        "add",
        name,
        "--type",
        "tiktok-ads-offline-events",
        "--no-test",
        "--credential",
        "tiktok-main",
        *args,
    )


def test_add_then_show_lists_settings_with_defaults(cli, cli_json, tiktok_credential):
    result = cli.ok(
        "destinations", "add", "tiktok-stores", "--type", "tiktok-ads-offline-events", "--credential", "tiktok-main",
        "--no-test", "--set", "advertiser_id=7002", "--set", "event_set_id=7003", "--set", "event_set_name=Stores",
        "--set", "auto_tracking=true", "--set", "batch_size=500",
    )  # fmt: skip
    assert "Added destination tiktok-stores (tiktok-ads-offline-events, credential tiktok-main)." in result.stdout

    data = cli_json("destinations", "show", "tiktok-stores")

    assert data["name"] == "tiktok-stores"
    assert data["type"] == "tiktok-ads-offline-events"
    assert data["credential"] == "tiktok-main"
    assert data["workspace"] == "production"
    settings = data["settings"]
    assert settings["advertiser_id"] == "7002"
    assert settings["event_set_id"] == "7003"
    assert settings["event_set_name"] == "Stores"
    assert settings["auto_tracking"] is True
    assert settings["batch_size"] == 500
    assert settings["event_source"] == "offline"  # a default, shown
    assert settings["limited_data_use"] is False
    assert data["used_by"] == []

    text = cli.ok("destinations", "show", "tiktok-stores").stdout
    assert "batch_size: 500" in text
    assert "credential: tiktok-main" in text


def test_list_shows_type_and_credential(cli, cli_json, tiktok_credential):
    add_tiktok_destination(cli, "b-stores")
    add_tiktok_destination(cli, "a-stores")

    data = cli_json("destinations", "list")

    assert [(d["name"], d["type"], d["credential"]) for d in data] == [
        ("a-stores", "tiktok-ads-offline-events", "tiktok-main"),
        ("b-stores", "tiktok-ads-offline-events", "tiktok-main"),
    ]
    assert "a-stores" in cli.ok("destinations", "list").stdout


def test_every_invalid_setting_is_reported_at_once_by_name(cli, cli_error, tiktok_credential):
    line = cli_error(
        "destinations", "add", "tiktok-stores", "--type", "tiktok-ads-offline-events", "--credential", "tiktok-main",
        "--no-test", "--set", "advertiser_id=act_12", "--set", "batch_size=5000", "--set", "event_set_id=not-digits",
        "--set", "fixed_event_name=NotAnEvent", "--set", "colour=red",
    )  # fmt: skip

    assert "invalid settings for destination 'tiktok-stores' (tiktok-ads-offline-events)" in line
    for field in ("advertiser_id", "batch_size", "event_set_id", "fixed_event_name", "colour"):
        assert f"{field}:" in line, field
    assert "offramp plugins show tiktok-ads-offline-events" in line
    assert cli.ok("destinations", "list", "--json").stdout.strip() == "[]"


def test_a_missing_required_setting_is_named(cli_error, tiktok_credential):
    line = cli_error(
        "destinations",
        "add",
        "tiktok-stores",
        "--type",
        "tiktok-ads-offline-events",
        "--no-test",
        "--credential",
        "tiktok-main",
    )

    assert "advertiser_id: required, not set" in line


def test_a_credential_of_the_wrong_type_is_refused(cli, cli_error, with_token):
    line = cli_error(
        "destinations", "add", "tiktok-stores", "--type", "tiktok-ads-offline-events", "--credential", with_token,
        "--no-test", "--set", "advertiser_id=7002",
    )  # fmt: skip

    assert (
        "destination 'tiktok-stores' (tiktok-ads-offline-events) cannot use credential 'shop-token' of type "
        "static-token" in line
    )
    assert "tiktok-offline-events" in line.split(" - ", 1)[1]  # the hint names the accepted type
    assert cli.ok("destinations", "list", "--json").stdout.strip() == "[]"


def test_a_missing_credential_names_the_existing_ones(cli_error, with_token):
    line = cli_error("destinations", "add", "sink", "--type", "dummy", "--credential", "nope")

    assert "no credential named 'nope' in workspace 'production' (existing: shop-token)" in line


def test_an_unknown_type_names_the_installed_ones(cli_error, with_token):
    line = cli_error("destinations", "add", "sink", "--type", "carrier-pigeon", "--credential", with_token)

    assert "carrier-pigeon" in line
    assert "dummy" in line


def test_delete_is_refused_while_an_orchestration_uses_it_and_names_them(cli, cli_error, cli_json, with_token):
    cli.ok("destinations", "add", "sink", "--type", "dummy", "--credential", with_token)
    cli.ok("orchestrations", "add", "orders-b", "--destination", "sink", "--sql", "SELECT 1 AS event_id")
    cli.ok("orchestrations", "add", "orders-a", "--destination", "sink", "--sql", "SELECT 1 AS event_id")
    assert cli_json("destinations", "show", "sink")["used_by"] == ["orders-a", "orders-b"]

    line = cli_error("destinations", "delete", "sink")

    assert "destination 'sink' is used by orchestration(s) orders-a, orders-b" in line
    assert [d["name"] for d in cli_json("destinations", "list")] == ["sink"]

    cli.ok("orchestrations", "delete", "orders-a")
    cli.ok("orchestrations", "delete", "orders-b")
    assert "Deleted destination sink." in cli.ok("destinations", "delete", "sink").stdout
    assert cli_json("destinations", "list") == []


def test_show_or_delete_of_a_missing_destination_names_the_existing_ones(cli, cli_error, with_token):
    cli.ok("destinations", "add", "sink", "--type", "dummy", "--credential", with_token)

    for command in ("show", "delete"):
        line = cli_error("destinations", command, "nope")
        assert "no destination named 'nope' in workspace 'production' (existing: sink)" in line


def test_an_action_of_the_type_runs_by_its_generic_name_and_as_its_own_command(cli, cli_json, initialized, monkeypatch):
    from offramp.plugins.tiktok.emulator import (
        ADMIN_AUTH_CODE,
        DEFAULT_ADVERTISER_ID,
        DEFAULT_APP_ID,
        DEFAULT_APP_SECRET,
        run_emulator,
    )

    monkeypatch.setenv("TT_APP_SECRET", DEFAULT_APP_SECRET)
    with run_emulator() as emulator:
        cli.ok(
            "credentials", "add", "tt", "--type", "tiktok-offline-events", "--set", f"app_id={DEFAULT_APP_ID}",
            "--set", "app_secret=env:TT_APP_SECRET", "--set", f"api_base_url={emulator.base_url}",
            "--set", f"auth_url={emulator.base_url}/portal/auth",
        )  # fmt: skip
        cli.ok("credentials", "authorize", "tt", input=f"{ADMIN_AUTH_CODE}\n")
        cli.ok(
            "destinations", "add", "stores", "--type", "tiktok-ads-offline-events", "--credential", "tt", "--no-test",
            "--set", f"advertiser_id={DEFAULT_ADVERTISER_ID}", "--set", "event_set_name=Call centre",
        )  # fmt: skip

        created = cli.ok("destinations", "action", "stores", "ensure-event-set").stdout
        again = cli.ok("destinations", "ensure-event-set", "stores").stdout

    event_set_id = cli_json("destinations", "show", "stores")["settings"]["event_set_id"]
    assert f"Created event set {event_set_id}" in created
    assert f"already has event set {event_set_id}" in again
    update = cli_json("audit")[0]
    assert (update["action"], update["object_type"], update["object_name"]) == ("update", "destination", "stores")
    assert "event_set_id" in update["details"]["fields"]


def test_an_unknown_action_names_the_actions_of_the_type(cli, cli_error, with_token, tiktok_credential):
    cli.ok("destinations", "add", "sink", "--type", "dummy", "--credential", with_token)
    add_tiktok_destination(cli, "stores")

    assert "destination type dummy has no action 'ensure-event-set' (its actions: none)" in cli_error(
        "destinations", "ensure-event-set", "sink"
    )
    line = cli_error("destinations", "action", "stores", "make-coffee")
    assert "destination type tiktok-ads-offline-events has no action 'make-coffee' (its actions: ensure-event-set)" in (
        line
    )
    assert "offramp plugins show tiktok-ads-offline-events" in line


def test_every_action_of_an_installed_type_is_a_command_of_the_group(cli):
    listed = cli.ok("destinations", "--help").stdout

    assert "ensure-event-set" in listed and "action" in listed
    assert "event set" in cli.ok("destinations", "ensure-event-set", "--help").stdout


def test_a_type_without_a_connection_test_reports_a_skipped_step(cli, cli_json, with_token):
    cli.ok("destinations", "add", "sink", "--type", "dummy", "--credential", with_token)

    result = cli_json("destinations", "test", "sink")

    assert result["ok"] is True
    assert [(s["name"], s["verdict"]) for s in result["steps"]] == [("connection", "skipped")]
