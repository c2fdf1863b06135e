"""`offramp run` to a webhook, end to end: the real CLI in subprocesses, a DuckDB query, a loopback receiver that
verifies every signature. Every row reaches the receiver once or is accounted for, and the counts add up."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from webhook_receiver import Answer, Receiver, running

SECRET = "e2e-signing-secret-41c9"
ROWS = 57
MISSING_ID_ROW = 13
SQL = f"""
SELECT CASE WHEN i = {MISSING_ID_ROW} THEN NULL ELSE 'ord-' || lpad(i::VARCHAR, 4, '0') END AS event_id,
       'Customer.' || i || '@Example.com' AS email,
       i * 1.25 AS total,
       TIMESTAMP '2026-11-30 12:00:00' + INTERVAL (i) MINUTE AS ordered_at
FROM range(1, {ROWS + 1}) AS t(i) ORDER BY i
"""
EXPECTED_IDS = {f"ord-{i:04d}" for i in range(1, ROWS + 1) if i != MISSING_ID_ROW}


class Offramp:
    """`offramp ...` in its own process, with its own OFFRAMP_HOME and the secret in the environment."""

    def __init__(self, home: Path) -> None:
        self.env = {name: value for name, value in os.environ.items() if not name.startswith("OFFRAMP_")}
        self.env.update({"OFFRAMP_HOME": str(home), "WEBHOOK_SECRET": SECRET})

    def __call__(self, *args: str) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "offramp.core.cli", *args]
        done = subprocess.run(command, env=self.env, capture_output=True, text=True, timeout=120, check=False)
        assert SECRET not in done.stdout + done.stderr
        return done

    def ok(self, *args: str) -> str:
        done = self(*args)
        assert done.returncode == 0, f"offramp {' '.join(args)} exited {done.returncode}:\n{done.stdout}{done.stderr}"
        return done.stdout

    def run(self, orchestration: str) -> dict[str, Any]:
        done = self("run", orchestration, "--json")
        assert done.returncode in (0, 1), done.stderr
        summary: dict[str, Any] = json.loads(done.stdout)
        return summary


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with running(Receiver(secret=SECRET)) as served:
        yield served


@pytest.fixture
def offramp(tmp_path: Path, receiver: Receiver) -> Offramp:
    """A store with credential `signing`, destination `hooks` (batches of 10, email hashed), orchestration
    `orders`; the receiver's record starts empty after the connection test of `destinations add`."""
    cli = Offramp(tmp_path / "home")
    cli.ok("init")
    cli.ok("credentials", "add", "signing", "--type", "hmac-secret", "--set", "secret=env:WEBHOOK_SECRET")
    cli.ok(
        "destinations", "add", "hooks", "--type", "webhook", "--credential", "signing",
        "--set", f"url={receiver.url}", "--set", "batch_size=10", "--set", "hash_columns=email",
    )  # fmt: skip
    assert [request.body for request in receiver.requests] == [b'{"events":[]}'], "the connection test's request"
    cli.ok("orchestrations", "add", "orders", "--destination", "hooks", "--source", "duckdb::memory:", "--sql", SQL)
    receiver.reset()
    return cli


def _assert_counts_add_up(summary: dict[str, Any]) -> None:
    assert summary["rows"]["queried"] == ROWS
    settled = sum(summary["rows"][key] for key in ("sent", "rejected", "failed", "skipped", "unknown"))
    assert settled == ROWS and summary["counts_add_up"] is True


def test_every_row_arrives_once_signed_and_hashed(offramp: Offramp, receiver: Receiver) -> None:
    summary = offramp.run("orders")
    assert summary["status"] == "succeeded", summary
    _assert_counts_add_up(summary)
    assert summary["rows"]["sent"] == ROWS - 1 and summary["rows"]["rejected"] == 1
    assert summary["reasons"]["rejected"] == {"missing_event_id": 1}
    assert Counter(receiver.delivered()) == Counter(EXPECTED_IDS)
    assert set(receiver.statuses()) == {200}, "a request was refused (its signature did not verify)"
    assert all(len(orjson.loads(request.body)["events"]) <= 10 for request in receiver.requests)
    by_id = {event["event_id"]: event for event in receiver.events()}
    assert by_id["ord-0007"] == {
        "event_id": "ord-0007",
        "email": hashlib.sha256(b"customer.7@example.com").hexdigest(),
        "total": "8.75",
        "ordered_at": "2026-11-30T12:07:00+00:00",
    }


def test_a_rate_limit_is_retried_after_the_advised_wait(offramp: Offramp, receiver: Receiver) -> None:
    receiver.script(Answer(429, {"Retry-After": "1"}))
    summary = offramp.run("orders")
    assert summary["status"] == "succeeded", summary
    _assert_counts_add_up(summary)
    assert receiver.statuses().count(429) == 1
    assert Counter(receiver.delivered()) == Counter(EXPECTED_IDS), "every event once, the refused batch resent"


def test_a_400_fails_its_batch_and_the_others_are_sent(offramp: Offramp, receiver: Receiver) -> None:
    receiver.fail_batches_with("ord-0025")
    summary = offramp.run("orders")
    assert summary["status"] == "partially_failed", summary
    _assert_counts_add_up(summary)
    refused = [orjson.loads(item.body)["events"] for item in receiver.requests if item.status == 400]
    refused_ids = {event["event_id"] for batch in refused for event in batch}
    assert len(refused) == 1 and "ord-0025" in refused_ids
    assert summary["rows"]["failed"] == len(refused_ids) and summary["vendor_codes"] == {"HTTP 400": len(refused_ids)}
    assert summary["rows"]["sent"] == ROWS - 1 - len(refused_ids)
    assert Counter(receiver.delivered()) == Counter(EXPECTED_IDS - refused_ids)


def test_a_dry_run_sends_nothing_and_shows_the_bytes_a_run_sends(offramp: Offramp, receiver: Receiver) -> None:
    dry = offramp("run", "orders", "--dry-run", "--json")
    assert dry.returncode == 0, dry.stderr
    samples = json.loads(dry.stdout)["sample_requests"]
    assert samples and receiver.requests == []
    summary = offramp.run("orders")
    assert summary["status"] == "succeeded", summary
    # Batches may be cut elsewhere in a real run; each event's bytes, and the body's frame, are the same.
    sent = {orjson.dumps(event) for request in receiver.requests for event in orjson.loads(request.body)["events"]}
    for sample in samples:
        events = [orjson.dumps(event) for event in sample["events"]]
        assert orjson.dumps(sample) == b'{"events":[' + b",".join(events) + b"]}"
        assert set(events) <= sent
    for request in receiver.requests:
        events = [orjson.dumps(event) for event in orjson.loads(request.body)["events"]]
        assert request.body == b'{"events":[' + b",".join(events) + b"]}"
