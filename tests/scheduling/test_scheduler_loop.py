"""The scheduler loop's decisions on a real store, driven by a controllable clock: a new schedule's first fire,
catch-up after downtime (latest, skip, maximum lateness), overlap, change triggers, sandbox schedules, a changed
definition, claims shared by two schedulers, and a stopped scheduler's run resumed by the next one.

Runs are real (the dummy destination, which sends nothing); only the instant the scheduler decides at is set by the
test. The runs themselves, their leases and heartbeats keep the real time.
"""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import duckdb
import pytest
from conftest import Clock, wait_until
from sqlalchemy import select

from offramp.core.runner.lifecycle import start_run
from offramp.core.scheduling.scheduler import Scheduler
from offramp.core.scheduling.store import ORCHESTRATION, Target, claim, scheduled_targets
from offramp.core.services.context import Context
from offramp.core.state.models import GroupRun, Run, ScheduleFire, utcnow

SQL = "SELECT 'e' || i AS event_id, 'c' || i || '@example.com' AS email FROM range(3) t(i)"
T0 = datetime(2026, 3, 2, 10, 20, tzinfo=UTC)  # a Monday, 10:20 UTC


def at(hour: int, minute: int = 0, second: int = 0, day: int = 2) -> datetime:
    return datetime(2026, 3, day, hour, minute, second, tzinfo=UTC)


def fires(ctx: Context, name: str) -> list[ScheduleFire]:
    with ctx.store.read_session() as session:
        rows = list(
            session.scalars(select(ScheduleFire).where(ScheduleFire.target_name == name).order_by(ScheduleFire.fire_at))
        )
        session.expunge_all()
    return rows


def runs(ctx: Context, name: str) -> list[Run]:
    with ctx.store.read_session() as session:
        rows = list(session.scalars(select(Run).where(Run.orchestration_name == name).order_by(Run.started_at)))
        session.expunge_all()
    return rows


def add(cli: Any, name: str, *flags: str, workspace: str | None = None, sql: str = SQL) -> None:
    where = ["-w", workspace] if workspace else []
    cli.ok("orchestrations", "add", name, "-d", "d", "--sql", sql, *flags, *where)


class Loop:
    """A scheduler over the test's store at the clock's instant; each pass waits for the runs it started."""

    def __init__(self, ctx: Context, clock: Clock) -> None:
        self.lines: list[str] = []
        self.scheduler = Scheduler(ctx, clock=clock, say=self.lines.append)
        self.scheduler.start()

    def tick(self) -> None:
        self.scheduler.tick()
        self.scheduler.wait()

    def close(self) -> None:
        self.scheduler.close()


@pytest.fixture
def clock() -> Clock:
    return Clock(T0)


@pytest.fixture
def loop(ctx: Context, clock: Clock) -> Any:
    running = Loop(ctx, clock)
    yield running
    running.close()


def test_a_new_schedule_fires_first_at_its_next_fire_then_once_per_fire(
    cli: Any, ctx: Context, clock: Clock, loop: Loop
) -> None:
    add(cli, "hourly", "--schedule", "0 * * * *")
    loop.tick()  # 10:20: the schedule is new; nothing since the epoch is due
    assert fires(ctx, "hourly") == []
    clock.now = at(11, 0, 20)
    loop.tick()
    loop.tick()  # the same instant again: the fire is handled already
    clock.now = at(11, 30)
    loop.tick()
    (fire,) = fires(ctx, "hourly")
    (run,) = runs(ctx, "hourly")
    assert (fire.fire_at, fire.status, fire.run_id, fire.claimed_by) == (
        at(11),
        "succeeded",
        run.id,
        loop.scheduler.instance_id,
    )
    assert run.status == "succeeded" and run.report["actor"] == "scheduler" and run.sent == 3
    assert any(f"run {run.id}" in line and "succeeded" in line for line in loop.lines), loop.lines


def test_after_downtime_catch_up_latest_runs_once_for_the_latest_fire(
    cli: Any, ctx: Context, clock: Clock, loop: Loop
) -> None:
    add(cli, "hourly", "--schedule", "0 * * * *")
    loop.tick()
    clock.now = at(14, 30)  # down from 10:20 to 14:30: 11:00, 12:00, 13:00 and 14:00 were missed
    loop.tick()
    recorded = [(f.fire_at.hour, f.status) for f in fires(ctx, "hourly")]
    assert recorded == [(11, "skipped"), (12, "skipped"), (13, "skipped"), (14, "succeeded")]
    assert "folded into the run for 2026-03-02T14:00:00Z" in (fires(ctx, "hourly")[0].reason or "")
    assert len(runs(ctx, "hourly")) == 1


