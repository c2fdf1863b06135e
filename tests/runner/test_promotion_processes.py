"""Promotion under real processes: two promotions at once (of two sandboxes, and of one sandbox twice), `kill -9`
in the middle of one, a run in progress while production's configuration changes under it, and a direct edit of
production during a promotion. On SQLite and on PostgreSQL (``store`` comes first in each test: it picks the store
the other fixtures set up; ``postgres_store`` for what only PostgreSQL can show); every promotion that races or is
killed is its own `offramp` process, as a user's would be.
"""

from __future__ import annotations

import copy
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import yaml
from conftest import Emulator, start_run, wait_until

from offramp.plugins.tiktok.emulator import DEFAULT_ADVERTISER_ID, DEFAULT_EVENT_SET_ID

LEGACY_SQL = "SELECT order_id AS event_id, 'Order Completed' AS event, ordered_at AS timestamp, email FROM orders"


@dataclass(frozen=True)
class Finished:
    """What an `offramp` process did: its exit status and both streams."""

    returncode: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


def start(*args: str) -> subprocess.Popen[str]:
    """`offramp ARGS` in its own process (the test's OFFRAMP_HOME, store URL and secrets are in the environment)."""
    command = [sys.executable, "-m", "offramp.core.cli", *args]
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finish(process: subprocess.Popen[str], timeout: float = 120.0) -> Finished:
    try:
        out, err = process.communicate(timeout=timeout)
    finally:
        if process.poll() is None:  # a hung process must not outlive the test
            process.kill()
            process.communicate()
    return Finished(process.returncode, out, err)


def kill_hard(process: subprocess.Popen[str]) -> Finished:
    """`kill -9`: no handler, no rollback, no closing of connections runs in the process."""
    if process.poll() is None:
        os.kill(process.pid, signal.SIGKILL)
    return finish(process, timeout=30)


def promote(name: str, message: str) -> subprocess.Popen[str]:
    return start("sandboxes", "promote", name, "--message", message)


def one_line_error(result: Finished, *needles: str) -> str:
    """A refusal as the user sees it: a non-zero exit, one `offramp: error:` line, no traceback."""
    assert result.returncode != 0, result.output
    assert "Traceback" not in result.output, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("offramp: error: "), result.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


def export(cli: Any, workspace: str | None = None) -> dict[str, Any]:
    args = ("export",) if workspace is None else ("export", "-w", workspace)
    return dict(yaml.safe_load(cli.ok(*args).stdout))


def promotions(cli: Any) -> list[dict[str, Any]]:
    return list(json.loads(cli.ok("promotions", "list", "--json").stdout))


def sandbox_info(cli: Any, name: str) -> dict[str, Any]:
    [found] = [item for item in json.loads(cli.ok("sandboxes", "list", "--json").stdout) if item["name"] == name]
    return dict(found)


def promotion_audit_ids(cli: Any) -> set[int]:
    """The promotions that production's audit trail mentions (the promotion's own event and its objects' events)."""
    events = json.loads(cli.ok("audit", "-w", "production", "--limit", "100000", "--json").stdout)
    return {int(event["details"]["promotion"]) for event in events if "promotion" in event["details"]}


def options_of(document: dict[str, Any], orchestration: str) -> dict[str, Any]:
    [found] = [item for item in document["orchestrations"] if item["name"] == orchestration]
    return dict(found.get("options") or {})


def promoted_export(before: dict[str, Any], sandbox: dict[str, Any]) -> dict[str, Any]:
    """Production's export once ``sandbox`` (its export) is promoted: its destinations, orchestrations and groups;
    production's own credentials (never promoted)."""
    after = copy.deepcopy(before)
    for section in ("destinations", "orchestrations", "groups"):
        after[section] = copy.deepcopy(sandbox[section])
    return after


@pytest.fixture
def production(cli: Any, orchestration: str, orders_file: tuple[Path, int]) -> str:
    """Production: `orders` -> `stores` (the runner's fixture) and a second orchestration `legacy`. The test asks
    for its store first (``store`` or ``postgres_store``)."""
    cli.ok(
        "orchestrations", "add", "legacy", "--destination", "stores", "--source", f"duckdb:{orders_file[0]}",
        "--sql", LEGACY_SQL, "--map", "Order Completed=Purchase",
    )  # fmt: skip
    return orchestration


