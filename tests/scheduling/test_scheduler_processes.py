"""Real `offramp scheduler` processes: one at a time on SQLite, a clean stop on SIGTERM that the next scheduler
resumes, and three schedulers on one PostgreSQL store, one of them killed with SIGKILL in the middle of a run.

A schedule that fires every minute would make a test wait for the next minute: instead a scheduler "ran" a few
minutes ago (an in-process scheduler whose clock is set back), so the processes find a missed fire and catch it up
at once (catch-up latest), then fire every minute as usual.
"""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, BinaryIO

import pytest
from conftest import Clock, Emulator, set_up, wait_until, write_orders
from sqlalchemy import select

from offramp.core.runner.ledger import totals
from offramp.core.scheduling.scheduler import Scheduler
from offramp.core.scheduling.store import live_instances
from offramp.core.services.context import Context
from offramp.core.state.models import Run, ScheduleFire
from offramp.plugins.tiktok.emulator import DEFAULT_APP_SECRET


class Processes:
    """`offramp scheduler` processes of one test, their stderr in files; any left running are killed at the end."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.started: list[subprocess.Popen[bytes]] = []
        self.files: list[BinaryIO] = []

    def start(self, *args: str) -> subprocess.Popen[bytes]:
        log = (self.directory / f"scheduler-{len(self.started)}.log").open("wb")
        self.files.append(log)
        command = [sys.executable, "-m", "offramp.core.cli", "scheduler", *args]
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        self.started.append(process)
        return process

    def log(self, process: subprocess.Popen[bytes]) -> str:
        return (self.directory / f"scheduler-{self.started.index(process)}.log").read_text()

    def stop(self, process: subprocess.Popen[bytes]) -> int:
        """SIGTERM, then the exit status once it stopped cleanly."""
        process.send_signal(signal.SIGTERM)
        return process.wait(timeout=120)


@pytest.fixture
def processes(tmp_path: Path) -> Iterator[Processes]:
    started = Processes(tmp_path)
    yield started
    for process in started.started:
        if process.poll() is None:
            process.kill()
            process.wait()
    for log in started.files:
        log.close()


def down_since(ctx: Context, minutes: int) -> None:
    """A scheduler ran ``minutes`` ago and stopped: the schedules' fires since are missed (caught up next)."""
    earlier = Scheduler(ctx, clock=Clock(datetime.now(UTC) - timedelta(minutes=minutes)), say=lambda _line: None)
    earlier.start()
    earlier.tick()
    earlier.close()


def fires(ctx: Context, name: str) -> list[ScheduleFire]:
    with ctx.store.read_session() as session:
        rows = list(
            session.scalars(select(ScheduleFire).where(ScheduleFire.target_name == name).order_by(ScheduleFire.fire_at))
        )
        session.expunge_all()
    return rows


def run_row(ctx: Context, run_id: str | None) -> Run | None:
    if run_id is None:
        return None
    with ctx.store.read_session() as session:
        row = session.get(Run, run_id)
        if row is not None:
            session.expunge(row)
        return row


def sent_so_far(ctx: Context, run_id: str) -> int:
    """Events the run's ledger records as sent (its counts are written when it ends)."""
    with ctx.store.read_session() as session:
        return int(totals(session, run_id)["events"]["sent"])


def running_fire(ctx: Context, name: str) -> ScheduleFire | None:
    """The fire whose run is sending (some events sent already), if any."""
    for fire in fires(ctx, name):
        run = run_row(ctx, fire.run_id)
        if fire.status == "running" and run is not None and run.status == "running" and sent_so_far(ctx, run.id):
            return fire
    return None


def slow_orchestration(cli: Any, name: str = "long") -> str:
    """A dummy destination that takes about five seconds for 200 events; an orchestration on it every minute."""
    cli.ok("destinations", "add", "slow", "--type", "dummy", "--credential", "tok",
           "--set", "batch_size=1", "--set", "latency_ms=100")  # fmt: skip
    sql = "SELECT 'e' || i AS event_id, 'c' || i || '@example.com' AS email FROM range(200) t(i)"
    cli.ok("orchestrations", "add", name, "-d", "slow", "--sql", sql, "--schedule", "* * * * *")
    return name


