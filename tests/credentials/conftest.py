"""A TikTok emulator on loopback and a `tiktok-offline-events` credential pointed at it (through the CLI, or in a
plugin workspace)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from offramp.core import CredentialHandle
from offramp.core.testing import PluginWorkspace
from offramp.plugins.tiktok.emulator import DEFAULT_APP_ID, DEFAULT_APP_SECRET, EmulatorConfig, run_emulator

SECRET_VARIABLE = "EMULATOR_APP_SECRET"


class Emulator:
    """The running emulator plus the control calls the tests use."""

    def __init__(self, base_url: str, state: Any) -> None:
        self.base_url = base_url
        self.state = state

    def grants(self) -> list[dict[str, Any]]:
        return httpx.get(f"{self.base_url}/_emulator/grants").json()["grants"]

    def current_refresh_token(self, user: str = "admin") -> str:
        live = [g for g in self.grants() if g["user"] == user and not g["revoked"]]
        assert len(live) == 1, live
        return str(live[0]["refresh_token"])

    def advance_clock(self, seconds: float) -> None:
        httpx.post(f"{self.base_url}/_emulator/clock", json={"advance_seconds": seconds}).raise_for_status()

    def revoke(self, user: str = "admin") -> None:
        httpx.post(f"{self.base_url}/_emulator/revoke", json={"user": user}).raise_for_status()

    def refresh_with(self, refresh_token: str) -> dict[str, Any]:
        body = {
            "app_id": DEFAULT_APP_ID,
            "secret": DEFAULT_APP_SECRET,
            "refresh_token": refresh_token,
            "grant_type": "refresh_token",
        }
        return httpx.post(f"{self.base_url}/open_api/v1.3/oauth2/refresh_token/", json=body).json()


@pytest.fixture
def emulator_config() -> EmulatorConfig:
    return EmulatorConfig()


@pytest.fixture
def emulator(emulator_config: EmulatorConfig) -> Iterator[Emulator]:
    with run_emulator(emulator_config) as running:
        yield Emulator(running.base_url, running.state)


@pytest.fixture
def tiktok_credential(cli: Any, initialized: Any, emulator: Emulator, monkeypatch: pytest.MonkeyPatch) -> str:
    """A credential `tt` of the emulator's app, not authorized yet; returns its name."""
    monkeypatch.setenv(SECRET_VARIABLE, DEFAULT_APP_SECRET)
    cli.ok(
        "credentials", "add", "tt", "--type", "tiktok-offline-events",
        "--set", f"app_id={DEFAULT_APP_ID}", "--set", f"app_secret=env:{SECRET_VARIABLE}",
        "--set", f"api_base_url={emulator.base_url}", "--set", f"auth_url={emulator.base_url}/portal/auth",
    )  # fmt: skip
    return "tt"


@pytest.fixture
def stored_tokens(stored_secrets: Callable[..., dict[str, str]]) -> Callable[..., dict[str, str | None]]:
    """``stored_tokens(name="tt")``: the credential's tokens as offramp stored them, decrypted."""

    def read(name: str = "tt") -> dict[str, str | None]:
        secrets = stored_secrets(name)
        return {"access_token": secrets.get("access_token"), "refresh_token": secrets.get("refresh_token")}

    return read


@pytest.fixture
def plugin_workspace(tmp_path: Path) -> Iterator[PluginWorkspace]:
    """A real offramp store for the plugin's hooks (offramp.core.testing), with the installed plugins registered."""
    with PluginWorkspace(tmp_path / "offramp") as workspace:
        yield workspace


@pytest.fixture
def handle(plugin_workspace: PluginWorkspace, emulator: Emulator) -> CredentialHandle:
    """Credential `tt` of the emulator's app in the plugin workspace, not authorized yet."""
    settings = {"app_id": DEFAULT_APP_ID, "app_secret": DEFAULT_APP_SECRET, "api_base_url": emulator.base_url,
                "auth_url": f"{emulator.base_url}/portal/auth"}  # fmt: skip
    return plugin_workspace.add_credential("tt", "tiktok-offline-events", settings)