def test_missed_fires_older_than_the_maximum_lateness_are_skipped_and_recorded(
    cli: Any, ctx: Context, clock: Clock, loop: Loop
) -> None:
    add(cli, "hourly", "--schedule", "0 * * * *", "--max-lateness", "90")
    loop.tick()
    clock.now = at(14, 30)
    loop.tick()
    recorded = [(f.fire_at.hour, f.status, f.reason) for f in fires(ctx, "hourly")]
    late = "later than the maximum lateness (90 min)"
    assert recorded[:2] == [(11, "skipped", late), (12, "skipped", late)]
    assert recorded[2][:2] == (13, "skipped") and "folded" in (recorded[2][2] or "")
    assert recorded[3][:2] == (14, "succeeded")


def test_catch_up_skip_runs_none_of_the_missed_fires_and_the_next_one_on_time(
    cli: Any, ctx: Context, clock: Clock, loop: Loop
) -> None:
    add(cli, "hourly", "--schedule", "0 * * * *", "--catch-up", "skip")
    loop.tick()
    clock.now = at(14, 30)
    loop.tick()
    assert [(f.fire_at.hour, f.status) for f in fires(ctx, "hourly")] == [(h, "skipped") for h in (11, 12, 13, 14)]
    assert {f.reason for f in fires(ctx, "hourly")} == {"missed while the scheduler was down (catch-up skip)"}
    assert runs(ctx, "hourly") == []
    clock.now = at(15, 0, 30)
    loop.tick()
    assert fires(ctx, "hourly")[-1].status == "succeeded"


def test_a_fire_while_the_previous_run_still_runs_is_skipped_naming_it(
    cli: Any, ctx: Context, clock: Clock, loop: Loop
) -> None:
    add(cli, "hourly", "--schedule", "0 * * * *")
    loop.tick()
    # A run of the orchestration is alive (started by `offramp run` elsewhere: it holds the lease, beating).
    run_id, _ = start_run(ctx, "production", "hourly", {"mode": "all", "dry_run": False, "options": {}})
    clock.now = at(11, 0, 5)
    loop.tick()
    (fire,) = fires(ctx, "hourly")
    assert (fire.status, fire.reason) == ("skipped", f"still running: {run_id}")
    assert [run.id for run in runs(ctx, "hourly")] == [run_id]  # never queued behind it


def test_when_changed_runs_only_when_the_freshness_value_changed(
    cli: Any, ctx: Context, clock: Clock, loop: Loop, tmp_path: Path
) -> None:
    warehouse = tmp_path / "w.duckdb"
    with duckdb.connect(str(warehouse)) as con:
        con.execute("CREATE TABLE orders AS SELECT 'e1' AS event_id, 'a@example.com' AS email, 1 AS version")
    sql = "SELECT event_id, email FROM orders"
    cli.ok("orchestrations", "add", "fresh", "-d", "d", "--source", f"duckdb:{warehouse}", "--sql", sql,
           "--schedule", "0 * * * *", "--when-changed", "SELECT max(version) FROM orders")  # fmt: skip
    loop.tick()
    for hour in (11, 12):
        clock.now = at(hour, 0, 10)
        loop.tick()
    with duckdb.connect(str(warehouse)) as con:
        con.execute("UPDATE orders SET version = 2")
    clock.now = at(13, 0, 10)
    loop.tick()
    recorded = [(f.fire_at.hour, f.status, f.reason) for f in fires(ctx, "fresh")]
    assert recorded == [(11, "succeeded", None), (12, "skipped", "no new data"), (13, "succeeded", None)]
    assert len(runs(ctx, "fresh")) == 2


def test_a_when_changed_query_that_writes_is_refused_naming_the_field(cli: Any, dummy: str) -> None:
    add(cli, "o")
    line = cli("orchestrations", "update", "o", "--when-changed", "DELETE FROM orders").one_line_error()
    assert "when_changed" in line
    assert cli_json(cli, "orchestrations", "show", "o")["options"].get("when_changed") is None  # nothing changed