def add_destination(cli: Any, sandbox: str, name: str) -> None:
    cli.ok(
        "destinations", "add", name, "-w", sandbox, "--type", "tiktok-ads-offline-events", "--credential", "tt",
        "--set", f"advertiser_id={DEFAULT_ADVERTISER_ID}", "--set", f"event_set_id={DEFAULT_EVENT_SET_ID}",
    )  # fmt: skip


# --- Two promotions at once ------------------------------------------------------------------------------------

# Per round, what each of two sandboxes made from the same production revision changes: (orchestration, option,
# value). First two orchestrations, then two fields of one orchestration, then two orchestrations again: each
# merges cleanly once pulled, so the only thing that can stop the second promotion is the first one.
RACES: list[tuple[tuple[str, str, Any], tuple[str, str, Any]]] = [
    (("orders", "attribution_window_days", 7), ("legacy", "attribution_window_days", 14)),
    (("orders", "timezone", "Europe/Berlin"), ("orders", "attribution_window_days", 3)),
    (("legacy", "timezone", "America/New_York"), ("orders", "mode", "new")),
]


def change(cli: Any, sandbox: str, orchestration: str, option: str, value: Any) -> None:
    flag = "--" + option.replace("_", "-")
    cli.ok("orchestrations", "update", orchestration, "-w", sandbox, flag, str(value))


def test_two_promotions_at_once_one_wins_and_the_other_is_told_to_pull(store: str, cli: Any, production: str) -> None:
    for round_number, changes in enumerate(RACES):
        names = [f"race{round_number}-a", f"race{round_number}-b"]
        for name, (orchestration, option, value) in zip(names, changes, strict=True):
            cli.ok("sandboxes", "create", name)
            change(cli, name, orchestration, option, value)
        before = export(cli)
        history = promotions(cli)

        racing = [promote(name, f"round {round_number}: {name}") for name in names]  # started at once
        results = [finish(process) for process in racing]

        succeeded = [i for i, result in enumerate(results) if result.returncode == 0]
        assert len(succeeded) == 1, "\n".join(
            f"{n}: {r.returncode}\n{r.output}" for n, r in zip(names, results, strict=True)
        )
        [winner] = succeeded
        loser = 1 - winner
        one_line_error(results[loser], "to pull", f"offramp sandboxes pull {names[loser]}", "nothing was promoted")
        # Production holds the winner's change, all of it and nothing else; the loser's is nowhere in it.
        orchestration, option, value = changes[winner]
        expected = copy.deepcopy(before)
        changed = next(item for item in expected["orchestrations"] if item["name"] == orchestration)
        changed.setdefault("options", {})[option] = value
        assert export(cli) == expected
        assert [(p["sandbox"], p["message"]) for p in promotions(cli)] == [
            (names[winner], f"round {round_number}: {names[winner]}")
        ] + [(p["sandbox"], p["message"]) for p in history]

        # The loser does as it was told: pull, promote; production then has both changes.
        cli.ok("sandboxes", "pull", names[loser])
        again = finish(promote(names[loser], f"round {round_number}: {names[loser]}, pulled"))
        assert again.returncode == 0, again.output
        document = export(cli)
        for orchestration, option, value in changes:
            assert options_of(document, orchestration)[option] == value
        assert (document["destinations"], document["orchestrations"]) == (
            export(cli, names[loser])["destinations"],
            export(cli, names[loser])["orchestrations"],
        )
        assert len(promotions(cli)) == len(history) + 2
    assert len(promotions(cli)) == 2 * len(RACES)


def test_one_sandbox_promoted_twice_at_once_is_promoted_once(store: str, cli: Any, production: str) -> None:
    for round_number in range(2):  # a promote run twice by mistake (two terminals, a retried CI job)
        name = f"twice{round_number}"
        cli.ok("sandboxes", "create", name)
        change(cli, name, "orders", "attribution_window_days", round_number + 2)
        history = promotions(cli)
        results = [finish(process) for process in [promote(name, "once"), promote(name, "once")]]
        assert sorted(result.returncode == 0 for result in results) == [False, True], [r.output for r in results]
        [refused] = [result for result in results if result.returncode != 0]
        # Told either that it has nothing left to promote, or (when it read the sandbox before the other committed)
        # that the sandbox changed under it: never promoted twice.
        one_line_error(refused, f"sandbox {name!r}")
        assert len(promotions(cli)) == len(history) + 1
        assert options_of(export(cli), "orders")["attribution_window_days"] == round_number + 2
        info = sandbox_info(cli, name)
        assert (info["changes"], info["updates"]) == (0, 0)


