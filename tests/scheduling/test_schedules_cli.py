"""The schedule flags of `orchestrations add/update`, `sandboxes update --enable-schedules`, and `schedules list`."""

from __future__ import annotations

import json
from typing import Any

SQL = "SELECT 'e1' AS event_id, 'a@example.com' AS email"


def listing(cli: Any, *args: str) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = json.loads(cli.ok("schedules", "list", *args, "--json").stdout)
    return rows


def test_schedule_flags_are_stored_as_options_and_listed(cli: Any, dummy: str) -> None:
    cli.ok("orchestrations", "add", "o", "-d", "d", "--sql", SQL, "--schedule", "0 6 * * *",
           "--schedule-timezone", "Europe/Berlin", "--catch-up", "skip", "--max-lateness", "30",
           "--when-changed", "SELECT 1")  # fmt: skip
    options = json.loads(cli.ok("orchestrations", "show", "o", "--json").stdout)["options"]
    assert {key: options[key] for key in ("schedule", "schedule_timezone", "catch_up", "max_lateness_minutes",
                                          "when_changed", "schedule_enabled")} == {
        "schedule": "0 6 * * *", "schedule_timezone": "Europe/Berlin", "catch_up": "skip",
        "max_lateness_minutes": 30, "when_changed": "SELECT 1", "schedule_enabled": True,
    }  # fmt: skip
    (row,) = listing(cli)
    assert (row["cron"], row["timezone"], row["catch_up"], row["max_lateness_minutes"], row["enabled"]) == (
        "0 6 * * *", "Europe/Berlin", "skip", 30, True,
    )  # fmt: skip
    assert [item["local"][11:16] for item in row["next_fires"]] == ["06:00"] * 3
    cli.ok("orchestrations", "update", "o", "--schedule-disabled")
    (row,) = listing(cli)
    assert (row["enabled"], row["note"], row["next_fires"]) == (False, "disabled", [])
    text = cli.ok("schedules", "list").stdout
    assert "Europe/Berlin" in text and "(never fired)" in text


def test_a_bad_cron_timezone_or_catch_up_is_one_line_naming_the_field_and_nothing_changes(cli: Any, dummy: str) -> None:
    cli.ok("orchestrations", "add", "o", "-d", "d", "--sql", SQL)
    for flags, field in [
        (("--schedule", "61 * * * *"), "schedule"),
        (("--schedule", "0 6 * * *", "--schedule-timezone", "Europe/Atlantis"), "schedule_timezone"),
        (("--catch-up", "all"), "catch_up"),
        (("--max-lateness", "0"), "max_lateness_minutes"),
    ]:
        line = cli("orchestrations", "update", "o", *flags).one_line_error()
        assert f"{field}:" in line, line
    assert listing(cli) == []


def test_sandbox_schedules_are_off_until_enabled(cli: Any, dummy: str) -> None:
    cli.ok("orchestrations", "add", "o", "-d", "d", "--sql", SQL, "--schedule", "*/5 * * * *")
    cli.ok("sandboxes", "create", "sb")
    (row,) = listing(cli, "-w", "sb")
    expected = ("sb", False, "sandbox schedules off", [])
    assert (row["workspace"], row["fires"], row["note"], row["next_fires"]) == expected
    assert "sandbox schedules off" in cli.ok("schedules", "list", "-w", "sb").stdout
    cli.ok("sandboxes", "update", "sb", "--enable-schedules")
    (row,) = listing(cli, "-w", "sb")
    assert row["fires"] is True and len(row["next_fires"]) == 3
    (sandbox,) = json.loads(cli.ok("sandboxes", "list", "--json").stdout)
    assert sandbox["schedules_enabled"] is True
    assert [r["workspace"] for r in listing(cli, "--all-workspaces")] == ["production", "sb"]
    cli.ok("sandboxes", "update", "sb", "--disable-schedules")
    assert listing(cli, "-w", "sb")[0]["fires"] is False


def test_schedules_list_without_schedules_says_how_to_add_one(cli: Any, dummy: str) -> None:
    result = cli.ok("schedules", "list")
    assert "No schedules" in result.stdout and "offramp orchestrations update --help" in result.stdout
