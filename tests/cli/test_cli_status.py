"""`offramp status`: a workspace's health at a glance, for people and (``--json``) for monitoring.

Last-run outcomes come from real runs on the dummy destination (its knobs make a run fail or partially fail).
Group runs are real too (`offramp groups run`). What a scheduler or an alert leaves (schedule fires, scheduler
processes, alert deliveries) and a run whose process died are inserted through the models, as they would be left.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from offramp.core.environment import Environment
from offramp.core.runner.lifecycle import INTERRUPTED_ERROR
from offramp.core.state.models import (
    AlertDelivery,
    Credential,
    Orchestration,
    Run,
    ScheduleFire,
    SchedulerInstance,
    Workspace,
    utcnow,
)
from offramp.core.state.store import open_store

ONE_ROW = "SELECT 'e1' AS event_id, 'a@example.com' AS email"
TWENTY_ROWS = "SELECT 'e' || i AS event_id, 'a@example.com' AS email FROM range(20) t(i)"


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def store(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """The state store a test runs on: SQLite, then PostgreSQL when OFFRAMP_TEST_POSTGRES_URL is set."""
    if request.param == "postgresql":
        monkeypatch.setenv("OFFRAMP_DATABASE_URL", request.getfixturevalue("postgres_url"))
    return str(request.param)


@contextmanager
def stored() -> Iterator[Session]:
    """A committed session on the test's store, to leave what other commands would have left."""
    state = open_store(Environment())
    try:
        with state.session() as session:
            yield session
    finally:
        state.dispose()


def ids(session: Session, workspace: str = "production") -> tuple[int, dict[str, int]]:
    """The workspace's id and its orchestrations' ids by name."""
    ws = session.scalar(select(Workspace).where(Workspace.name == workspace))
    assert ws is not None
    rows = session.scalars(select(Orchestration).where(Orchestration.workspace_id == ws.id))
    return ws.id, {row.name: row.id for row in rows}


def status(cli: Any, *args: str) -> dict[str, Any]:
    result = cli("status", *args, "--json")
    assert result.exit_code == 0, result.output
    data: dict[str, Any] = json.loads(result.stdout)
    return data


def last_run_id(cli_json: Any, orchestration: str) -> str:
    return str(cli_json("runs", "list", "--orchestration", orchestration)[0]["id"])


@pytest.fixture
def sinks(cli: Any, store: str, initialized: Any, with_token: str) -> None:
    """Dummy destinations: `sink` accepts everything, `broken` stops at once, `flaky` refuses about half."""
    cli.ok("destinations", "add", "sink", "--type", "dummy", "--credential", with_token)
    cli.ok("destinations", "add", "broken", "--type", "dummy", "--credential", with_token,
           "--set", "terminal_after_batches=0")  # fmt: skip
    cli.ok("destinations", "add", "flaky", "--type", "dummy", "--credential", with_token,
           "--set", "fail_prob=0.5", "--set", "seed=3")  # fmt: skip


def test_a_new_store_is_healthy_and_says_so(cli: Any, initialized: Any) -> None:
    data = status(cli)

    assert data["version"] == 1
    assert data["workspace"] == "production"
    assert data["problems"] == []
    assert data["schedules"] == [] and data["last_runs"] == [] and data["credentials"] == []
    assert data["schedulers"] == []
    assert {key: data["alerts"][key] for key in ("delivered", "failed", "pending", "failures")} == {
        "delivered": 0, "failed": 0, "pending": 0, "failures": [],
    }  # fmt: skip
    text = cli.ok("status").stdout
    assert "no problems" in text
    assert "Schedules: none" in text and "Schedulers alive: none" in text


