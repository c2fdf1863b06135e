"""Regressions of the scheduler found in review: a stopped fire superseded by a manual run, an error between the claim
and the record, the first fire after an edit under `--once`, takeovers (recorded run, freshness, lateness, one
resumer), the freshness value stored as a digest, the clock check, claims raced by threads, and the messages.

Built on the reviewer's reproductions; the runs are real (the dummy destination), the clock is the test's.
"""

from __future__ import annotations

import hashlib
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pytest
from conftest import Clock, wait_until
from sqlalchemy import select
from test_scheduler_loop import SQL, T0, Loop, add, at, fires, runs

from offramp.core.scheduling import store
from offramp.core.scheduling.store import claim, scheduled_targets
from offramp.core.services.context import Context
from offramp.core.state.models import ScheduleFire, ScheduleState, utcnow

SLOW_SQL = "SELECT 'e' || i AS event_id, 'c' || i || '@example.com' AS email FROM range(200) t(i)"


@pytest.fixture
def clock() -> Clock:
    return Clock(T0)


def slow(cli: Any, name: str = "long", *flags: str, sql: str = SLOW_SQL) -> None:
    """A dummy destination taking about 20 s for 200 events, and an orchestration on it."""
    cli.ok("destinations", "add", "slow", "--type", "dummy", "--credential", "tok",
           "--set", "batch_size=1", "--set", "latency_ms=100")  # fmt: skip
    cli.ok("orchestrations", "add", name, "-d", "slow", "--sql", sql, *flags)


def stop_mid_run(ctx: Context, clock: Clock, name: str, fire_at: datetime) -> None:
    """A scheduler fires ``name`` at ``fire_at`` and is stopped (SIGTERM) while the run sends: it ends cancelled."""
    first = Loop(ctx, clock)
    first.tick()
    clock.now = fire_at + timedelta(seconds=5)
    first.scheduler.tick()
    wait_until(lambda: bool(fires(ctx, name)) and fires(ctx, name)[-1].status == "running", "the fire runs")
    first.scheduler.stop.set()
    first.close()
    assert fires(ctx, name)[-1].status == "cancelled"


def test_a_stopped_fire_superseded_by_a_manual_run_is_closed_and_later_fires_run(
    cli: Any, ctx: Context, clock: Clock
) -> None:
    slow(cli, "long", "--schedule", "0 * * * *")
    stop_mid_run(ctx, clock, "long", at(11))
    cli.ok("orchestrations", "update", "long", "-d", "d")  # quick now
    cli.ok("run", "long")  # the user runs it by hand: a new run, not --resume
    manual = runs(ctx, "long")[-1]
    second = Loop(ctx, clock)
    try:
        for hour in (12, 13):
            clock.now = at(hour, 0, 5)
            second.tick()
    finally:
        second.close()
    recorded = [(f.fire_at.hour, f.status, f.reason) for f in fires(ctx, "long")]
    assert recorded == [(11, "skipped", f"superseded by run {manual.id}"), (12, "succeeded", None),
                        (13, "succeeded", None)], second.lines  # fmt: skip


def test_a_fire_of_this_scheduler_left_claimed_is_taken_over_by_its_next_pass(
    cli: Any, ctx: Context, clock: Clock
) -> None:
    add(cli, "hourly", "--schedule", "0 * * * *")
    loop = Loop(ctx, clock)
    try:
        loop.tick()
        with ctx.store.read_session() as session:
            (target,) = scheduled_targets(session)
        # What an error between the claim and its record leaves: the fire claimed by this live scheduler, no run.
        assert claim(ctx, target, at(11), loop.scheduler.instance_id) is not None
        clock.now = at(11, 0, 5)
        loop.tick()
        clock.now = at(12, 0, 5)
        loop.tick()
    finally:
        loop.close()
    assert [(f.fire_at.hour, f.status) for f in fires(ctx, "hourly")] == [(11, "succeeded"), (12, "succeeded")]
    assert len(runs(ctx, "hourly")) == 2


def real_clock_days(cron_hour: int) -> list[datetime]:
    """The next three instants ``cron_hour``:00:05 UTC after the real time now (edits are stamped with it)."""
    now = datetime.now(UTC)
    first = now.replace(hour=cron_hour, minute=0, second=5, microsecond=0)
    if first <= now:
        first += timedelta(days=1)
    return [first + timedelta(days=day) for day in range(3)]


