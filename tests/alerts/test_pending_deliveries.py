"""Delivery within a deadline: the channels of a run are sent to at once, and the run's process waits for them at
most OFFRAMP_ALERT_DEADLINE_SECONDS; a notice not delivered by then stays `pending`, and is sent again (the same
notice id) before the next run of the orchestration decides its notices, or by `retry_pending` (the scheduler's
loop), at most MAX_ATTEMPTS attempts in all, then `failed`."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import pytest
from alert_servers import free_port, receiving
from alert_setup import Channels, break_vendor, deliveries, mend_vendor, run_process

from offramp.core.alerts.dispatch import MAX_ATTEMPTS, retry_pending, stale_pending
from offramp.core.environment import Environment
from offramp.core.services.alert_channels import hours_ago
from offramp.core.services.context import Context
from offramp.core.state.store import open_store


@contextmanager
def silent_endpoint() -> Iterator[str]:
    """A loopback address that takes connections and never answers (a hung receiver): a request to it times out."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        yield f"http://127.0.0.1:{listener.getsockname()[1]}/hooks/alerts"


@pytest.fixture
def ctx(store: str, alerting: Channels) -> Iterator[Context]:
    env = Environment()
    state_store = open_store(env)
    try:
        yield Context(env=env, store=state_store, actor="test")
    finally:
        state_store.dispose()


def _stale(ctx: Context, **older: Any) -> list[Any]:
    with ctx.store.read_session() as session:
        return [(row.channel, row.kind, row.attempts) for row in stale_pending(session, hours_ago(1), **older)]


def _wait_until_stale(ctx: Context) -> None:
    """Until the pending delivery is older than a process takes to send it (a condition, not a timed assertion)."""
    for _ in range(600):
        if _stale(ctx):
            return
        time.sleep(0.05)
    raise AssertionError("the pending delivery never became stale")


def test_a_hung_channel_does_not_hold_the_run_and_its_notice_is_sent_again_before_the_next_decision(
    cli: Any, alerting: Channels, ctx: Context, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OFFRAMP_ALERT_DEADLINE_SECONDS", "1")
    with silent_endpoint() as hung, receiving() as later:
        cli.ok("alerts", "channels", "add", "slow", "--type", "webhook", "--url", hung, "--credential", "signer")
        cli.ok("alerts", "rules", "set", "orders", "--channel", "slow", "--channel", "hook")
        break_vendor(cli)
        code, failed, err = run_process("orders")
        assert (code, failed["status"]) == (1, "failed")
        # The hook got its notice although the channel before it hangs; the hung one is left pending.
        assert [(b["kind"], b["run"]["id"]) for b in alerting.hook.bodies()] == [("failure", failed["id"])]
        assert [(d["channel"], d["kind"], d["status"]) for d in deliveries(cli)] == [
            ("slow", "failure", "pending"),
            ("hook", "failure", "delivered"),
        ]
        assert "did not deliver within 1 s" in err
        _wait_until_stale(ctx)
        assert _stale(ctx) == [("slow", "failure", 0)]

        # The channel fixed, the next run first sends the pending notice again, then its own.
        cli.ok("alerts", "channels", "update", "slow", "--url", later.url)
        mend_vendor(cli)
        code, recovered, _ = run_process("orders")
        assert code == 0
    stored = next(d for d in deliveries(cli) if d["channel"] == "slow" and d["kind"] == "failure")
    assert (stored["status"], stored["attempts"]) == ("delivered", 1)
    # The channel's pending notice first, then the new one.
    assert [(b["kind"], b["run"]["id"]) for b in later.bodies()] == [
        ("failure", failed["id"]),
        ("recovery", recovered["id"]),
    ]
    first_id = next(b["id"] for b in alerting.hook.bodies() if b["kind"] == "failure")
    # Sent again as it was: the same notice id as the hook's copy, so a receiver that saw it can drop it.
    assert next(b["id"] for b in later.bodies() if b["kind"] == "failure") == first_id
    assert _stale(ctx, older_than=timedelta(0)) == []


def test_retry_pending_sends_again_at_most_max_attempts_then_failed(
    cli: Any, alerting: Channels, ctx: Context, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OFFRAMP_ALERT_DEADLINE_SECONDS", "1")
    with silent_endpoint() as hung:
        cli.ok("alerts", "channels", "add", "slow", "--type", "webhook", "--url", hung, "--credential", "signer")
        cli.ok("alerts", "rules", "set", "orders", "--channel", "slow")
        break_vendor(cli)
        assert run_process("orders")[0] == 1
    assert [(d["channel"], d["status"]) for d in deliveries(cli)] == [("slow", "pending")]
    # Nothing listens there any more: every resend is refused at once.
    cli.ok("alerts", "channels", "update", "slow", "--url", f"http://127.0.0.1:{free_port()}/gone")
    for attempt in range(1, MAX_ATTEMPTS):
        assert retry_pending(ctx, older_than=0) == 1
        (row,) = deliveries(cli)
        assert (row["status"], row["attempts"]) == ("pending", attempt)
        assert "connection refused" in row["error"]
    assert retry_pending(ctx, older_than=0) == 1
    (row,) = deliveries(cli)
    assert (row["status"], row["attempts"]) == ("failed", MAX_ATTEMPTS)
    assert retry_pending(ctx, older_than=0) == 0  # nothing pending any more


def test_retry_pending_delivers_the_stored_notice_with_its_id(
    cli: Any, alerting: Channels, ctx: Context, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OFFRAMP_ALERT_DEADLINE_SECONDS", "1")
    with silent_endpoint() as hung:
        cli.ok("alerts", "channels", "add", "slow", "--type", "webhook", "--url", hung, "--credential", "signer")
        cli.ok("alerts", "rules", "set", "orders", "--channel", "slow")
        break_vendor(cli)
        _, failed, _ = run_process("orders")
    cli.ok("alerts", "channels", "update", "slow", "--url", alerting.hook.url)
    assert retry_pending(ctx, older_than=0) == 1
    (body,) = alerting.hook.bodies()
    assert (body["kind"], body["run"]["id"], body["headline"]) == (
        "failure",
        failed["id"],
        "orchestration 'orders' failed",
    )
    (row,) = deliveries(cli)
    assert (row["status"], row["attempts"]) == ("delivered", 1)