def test_last_runs_list_failing_ones_first_and_read_without_writing(cli: Any, cli_json: Any, sinks: None) -> None:
    for name, destination, sql in (("good", "sink", ONE_ROW), ("bad", "broken", ONE_ROW),
                                   ("partial", "flaky", TWENTY_ROWS), ("idle", "sink", ONE_ROW),
                                   ("stuck", "sink", ONE_ROW)):  # fmt: skip
        cli.ok("orchestrations", "add", name, "-d", destination, "--sql", sql)
    cli.ok("run", "good")
    assert cli("run", "bad").exit_code == 1
    cli.ok("run", "partial")
    cli.ok("run", "idle", "--dry-run")  # a dry run sends nothing: it is no last run
    stuck_run = uuid.uuid4().hex
    long_ago = utcnow() - timedelta(hours=2)
    with stored() as session:
        workspace_id, orchestrations = ids(session)
        # The process running it was killed: its heartbeat stopped two hours ago.
        session.add(Run(id=stuck_run, workspace_id=workspace_id, orchestration_id=orchestrations["stuck"],
                        orchestration_name="stuck", status="running", mode="all", started_at=long_ago,
                        heartbeat_at=long_ago))  # fmt: skip
    cli.ok("groups", "add", "nightly", "-o", "good")
    cli.ok("groups", "add", "chain", "-o", "bad", "-o", "good")
    cli.ok("groups", "run", "nightly")
    assert cli("groups", "run", "chain").exit_code == 1

    data = status(cli)

    runs = data["last_runs"]
    assert [(r["kind"], r["name"], r["status"]) for r in runs] == [
        ("orchestration", "bad", "failed"),
        ("group", "chain", "failed"),
        ("orchestration", "stuck", "interrupted"),
        ("orchestration", "partial", "partially_failed"),
        ("orchestration", "good", "succeeded"),
        ("group", "nightly", "succeeded"),
        ("orchestration", "idle", None),
    ]
    bad = runs[0]
    assert bad["run_id"] == last_run_id(cli_json, "bad")
    assert "terminal_after_batches" in bad["error"]
    assert bad["command"] == f"offramp runs show {bad['run_id']}"
    chain = runs[1]
    assert chain["error"].startswith(f"member bad failed (run {bad['run_id']})")
    assert chain["command"] == f"offramp runs show {chain['run_id']}"
    assert runs[2]["error"] == INTERRUPTED_ERROR
    assert data["problems"] == [
        f"orchestration bad: last run {bad['run_id']} failed",
        f"group chain: last run {chain['run_id']} failed",
        f"orchestration stuck: last run {stuck_run} interrupted",
        f"orchestration partial: last run {runs[3]['run_id']} partially failed",
    ]
    with stored() as session:  # shown interrupted, not marked so: status only reads
        row = session.get(Run, stuck_run)
        assert row is not None and row.status == "running"

    text = cli.ok("status").stdout
    assert text.index(" bad ") < text.index(" stuck ") < text.index(" partial ") < text.index(" good ")
    assert "never run" in text
    assert f"`offramp runs show {bad['run_id']}`" in text


def test_schedules_show_the_next_fire_in_their_zone_and_utc_and_the_last_fire(
    cli: Any, cli_json: Any, sinks: None
) -> None:
    cli.ok("orchestrations", "add", "berlin", "-d", "sink", "--sql", ONE_ROW, "--schedule", "30 2 * * *",
           "--option", "schedule_timezone=Europe/Berlin")  # fmt: skip
    cli.ok("orchestrations", "add", "paused", "-d", "sink", "--sql", ONE_ROW, "--schedule", "0 * * * *",
           "--option", "schedule_enabled=false")  # fmt: skip
    cli.ok("run", "berlin")
    run_id = last_run_id(cli_json, "berlin")
    with stored() as session:
        workspace_id, orchestrations = ids(session)
        target = {"workspace_id": workspace_id, "target_kind": "orchestration",
                  "target_id": orchestrations["berlin"], "target_name": "berlin"}  # fmt: skip
        session.add(ScheduleFire(**target, fire_at=datetime(2026, 11, 30, 1, 30, tzinfo=UTC), status="succeeded",
                                 run_id=run_id))  # fmt: skip
        session.add(ScheduleFire(**target, fire_at=datetime(2026, 12, 1, 1, 30, tzinfo=UTC), status="skipped",
                                 reason=f"still running: {run_id}"))  # fmt: skip

    data = status(cli)

    berlin, paused = data["schedules"]
    assert (berlin["kind"], berlin["name"], berlin["cron"], berlin["timezone"]) == (
        "orchestration", "berlin", "30 2 * * *", "Europe/Berlin",
    )  # fmt: skip
    assert berlin["enabled"] and berlin["fires"] and berlin["note"] is None
    [upcoming] = berlin["next_fires"]
    local, utc = datetime.fromisoformat(upcoming["local"]), datetime.fromisoformat(upcoming["utc"])
    assert (local.hour, local.minute) == (2, 30) and local == utc and utc.utcoffset() == timedelta(0)
    assert local.utcoffset() in (timedelta(hours=1), timedelta(hours=2))  # CET or CEST
    assert utc > datetime.now(UTC)
    assert berlin["last_fire"]["fire_at"] == "2026-12-01T01:30:00+00:00"
    assert berlin["last_fire"]["status"] == "skipped"
    assert berlin["last_fire"]["reason"] == f"still running: {run_id}"
    assert paused["enabled"] is False and paused["next_fires"] == [] and paused["last_fire"] is None
    assert "schedules fire in this workspace but no scheduler is running" in data["problems"]

    text = cli.ok("status").stdout
    assert "30 2 * * *" in text and "Europe/Berlin" in text
    assert f"{utc:%Y-%m-%d %H:%M} UTC" in text
    assert f"skipped (still running: {run_id})" in text