def test_on_sqlite_a_second_scheduler_is_refused_naming_the_first(cli: Any, ctx: Context, processes: Processes) -> None:
    first = processes.start("--poll", "0.5")

    def registered() -> bool:
        with ctx.store.read_session() as session:
            return bool(live_instances(session))

    wait_until(registered, "the first scheduler registered")
    line = cli("scheduler", "--once").one_line_error("another scheduler is running on", f"(pid {first.pid})")
    assert "PostgreSQL" in line
    assert processes.stop(first) == 0, processes.log(first)
    assert "stopped" in processes.log(first)
    cli.ok("scheduler", "--once")  # the first one stopped: the next may start at once


def test_sigterm_ends_the_run_cancelled_and_the_next_scheduler_resumes_it(
    cli: Any, ctx: Context, processes: Processes
) -> None:
    name = slow_orchestration(cli)
    down_since(ctx, 2)
    first = processes.start("--poll", "0.5")
    wait_until(lambda: running_fire(ctx, name) is not None, "the caught-up fire runs")
    assert processes.stop(first) == 0, processes.log(first)
    fire = next(f for f in fires(ctx, name) if f.run_id is not None)
    run = run_row(ctx, fire.run_id)
    assert run is not None
    assert (fire.status, run.status) == ("cancelled", "cancelled"), processes.log(first)
    assert 0 < run.sent < 200
    assert "stopping" in processes.log(first)

    second = processes.start("--once")
    assert second.wait(timeout=120) == 0, processes.log(second)
    resumed = next(f for f in fires(ctx, name) if f.id == fire.id)
    run = run_row(ctx, fire.run_id)
    assert run is not None
    assert (resumed.status, resumed.run_id) == ("succeeded", run.id)
    assert resumed.claimed_by != fire.claimed_by
    assert (run.status, run.sent, run.lease_generation) == ("succeeded", 200, 2)
    assert f"resuming run {run.id}" in processes.log(second)


