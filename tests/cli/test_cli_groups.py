"""`offramp groups`: add, update, list, show, rename, delete with --json, audited; bad input refused with one line
naming the field, nothing changed; export/apply round-trips a group's schedule and options; a sandbox's change of a
group's options shows in its diff and is promoted. On SQLite and on PostgreSQL."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

SQL = "SELECT 'e' || i AS event_id FROM range(3) t(i)"


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def store(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """The state store a test runs on (as tests/runner/conftest.py's): SQLite, then PostgreSQL when configured."""
    if request.param == "postgresql":
        monkeypatch.setenv("OFFRAMP_DATABASE_URL", request.getfixturevalue("postgres_url"))
    return str(request.param)


@pytest.fixture
def orchestrations(store: str, cli: Any, with_token: str) -> list[str]:
    """Destination `sink` (dummy) and orchestrations `a`, `b`, `c` in production."""
    cli.ok("destinations", "add", "sink", "--type", "dummy", "--credential", with_token)
    for name in ("a", "b", "c"):
        cli.ok("orchestrations", "add", name, "--destination", "sink", "--sql", SQL)
    return ["a", "b", "c"]


def state(cli: Any, workspace: str = "production") -> tuple[str, int]:
    """What a refused command must leave as it was: the workspace's export and the number of audit events."""
    audit = json.loads(cli.ok("audit", "--json", "--limit", "1000").stdout)
    return cli.ok("export", "-w", workspace).stdout, len(audit)


def test_add_list_show_update_rename_delete_with_json_and_the_audit_trail(
    cli: Any, cli_json: Callable[..., Any], orchestrations: list[str]
) -> None:
    added = cli_json(
        "groups", "add", "nightly", "-o", "b", "-o", "a", "--schedule", "0 6 * * *", "--timezone", "Europe/Berlin",
        "--catch-up", "skip", "--max-lateness", "90", "--disabled", "--actor", "alice",
    )  # fmt: skip
    assert added["orchestrations"] == ["b", "a"]  # in the order given: the order they run
    assert (added["schedule"], added["timezone"]) == ("0 6 * * *", "Europe/Berlin")
    assert added["options"] == {"schedule_enabled": False, "catch_up": "skip", "max_lateness_minutes": 90}
    assert added["settings"]["when_changed"] is None and added["settings"]["catch_up"] == "skip"

    [listed] = cli_json("groups", "list")
    assert listed["name"] == "nightly" and listed["orchestrations"] == ["b", "a"]
    table = cli.ok("groups", "list").stdout
    assert "b -> a" in table and "Europe/Berlin" in table
    shown = cli.ok("groups", "show", "nightly").stdout
    assert "b -> a" in shown and "catch_up: skip" in shown and "never run" in shown
    assert cli_json("groups", "show", "nightly")["last_run"] is None

    updated = cli_json(
        "groups", "update", "nightly", "-o", "a", "-o", "b", "-o", "c", "--enabled", "--no-max-lateness",
        "--when-changed", "SELECT max(i) FROM range(3) t(i)", "--unset-timezone",
    )  # fmt: skip
    assert updated["orchestrations"] == ["a", "b", "c"] and updated["timezone"] == "UTC"
    assert updated["changed"] == [
        "options.max_lateness_minutes", "options.schedule_enabled", "options.when_changed", "orchestrations",
        "timezone",
    ]  # fmt: skip
    assert "nothing to change" in cli.ok("groups", "update", "nightly", "-o", "a", "-o", "b", "-o", "c").stdout
    cli.ok("groups", "update", "nightly", "--unset-schedule")
    assert cli_json("groups", "show", "nightly")["schedule"] is None

    cli.ok("groups", "rename", "nightly", "daily")
    assert [g["name"] for g in cli_json("groups", "list")] == ["daily"]
    cli.ok("groups", "delete", "daily")
    assert cli_json("groups", "list") == []
    assert [o["name"] for o in cli_json("orchestrations", "list")] == orchestrations  # members stay

    events = cli_json("audit", "--type", "group")
    assert [(e["action"], e["object_name"]) for e in reversed(events)] == [
        ("create", "nightly"), ("update", "nightly"), ("update", "nightly"), ("rename", "daily"), ("delete", "daily"),
    ]  # fmt: skip
    assert events[-1]["actor"] == "alice"


BAD_ADDS = {
    "bad cron": (["-o", "a", "--schedule", "0 6 * *"], "schedule: '0 6 * *' is not a cron expression"),
    "bad zone": (["-o", "a", "--schedule", "0 6 * * *", "--timezone", "Mars/Olympus"], "timezone: unknown timezone"),
    "unknown orchestration": (["-o", "a", "-o", "nope"], "no orchestration named 'nope'"),
    "repeated member": (["-o", "a", "-o", "b", "-o", "a"], "lists orchestration(s) a more than once"),
    "no member": ([], "orchestrations: a group needs at least one orchestration"),
    "lateness": (["-o", "a", "--max-lateness", "0"], "max_lateness_minutes"),
    "freshness query that writes": (["-o", "a", "--when-changed", "DELETE FROM orders"], "when_changed"),
}


@pytest.mark.parametrize("case", list(BAD_ADDS))
def test_a_bad_add_names_the_field_and_changes_nothing(
    cli: Any, cli_error: Callable[..., str], orchestrations: list[str], case: str
) -> None:
    args, needle = BAD_ADDS[case]
    before = state(cli)
    line = cli_error("groups", "add", "nightly", *args)
    assert needle in line
    assert state(cli) == before


def test_a_bad_name_or_update_names_the_field_and_changes_nothing(
    cli: Any, cli_error: Callable[..., str], orchestrations: list[str]
) -> None:
    cli.ok("groups", "add", "nightly", "-o", "a", "--schedule", "0 6 * * *")
    before = state(cli)
    assert "invalid group name 'night ly'" in cli_error("groups", "add", "night ly", "-o", "a")
    assert "invalid group name" in cli_error("groups", "rename", "nightly", "x\ny")
    assert "already exists" in cli_error("groups", "add", "nightly", "-o", "b")
    assert "schedule: '61 * * * *' is not a cron expression" in cli_error(
        "groups", "update", "nightly", "--schedule", "61 * * * *"
    )
    assert "timezone: unknown timezone 'Europe/Nowhere'" in cli_error(
        "groups", "update", "nightly", "--timezone", "Europe/Nowhere"
    )
    assert "lists orchestration(s) b more than once" in cli_error("groups", "update", "nightly", "-o", "b", "-o", "b")
    assert "no orchestration named 'zz'" in cli_error("groups", "update", "nightly", "-o", "zz")
    assert "no group named 'weekly'" in cli_error("groups", "update", "weekly", "--schedule", "0 6 * * *")
    assert "no group named 'weekly'" in cli_error("groups", "delete", "weekly")
    assert "--schedule given with its unset flag" in cli_error(
        "groups", "update", "nightly", "--schedule", "0 7 * * *", "--unset-schedule"
    )
    assert cli("groups", "update", "nightly", "--catch-up", "sometimes").exit_code == 2  # a usage error, by click
    assert state(cli) == before


def test_deleting_a_member_is_refused_with_a_command_that_takes_it_out(
    cli: Any, cli_error: Callable[..., str], cli_json: Callable[..., Any], orchestrations: list[str]
) -> None:
    cli.ok("groups", "add", "nightly", "-o", "a", "-o", "b", "-o", "c")
    cli.ok("groups", "add", "solo", "-o", "b")
    line = cli_error("orchestrations", "delete", "b")
    assert "belongs to group(s) nightly, solo" in line
    assert "offramp groups update nightly --orchestration a --orchestration c" in line
    assert "offramp groups delete solo" in line
    cli.ok("groups", "update", "nightly", "--orchestration", "a", "--orchestration", "c")
    cli.ok("groups", "delete", "solo")
    cli.ok("orchestrations", "delete", "b")
    assert cli_json("groups", "show", "nightly")["orchestrations"] == ["a", "c"]


def test_export_and_apply_round_trip_a_group_with_its_schedule_and_options(
    cli: Any, cli_json: Callable[..., Any], orchestrations: list[str], tmp_path: Path
) -> None:
    cli.ok(
        "groups", "add", "nightly", "-o", "c", "-o", "a", "--schedule", "30 2 * * *", "--timezone", "America/New_York",
        "--catch-up", "skip", "--max-lateness", "45", "--when-changed", "SELECT max(i) FROM range(3) t(i)",
    )  # fmt: skip
    exported = cli.ok("export").stdout
    [group] = yaml.safe_load(exported)["groups"]
    assert group == {
        "name": "nightly", "schedule": "30 2 * * *", "timezone": "America/New_York", "orchestrations": ["c", "a"],
        "options": {"catch_up": "skip", "max_lateness_minutes": 45, "when_changed": "SELECT max(i) FROM range(3) t(i)"},
    }  # fmt: skip
    path = tmp_path / "workspace.yaml"
    path.write_text(exported)
    assert "0 to add, 0 to change, 0 to remove" in cli.ok("apply", "-f", str(path)).stdout

    cli.ok("groups", "delete", "nightly")  # apply brings it back as it was
    assert "+ group nightly" in cli.ok("apply", "-f", str(path)).stdout
    assert cli.ok("export").stdout == exported

    document = yaml.safe_load(exported)
    document["groups"][0]["options"]["catch_up"] = "latest"
    document["groups"][0]["schedule"] = "0 3 * * *"
    path.write_text(yaml.safe_dump(document))
    assert "~ group nightly (options.catch_up, schedule)" in cli.ok("apply", "-f", str(path)).stdout
    assert cli_json("groups", "show", "nightly")["options"]["catch_up"] == "latest"

    before = cli.ok("export").stdout
    document["groups"][0]["options"]["catch_up"] = "sometimes"
    path.write_text(yaml.safe_dump(document))
    line = cli("apply", "-f", str(path)).one_line_error("catch_up")
    assert "nothing was changed" in line
    assert cli.ok("export").stdout == before


def test_a_sandbox_change_of_group_options_shows_in_its_diff_and_is_promoted(
    cli: Any, cli_json: Callable[..., Any], orchestrations: list[str]
) -> None:
    cli.ok("groups", "add", "nightly", "-o", "a", "-o", "b", "--schedule", "0 6 * * *")
    cli.ok("sandboxes", "create", "sb")
    assert cli_json("groups", "show", "nightly", "-w", "sb")["orchestrations"] == ["a", "b"]
    cli.ok("groups", "update", "nightly", "-w", "sb", "--catch-up", "skip", "--max-lateness", "30")

    diff = cli.ok("sandboxes", "diff", "sb").stdout
    assert "~ group nightly" in diff
    assert "options.catch_up: (none) → `skip`" in diff and "options.max_lateness_minutes: (none) → `30`" in diff
    [change] = cli_json("sandboxes", "diff", "sb")["changes"]
    assert (change["kind"], change["name"]) == ("group", "nightly")
    assert {f["field"]: f["new"] for f in change["fields"]} == {"options.catch_up": "skip",
                                                                "options.max_lateness_minutes": 30}  # fmt: skip
    assert cli_json("groups", "show", "nightly")["options"] == {}  # production unchanged until promoted

    cli.ok("sandboxes", "promote", "sb", "--message", "skip missed fires")
    assert cli_json("groups", "show", "nightly")["options"] == {"catch_up": "skip", "max_lateness_minutes": 30}
    assert cli_json("sandboxes", "diff", "sb")["changes"] == []