def test_live_schedulers_are_listed_and_dead_or_stopped_ones_are_not(cli: Any, sinks: None) -> None:
    cli.ok("orchestrations", "add", "hourly", "-d", "sink", "--sql", ONE_ROW, "--schedule", "0 * * * *")
    now = utcnow()
    with stored() as session:
        session.add(SchedulerInstance(id="host-a:41:aa", host="host-a", pid=41, started_at=now, heartbeat_at=now))
        session.add(SchedulerInstance(id="host-b:42:bb", host="host-b", pid=42, started_at=now - timedelta(days=1),
                                      heartbeat_at=now - timedelta(hours=1)))  # its process died  # fmt: skip
        session.add(SchedulerInstance(id="host-c:43:cc", host="host-c", pid=43, started_at=now, heartbeat_at=now,
                                      stopped_at=now))  # fmt: skip

    data = status(cli)

    assert [(s["host"], s["pid"], s["id"]) for s in data["schedulers"]] == [("host-a", 41, "host-a:41:aa")]
    assert data["problems"] == []
    assert "host-a" in cli.ok("status").stdout


def test_a_fire_whose_run_died_shows_interrupted(cli: Any, sinks: None) -> None:
    cli.ok("orchestrations", "add", "hourly", "-d", "sink", "--sql", ONE_ROW, "--schedule", "0 * * * *")
    run_id, long_ago = uuid.uuid4().hex, utcnow() - timedelta(hours=1)
    with stored() as session:
        workspace_id, orchestrations = ids(session)
        session.add(Run(id=run_id, workspace_id=workspace_id, orchestration_id=orchestrations["hourly"],
                        orchestration_name="hourly", status="running", mode="all", started_at=long_ago,
                        heartbeat_at=long_ago))  # fmt: skip
        session.add(ScheduleFire(workspace_id=workspace_id, target_kind="orchestration",
                                 target_id=orchestrations["hourly"], target_name="hourly",
                                 fire_at=long_ago.replace(minute=0, second=0, microsecond=0), status="running",
                                 run_id=run_id, claimed_by="host-b:42:bb"))  # fmt: skip

    [schedule] = status(cli)["schedules"]

    assert schedule["last_fire"]["status"] == "interrupted"
    assert schedule["last_fire"]["reason"] == INTERRUPTED_ERROR
    assert schedule["last_fire"]["run_id"] == run_id


def test_sandbox_schedules_are_shown_off_until_the_sandbox_enables_them(cli: Any, sinks: None) -> None:
    cli.ok("orchestrations", "add", "hourly", "-d", "sink", "--sql", ONE_ROW, "--schedule", "0 * * * *")
    cli.ok("sandboxes", "create", "sb")

    [schedule] = status(cli, "-w", "sb")["schedules"]
    assert schedule["fires"] is False and schedule["note"] == "sandbox schedules off"
    assert schedule["next_fires"] == []

    cli.ok("sandboxes", "update", "sb", "--enable-schedules", "--test-event-code", "TEST1")
    cli.ok("run", "hourly", "-w", "sb")
    data = status(cli, "-w", "sb")

    [schedule] = data["schedules"]
    assert schedule["fires"] is True and schedule["note"] is None and len(schedule["next_fires"]) == 1
    assert data["workspace"] == "sb"
    assert "schedules fire in this workspace but no scheduler is running" in data["problems"]
    [run] = data["last_runs"]  # the sandbox's own run: production's orchestration has none
    assert run["status"] == "succeeded" and run["command"] == f"offramp runs show {run['run_id']} -w sb"
    assert status(cli)["last_runs"][0]["status"] is None
    assert f"`offramp runs show {run['run_id']} -w sb`" in cli.ok("status", "-w", "sb").stdout


