"""Eight processes on one SQLite store at once: runs, applies and CLI commands all succeed, with true counts.

Every write transaction on SQLite takes the write lock up front (BEGIN IMMEDIATE) and waits for it up to the busy
timeout. Before, a transaction that read and then wrote had to upgrade its lock, and SQLite refused the upgrade at
once ("database is locked") whenever another process had written meanwhile, whatever the busy timeout.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import pytest
import yaml

from offramp.plugins.tiktok.emulator import (
    ADMIN_AUTH_CODE,
    DEFAULT_ADVERTISER_ID,
    DEFAULT_APP_ID,
    DEFAULT_APP_SECRET,
    DEFAULT_EVENT_SET_ID,
    run_emulator,
)

# Imports offramp first, then waits for the start line, so that every process begins its command at once.
LAUNCHER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from offramp.core.cli import main
    go = Path(sys.argv[1])
    while not go.exists():
        time.sleep(0.005)
    sys.argv = ["offramp", *sys.argv[2:]]
    main()
    """
)

ORDERS = 1500  # per orchestration; batches of 50 make each run write its ledger some 30 times


def write_orders(path: Path, orders: int) -> int:
    """A DuckDB file of orders with one line item each; returns the row count."""
    now = datetime.now(UTC).replace(microsecond=0, tzinfo=None)
    with duckdb.connect(str(path)) as con:
        con.execute(
            """
            CREATE TABLE orders AS
            SELECT 'ORD-' || o AS order_id, ?::TIMESTAMP - INTERVAL (o % 500) MINUTE AS ordered_at,
                   'customer.' || o || '@example.com' AS email, (o % 90 + 10) * 1.25 AS price
            FROM range(1, ? + 1) AS r(o)
            """,
            [now, orders],
        )
        return int(con.execute("SELECT count(*) FROM orders").fetchone()[0])  # type: ignore[index]


SQL = (
    "SELECT order_id AS event_id, 'Order Completed' AS event, ordered_at AS timestamp, email, "
    "price AS value FROM orders ORDER BY order_id"
)


def workspace_document(name: str) -> dict[str, Any]:
    """A workspace of its own: a static-token credential, a dummy destination and an orchestration."""
    return {
        "version": 1,
        "workspace": name,
        "credentials": [{"name": "token", "type": "static-token", "settings": {"token": "env:WS_TOKEN"}}],
        "destinations": [{"name": "sink", "type": "dummy", "credential": "token", "settings": {}}],
        "orchestrations": [
            {"name": f"leads-{index}", "destination": "sink", "sql": "SELECT 1 AS event_id"} for index in range(3)
        ],
    }


@pytest.fixture
def emulator_url() -> Iterator[str]:
    with run_emulator() as running:
        yield running.base_url


def test_eight_processes_on_one_sqlite_store_all_succeed(
    cli: Any, initialized: Path, emulator_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EMULATOR_APP_SECRET", DEFAULT_APP_SECRET)
    monkeypatch.setenv("WS_TOKEN", "ws-token-value-9")
    cli.ok(
        "credentials", "add", "tt", "--type", "tiktok-offline-events",
        "--set", f"app_id={DEFAULT_APP_ID}", "--set", "app_secret=env:EMULATOR_APP_SECRET",
        "--set", f"api_base_url={emulator_url}", "--set", f"auth_url={emulator_url}/portal/auth",
    )  # fmt: skip
    cli.ok("credentials", "authorize", "tt", input=f"{ADMIN_AUTH_CODE}\n")
    cli.ok(
        "destinations", "add", "stores", "--type", "tiktok-ads-offline-events", "--credential", "tt",
        "--set", f"advertiser_id={DEFAULT_ADVERTISER_ID}", "--set", f"event_set_id={DEFAULT_EVENT_SET_ID}",
        "--set", "batch_size=50",
    )  # fmt: skip
    rows = {}
    for index in range(3):
        warehouse = tmp_path / f"warehouse-{index}.duckdb"
        rows[f"orders-{index}"] = write_orders(warehouse, ORDERS)
        cli.ok(
            "orchestrations", "add", f"orders-{index}", "--destination", "stores", "--source", f"duckdb:{warehouse}",
            "--sql", SQL, "--map", "Order Completed=Purchase",
        )  # fmt: skip
    documents = []
    for index in range(3):
        path = tmp_path / f"ws-{index}.yaml"
        path.write_text(yaml.safe_dump(workspace_document(f"team-{index}"), sort_keys=False))
        documents.append(path)

    commands = [
        *(["run", f"orders-{index}", "--json"] for index in range(3)),
        *(["apply", "-f", str(path)] for path in documents),
        ["credentials", "add", "extra", "--type", "static-token", "--set", "token=env:WS_TOKEN"],
        ["orchestrations", "add", "late", "--destination", "stores", "--sql", "SELECT 1 AS event_id"],
    ]
    assert len(commands) == 8
    go = tmp_path / "go"
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", LAUNCHER, str(go), *command],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=dict(os.environ),
        )
        for command in commands
    ]
    time.sleep(3)  # every process has imported offramp and waits at the start line (a late one only starts later)
    go.touch()
    results = [process.communicate(timeout=300) for process in processes]

    failures = [
        f"offramp {' '.join(command)} exited {process.returncode}:\n{err}"
        for command, process, (_, err) in zip(commands, processes, results, strict=True)
        if process.returncode != 0
    ]
    assert not failures, "\n".join(failures)
    for index in range(3):
        summary = json.loads(results[index][0])
        assert summary["status"] == "succeeded"
        assert summary["rows"]["queried"] == rows[f"orders-{index}"] == summary["rows"]["sent"]
        assert summary["counts_add_up"]
    runs = json.loads(cli.ok("runs", "list", "--json").stdout)
    assert sorted((run["orchestration"], run["status"], run["rows"]["sent"]) for run in runs) == [
        (f"orders-{index}", "succeeded", ORDERS) for index in range(3)
    ]
    for index in range(3):
        listed = json.loads(cli.ok("orchestrations", "list", "-w", f"team-{index}", "--json").stdout)
        assert sorted(item["name"] for item in listed) == [f"leads-{n}" for n in range(3)]
    credentials = json.loads(cli.ok("credentials", "list", "--json").stdout)
    assert sorted(item["name"] for item in credentials) == ["extra", "tt"]
    assert "late" in {item["name"] for item in json.loads(cli.ok("orchestrations", "list", "--json").stdout)}
