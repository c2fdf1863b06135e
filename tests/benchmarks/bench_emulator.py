"""Ingest rate of the TikTok emulator: events per second through event/track/ with full validation.

Run it (it is not a pytest module, so the test suite never collects it)::

    .venv/bin/python tests/benchmarks/bench_emulator.py [--events N] [--connections C]

It starts `offramp emulator tiktok` as a subprocess (its own process, as a benchmark of offramp would), gets a token
through the OAuth endpoint, prebuilds valid request bodies of 1000 events each (every event_id distinct, so
nothing is deduplicated away), and replays them over a few keep-alive connections from this process
(``send_all`` of ``offramp.plugins.tiktok.commands.benchmark``, which ``offramp bench`` and bench_peers.py use for
their ceiling too).
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import time
from typing import Any

import httpx
import orjson

from offramp.plugins.tiktok.commands.benchmark import BATCH, bench_emulator, cpu_seconds, emulator_token, send_all
from offramp.plugins.tiktok.emulator import DEFAULT_EVENT_SET_ID

_PLACEHOLDER = b"BATCH-000000"


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _template() -> bytes:
    """One request body whose event_ids contain a placeholder that each prebuilt copy replaces."""
    events: list[dict[str, Any]] = []
    for i in range(BATCH):
        events.append(
            {
                "event": "Purchase" if i % 5 else "CompletePayment",
                "event_time": 1_795_300_000 + i,
                "event_id": f"{_PLACEHOLDER.decode()}-{i:04d}",
                "user": {
                    "email": [_sha(f"customer{i}@example.com")],
                    "phone": [_sha(f"+1415555{i:04d}")],
                    "external_id": [_sha(f"crm-{i}")],
                },
                "properties": {
                    "currency": "USD",
                    "value": 59.98,
                    "order_id": f"order-{i}",
                    "shop_id": "store-017",
                    "content_type": "product",
                    "event_channel": "in_store",
                    "contents": [
                        {"content_id": "SKU-1", "content_name": "Socks", "price": 29.99, "quantity": 2},
                        {"content_id": "SKU-7", "content_name": "Hat", "price": 0.0, "quantity": 1},
                    ],
                },
            }
        )
    body = {"event_source": "offline", "event_source_id": DEFAULT_EVENT_SET_ID, "partner_name": "bench", "data": events}
    return orjson.dumps(body)


def _bodies(count: int) -> list[bytes]:
    template = _template()
    return [template.replace(_PLACEHOLDER, b"BATCH-%06d" % n) for n in range(count)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=500_000, help="events to send (rounded up to 1000s)")
    parser.add_argument("--connections", type=int, default=4, help="concurrent keep-alive connections")
    args = parser.parse_args(argv)

    requests = max(1, -(-args.events // BATCH))
    warmup = _bodies(requests + 5)
    bodies, warmup = warmup[5:], warmup[:5]
    size = len(bodies[0])
    with bench_emulator() as emulator:
        token = emulator_token(emulator.base_url)
        send_all(emulator.base_url, token, warmup, 1)
        cpu_before, client_before = cpu_seconds(emulator.process.pid), time.process_time()
        elapsed = send_all(emulator.base_url, token, bodies, args.connections)
        cpu_after, client_cpu = cpu_seconds(emulator.process.pid), time.process_time() - client_before
        stats = httpx.get(f"{emulator.base_url}/_emulator/stats").json()
    events = requests * BATCH
    accepted = stats["events_accepted"] - len(warmup) * BATCH
    if accepted != events:
        raise SystemExit(f"the emulator accepted {accepted} of {events} events: {stats}")
    print(
        f"{events} events in {requests} requests of {BATCH} ({size / 1e6:.2f} MB each), {args.connections} "
        f"connections: {elapsed:.2f} s, {events / elapsed:,.0f} events/s, {requests / elapsed:.1f} requests/s"
    )
    if cpu_before is not None and cpu_after is not None:
        busy = cpu_after - cpu_before
        print(f"emulator: {busy:.2f} CPU s ({busy / elapsed:.0%} of one core), {events / busy:,.0f} events per CPU s")
    print(f"client: {client_cpu:.2f} CPU s ({client_cpu / elapsed:.0%} of one core)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