def test_under_cron_once_the_first_fire_after_an_edit_runs(cli: Any, ctx: Context) -> None:
    # `scheduler --once` from cron at 11:00:05 each day serves the daily 11:00 fire.
    day1, day2, day3 = real_clock_days(11)
    clock = Clock(day1 - timedelta(days=1, hours=1))
    add(cli, "daily", "--schedule", "0 11 * * *")
    for instant in (day1, day2):
        clock.now = instant
        once = Loop(ctx, clock)
        once.tick()
        once.close()
    cli.ok("orchestrations", "update", "daily", "--catch-up", "skip")  # edited (now, before day 3's fire)
    clock.now = day3
    once = Loop(ctx, clock)
    once.tick()
    once.close()
    recorded = [(f.fire_at, f.status) for f in fires(ctx, "daily")]
    assert recorded[-1] == (day3 - timedelta(seconds=5), "succeeded"), recorded


def test_a_new_schedule_run_under_cron_once_fires_its_first_fire(cli: Any, ctx: Context) -> None:
    (day1, _day2, _day3) = real_clock_days(6)
    add(cli, "daily", "--schedule", "0 6 * * *")  # added now; the first scheduler to see it runs at 06:00:05
    once = Loop(ctx, Clock(day1))
    once.tick()
    once.close()
    assert [(f.fire_at, f.status) for f in fires(ctx, "daily")] == [(day1 - timedelta(seconds=5), "succeeded")]


def test_a_schedule_edited_while_its_fire_runs_records_that_fire_and_fires_the_new_definition(
    cli: Any, ctx: Context
) -> None:
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    old, new = now - timedelta(minutes=1), now + timedelta(minutes=10)
    slow(cli, "long", "--schedule", f"{old.minute} {old.hour} * * *")
    clock = Clock(old - timedelta(minutes=5))
    loop = Loop(ctx, clock)
    try:
        loop.tick()
        clock.now = old + timedelta(seconds=5)
        loop.scheduler.tick()
        wait_until(lambda: bool(fires(ctx, "long")) and fires(ctx, "long")[0].status == "running", "the fire runs")
        cli.ok("orchestrations", "update", "long", "--schedule", f"{new.minute} {new.hour} * * *")
        loop.scheduler.wait()
        clock.now = new + timedelta(seconds=5)
        loop.tick()
        loop.tick()
    finally:
        loop.close()
    recorded = [(f.fire_at, f.status) for f in fires(ctx, "long")]
    assert recorded == [(old, "succeeded"), (new, "succeeded")], loop.lines
    assert [run.status for run in runs(ctx, "long")] == ["succeeded", "succeeded"]


def test_take_over_records_the_run_it_resumes(cli: Any, ctx: Context) -> None:
    add(cli, "hourly", "--schedule", "0 * * * *")
    with ctx.store.read_session() as session:
        (target,) = scheduled_targets(session)
    fire_id = claim(ctx, target, at(11), "dead:1:x")
    (fire,) = fires(ctx, "hourly")
    assert fire_id == fire.id and store.take_over(ctx, fire, "alive:2:y", "run-of-the-fire")
    (fire,) = fires(ctx, "hourly")
    assert (fire.claimed_by, fire.status, fire.run_id) == ("alive:2:y", "running", "run-of-the-fire")


def test_a_stopped_fire_later_than_the_maximum_lateness_is_skipped_and_the_catch_up_fire_runs(
    cli: Any, ctx: Context, clock: Clock
) -> None:
    slow(cli, "long", "--schedule", "0 * * * *", "--max-lateness", "90")
    stop_mid_run(ctx, clock, "long", at(11))
    stopped_run = runs(ctx, "long")[0]
    cli.ok("orchestrations", "update", "long", "-d", "d")
    clock.now = at(14, 30)  # down since 11:00: that fire is 3.5 h late
    later = Loop(ctx, clock)
    try:
        later.tick()
    finally:
        later.close()
    recorded = {f.fire_at.hour: (f.status, f.reason) for f in fires(ctx, "long")}
    assert recorded[11] == ("skipped", "later than the maximum lateness (90 min)")
    assert recorded[14] == ("succeeded", None), later.lines
    assert [run.id for run in runs(ctx, "long")][0] == stopped_run.id and len(runs(ctx, "long")) == 2


