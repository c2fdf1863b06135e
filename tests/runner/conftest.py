"""A TikTok emulator on loopback, an authorized credential, a destination and a DuckDB orders file to run."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import httpx
import pytest
import stamina

from offramp.core.environment import Environment
from offramp.core.services.context import Context
from offramp.core.state.store import open_store
from offramp.plugins.tiktok.emulator import (
    ADMIN_AUTH_CODE,
    DEFAULT_ADVERTISER_ID,
    DEFAULT_APP_ID,
    DEFAULT_APP_SECRET,
    DEFAULT_EVENT_SET_ID,
    run_emulator,
)


class Emulator:
    """The emulator's base URL and the control calls these tests use."""

    def __init__(self, base_url: str, state: Any) -> None:
        self.base_url = base_url
        self.state = state

    def events(self) -> list[dict[str, Any]]:
        return list(self.state.events())

    def accepted_ids(self) -> list[str]:
        return [item["payload"]["event_id"] for item in self.events() if item["status"] == "accepted"]

    def faults(self, **faults: Any) -> None:
        httpx.post(f"{self.base_url}/_emulator/faults", json=faults).raise_for_status()

    def revoke(self, user: str = "admin") -> None:
        httpx.post(f"{self.base_url}/_emulator/revoke", json={"user": user}).raise_for_status()


@pytest.fixture(scope="module")
def shared_emulator() -> Iterator[Emulator]:
    with run_emulator() as running:
        yield Emulator(running.base_url, running.state)


@pytest.fixture
def emulator(shared_emulator: Emulator) -> Emulator:
    shared_emulator.state.reset()
    return shared_emulator


def write_orders(path: Path, orders: int, *, bad_every: int = 0) -> int:
    """A DuckDB file of store orders, 1 to 3 line items each; every ``bad_every``-th order has no identifiers.

    Returns the number of rows.
    """
    now = datetime.now(UTC).replace(microsecond=0, tzinfo=None)
    with duckdb.connect(str(path)) as con:
        con.execute(
            """
            CREATE TABLE orders AS
            SELECT 'ORD-' || o AS order_id,
                   ?::TIMESTAMP - INTERVAL (o % 5000) MINUTE AS ordered_at,
                   CASE WHEN ? > 0 AND o % ? = 0 THEN NULL ELSE 'Customer.' || o || '@Example.com' END AS email,
                   'SKU-' || i AS sku,
                   (o % 90 + 10) * 1.25 AS price,
                   1 + i % 2 AS qty
            FROM range(1, ? + 1) AS r(o), range(0, 3) AS l(i)
            WHERE i < 1 + o % 3
            """,
            [now, bad_every, max(bad_every, 1), orders],
        )
        return int(con.execute("SELECT count(*) FROM orders").fetchone()[0])  # type: ignore[index]


ORDERS_SQL = """
SELECT order_id AS event_id, 'Order Completed' AS event, ordered_at AS timestamp, email, order_id,
       sku AS content_id, price, qty AS quantity
FROM orders ORDER BY order_id, sku
"""


@pytest.fixture
def orders_file(tmp_path: Path) -> tuple[Path, int]:
    path = tmp_path / "warehouse.duckdb"
    return path, write_orders(path, 300, bad_every=50)


def set_up(cli: Any, emulator: Emulator, source: str, sql: str = ORDERS_SQL) -> str:
    """Credential `tt` (authorized), destination `stores` and orchestration `orders` over ``source``."""
    cli.ok(
        "credentials", "add", "tt", "--type", "tiktok-offline-events",
        "--set", f"app_id={DEFAULT_APP_ID}", "--set", "app_secret=env:EMULATOR_APP_SECRET",
        "--set", f"api_base_url={emulator.base_url}", "--set", f"auth_url={emulator.base_url}/portal/auth",
    )  # fmt: skip
    cli.ok("credentials", "authorize", "tt", input=f"{ADMIN_AUTH_CODE}\n")
    cli.ok(
        "destinations", "add", "stores", "--type", "tiktok-ads-offline-events", "--credential", "tt",
        "--set", f"advertiser_id={DEFAULT_ADVERTISER_ID}", "--set", f"event_set_id={DEFAULT_EVENT_SET_ID}",
        "--set", "batch_size=50",
    )  # fmt: skip
    cli.ok(
        "orchestrations", "add", "orders", "--destination", "stores", "--source", source,
        "--sql", sql, "--map", "Order Completed=Purchase",
    )  # fmt: skip
    return "orders"


def start_run(*args: str) -> subprocess.Popen[str]:
    """`offramp run` in its own process (the test's OFFRAMP_HOME, store URL and secrets are in the environment)."""
    command = [sys.executable, "-m", "offramp.core.cli", "run", *args]
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_until(condition: Callable[[], object], what: str, timeout: float = 120.0) -> None:
    """Poll ``condition`` until it holds; fail naming ``what`` after a generous ``timeout``."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting until {what}"
        time.sleep(0.05)


@pytest.fixture
def orchestration(cli: Any, initialized: Any, emulator: Emulator, orders_file: tuple[Path, int],
                  monkeypatch: pytest.MonkeyPatch) -> str:  # fmt: skip
    """Orchestration `orders`: the orders file -> destination `stores` -> the emulator; returns its name."""
    monkeypatch.setenv("EMULATOR_APP_SECRET", DEFAULT_APP_SECRET)
    return set_up(cli, emulator, f"duckdb:{orders_file[0]}")


@pytest.fixture(autouse=True)
def no_backoff_waits() -> Iterator[None]:
    """Retries still happen (attempt counts are real); only the sleeping between them is skipped."""
    stamina.set_testing(True, attempts=10)
    yield
    stamina.set_testing(False)


SANDBOX = "sb"


@pytest.fixture
def sandbox(cli: Any, orchestration: str) -> str:
    """Sandbox `sb`, made from production (its base: `orders` -> `stores` -> `tt`, production's credential)."""
    cli.ok("sandboxes", "create", SANDBOX)
    return SANDBOX


@pytest.fixture
def ctx(store: str, orchestration: str) -> Iterator[Context]:
    """A service context over the test's store (after the CLI set production up)."""
    env = Environment()
    state_store = open_store(env)
    try:
        yield Context(env=env, store=state_store, actor="test")
    finally:
        state_store.dispose()


def run_json(cli: Any, *args: str, code: int = 0) -> dict[str, Any]:
    """`offramp run ARGS --json` with exit status ``code``; its summary."""
    result = cli("run", *args, "--json")
    assert result.exit_code == code, result.output
    data: dict[str, Any] = json.loads(result.stdout)
    return data


def runs_of(cli: Any, workspace: str) -> list[dict[str, Any]]:
    """The runs `runs list -w WORKSPACE --json` lists."""
    runs: list[dict[str, Any]] = json.loads(cli.ok("runs", "list", "-w", workspace, "--json").stdout)
    return runs


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def store(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """The state store a test runs on: SQLite, then PostgreSQL when OFFRAMP_TEST_POSTGRES_URL is set."""
    if request.param == "postgresql":
        monkeypatch.setenv("OFFRAMP_DATABASE_URL", request.getfixturevalue("postgres_url"))
    return str(request.param)
