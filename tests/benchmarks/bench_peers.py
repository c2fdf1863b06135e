"""offramp against the script a user would otherwise write, on the same data and the same emulator process.

Run: ``.venv/bin/python tests/benchmarks/bench_peers.py [--rows N]``

The script is correct and reasonably written, not a straw man: DuckDB rows fetched 1,000 at a time, emails trimmed,
lower-cased and hashed with hashlib, phones parsed with phonenumbers (valid ones only, E.164), line items grouped by
order id, events built as dicts, ``json.dumps`` and ``requests`` posting batches of 1,000 with a kept-alive session.
Both sides are timed twice, preparation only and end to end, in one process run after another. Figures are ratios
measured in the same run (this machine is shared and noisy). dlt is not compared yet.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import tempfile
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import duckdb
import httpx
import phonenumbers
import requests

from offramp.core.bench import BENCH_SQL, _configure, emulator_process, write_orders
from offramp.core.environment import Environment
from offramp.core.runner import RunRequest, run_orchestration
from offramp.core.secrets import create_key_file
from offramp.core.services.context import Context
from offramp.core.state.store import initialize
from offramp.credentials.tiktok_session import TikTokCredentialSession
from offramp.plugins.tiktok.emulator import DEFAULT_APP_SECRET, DEFAULT_EVENT_SET_ID
from offramp.plugins.tiktok.events import KNOWN_EVENTS
from offramp.plugins.tiktok.identifiers import e164


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def script_events(orders: Path) -> Iterator[dict[str, Any]]:
    """The hand-written script's preparation: one event per order, as TikTok wants it."""
    now = time.time()
    con = duckdb.connect(str(orders), read_only=True)
    cursor = con.execute(BENCH_SQL)
    current: dict[str, Any] | None = None
    while rows := cursor.fetchmany(1000):
        for event_id, name, when, email, phone, shop, order_id, sku, price, quantity in rows:
            if current is not None and current["event_id"] == event_id:
                current["properties"]["contents"].append({"content_id": sku, "price": price, "quantity": quantity})
                current["properties"]["value"] += price * quantity
                continue
            if current is not None:
                yield current
            current = None
            name = "Purchase" if name == "Order Completed" else name
            if name not in KNOWN_EVENTS:
                continue
            seconds = int(when.replace(tzinfo=ZoneInfo("UTC")).timestamp())
            if seconds < now - 28 * 86400:
                continue
            user: dict[str, list[str]] = {}
            if email and email.strip():
                user["email"] = [_sha(email.strip().lower())]
            if phone:
                try:
                    parsed = phonenumbers.parse(phone, "US")
                    if phonenumbers.is_valid_number(parsed):
                        number = phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
                        user["phone"] = [_sha(number)]
                except phonenumbers.NumberParseException:
                    pass
            if not user:
                continue
            current = {"event": name, "event_time": seconds, "event_id": event_id, "user": user,
                       "properties": {"contents": [{"content_id": sku, "price": price, "quantity": quantity}],
                                      "currency": "USD", "value": price * quantity, "order_id": order_id,
                                      "shop_id": shop}}  # fmt: skip
    if current is not None:
        yield current
    con.close()


def script_run(orders: Path, base_url: str | None, token: str) -> int:
    """Prepare (and, with ``base_url``, post) every event; returns the events prepared."""
    session = requests.Session()
    batch: list[dict[str, Any]] = []
    count = 0

    def flush() -> None:
        if base_url is None or not batch:
            return
        body = {"event_source": "offline", "event_source_id": DEFAULT_EVENT_SET_ID, "data": batch}
        answer = session.post(
            f"{base_url}/open_api/v1.3/event/track/",
            data=json.dumps(body),
            headers={"Access-Token": token, "Content-Type": "application/json"},
            timeout=60,
        )
        assert answer.json()["code"] == 0, answer.text  # fmt: skip

    for event in script_events(orders):
        count += 1
        batch.append(event)
        if len(batch) == 1000:
            flush()
            batch = []
    flush()
    return count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=200_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="offramp-peers-") as home, emulator_process() as base_url:
        import os

        os.environ["OFFRAMP_BENCH_APP_SECRET"] = DEFAULT_APP_SECRET
        env = Environment(home=Path(home), database_url=None)
        store = initialize(env)[0]
        create_key_file(env.key_file)
        ctx = Context(env=env, store=store)
        orders = Path(home) / "orders.duckdb"
        rows = write_orders(orders, args.rows)
        _configure(ctx, base_url, orders)
        token = TikTokCredentialSession(ctx, "production", "bench").access_token()
        run_orchestration(ctx, RunRequest("production", "bench", dry_run=True, limit=100))  # warm-up
        timings: dict[str, float] = {}
        counts: dict[str, int] = {}
        for label, dry in (("prepare", True), ("end to end", False)):
            e164.cache_clear()
            started = time.perf_counter()
            summary = run_orchestration(ctx, RunRequest("production", "bench", dry_run=dry))
            timings[f"offramp {label}"] = time.perf_counter() - started
            counts[f"offramp {label}"] = summary.sent
            started = time.perf_counter()
            counts[f"script {label}"] = script_run(orders, None if dry else base_url, token)
            timings[f"script {label}"] = time.perf_counter() - started
        stats = httpx.get(f"{base_url}/_emulator/stats", timeout=30).json()
        store.dispose()
    print(f"{rows:,} rows; {datetime.now():%Y-%m-%d %H:%M}; emulator stats: {stats.get('events_accepted')} accepted, "
          f"{stats.get('duplicates_dropped')} duplicates")  # fmt: skip
    for label in ("prepare", "end to end"):
        ours, theirs = timings[f"offramp {label}"], timings[f"script {label}"]
        print(f"  {label:10}: offramp {rows / ours:>9,.0f} rows/s, script {rows / theirs:>9,.0f} rows/s, "
              f"offramp is {theirs / ours:4.1f}x the script")  # fmt: skip


if __name__ == "__main__":
    main()