def test_without_a_maximum_lateness_an_old_stopped_fire_is_resumed_and_said(
    cli: Any, ctx: Context, clock: Clock
) -> None:
    slow(cli, "long", "--schedule", "0 * * * *")
    stop_mid_run(ctx, clock, "long", at(11))
    clock.now = at(14, 30)
    later = Loop(ctx, clock)
    try:
        later.tick()
    finally:
        later.close()
    assert fires(ctx, "long")[0].status == "succeeded"  # resumed: nothing lost
    assert any("resuming a stopped fire" in line and "--max-lateness" in line for line in later.lines), later.lines


def freshness_row(ctx: Context, name: str) -> str | None:
    with ctx.store.read_session() as session:
        (fire, *_rest) = fires(ctx, name)
        row = session.get(ScheduleState, (fire.target_kind, fire.target_id))
        return None if row is None else row.freshness_value


def test_a_resumed_fire_stores_the_freshness_value_as_a_digest_and_the_next_fire_compares(
    cli: Any, ctx: Context, clock: Clock, tmp_path: Path
) -> None:
    warehouse = tmp_path / "w.duckdb"
    with duckdb.connect(str(warehouse)) as con:
        con.execute("CREATE TABLE orders AS SELECT 'e' || i AS event_id, 'c' || i || '@example.com' AS email "
                    "FROM range(200) t(i)")  # fmt: skip
    slow(cli, "fresh", "--source", f"duckdb:{warehouse}", "--schedule", "0 * * * *",
         "--when-changed", "SELECT max(email) FROM orders", sql="SELECT event_id, email FROM orders")  # fmt: skip
    stop_mid_run(ctx, clock, "fresh", at(11))
    second = Loop(ctx, clock)
    try:
        second.tick()  # resumes the stopped run
        assert fires(ctx, "fresh")[0].status == "succeeded", second.lines
        stored = freshness_row(ctx, "fresh")
        assert stored == hashlib.sha256(b"c9@example.com").hexdigest()  # a digest, never the address
        cli.ok("orchestrations", "update", "fresh", "-d", "d")
        clock.now = at(12, 0, 5)
        second.tick()
    finally:
        second.close()
    assert [(f.status, f.reason) for f in fires(ctx, "fresh")] == [("succeeded", None), ("skipped", "no new data")]


def test_the_clock_check_warns_past_five_seconds_and_the_store_clock_agrees(ctx: Context) -> None:
    now = utcnow()
    assert store.clock_skew_warning(now, now + timedelta(seconds=4)) is None
    warning = store.clock_skew_warning(now, now - timedelta(seconds=12))
    assert warning is not None and "12 s ahead of the database's" in warning
    assert abs((store.database_now(ctx) - utcnow()).total_seconds()) < 5


