"""Ingest rate of the TikTok emulator: events per second through event/track/ with full validation.

Run it (it is not a pytest module, so the test suite never collects it)::

    .venv/bin/python tests/benchmarks/bench_emulator.py [--events N] [--connections C]

It starts `offramp emulator tiktok` as a subprocess (its own process, as a benchmark of offramp would), gets a token
through the OAuth endpoint, prebuilds valid request bodies of 1000 events each (every event_id distinct, so
nothing is deduplicated away), and replays them over a few keep-alive connections from this process.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import queue
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import orjson

from offramp.plugins.tiktok.emulator import (
    ADMIN_AUTH_CODE,
    DEFAULT_APP_ID,
    DEFAULT_APP_SECRET,
    DEFAULT_EVENT_SET_ID,
    EmulatorConfig,
    start_emulator_process,
)

BATCH = 1000
TRACK = "/open_api/v1.3/event/track/"
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


def _token(base_url: str) -> str:
    body = {"app_id": DEFAULT_APP_ID, "secret": DEFAULT_APP_SECRET, "auth_code": ADMIN_AUTH_CODE}
    answer = httpx.post(f"{base_url}/open_api/v1.3/oauth2/access_token/", json=body).json()
    assert answer["code"] == 0, answer
    return str(answer["data"]["access_token"])


def _send_all(base_url: str, token: str, bodies: list[bytes], connections: int) -> float:
    """Send every body over `connections` keep-alive connections; returns the elapsed seconds."""
    work: queue.SimpleQueue[bytes | None] = queue.SimpleQueue()
    for body in bodies:
        work.put(body)
    for _ in range(connections):
        work.put(None)
    failures: list[str] = []
    headers = {"Access-Token": token, "Content-Type": "application/json"}

    def worker() -> None:
        with httpx.Client(base_url=base_url, headers=headers, timeout=60) as client:
            while (body := work.get()) is not None:
                answer = client.post(TRACK, content=body)
                if answer.status_code != 200 or answer.json()["code"] != 0:
                    failures.append(answer.text[:200])

    threads = [threading.Thread(target=worker) for _ in range(connections)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    if failures:
        raise SystemExit(f"{len(failures)} requests failed, e.g. {failures[0]}")
    return elapsed


def _cpu_seconds(pid: int) -> float | None:
    """CPU time (user + system) a process has used so far, from /proc (None where there is no /proc)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=500_000, help="events to send (rounded up to 1000s)")
    parser.add_argument("--connections", type=int, default=4, help="concurrent keep-alive connections")
    args = parser.parse_args(argv)

    requests = max(1, -(-args.events // BATCH))
    warmup = _bodies(requests + 5)
    bodies, warmup = warmup[5:], warmup[:5]
    size = len(bodies[0])
    with start_emulator_process(EmulatorConfig()) as emulator:
        token = _token(emulator.base_url)
        _send_all(emulator.base_url, token, warmup, 1)
        cpu_before, client_before = _cpu_seconds(emulator.process.pid), time.process_time()
        elapsed = _send_all(emulator.base_url, token, bodies, args.connections)
        cpu_after, client_cpu = _cpu_seconds(emulator.process.pid), time.process_time() - client_before
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