def test_credentials_needing_authorization_come_with_the_command_that_authorizes_them(
    cli: Any, initialized: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TT_APP_SECRET", "app-secret-1234")
    for name in ("tiktok-main", "tiktok-eu"):
        cli.ok("credentials", "add", name, "--type", "tiktok-offline-events",
               "--set", "app_id=7001", "--set", "app_secret=env:TT_APP_SECRET")  # fmt: skip
    cli.ok("destinations", "add", "stores", "--type", "tiktok-ads-offline-events", "--credential", "tiktok-main",
           "--no-test", "--set", "advertiser_id=7002", "--set", "event_set_id=7003")  # fmt: skip
    with stored() as session:  # as the runner leaves it when TikTok refuses the grant
        row = session.scalar(select(Credential).where(Credential.name == "tiktok-eu"))
        assert row is not None
        row.status, row.status_reason = "needs_reauth", "TikTok refused the refresh token (40105)"

    data = status(cli)

    assert [(c["name"], c["status"], c["command"]) for c in data["credentials"]] == [
        ("tiktok-eu", "needs_reauth", "offramp credentials authorize tiktok-eu"),
        ("tiktok-main", "needs_authorization", "offramp credentials authorize tiktok-main"),
    ]
    assert data["credentials"][0]["reason"] == "TikTok refused the refresh token (40105)"
    assert data["credentials"][1]["used_by"] == ["stores"]
    assert "credential tiktok-eu: needs_reauth" in data["problems"]
    assert "offramp credentials authorize tiktok-main" in cli.ok("status").stdout

    cli.ok("sandboxes", "create", "sb")
    [shared] = status(cli, "-w", "sb")["credentials"]  # the sandbox's copy of `stores` uses production's
    assert (shared["name"], shared["workspace"], shared["command"]) == ("tiktok-main", "production", None)
    assert "authorize it in production" in shared["note"]


def test_alert_deliveries_of_the_last_day_with_each_failed_one(cli: Any, initialized: Any) -> None:
    now = utcnow()

    def delivery(status: str, hours_ago: float, workspace: str = "production", **more: Any) -> AlertDelivery:
        return AlertDelivery(at=now - timedelta(hours=hours_ago), workspace=workspace, channel="ops",
                             channel_type="slack", target_kind="orchestration", target_name="orders",
                             run_id="r1", kind="failure", status=status, **more)  # fmt: skip

    with stored() as session:
        session.add_all([
            delivery("delivered", 1), delivery("delivered", 2), delivery("pending", 0.1), delivery("pending", 0),
            delivery("failed", 3, attempts=5, error="Slack answered 404 no_service"),
            delivery("failed", 30, error="a day and more ago"),
            delivery("failed", 1, workspace="other", error="another workspace's"),
        ])  # fmt: skip

    data = status(cli)

    alerts = data["alerts"]
    assert (alerts["delivered"], alerts["failed"], alerts["pending"]) == (2, 1, 2)
    # The one pending for six minutes lost its process; the one just recorded is being sent.
    [stuck] = alerts["stuck"]
    assert (stuck["channel"], stuck["kind"], stuck["target_name"]) == ("ops", "failure", "orders")
    assert any("alert to channel ops (failure, orchestration orders) pending since" in p for p in data["problems"])
    [failure] = alerts["failures"]
    assert failure["channel"] == "ops" and failure["channel_type"] == "slack"
    assert failure["error"] == "Slack answered 404 no_service" and failure["attempts"] == 5
    assert (failure["target_kind"], failure["target_name"], failure["run_id"]) == ("orchestration", "orders", "r1")
    assert "1 alert delivery(ies) failed in the last 24 h" in data["problems"]
    text = cli.ok("status").stdout
    assert "2 delivered, 1 failed, 2 pending" in text and "Slack answered 404 no_service" in text


def test_an_unknown_workspace_is_one_line_naming_those_that_exist(cli: Any, cli_error: Any, initialized: Any) -> None:
    line = cli_error("status", "-w", "nope")

    assert "no workspace named 'nope'" in line and "production" in line