# --- kill -9 during promote ------------------------------------------------------------------------------------


@contextmanager
def row_locked(url: str, query: str) -> Iterator[int]:
    """Hold the row lock ``query`` (a SELECT ... FOR UPDATE) takes, on a connection of its own, until the block
    ends; yields that connection's backend pid."""
    engine = sa.create_engine(url)
    connection = engine.connect()
    try:
        pid = int(connection.execute(sa.text("SELECT pg_backend_pid()")).scalar_one())
        assert connection.execute(sa.text(query)).first() is not None, query
        yield pid
    finally:
        connection.rollback()
        connection.close()
        engine.dispose()


def autocommit_rows(url: str, query: str, **params: Any) -> list[tuple[Any, ...]]:
    """Rows of ``query`` read outside any transaction (pg_stat_activity is a snapshot taken once per transaction)."""
    engine = sa.create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as connection:
            return [tuple(row) for row in connection.execute(sa.text(query), params)]
    finally:
        engine.dispose()


@pytest.fixture
def postgres_store(postgres_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """PostgreSQL only (for what only PostgreSQL can show: a transaction stopped half-way on a row lock)."""
    monkeypatch.setenv("OFFRAMP_DATABASE_URL", postgres_url)
    return postgres_url


LOCK_PRODUCTION_ORDERS = (
    "SELECT id FROM orchestrations WHERE name = 'orders' "
    "AND workspace_id = (SELECT id FROM workspaces WHERE name = 'production') FOR UPDATE"
)


@pytest.mark.postgres
def test_a_promotion_killed_half_way_through_its_writes_leaves_production_as_it_was(
    postgres_store: str, cli: Any, production: str
) -> None:
    url = postgres_store
    cli.ok("sandboxes", "create", "eu")
    add_destination(cli, "eu", "stores-eu")
    cli.ok("orchestrations", "update", "orders", "-w", "eu", "--map", "Order Completed=CompletePayment")
    before = export(cli)
    base = sandbox_info(cli, "eu")["base_revision"]

    # The promotion writes destinations before orchestrations: holding production's `orders` row stops it after
    # it recorded the promotion and added `stores-eu`, in the middle of its one transaction.
    with row_locked(url, LOCK_PRODUCTION_ORDERS) as holder:
        process = promote("eu", "EU stores")
        waiting: list[tuple[Any, ...]] = []

        def blocked() -> bool:
            assert process.poll() is None, finish(process).output
            waiting[:] = autocommit_rows(
                url,
                "SELECT pid, query, wait_event_type FROM pg_stat_activity WHERE :holder = ANY(pg_blocking_pids(pid))",
                holder=holder,
            )
            return bool(waiting)

        wait_until(blocked, "the promotion waits for production's orders row", timeout=60)
        [(backend, query, wait_type)] = waiting
        assert wait_type == "Lock" and "orchestrations" in query, (wait_type, query)
        written = {
            str(name)
            for (name,) in autocommit_rows(
                url,
                "SELECT relation::regclass::text FROM pg_locks WHERE pid = :pid AND mode = 'RowExclusiveLock'",
                pid=backend,
            )
        }
        assert {"promotions", "destinations", "audit_events"} <= {name.split(".")[-1] for name in written}, written
        # Half-way, and none of it shows: readers see production as it was.
        assert export(cli) == before
        assert promotions(cli) == []
        assert kill_hard(process).returncode == -signal.SIGKILL
    # Released: the killed process's backend finds its client gone and rolls its transaction back.
    wait_until(
        lambda: not autocommit_rows(url, "SELECT 1 FROM pg_stat_activity WHERE pid = :pid", pid=backend),
        "the killed promotion's backend ended",
        timeout=60,
    )

    assert export(cli) == before
    assert promotions(cli) == []
    assert promotion_audit_ids(cli) == set()
    info = sandbox_info(cli, "eu")
    assert (info["base_revision"], info["changes"], info["updates"]) == (base, 2, 0)

    again = finish(promote("eu", "EU stores"))
    assert again.returncode == 0, again.output
    assert export(cli) == promoted_export(before, export(cli, "eu"))
    assert [p["message"] for p in promotions(cli)] == ["EU stores"]


@dataclass
class Attempt:
    """One sandbox's promotion, to kill: production's export before and after it, the sandbox's base, and the
    promotions recorded before it."""

    sandbox: str
    before: dict[str, Any]
    after: dict[str, Any]
    base: int
    history: list[dict[str, Any]]


def prepare(cli: Any, number: int) -> Attempt:
    """A sandbox made from production now that adds a destination and changes `orders`."""
    name = f"kill{number}"
    cli.ok("sandboxes", "create", name)
    add_destination(cli, name, f"eu-{number}")
    change(cli, name, "orders", "attribution_window_days", number + 1)
    before = export(cli)
    base = int(sandbox_info(cli, name)["base_revision"])
    return Attempt(name, before, promoted_export(before, export(cli, name)), base, promotions(cli))


def landed(cli: Any, attempt: Attempt, what: str) -> bool:
    """Whether the promotion of ``attempt`` happened, after checking it happened entirely or not at all."""
    state = export(cli)
    assert state in (attempt.before, attempt.after), f"{what}: production is neither before nor after"
    history = promotions(cli)
    info = sandbox_info(cli, attempt.sandbox)
    promoted = state == attempt.after
    if promoted:
        assert len(history) == len(attempt.history) + 1 and history[1:] == attempt.history, what
        assert history[0]["sandbox"] == attempt.sandbox, what
        assert info["base_revision"] == info["production_revision"] > attempt.base, what
        assert info["changes"] == 0, what
    else:
        assert history == attempt.history, what
        assert (info["base_revision"], info["changes"], info["updates"]) == (attempt.base, 2, 0), what
    # No audit event of a promotion that was not recorded (nor a recorded one without its events).
    assert promotion_audit_ids(cli) == {p["id"] for p in history}, what
    return promoted


def sqlite_write_locked(database: Path) -> bool:
    """Whether another process holds the SQLite store's write lock (a write transaction is open)."""
    connection = sqlite3.connect(database, timeout=0, isolation_level=None)
    try:
        connection.execute("BEGIN IMMEDIATE")
        connection.execute("ROLLBACK")
        return False
    except sqlite3.OperationalError as exc:
        if "locked" not in str(exc):
            raise
        return True
    finally:
        connection.close()


# When to kill, as fractions of how long a whole promotion process takes (measured first): while it starts, while
# it reads and validates, then densely around its one write transaction near the end (about 0.85-0.95 of its
# run here, on either store), and as it exits.
KILL_AT = (0.3, 0.7, 0.85, 0.88, 0.92, 0.96)


def test_a_promotion_killed_at_any_moment_leaves_production_entirely_before_or_after(
    store: str, cli: Any, production: str, offramp_home: Path
) -> None:
    first = prepare(cli, 0)
    started = time.monotonic()
    measured = finish(promote(first.sandbox, "measured"))
    took = time.monotonic() - started
    assert measured.returncode == 0, measured.output
    assert landed(cli, first, "uninterrupted")

    def settle(attempt: Attempt, what: str) -> None:
        """Check the killed promotion left production before or after; when before, the next promotion works."""
        if landed(cli, attempt, what):
            return
        again = finish(promote(attempt.sandbox, f"{what}, again"))  # a killed promotion does not stop the next
        assert again.returncode == 0, again.output
        assert landed(cli, attempt, f"{what}, promoted again")

    for number, fraction in enumerate(KILL_AT, start=1):
        attempt = prepare(cli, number)
        process = promote(attempt.sandbox, f"attempt {number}")
        time.sleep(took * fraction)
        kill_hard(process)
        settle(attempt, f"killed after {took * fraction:.2f}s of {took:.2f}s")

    if store == "sqlite":
        # The moment the promotion holds the write lock it is inside its one transaction: kill it right then.
        database = offramp_home / "offramp.db"
        for number in range(len(KILL_AT) + 1, len(KILL_AT) + 3):
            attempt = prepare(cli, number)
            process = promote(attempt.sandbox, f"attempt {number}")

            def in_transaction(running: subprocess.Popen[str] = process) -> bool:
                return running.poll() is not None or sqlite_write_locked(database)

            wait_until(in_transaction, "the promotion began its write transaction")
            kill_hard(process)
            settle(attempt, "killed holding the write lock")


# --- A run in progress during a promotion ----------------------------------------------------------------------


def test_a_run_in_progress_finishes_on_the_configuration_it_started_with(
    store: str, cli: Any, production: str, emulator: Emulator
) -> None:
    cli.ok("sandboxes", "create", "rename")
    cli.ok("orchestrations", "update", "orders", "-w", "rename", "--map", "Order Completed=CompletePayment")
    # One batch at a time, each answered slowly: the run is still sending when the promotion lands. 6 batches of 50:
    # about 9 s of sending; a promotion takes about 1 s (a few on a busy machine).
    emulator.faults(latency_ms=1500)
    run = start_run("orders", "--concurrency", "1", "--json")
    try:
        wait_until(lambda: emulator.events() or run.poll() is not None, "the run sent its first batch", timeout=60)
        assert run.poll() is None, "the run ended before its first batch was seen"
        promoted = finish(promote("rename", "CompletePayment"))
        assert promoted.returncode == 0, promoted.output
        assert run.poll() is None, "the run ended before the promotion: nothing was tested"
        assert options_of(export(cli), "orders")["event_name_map"] == {"Order Completed": "CompletePayment"}
        sent_during = len(emulator.events())
    finally:
        ran = finish(run)
    assert ran.returncode == 0, ran.output
    assert json.loads(ran.stdout)["status"] == "succeeded"
    during = emulator.events()
    assert len(during) > sent_during  # it went on sending after the promotion
    assert {item["payload"]["event"] for item in during} == {"Purchase"}  # all of it on the old map

    emulator.faults()
    after = finish(start_run("orders", "--json"))
    assert after.returncode == 0, after.output
    assert {item["payload"]["event"] for item in emulator.events()[len(during) :]} == {"CompletePayment"}


# --- A direct edit of production during a promotion ------------------------------------------------------------

LOCK_PRODUCTION = "SELECT id FROM workspaces WHERE name = 'production' FOR UPDATE"


@pytest.mark.postgres
@pytest.mark.parametrize(
    "held",
    [
        pytest.param(LOCK_PRODUCTION_ORDERS, id="promotion-writing-orders"),
        pytest.param(LOCK_PRODUCTION, id="both-waiting-for-production"),
    ],
)
def test_a_direct_edit_of_production_during_a_promotion_loses_neither_change(
    postgres_store: str, cli: Any, production: str, held: str
) -> None:
    """`orchestrations update` in production while a promotion of the same orchestration is in its transaction:
    the edit waits for the promotion and then changes the promoted object, keeping what the promotion wrote."""
    url = postgres_store
    cli.ok("sandboxes", "create", "rename")
    cli.ok("orchestrations", "update", "orders", "-w", "rename", "--map", "Order Completed=CompletePayment")
    waiting_on = "SELECT pid FROM pg_stat_activity WHERE pid <> :me AND pg_blocking_pids(pid) && CAST(:pids AS int[])"
    # Held by the test, so that the promotion is stopped in its transaction (having locked production, waiting to
    # write `orders`; or waiting for production's lock) while the edit starts behind it.
    with row_locked(url, held) as holder:
        promoting = promote("rename", "CompletePayment")
        found: list[tuple[Any, ...]] = []

        def promotion_waits() -> bool:
            assert promoting.poll() is None, finish(promoting).output
            found[:] = autocommit_rows(url, waiting_on, me=holder, pids=[holder])
            return bool(found)

        wait_until(promotion_waits, "the promotion waits for the held lock", timeout=60)
        [(promotion_backend,)] = found
        editing = start("orchestrations", "update", "orders", "--timezone", "Europe/Berlin")
        wait_until(
            lambda: autocommit_rows(url, waiting_on, me=promotion_backend, pids=[holder, promotion_backend]),
            "the edit waits behind the promotion",
            timeout=60,
        )
    promoted, edited = finish(promoting), finish(editing)
    assert promoted.returncode == 0, promoted.output
    assert edited.returncode == 0, edited.output
    options = options_of(export(cli), "orders")
    assert options["event_name_map"] == {"Order Completed": "CompletePayment"}  # the promotion's change
    assert options["timezone"] == "Europe/Berlin"  # the edit's
