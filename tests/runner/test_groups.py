"""Group runs on real stores (SQLite, PostgreSQL) and real processes: members in order, one after the other; a
failing member stops the group; the group run's record; one live group run at a time; Ctrl-C and kill -9 mid-member,
then --resume, which never runs a finished member again."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from datetime import datetime
from typing import Any

import pytest
from conftest import wait_until

MEMBER_SQL = "SELECT 'e' || i AS event_id, i AS amount FROM range({rows}) t(i)"


def _group_run_process(*args: str) -> subprocess.Popen[str]:
    """`offramp groups run ARGS` in its own process (the test's home, store URL and secrets are in the environment)."""
    command = [sys.executable, "-m", "offramp.core.cli", "groups", "run", *args]
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.fixture
def members(cli: Any, store: str, initialized: Any, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Orchestrations `first` and `third` (fast), `second` (slow: 40 batches of 10 rows, 400 ms each), the dummy
    destination `broken` (fails its first batch), and group `nightly`: first -> second -> third."""
    monkeypatch.setenv("SHOP_TOKEN", "tok-value")
    cli.ok("credentials", "add", "tok", "--type", "static-token", "--set", "token=env:SHOP_TOKEN")
    cli.ok("destinations", "add", "sink", "--type", "dummy", "--credential", "tok")
    cli.ok("destinations", "add", "slow", "--type", "dummy", "--credential", "tok",
           "--set", "batch_size=10", "--set", "latency_ms=400")  # fmt: skip
    cli.ok("destinations", "add", "broken", "--type", "dummy", "--credential", "tok",
           "--set", "terminal_after_batches=0")  # fmt: skip
    for name, destination, rows in (("first", "sink", 30), ("second", "slow", 400), ("third", "sink", 20)):
        cli.ok("orchestrations", "add", name, "--destination", destination, "--sql", MEMBER_SQL.format(rows=rows))
    cli.ok("groups", "add", "nightly", "-o", "first", "-o", "second", "-o", "third")
    return ["first", "second", "third"]


def group_runs(cli: Any, group: str = "nightly", workspace: str = "production") -> list[dict[str, Any]]:
    data: list[dict[str, Any]] = json.loads(cli.ok("runs", "list", "--group", group, "-w", workspace, "--json").stdout)
    return data


def runs_by_orchestration(cli: Any) -> dict[str, list[dict[str, Any]]]:
    found: dict[str, list[dict[str, Any]]] = {}
    for run in json.loads(cli.ok("runs", "list", "--json").stdout):
        found.setdefault(run["orchestration"], []).append(run)
    return found


def live_member(cli: Any, orchestration: str) -> bool:
    return any(run["status"] == "running" for run in runs_by_orchestration(cli).get(orchestration, []))


def test_members_run_in_order_one_after_the_other_and_the_group_run_is_recorded(cli: Any, members: list[str]) -> None:
    cli.ok("destinations", "update", "slow", "--set", "latency_ms=0")  # nothing to wait for here
    result = cli("groups", "run", "nightly", "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["kind"] == "group_run" and summary["status"] == "succeeded"
    assert [m["orchestration"] for m in summary["members"]] == members
    assert {m["status"] for m in summary["members"]} == {"succeeded"}
    # One after the other: each member started once the one before it had finished.
    spans = [
        (datetime.fromisoformat(m["started_at"]), datetime.fromisoformat(m["finished_at"])) for m in summary["members"]
    ]
    assert all(spans[i][1] <= spans[i + 1][0] for i in range(len(spans) - 1))
    # Each member run is a run of its own, naming its group run.
    runs = runs_by_orchestration(cli)
    for member in summary["members"]:
        [run] = runs[member["orchestration"]]
        assert (run["id"], run["group_run_id"], run["status"]) == (member["run_id"], summary["id"], "succeeded")

    [listed] = group_runs(cli)
    assert (listed["id"], listed["status"], listed["counts"]) == (summary["id"], "succeeded", {"succeeded": 3})
    table = cli.ok("runs", "list", "--group", "nightly").stdout
    assert summary["id"][:12] in table and "3 members: 3 succeeded" in table
    shown = cli.ok("runs", "show", summary["id"]).stdout
    assert f"group run {summary['id']}" in shown and "status: succeeded" in shown
    lines = [line.strip() for line in shown.splitlines()]
    for position, member in enumerate(summary["members"], start=1):
        assert any(
            line.startswith(f"{position}. {member['orchestration']}: succeeded (run {member['run_id']}")
            for line in lines
        )
    assert json.loads(cli.ok("runs", "show", summary["id"][:10], "--json").stdout)["members"] == summary["members"]


def test_a_failing_member_stops_the_group_and_the_later_ones_are_skipped_with_the_reason(
    cli: Any, members: list[str]
) -> None:
    cli.ok("orchestrations", "update", "second", "--destination", "broken")
    result = cli("groups", "run", "nightly", "--json")
    assert result.exit_code == 1, result.output
    summary = json.loads(result.stdout)
    assert summary["status"] == "failed"
    first, second, third = summary["members"]
    assert first["status"] == "succeeded"
    assert second["status"] == "failed" and "terminal_after_batches" in second["reason"]
    assert third == {**third, "status": "skipped", "run_id": None,
                     "reason": f"member second failed (run {second['run_id']})"}  # fmt: skip
    assert "third" not in runs_by_orchestration(cli)  # never started
    assert "offramp groups run nightly --resume" in summary["hint"]

    text = cli("groups", "run", "nightly")
    assert text.exit_code == 1
    assert "3. third: skipped: member second failed (run " in text.stdout
    assert "Group nightly: failed" in text.stdout


def test_a_member_refused_before_it_starts_fails_the_group_with_that_error(cli: Any, members: list[str]) -> None:
    cli.ok("sandboxes", "create", "sb")  # no test event code: a sandbox's sends are refused before they start
    result = cli("groups", "run", "nightly", "-w", "sb", "--json")
    assert result.exit_code == 1, result.output
    summary = json.loads(result.stdout)
    first, *later = summary["members"]
    assert first["status"] == "failed" and first["run_id"] is None and "test_event_code" in first["reason"]
    assert [m["status"] for m in later] == ["skipped", "skipped"]
    assert {m["reason"] for m in later} == {"member first failed before it started"}
    assert (
        json.loads(cli.ok("groups", "run", "nightly", "-w", "sb", "--test-event-code", "TEST1", "--json").stdout)[
            "status"
        ]
        == "succeeded"
    )


def test_a_second_group_run_is_refused_while_one_is_alive_naming_it(cli: Any, members: list[str]) -> None:
    process = _group_run_process("nightly")
    try:
        wait_until(lambda: live_member(cli, "second"), "the group run reached its slow member")
        [live] = group_runs(cli)
        assert live["status"] == "running"
        line = cli("groups", "run", "nightly").one_line_error("already running", live["id"])
        assert "offramp runs show" in line
    finally:
        process.send_signal(signal.SIGINT)
        process.communicate(timeout=120)


def test_ctrl_c_cancels_the_group_and_resume_continues_without_running_finished_members_again(
    cli: Any, members: list[str]
) -> None:
    process = _group_run_process("nightly")
    wait_until(lambda: live_member(cli, "second"), "the group run reached its slow member")
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=120)
    assert process.returncode == 1, err
    assert "Group nightly: cancelled" in out and "offramp groups run nightly --resume" in out
    [cancelled] = group_runs(cli)
    assert cancelled["status"] == "cancelled"
    assert [m["status"] for m in cancelled["members"]] == ["succeeded", "cancelled", "pending"]
    stopped_run = cancelled["members"][1]["run_id"]

    cli.ok("destinations", "update", "slow", "--set", "latency_ms=0")
    resumed = json.loads(cli.ok("groups", "run", "nightly", "--resume", "--json").stdout)
    assert resumed["id"] == cancelled["id"] and resumed["status"] == "succeeded"
    assert [m["status"] for m in resumed["members"]] == ["succeeded"] * 3
    assert resumed["members"][0]["run_id"] == cancelled["members"][0]["run_id"]  # kept, not run again
    assert resumed["members"][1]["run_id"] == stopped_run  # the stopped run itself, resumed
    runs = runs_by_orchestration(cli)
    assert [len(runs[name]) for name in members] == [1, 1, 1]
    second = runs["second"][0]
    assert second["rows"]["queried"] == second["rows"]["sent"] == 400  # every row once, across both passes


def test_a_killed_group_run_is_interrupted_once_its_lease_lapses_and_resume_finishes_it(
    cli: Any, members: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OFFRAMP_RUN_LEASE_SECONDS", "2")
    process = _group_run_process("nightly")
    wait_until(lambda: live_member(cli, "second"), "the group run reached its slow member")
    process.send_signal(signal.SIGKILL)
    process.communicate()
    wait_until(lambda: group_runs(cli)[0]["status"] == "interrupted", "the killed group run's lease lapsed")
    [dead] = group_runs(cli)
    assert [m["status"] for m in dead["members"]] == ["succeeded", "interrupted", "pending"]
    assert "offramp groups run nightly --resume" in dead["hint"]

    cli.ok("destinations", "update", "slow", "--set", "latency_ms=0")
    resumed = json.loads(cli.ok("groups", "run", "nightly", "--resume", "--json").stdout)
    assert (resumed["id"], resumed["status"]) == (dead["id"], "succeeded")
    assert resumed["members"][1]["run_id"] == dead["members"][1]["run_id"]
    runs = runs_by_orchestration(cli)
    assert [len(runs[name]) for name in members] == [1, 1, 1]
    rows = runs["second"][0]["rows"]
    assert rows["queried"] == 400 and rows["sent"] + rows["unknown"] == 400  # in flight at the kill: resent, or unknown
    # Nothing is left to resume now.
    cli("groups", "run", "nightly", "--resume").one_line_error("no cancelled, interrupted or failed group run")
