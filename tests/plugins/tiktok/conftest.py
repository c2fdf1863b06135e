"""The TikTok emulator served on a free loopback port for each test, with a manual clock; a plugin workspace."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from emulator_client import Api

from offramp.core.testing import PluginWorkspace
from offramp.plugins.tiktok.emulator import EmulatorConfig, ManualClock, run_emulator


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def start_api(clock: ManualClock) -> Iterator[Callable[..., Api]]:
    """Start an emulator with a given config (and the test's manual clock); everything is closed afterwards."""
    with contextlib.ExitStack() as stack:

        def start(config: EmulatorConfig | None = None) -> Api:
            emulator = stack.enter_context(run_emulator(config, clock=clock))
            client = stack.enter_context(httpx.Client(base_url=emulator.base_url, timeout=10))
            return Api(emulator, client)

        yield start


@pytest.fixture
def api(start_api: Callable[..., Api]) -> Api:
    """An emulator on the default seed and config."""
    return start_api()


@pytest.fixture
def token(api: Api) -> str:
    """An admin's access token."""
    return api.token()


@pytest.fixture
def plugin_workspace(tmp_path: Path) -> Iterator[PluginWorkspace]:
    """A real offramp store for the plugin's hooks (offramp.core.testing), with the installed plugins registered."""
    with PluginWorkspace(tmp_path / "offramp") as workspace:
        yield workspace