@pytest.fixture
def on_postgres(postgres_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OFFRAMP_DATABASE_URL", postgres_url)


@pytest.mark.postgres
def test_on_postgres_the_clock_check_reads_the_servers_clock(on_postgres: None, ctx: Context) -> None:
    assert abs((store.database_now(ctx) - utcnow()).total_seconds()) < 5


def race_claims(ctx: Context, contenders: int = 8) -> list[int | None]:
    with ctx.store.read_session() as session:
        (target,) = scheduled_targets(session)
    barrier = threading.Barrier(contenders)
    results: list[int | None] = [None] * contenders

    def contend(index: int) -> None:
        barrier.wait()
        results[index] = claim(ctx, target, at(11), f"scheduler-{index}")

    threads = [threading.Thread(target=contend, args=(index,)) for index in range(contenders)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def test_on_sqlite_of_threads_claiming_a_fire_at_once_exactly_one_wins(cli: Any, ctx: Context) -> None:
    add(cli, "hourly", "--schedule", "0 * * * *")
    results = race_claims(ctx)
    winners = [result for result in results if result is not None]
    (fire,) = fires(ctx, "hourly")
    assert winners == [fire.id] and fire.claimed_by == f"scheduler-{results.index(fire.id)}"


@pytest.mark.postgres
def test_on_postgres_of_threads_claiming_a_fire_at_once_exactly_one_wins(
    on_postgres: None, cli: Any, ctx: Context
) -> None:
    add(cli, "hourly", "--schedule", "0 * * * *", sql=SQL)
    results = race_claims(ctx)
    winners = [result for result in results if result is not None]
    (fire,) = fires(ctx, "hourly")
    assert winners == [fire.id] and fire.claimed_by == f"scheduler-{results.index(fire.id)}"


# --- messages -----------------------------------------------------------------------------------------------------


def test_a_when_changed_query_that_writes_is_named_as_the_freshness_query(cli: Any, dummy: str) -> None:
    add(cli, "o")
    line = cli("orchestrations", "update", "o", "--when-changed", "DELETE FROM orders").one_line_error()
    assert "the freshness query (--when-changed) is a DELETE statement" in line
    assert "orchestration's SQL" not in line and "plugins show" not in line


@pytest.mark.parametrize(
    ("flag", "value", "form"),
    [("--schedule-timezone", "Mars/Base", "--schedule-timezone with an IANA timezone"),
     ("--max-lateness", "0", "--max-lateness with whole minutes")],
)  # fmt: skip
def test_a_bad_schedule_option_hints_its_flags_form_not_plugins_show(
    cli: Any, dummy: str, flag: str, value: str, form: str
) -> None:
    add(cli, "o")
    line = cli("orchestrations", "update", "o", flag, value).one_line_error(form)
    assert "plugins show" not in line


def test_runs_list_of_an_unknown_group_is_one_line_listing_the_groups(cli: Any, dummy: str) -> None:
    add(cli, "a")
    cli.ok("groups", "add", "nightly", "--orchestration", "a")
    cli("runs", "list", "--group", "nope").one_line_error("no group named 'nope'", "nightly")


def test_schedules_list_with_a_workspace_and_all_workspaces_hints_both_commands(cli: Any, dummy: str) -> None:
    cli.ok("sandboxes", "create", "sb")
    cli("schedules", "list", "-w", "sb", "--all-workspaces").one_line_error(
        "offramp schedules list -w sb", "offramp schedules list --all-workspaces"
    )


def test_enabling_schedules_of_a_sandbox_without_a_test_code_warns_how_to_set_one(cli: Any, dummy: str) -> None:
    cli.ok("sandboxes", "create", "sb")
    result = cli.ok("sandboxes", "update", "sb", "--enable-schedules")
    assert "refused" in result.stderr and "offramp sandboxes update sb --test-event-code" in result.stderr
    cli.ok("sandboxes", "update", "sb", "--test-event-code", "TEST42")
    assert "warning" not in cli.ok("sandboxes", "update", "sb", "--enable-schedules").stderr


def test_a_failed_fire_keeps_the_runners_hint(cli: Any, ctx: Context, clock: Clock) -> None:
    add(cli, "hourly", "--schedule", "0 * * * *")
    cli.ok("sandboxes", "create", "sb")
    cli.ok("sandboxes", "update", "sb", "--enable-schedules")
    loop = Loop(ctx, clock)
    try:
        loop.tick()
        clock.now = at(11, 0, 5)
        loop.tick()
    finally:
        loop.close()
    (fire,) = [f for f in fires(ctx, "hourly") if f.status == "failed"]
    assert "has no test_event_code" in (fire.reason or "") and "--test-event-code" in (fire.reason or "")
    assert any("--test-event-code" in line and "failed" in line for line in loop.lines), loop.lines


def test_once_exits_0_when_the_failed_fire_it_recorded_was_another_schedulers_run(cli: Any, ctx: Context) -> None:
    cli.ok("orchestrations", "add", "broken", "-d", "d", "--source", "duckdb:missing.duckdb",
           "--sql", "SELECT 1 AS event_id", "--schedule", "0 0 1 1 *")  # fmt: skip
    assert cli("run", "broken").exit_code == 1
    (failed,) = runs(ctx, "broken")
    with ctx.store.read_session() as session:
        (target,) = scheduled_targets(session)
    # A scheduler that died before recording the end of its fire's run (which failed).
    with ctx.store.session() as session:
        session.add(ScheduleFire(workspace_id=target.workspace_id, target_kind=target.kind, target_id=target.id,
                                 target_name="broken", fire_at=at(11), status="running", run_id=failed.id,
                                 claimed_by="gone:1:dead", claimed_at=utcnow()))  # fmt: skip
    result = cli("scheduler", "--once")
    assert result.exit_code == 0, result.output
    with ctx.store.read_session() as session:
        fire = session.scalar(select(ScheduleFire).where(ScheduleFire.target_name == "broken"))
        assert fire is not None and fire.status == "failed"


def test_scheduler_help_says_the_clocks_must_agree(cli: Any) -> None:
    text = " ".join(cli.ok("scheduler", "--help").stdout.split())
    assert "clock" in text and "5 s" in text
