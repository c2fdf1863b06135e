"""Fixtures of the scheduler tests: the runner tests' TikTok emulator, orders file and store parameters (reused from
tests/runner/conftest.py, not copied), a dummy destination for fast runs, and a controllable clock."""

from __future__ import annotations

import importlib.util
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from offramp.core.environment import Environment
from offramp.core.services.context import Context
from offramp.core.state.store import open_store


def _runner_conftest() -> Any:
    path = Path(__file__).parents[1] / "runner" / "conftest.py"
    spec = importlib.util.spec_from_file_location("offramp_tests_runner_fixtures", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_runner = _runner_conftest()
Emulator = _runner.Emulator
set_up = _runner.set_up
wait_until = _runner.wait_until
write_orders = _runner.write_orders
shared_emulator = _runner.shared_emulator
emulator = _runner.emulator
orders_file = _runner.orders_file
no_backoff_waits = _runner.no_backoff_waits


@dataclass
class Clock:
    """The scheduler's clock in the unit tests: it says what the test sets."""

    now: datetime

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def dummy(cli: Any, initialized: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """Credential `tok`, destination `d` (dummy: sends nothing, quickly); returns the destination's name."""
    monkeypatch.setenv("DUMMY_TOKEN", "tok-value")
    cli.ok("credentials", "add", "tok", "--type", "static-token", "--set", "token=env:DUMMY_TOKEN")
    cli.ok("destinations", "add", "d", "--type", "dummy", "--credential", "tok")
    return "d"


@pytest.fixture
def ctx(dummy: str) -> Iterator[Context]:
    """A service context over the test's store."""
    env = Environment()
    state_store = open_store(env)
    try:
        yield Context(env=env, store=state_store, actor="test")
    finally:
        state_store.dispose()


def fires_of(cli: Any, name: str, workspace: str = "production") -> Any:
    """The last fire of ``name`` as `schedules list --json` shows it."""
    rows = json.loads(cli.ok("schedules", "list", "-w", workspace, "--json").stdout)
    return next(row for row in rows if row["name"] == name)