def test_sandbox_schedules_fire_only_once_enabled_and_then_as_test_traffic(
    cli: Any, ctx: Context, clock: Clock, loop: Loop
) -> None:
    add(cli, "hourly", "--schedule", "0 * * * *")
    cli.ok("sandboxes", "create", "sb")
    loop.tick()
    clock.now = at(11, 0, 5)
    loop.tick()
    assert [f.workspace_id for f in fires(ctx, "hourly")] == [runs(ctx, "hourly")[0].workspace_id]  # production's
    listed = {row["workspace"]: row for row in cli_json(cli, "schedules", "list", "--all-workspaces")}
    assert listed["sb"]["fires"] is False and listed["sb"]["note"] == "sandbox schedules off"

    cli.ok("sandboxes", "update", "sb", "--enable-schedules")
    clock.now = at(12, 0, 5)
    loop.tick()  # a new schedule for the sandbox (it did not fire before): its first fire is the next one
    clock.now = at(13, 0, 5)
    loop.tick()
    in_sandbox = [f for f in fires(ctx, "hourly") if f.workspace_id != runs(ctx, "hourly")[0].workspace_id]
    assert [(f.fire_at.hour, f.status) for f in in_sandbox] == [(13, "failed")]
    assert "has no test_event_code" in (in_sandbox[0].reason or "")  # the runner's refusal, word for word

    cli.ok("sandboxes", "update", "sb", "--test-event-code", "TEST42")
    clock.now = at(14, 0, 5)
    loop.tick()
    last = [f for f in fires(ctx, "hourly") if f.workspace_id != runs(ctx, "hourly")[0].workspace_id][-1]
    assert last.status == "succeeded"
    with ctx.store.read_session() as session:
        run = session.get(Run, last.run_id)
        assert run is not None and run.report.get("test_traffic") is True


def test_a_changed_definition_starts_afresh_without_catching_up(
    cli: Any, ctx: Context, clock: Clock, loop: Loop
) -> None:
    add(cli, "hourly", "--schedule", "0 * * * *")
    loop.tick()
    cli.ok("orchestrations", "update", "hourly", "--schedule", "30 * * * *")
    clock.now = at(14, 10)  # the old definition missed 11:00 to 14:00; the new one is new
    loop.tick()
    assert fires(ctx, "hourly") == []
    clock.now = at(14, 30, 5)
    loop.tick()
    assert [(f.fire_at, f.status) for f in fires(ctx, "hourly")] == [(at(14, 30), "succeeded")]


def test_a_disabled_schedule_never_fires_and_catches_nothing_up_when_enabled(
    cli: Any, ctx: Context, clock: Clock, loop: Loop
) -> None:
    add(cli, "hourly", "--schedule", "0 * * * *", "--schedule-disabled")
    loop.tick()
    clock.now = at(13, 0, 5)
    loop.tick()
    assert fires(ctx, "hourly") == []
    cli.ok("orchestrations", "update", "hourly", "--schedule-enabled")
    loop.tick()
    clock.now = at(14, 0, 5)
    loop.tick()
    assert [(f.fire_at.hour, f.status) for f in fires(ctx, "hourly")] == [(14, "succeeded")]


def test_a_fire_is_claimed_once(cli: Any, ctx: Context) -> None:
    add(cli, "hourly", "--schedule", "0 * * * *")
    with ctx.store.read_session() as session:
        (target,) = scheduled_targets(session)
    assert isinstance(target, Target) and target.kind == ORCHESTRATION
    first = claim(ctx, target, at(11), "a")
    assert first is not None
    assert claim(ctx, target, at(11), "b") is None
    assert [(f.claimed_by, f.status) for f in fires(ctx, "hourly")] == [("a", "claimed")]


