"""A local emulator of the part of TikTok's Business API that offramp uses (docs/emulator.md).

Events API 2.0 (`event/track/`) with TikTok's validation, answers and deduplication; OAuth (auth codes, access
and refresh tokens, revocation) with advertiser roles; advertiser and user info; offline event sets; fault
injection; and a control API under `/_emulator/` for tests. Nothing here talks to TikTok.

Typical use in a test::

    with run_emulator() as emulator:
        httpx.post(f"{emulator.base_url}/open_api/v1.3/oauth2/access_token/", json={...})
        assert emulator.state.statistics()["events_accepted"] == 0
"""

from offramp.plugins.tiktok.emulator.app import create_app
from offramp.plugins.tiktok.emulator.clock import ManualClock
from offramp.plugins.tiktok.emulator.config import EmulatorConfig, Faults
from offramp.plugins.tiktok.emulator.seed import (
    ADMIN_AUTH_CODE,
    ANALYST_AUTH_CODE,
    DEFAULT_ADVERTISER_ID,
    DEFAULT_APP_ID,
    DEFAULT_APP_SECRET,
    DEFAULT_EVENT_SET_ID,
    DEFAULT_SEED,
    OPERATOR_AUTH_CODE,
    SECOND_ADVERTISER_ID,
    Seed,
)
from offramp.plugins.tiktok.emulator.server import (
    EmulatorProcess,
    RunningEmulator,
    run_emulator,
    start_emulator_process,
)
from offramp.plugins.tiktok.emulator.state import EmulatorState

__all__ = [
    "ADMIN_AUTH_CODE",
    "ANALYST_AUTH_CODE",
    "DEFAULT_ADVERTISER_ID",
    "DEFAULT_APP_ID",
    "DEFAULT_APP_SECRET",
    "DEFAULT_EVENT_SET_ID",
    "DEFAULT_SEED",
    "EmulatorConfig",
    "EmulatorProcess",
    "EmulatorState",
    "Faults",
    "ManualClock",
    "OPERATOR_AUTH_CODE",
    "RunningEmulator",
    "SECOND_ADVERTISER_ID",
    "Seed",
    "create_app",
    "run_emulator",
    "start_emulator_process",
]
