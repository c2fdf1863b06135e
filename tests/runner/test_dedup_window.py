"""Never more duplicates than TikTok's deduplication window allows.

A run killed (SIGKILL) with requests in flight leaves events TikTok may hold although the ledger does not. TikTok
drops a resend within 48 hours of the first delivery and counts it again after that. So a resume, or a mode `new`
run, resends those events within the window and holds them back after it (`unknown`), unless `--resend-unknown`.

Passing 49 hours: the emulator's clock is moved with its control API, so that it counts a late resend again, as
TikTok would. offramp's side of the decision is the time each request was recorded as sent (`run_requests.sent_at`),
so the test moves exactly those timestamps of the killed run 49 hours back in the store: the real data of a real
kill, aged, rather than a clock offset that would also move leases, token expiry and every other time offramp
reads, and that production code would have to honour for tests only.
"""

from __future__ import annotations

import json
import signal
from collections import Counter
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import ORDERS_SQL, Emulator, set_up, start_run, wait_until, write_orders
from sqlalchemy import select

from offramp.core.environment import Environment
from offramp.core.state.models import InFlightRequest
from offramp.core.state.store import StateStore, open_store
from offramp.plugins.tiktok.emulator import DEFAULT_APP_SECRET

ORDERS = 1000  # 1,000 events, 2,000 rows, in batches of 50: the run lasts long enough to be killed in flight
BATCH = 50
WINDOW = timedelta(hours=48)  # TikTok's, as its destination type declares
LATE = timedelta(hours=49)


@pytest.fixture
def state_store() -> Iterator[StateStore]:
    store = open_store(Environment())
    yield store
    store.dispose()


def in_flight(store: StateStore) -> set[str]:
    """The event keys of the requests the store holds as sent but not answered."""
    with store.read_session() as session:
        requests = session.scalars(select(InFlightRequest).where(InFlightRequest.settled.is_(False)))
        return {key for request in requests for key in request.event_keys}


def age_requests(store: StateStore, by: timedelta) -> None:
    """Move the recorded send times back: the killed run's requests were sent ``by`` ago."""
    with store.session() as session:
        for request in session.scalars(select(InFlightRequest)):
            request.sent_at = request.sent_at - by


def received(emulator: Emulator) -> Counter[str]:
    """How many times the emulator received each event id (accepted or dropped as a duplicate)."""
    return Counter(item["payload"]["event_id"] for item in emulator.events())


def runs(cli: Any) -> list[dict[str, Any]]:
    data: list[dict[str, Any]] = json.loads(cli.ok("runs", "list", "--json").stdout)
    return data