@pytest.fixture
def on_postgres(postgres_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The test's store is on PostgreSQL (several schedulers share one; SQLite runs one at a time)."""
    monkeypatch.setenv("OFFRAMP_DATABASE_URL", postgres_url)


@pytest.mark.postgres
def test_two_schedulers_at_the_same_instant_run_each_fire_once(
    on_postgres: None, cli: Any, dummy: str, clock: Clock, ctx: Context
) -> None:
    add(cli, "hourly", "--schedule", "0 * * * *")
    add(cli, "daily", "--schedule", "0 11 * * *")
    loops = [Loop(ctx, clock), Loop(ctx, clock)]
    try:
        for running in loops:
            running.tick()
        clock.now = at(11, 0, 5)
        barrier = threading.Barrier(2)

        def race(running: Loop) -> None:
            barrier.wait()
            running.tick()

        threads = [threading.Thread(target=race, args=(running,)) for running in loops]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        for running in loops:
            running.close()
    for name in ("hourly", "daily"):
        (fire,) = fires(ctx, name)
        assert fire.status == "succeeded", (fire.reason, [running.lines for running in loops])
        assert [run.id for run in runs(ctx, name)] == [fire.run_id]


def test_a_stopped_schedulers_run_ends_cancelled_and_the_next_scheduler_resumes_it(
    cli: Any, ctx: Context, clock: Clock
) -> None:
    cli.ok("destinations", "add", "slow", "--type", "dummy", "--credential", "tok",
           "--set", "batch_size=1", "--set", "latency_ms=100")  # fmt: skip
    sql = "SELECT 'e' || i AS event_id, 'c' || i || '@example.com' AS email FROM range(200) t(i)"
    cli.ok("orchestrations", "add", "long", "-d", "slow", "--sql", sql, "--schedule", "0 * * * *")
    first = Loop(ctx, clock)
    first.tick()
    clock.now = at(11, 0, 5)
    first.scheduler.tick()
    wait_until(lambda: bool(fires(ctx, "long")) and fires(ctx, "long")[0].status == "running", "the fire runs")
    first.scheduler.stop.set()  # what SIGTERM does
    first.close()
    (fire,) = fires(ctx, "long")
    (run,) = runs(ctx, "long")
    assert (fire.status, run.status) == ("cancelled", "cancelled") and fire.run_id == run.id
    assert 0 < run.sent < 200

    second = Loop(ctx, clock)
    try:
        second.tick()
    finally:
        second.close()
    (fire,) = fires(ctx, "long")
    (run,) = runs(ctx, "long")  # the same run, resumed: not a second one
    assert (fire.status, fire.run_id, fire.claimed_by) == ("succeeded", run.id, second.scheduler.instance_id)
    assert (run.status, run.sent, run.lease_generation) == ("succeeded", 200, 2)
    assert any("taking over" in line and run.id in line for line in second.lines), second.lines


def cli_json(cli: Any, *args: str) -> Any:
    return json.loads(cli.ok(*args, "--json").stdout)


def test_schedules_list_shows_next_fires_in_the_zone_and_in_utc_and_the_last_fire(
    cli: Any, ctx: Context, clock: Clock, loop: Loop
) -> None:
    add(cli, "berlin", "--schedule", "30 2 * * *", "--schedule-timezone", "Europe/Berlin")
    (row,) = cli_json(cli, "schedules", "list")
    assert (row["kind"], row["cron"], row["timezone"], row["enabled"], row["last_fire"]) == (
        "orchestration",
        "30 2 * * *",
        "Europe/Berlin",
        True,
        None,
    )
    assert len(row["next_fires"]) == 3
    for item in row["next_fires"]:
        local = datetime.fromisoformat(item["local"])
        assert (local.hour, local.minute) == (2, 30)
        assert datetime.fromisoformat(item["utc"]) == local.astimezone(UTC)
    clock.now = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)
    loop.tick()
    clock.now = datetime(2026, 3, 3, 1, 30, 5, tzinfo=UTC)  # 02:30 CET on 3 March
    loop.tick()
    (row,) = cli_json(cli, "schedules", "list")
    assert row["last_fire"]["status"] == "succeeded" and row["last_fire"]["run_id"]
    assert datetime.fromisoformat(row["last_fire"]["fire_at"]) == datetime(2026, 3, 3, 1, 30, tzinfo=UTC)
    assert "Europe/Berlin" in cli.ok("schedules", "list").stdout