@pytest.fixture
def on_postgres(postgres_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OFFRAMP_DATABASE_URL", postgres_url)


ORDERS = 1500


@pytest.mark.postgres
def test_three_schedulers_one_killed_mid_run_every_fire_runs_once_and_tiktok_gets_each_event_once(
    on_postgres: None, cli: Any, initialized: Path, ctx: Context, emulator: Emulator, processes: Processes,
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    monkeypatch.setenv("EMULATOR_APP_SECRET", DEFAULT_APP_SECRET)
    monkeypatch.setenv("OFFRAMP_RUN_LEASE_SECONDS", "2")
    path = tmp_path / "orders.duckdb"
    write_orders(path, ORDERS)  # every order has an email: TikTok should receive every one of them
    expected = {f"ORD-{number}" for number in range(1, ORDERS + 1)}
    name = set_up(cli, emulator, f"duckdb:{path}")
    cli.ok("orchestrations", "update", name, "--mode", "new", "--schedule", "* * * * *")
    emulator.faults(latency_ms=300)  # a run of several seconds, to be killed in the middle of
    down_since(ctx, 2)
    schedulers = [processes.start("--poll", "0.5") for _ in range(3)]

    wait_until(lambda: running_fire(ctx, name) is not None, "a scheduler's run sends")
    killed_fire = running_fire(ctx, name)
    assert killed_fire is not None and killed_fire.claimed_by is not None
    killed_pid = int(killed_fire.claimed_by.rsplit(":", 2)[1])
    (victim,) = [process for process in schedulers if process.pid == killed_pid]
    victim.send_signal(signal.SIGKILL)
    victim.wait()

    def ended(fire_id: int) -> bool:
        fire = next(f for f in fires(ctx, name) if f.id == fire_id)
        return fire.status not in ("claimed", "running")

    wait_until(lambda: ended(killed_fire.id), "another scheduler resumed and finished the killed run", 180)
    emulator.faults(latency_ms=0)
    # Then the schedule goes on, minute by minute: wait for a fire after the killed one to end.
    wait_until(
        lambda: any(
            f.fire_at > killed_fire.fire_at and f.status not in ("claimed", "running") for f in fires(ctx, name)
        ),
        "the next minute's fire",
        180,
    )
    survivors = [process for process in schedulers if process is not victim]
    for process in survivors:
        assert processes.stop(process) == 0, processes.log(process)

    recorded = fires(ctx, name)
    instants = [fire.fire_at for fire in recorded]
    # No fire lost, none doubled: one record per minute, from the first caught-up fire on.
    assert instants == [instants[0] + timedelta(minutes=i) for i in range(len(instants))]
    logs = "\n".join(processes.log(process) for process in schedulers)
    assert {fire.status for fire in recorded} <= {"succeeded", "skipped"}, logs
    ran = [fire for fire in recorded if fire.status == "succeeded"]
    with ctx.store.read_session() as session:
        run_ids = list(session.scalars(select(Run.id).where(Run.orchestration_name == name)))
    assert sorted(fire.run_id or "" for fire in ran) == sorted(run_ids)  # each fire ran once, in one run

    taken = next(fire for fire in recorded if fire.id == killed_fire.id)
    run = run_row(ctx, taken.run_id)
    assert run is not None and taken.status == "succeeded"
    assert taken.claimed_by != killed_fire.claimed_by  # resumed by another scheduler
    assert run.lease_generation >= 2 and run.id == killed_fire.run_id
    resumers = [p for p in survivors if f"resuming run {run.id}" in processes.log(p)]
    assert len(resumers) == 1

    received = [item["payload"]["event_id"] for item in emulator.events()]
    assert set(received) == expected  # nothing missing, nothing unexpected
    duplicates = len(received) - len(set(received))
    # What the killed scheduler had in flight was sent again within TikTok's deduplication window: counted there.
    assert duplicates == sum(1 for item in emulator.events() if item["status"] == "duplicate")
    print(f"\n{len(recorded)} fires, {len(ran)} run, {duplicates} duplicate deliveries deduplicated by TikTok")


def test_once_runs_what_is_due_and_exits_1_when_a_fire_failed(cli: Any, ctx: Context) -> None:
    cli.ok("orchestrations", "add", "good", "-d", "d", "--sql", "SELECT 'e1' AS event_id, 'a@example.com' AS email",
           "--schedule", "* * * * *")  # fmt: skip
    cli.ok("orchestrations", "add", "broken", "-d", "d", "--source", "duckdb:missing.duckdb",
           "--sql", "SELECT 1 AS event_id", "--schedule", "* * * * *")  # fmt: skip
    down_since(ctx, 3)
    result = cli("scheduler", "--once")
    assert result.exit_code == 1, result.output
    statuses = {fire.target_name: fire.status for fire in fires(ctx, "good") + fires(ctx, "broken")
                if fire.status != "skipped"}  # fmt: skip
    assert statuses == {"good": "succeeded", "broken": "failed"}
    assert "orchestration broken fire" in result.stderr and "failed" in result.stderr


@pytest.mark.postgres
def test_a_group_whose_scheduler_is_killed_mid_member_is_resumed_by_another_keeping_what_succeeded(
    on_postgres: None, cli: Any, ctx: Context, processes: Processes, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OFFRAMP_RUN_LEASE_SECONDS", "2")
    slow_orchestration(cli)
    cli.ok("orchestrations", "update", "long", "--unset", "schedule")
    cli.ok("orchestrations", "add", "quick", "-d", "d", "--sql", "SELECT 'e1' AS event_id, 'a@example.com' AS email")
    cli.ok("groups", "add", "g", "--orchestration", "quick", "--orchestration", "long", "--schedule", "0 * * * *")
    down_since(ctx, 61)  # the last hour's fire was missed: caught up at once
    schedulers = [processes.start("--poll", "0.5") for _ in range(2)]

    def member_sending() -> ScheduleFire | None:
        with ctx.store.read_session() as session:
            run = session.scalar(select(Run).where(Run.orchestration_name == "long", Run.status == "running"))
        group_fires = [f for f in fires(ctx, "g") if f.status == "running"]
        return group_fires[0] if run is not None and group_fires and sent_so_far(ctx, run.id) else None

    wait_until(lambda: member_sending() is not None, "the group's second member sends")
    fire = member_sending()
    assert fire is not None and fire.claimed_by is not None
    (victim,) = [p for p in schedulers if p.pid == int(fire.claimed_by.rsplit(":", 2)[1])]
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    wait_until(lambda: next(f for f in fires(ctx, "g") if f.id == fire.id).status == "succeeded",
               "the other scheduler resumed the group run", 180)  # fmt: skip
    (survivor,) = [p for p in schedulers if p is not victim]
    assert processes.stop(survivor) == 0, processes.log(survivor)

    done = next(f for f in fires(ctx, "g") if f.id == fire.id)
    assert done.claimed_by != fire.claimed_by and done.run_id == fire.run_id
    with ctx.store.read_session() as session:
        members = list(session.scalars(select(Run).where(Run.group_run_id == done.run_id).order_by(Run.started_at)))
    assert [(run.orchestration_name, run.status) for run in members] == [("quick", "succeeded"), ("long", "succeeded")]
    assert members[1].sent == 200 and members[1].lease_generation >= 2  # the killed member resumed, not rerun
    assert f"resuming run {done.run_id}" in processes.log(survivor)


def registered_pids(ctx: Context) -> set[int]:
    with ctx.store.read_session() as session:
        return {row.pid for row in live_instances(session)}


def test_on_sqlite_a_scheduler_killed_with_sigkill_does_not_block_the_next_for_its_lease(
    cli: Any, ctx: Context, processes: Processes, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OFFRAMP_RUN_LEASE_SECONDS", "3600")  # its lease would hold the store for an hour
    first = processes.start("--poll", "0.5")
    wait_until(lambda: first.pid in registered_pids(ctx), "the first scheduler registered")
    first.send_signal(signal.SIGKILL)
    first.wait()
    cli.ok("scheduler", "--once")  # its pid is gone on this machine: it is marked stopped, the next one runs
    assert first.pid not in registered_pids(ctx)


def test_on_sqlite_a_refused_scheduler_says_when_the_others_lease_lapses(
    cli: Any, ctx: Context, processes: Processes
) -> None:
    first = processes.start("--poll", "0.5")
    wait_until(lambda: first.pid in registered_pids(ctx), "the first scheduler registered")
    cli("scheduler", "--once").one_line_error(f"(pid {first.pid})", "its lease lapses at")
    assert processes.stop(first) == 0, processes.log(first)


def test_on_sqlite_of_two_schedulers_started_at_once_one_runs_and_the_other_is_refused(
    cli: Any, ctx: Context, processes: Processes
) -> None:
    pair = [processes.start("--poll", "0.5") for _ in range(2)]
    wait_until(lambda: any(p.poll() is not None for p in pair), "one of the two schedulers gave up")
    (refused,) = [p for p in pair if p.poll() is not None]
    (running,) = [p for p in pair if p is not refused]
    assert refused.returncode == 1 and "another scheduler is running on" in processes.log(refused)
    assert f"(pid {running.pid})" in processes.log(refused)
    wait_until(lambda: registered_pids(ctx) == {running.pid}, "the other one registered, alone")
    assert processes.stop(running) == 0, processes.log(running)


@pytest.mark.postgres
def test_a_takeover_queued_longer_than_the_lease_is_not_taken_twice(
    on_postgres: None, cli: Any, ctx: Context, processes: Processes, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OFFRAMP_RUN_LEASE_SECONDS", "2")
    name = slow_orchestration(cli)
    down_since(ctx, 2)
    killed = processes.start("--once")
    wait_until(lambda: running_fire(ctx, name) is not None, "the first scheduler's run sends")
    killed.send_signal(signal.SIGKILL)
    killed.wait()
    # A second orchestration keeps B's only worker busy for longer than the lease.
    sql = "SELECT 'h' || i AS event_id, 'c' || i || '@example.com' AS email FROM range(300) t(i)"
    cli.ok("orchestrations", "add", "hog", "-d", "slow", "--sql", sql, "--schedule", "* * * * *")
    down_since(ctx, 2)
    lines_b: list[str] = []
    lines_c: list[str] = []
    b = Scheduler(ctx, workers=1, say=lines_b.append)
    c = Scheduler(ctx, workers=2, say=lines_c.append)
    b.start()
    try:
        b.tick()  # hog fires and holds the worker
        wait_until(lambda: bool(fires(ctx, "hog")) and fires(ctx, "hog")[-1].status == "running", "hog runs")
        killed_fire = next(f for f in fires(ctx, name) if f.status == "running")
        wait_until(lambda: (datetime.now(UTC) - killed_fire.claimed_at).total_seconds() > 3, "the lease lapsed")
        b.tick()  # B plans to take the killed fire over: queued behind hog
        planned = datetime.now(UTC)
        wait_until(lambda: (datetime.now(UTC) - planned).total_seconds() > 3, "B's takeover waited longer than a lease")
        c.start()
        c.tick()
        c.wait()
        b.wait()
    finally:
        b.close()
        c.close()
    resumers = [lines for lines in (lines_b, lines_c) if any("resuming run" in line for line in lines)]
    assert len(resumers) == 1, (lines_b, lines_c)
    done = next(f for f in fires(ctx, name) if f.id == killed_fire.id)
    run = run_row(ctx, done.run_id)
    assert done.status == "succeeded" and run is not None and run.id == killed_fire.run_id
    assert (run.status, run.sent, run.lease_generation) == ("succeeded", 200, 2)
