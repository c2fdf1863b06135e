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