def test_a_group_fires_as_one_unit_and_its_freshness_query_reads_its_first_member(
    cli: Any, ctx: Context, clock: Clock, loop: Loop, tmp_path: Path
) -> None:
    warehouse = tmp_path / "w.duckdb"
    with duckdb.connect(str(warehouse)) as con:
        con.execute("CREATE TABLE orders AS SELECT 'e1' AS event_id, 'a@example.com' AS email, 1 AS version")
    cli.ok("orchestrations", "add", "first", "-d", "d", "--source", f"duckdb:{warehouse}",
           "--sql", "SELECT event_id, email FROM orders")  # fmt: skip
    add(cli, "second")
    cli.ok("groups", "add", "nightly", "--orchestration", "first", "--orchestration", "second",
           "--schedule", "0 2 * * *", "--timezone", "Europe/Berlin",
           "--when-changed", "SELECT max(version) FROM orders")  # fmt: skip
    loop.tick()
    for day in (3, 4):
        clock.now = at(1, 0, 30, day=day)  # 02:00 CET
        loop.tick()
    recorded = [(f.target_kind, f.fire_at, f.status, f.reason) for f in fires(ctx, "nightly")]
    assert recorded == [
        ("group", at(1, day=3), "succeeded", None),
        ("group", at(1, day=4), "skipped", "no new data"),
    ]
    group_run_id = fires(ctx, "nightly")[0].run_id
    with ctx.store.read_session() as session:
        group_run = session.get(GroupRun, group_run_id)
        assert group_run is not None
        assert (group_run.status, group_run.actor, group_run.fire_at) == ("succeeded", "scheduler", at(1, day=3))
        members = list(session.scalars(select(Run).where(Run.group_run_id == group_run_id).order_by(Run.started_at)))
        assert [run.orchestration_name for run in members] == ["first", "second"]


def test_a_group_fire_while_its_previous_group_run_still_runs_is_skipped_naming_it(
    cli: Any, ctx: Context, clock: Clock, loop: Loop
) -> None:
    add(cli, "a")
    cli.ok("groups", "add", "g", "--orchestration", "a", "--schedule", "0 * * * *")
    loop.tick()
    with ctx.store.session() as session:
        (target,) = [t for t in scheduled_targets(session) if t.kind == "group"]
        session.add(GroupRun(id="feedc0de" * 4, workspace_id=target.workspace_id, group_id=target.id,
                             group_name="g", status="running", heartbeat_at=utcnow(), members=[]))  # fmt: skip
    clock.now = at(11, 0, 5)
    loop.tick()
    (fire,) = fires(ctx, "g")
    assert (fire.status, fire.reason) == ("skipped", f"still running: {'feedc0de' * 4}")


@pytest.mark.parametrize(
    ("zone", "cron", "spring", "autumn"),
    [
        # Europe/Berlin: 02:30 does not exist on 29 March 2026 (fires at 03:00 CEST = 01:00 UTC) and happens twice on
        # 25 October 2026 (fires once, at 02:30 CEST = 00:30 UTC).
        ("Europe/Berlin", "30 2 * * *", datetime(2026, 3, 29, 1, 0, tzinfo=UTC),
         datetime(2026, 10, 25, 0, 30, tzinfo=UTC)),
        # America/New_York: 02:30 does not exist on 8 March 2026 (03:00 EDT = 07:00 UTC); 01:30 happens twice on
        # 1 November 2026 (fires once, at 01:30 EDT = 05:30 UTC).
        ("America/New_York", "30 1,2 * * *", datetime(2026, 3, 8, 7, 0, tzinfo=UTC),
         datetime(2026, 11, 1, 5, 30, tzinfo=UTC)),
    ],
)  # fmt: skip
def test_across_dst_transitions_each_wall_time_fires_once(
    cli: Any, ctx: Context, clock: Clock, loop: Loop, zone: str, cron: str, spring: datetime, autumn: datetime
) -> None:
    seen: list[datetime] = []
    for number, transition in enumerate((spring, autumn)):
        name = f"dst-{number}"
        add(cli, name, "--schedule", cron, "--schedule-timezone", zone)
        night = transition - timedelta(hours=6)
        clock.now = night
        loop.tick()  # the schedule starts here; then a pass every ten minutes across the night
        for step in range(1, 73):
            clock.now = night + timedelta(minutes=10 * step)
            loop.tick()
        tonight = [f for f in fires(ctx, name) if night < f.fire_at <= clock.now]
        assert {f.status for f in tonight} == {"succeeded"}
        seen += [f.fire_at for f in tonight]
    assert spring in seen and autumn in seen
    assert len(seen) == len(set(seen))
    local = [instant.astimezone(ZoneInfo(zone)).replace(tzinfo=None) for instant in seen]
    walls = [(item.date(), item.hour, item.minute) for item in local]
    assert len(walls) == len(set(walls))  # no wall time twice, even in the repeated hour