@pytest.fixture
def orders(
    cli: Any, initialized: Any, emulator: Emulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> tuple[str, dict[str, int]]:
    """Orchestration `orders` over 600 orders; returns its name and the rows (line items) of each event id."""
    monkeypatch.setenv("EMULATOR_APP_SECRET", DEFAULT_APP_SECRET)
    monkeypatch.setenv("OFFRAMP_RUN_LEASE_SECONDS", "2")
    path = tmp_path / "orders.duckdb"
    write_orders(path, ORDERS)
    rows = {f"ORD-{order}": 1 + order % 3 for order in range(1, ORDERS + 1)}
    return set_up(cli, emulator, f"duckdb:{path}"), rows


def kill_with_requests_in_flight(cli: Any, emulator: Emulator, store: StateStore, *args: str) -> set[str]:
    """Run, SIGKILL the run while requests are in flight, wait until its lease lapses; the keys in flight."""
    emulator.faults(latency_ms=400)  # requests take a while: some are always in flight
    process = start_run(*args, "--concurrency", "2")

    def going(condition: Any) -> Any:
        def check() -> bool:
            if process.poll() is not None:
                out, err = process.communicate()
                raise AssertionError(f"the run ended before it was killed:\n{out}{err}")
            return bool(condition())

        return check

    try:
        wait_until(going(lambda: len(emulator.accepted_ids()) >= 2 * BATCH), "the run sent two batches")
        wait_until(going(lambda: in_flight(store)), "a request was in flight")
    finally:
        process.send_signal(signal.SIGKILL)
        process.communicate()
    keys = in_flight(store)
    assert keys, "the run was killed with nothing in flight"
    wait_until(lambda: runs(cli)[0]["status"] == "interrupted", "the killed run's lease lapsed")
    emulator.faults(latency_ms=0)
    return keys


def pass_the_window(emulator: Emulator, store: StateStore) -> None:
    age_requests(store, LATE)
    moved = httpx.post(f"{emulator.base_url}/_emulator/clock", json={"advance_seconds": LATE.total_seconds()})
    moved.raise_for_status()


def adds_up(summary: dict[str, Any]) -> bool:
    parts = ("sent", "rejected", "failed", "skipped", "unknown")
    return bool(summary["rows"]["queried"] == sum(summary["rows"][name] for name in parts))


def test_inside_the_window_a_resume_resends_what_was_in_flight(
    cli: Any, orders: tuple[str, dict[str, int]], emulator: Emulator, state_store: StateStore
) -> None:
    name, rows = orders
    flying = kill_with_requests_in_flight(cli, emulator, state_store, name)
    # A dry resume is refused, writing nothing: it would record its would-be sends in the real run (found by review:
    # the run then said succeeded with every event sent, and a real resume found nothing left).
    interrupted = runs(cli)
    line = cli("run", name, "--resume", "--dry-run").one_line_error("--dry-run")
    assert "--resume cannot be a dry run" in line
    assert runs(cli) == interrupted

    result = cli("run", name, "--resume", "--json")
    assert result.exit_code == 0, result.output
    assert "deduplication window" not in result.stderr
    summary = json.loads(result.stdout)
    assert summary["status"] == "succeeded" and summary["rows"]["unknown"] == 0 and adds_up(summary)
    assert summary["rows"]["sent"] == sum(rows.values())
    counts = received(emulator)
    assert all(counts[key] >= 1 for key in flying)  # resent (TikTok drops any it had: within 48 h)
    assert set(emulator.accepted_ids()) == set(rows) and len(emulator.accepted_ids()) == len(rows)
    assert not in_flight(state_store)  # every request of the run is answered now


def test_after_the_window_a_resume_holds_back_what_was_in_flight_until_asked(
    store: str, cli: Any, orders: tuple[str, dict[str, int]], emulator: Emulator, state_store: StateStore
) -> None:
    name, rows = orders
    flying = kill_with_requests_in_flight(cli, emulator, state_store, name)
    before = received(emulator)
    pass_the_window(emulator, state_store)

    result = cli("run", name, "--resume", "--json")
    assert result.exit_code == 0, result.output
    # Said before anything is sent, on stderr: how many, how long ago, and the flag that sends them.
    assert f"{len(flying)} events were in requests whose answers were never recorded" in result.stderr
    assert "sent 49 h ago" in result.stderr
    assert "48 h deduplication window" in result.stderr and "--resend-unknown" in result.stderr
    summary = json.loads(result.stdout)
    unknown_rows = sum(rows[key] for key in flying)
    assert (
        summary["rows"]["unknown"] == unknown_rows
        and summary["reasons"]["unknown"]["unknown_past_dedup_window"] == unknown_rows
    )
    assert summary["status"] == "partially_failed" and adds_up(summary)
    assert (
        summary["rows"]["queried"] == sum(rows.values())
        and summary["rows"]["sent"] == summary["rows"]["queried"] - unknown_rows
    )
    assert f"offramp run {name} --resume --resend-unknown" in summary["hint"]
    after = received(emulator)
    assert all(after[key] == before[key] for key in flying), "an event of unknown outcome was sent again"
    assert all(count == 1 for count in after.values()), "an event went to TikTok twice"

    shown = json.loads(cli.ok("runs", "show", summary["id"], "--json").stdout)
    assert shown["rows"]["unknown"] == unknown_rows and shown["counts_add_up"]
    text = cli.ok("runs", "show", summary["id"]).stdout
    assert f"unknown {unknown_rows}: holds" in text
    # Listed under unknown, not as rejections (found by review: they were under "rejected by reason").
    assert "unknown by reason" in text and f"unknown_past_dedup_window: {unknown_rows}" in text, text
    assert "rejected by reason" not in text, text
    listed = json.loads(cli.ok("runs", "show", summary["id"], "--unknown", "--format", "json").stdout)
    assert {row["event_id"] for row in listed} == flying
    assert {row["reason"] for row in listed} == {"unknown_past_dedup_window"}

    # Asked for: they are sent, and TikTok, 49 hours later, counts those it already had a second time.
    result = cli("run", name, "--resume", "--resend-unknown", "--json")
    assert result.exit_code == 0, result.output
    assert "sending them again (--resend-unknown)" in result.stderr
    summary = json.loads(result.stdout)
    assert summary["status"] == "succeeded" and summary["rows"]["unknown"] == 0 and adds_up(summary)
    assert summary["rows"]["sent"] == sum(rows.values())
    resent = received(emulator)
    assert all(resent[key] == before[key] + 1 for key in flying)
    assert set(emulator.accepted_ids()) == set(rows)


def test_a_mode_new_run_after_the_window_does_not_resend_what_a_killed_run_had_in_flight(
    cli: Any, orders: tuple[str, dict[str, int]], emulator: Emulator, state_store: StateStore
) -> None:
    _, rows = orders
    name = "new-orders"
    source = f"duckdb:{Path.cwd() / 'orders.duckdb'}"
    cli.ok(
        "orchestrations", "add", name, "--destination", "stores", "--source", source, "--sql", ORDERS_SQL,
        "--map", "Order Completed=Purchase", "--mode", "new",
    )  # fmt: skip
    flying = kill_with_requests_in_flight(cli, emulator, state_store, name)
    before = received(emulator)
    pass_the_window(emulator, state_store)

    result = cli("run", name, "--json")
    assert result.exit_code == 0, result.output
    assert "deduplication window" in result.stderr
    summary = json.loads(result.stdout)
    unknown_rows = sum(rows[key] for key in flying)
    assert summary["rows"]["unknown"] == unknown_rows and adds_up(summary)
    assert summary["reasons"]["unknown"]["unknown_past_dedup_window"] == unknown_rows
    after = received(emulator)
    assert all(after[key] == before[key] for key in flying), "an event of unknown outcome was sent again"
    assert all(count == 1 for count in after.values()), "an event went to TikTok twice"

    # Asked for, a later run sends them; what any run delivered stays skipped.
    result = cli("run", name, "--resend-unknown", "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["rows"]["unknown"] == 0 and adds_up(summary)
    assert summary["rows"]["sent"] == unknown_rows
    assert all(received(emulator)[key] == before[key] + 1 for key in flying)
