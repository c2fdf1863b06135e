"""`offramp plugins show`: a destination type's run options, its actions and the hooks it fills."""

from __future__ import annotations


def test_show_lists_a_destination_types_run_options_actions_and_hooks(cli, cli_json):
    data = cli_json("plugins", "show", "tiktok-ads-offline-events")
    text = cli.ok("plugins", "show", "tiktok-ads-offline-events").stdout

    options = {field["name"]: field for field in data["run_options"]}
    assert set(options) == {"default_phone_region", "event_name_map", "attribution_window_days", "test_event_code"}
    assert options["attribution_window_days"]["default"] == 28
    assert set(data["run_options_schema"]["properties"]) == set(options)
    assert [action["name"] for action in data["actions"]] == ["ensure-event-set"]
    assert data["hooks"] == ["open_preparer", "open_sender", "check_connection"]
    assert "Run options (orchestration options this type reads)" in text
    assert "default_phone_region" in text.split("Run options")[1]
    assert "ensure-event-set: " in text


def test_a_type_without_actions_or_connection_test_lists_neither(cli, cli_json):
    data = cli_json("plugins", "show", "dummy")
    text = cli.ok("plugins", "show", "dummy").stdout

    assert data["actions"] == []
    assert data["hooks"] == ["open_preparer", "open_sender"]
    assert "actions" not in text
    assert "Run options (orchestration options this type reads)" in text


def test_a_credential_type_shows_the_hooks_it_fills(cli_json):
    assert cli_json("plugins", "show", "tiktok-offline-events")["hooks"] == [
        "authorization_url", "complete_authorization", "describe_access",
    ]  # fmt: skip
    assert cli_json("plugins", "show", "static-token")["hooks"] == []