def test_a_stopped_group_fire_is_resumed_by_the_next_scheduler_keeping_what_succeeded(
    cli: Any, ctx: Context, clock: Clock
) -> None:
    cli.ok("destinations", "add", "slow", "--type", "dummy", "--credential", "tok",
           "--set", "batch_size=1", "--set", "latency_ms=100")  # fmt: skip
    add(cli, "quick")
    sql = "SELECT 'e' || i AS event_id, 'c' || i || '@example.com' AS email FROM range(200) t(i)"
    cli.ok("orchestrations", "add", "long", "-d", "slow", "--sql", sql)
    cli.ok("groups", "add", "g", "--orchestration", "quick", "--orchestration", "long", "--schedule", "0 * * * *")
    first = Loop(ctx, clock)
    first.tick()
    clock.now = at(11, 0, 5)
    first.scheduler.tick()
    wait_until(lambda: bool(runs(ctx, "long")) and runs(ctx, "long")[0].status == "running", "the second member runs")
    first.scheduler.stop.set()
    first.close()
    (fire,) = fires(ctx, "g")
    assert fire.status == "cancelled" and fire.run_id is not None

    second = Loop(ctx, clock)
    try:
        second.tick()
    finally:
        second.close()
    (fire,) = fires(ctx, "g")
    assert (fire.status, fire.claimed_by) == ("succeeded", second.scheduler.instance_id)
    assert [run.status for run in runs(ctx, "quick")] == ["succeeded"]  # kept, not run again
    (long_run,) = runs(ctx, "long")
    assert (long_run.status, long_run.sent, long_run.group_run_id) == ("succeeded", 200, fire.run_id)


def test_a_long_downtime_of_a_schedule_every_minute_records_every_missed_fire_once_and_runs_once(
    cli: Any, ctx: Context, clock: Clock, loop: Loop
) -> None:
    add(cli, "minutely", "--schedule", "* * * * *")
    loop.tick()
    clock.now = T0 + timedelta(days=3, seconds=20)  # 4,320 fires missed
    loop.tick()
    loop.tick()
    recorded = fires(ctx, "minutely")
    assert len(recorded) == 3 * 24 * 60
    assert [f.status for f in recorded].count("skipped") == len(recorded) - 1 and recorded[-1].status == "succeeded"
    assert len(runs(ctx, "minutely")) == 1
    assert any("4319 fires from" in line for line in loop.lines), loop.lines


def test_a_long_run_does_not_hold_up_the_other_schedules(cli: Any, ctx: Context, clock: Clock, loop: Loop) -> None:
    cli.ok("destinations", "add", "slow", "--type", "dummy", "--credential", "tok",
           "--set", "batch_size=1", "--set", "latency_ms=100")  # fmt: skip
    sql = "SELECT 'e' || i AS event_id, 'c' || i || '@example.com' AS email FROM range(200) t(i)"
    cli.ok("orchestrations", "add", "long", "-d", "slow", "--sql", sql, "--schedule", "0 * * * *")
    add(cli, "quick", "--schedule", "0 * * * *")
    loop.tick()
    clock.now = at(11, 0, 5)
    loop.scheduler.tick()  # both fire; the runs go to the worker pool
    wait_until(lambda: [f.status for f in fires(ctx, "quick")] == ["succeeded"], "the quick fire succeeded")
    (long_fire,) = fires(ctx, "long")
    assert long_fire.status in ("claimed", "running")  # still under way: it never held the other up
    loop.scheduler.wait()
    assert [f.status for f in fires(ctx, "long")] == ["succeeded"]


def test_a_failing_freshness_query_fails_the_fire_without_storing_the_engines_message(
    cli: Any, ctx: Context, clock: Clock, loop: Loop, tmp_path: Path
) -> None:
    warehouse = tmp_path / "w.duckdb"
    with duckdb.connect(str(warehouse)) as con:
        con.execute("CREATE TABLE orders AS SELECT 'e1' AS event_id, 'secret@example.com' AS email")
    cli.ok("orchestrations", "add", "fresh", "-d", "d", "--source", f"duckdb:{warehouse}",
           "--sql", "SELECT event_id, email FROM orders", "--schedule", "0 * * * *",
           "--when-changed", "SELECT CAST(email AS INTEGER) FROM orders")  # fmt: skip
    loop.tick()
    clock.now = at(11, 0, 10)
    loop.tick()
    (fire,) = fires(ctx, "fresh")
    assert fire.status == "failed" and (fire.reason or "").startswith("freshness query failed ("), fire.reason
    assert "secret@example.com" not in (fire.reason or "") and "secret" not in " ".join(loop.lines)
    assert runs(ctx, "fresh") == []
