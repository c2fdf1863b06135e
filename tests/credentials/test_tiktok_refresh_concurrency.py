"""Two processes refreshing one credential at once: one refresh token is spent once, and both go on working."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import httpx
import pytest

from offramp.plugins.tiktok.emulator import ADMIN_AUTH_CODE

# Each process asks for a new token after its current one "failed" with 40102, as a run would.
REFRESHER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from offramp.core.environment import Environment
    from offramp.core.services.context import Context
    from offramp.core.services.plugin_context import credential_handle
    from offramp.core.state.store import open_store
    from offramp.credentials.tiktok_session import TikTokCredentialSession

    stale, go = sys.argv[1], Path(sys.argv[2])
    env = Environment()
    store = open_store(env)
    # The handle core gives the plugin in a run (offramp.core.CredentialHandle), over this process's own store.
    credential = TikTokCredentialSession(credential_handle(Context(env=env, store=store), "production", "tt"))
    while not go.exists():
        time.sleep(0.001)
    print(credential.refreshed_after_failure(stale))
    store.dispose()
    """
)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def shared_store(request, monkeypatch: pytest.MonkeyPatch) -> None:
    if request.param == "postgresql":
        monkeypatch.setenv("OFFRAMP_DATABASE_URL", request.getfixturevalue("postgres_url"))


def test_two_processes_refreshing_at_once_both_get_a_working_token(
    shared_store, cli, tiktok_credential, emulator, stored_tokens, tmp_path: Path
):
    cli.ok("credentials", "authorize", "tt", input=f"{ADMIN_AUTH_CODE}\n")
    stale = str(stored_tokens()["access_token"])
    # A slow refresh endpoint makes sure the second process asks while the first still holds the lock.
    httpx.post(
        f"{emulator.base_url}/_emulator/faults", json={"latency_ms": 400, "paths": ["oauth2/refresh_token/"]}
    ).raise_for_status()
    go = tmp_path / "go"
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", REFRESHER, stale, str(go)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=dict(os.environ),
        )
        for _ in range(2)
    ]
    time.sleep(1.5)  # both processes have imported offramp and wait at the start line
    go.touch()
    results = [process.communicate(timeout=120) for process in processes]

    assert [process.returncode for process in processes] == [0, 0], [err for _, err in results]
    tokens = {out.strip() for out, _ in results}
    assert len(tokens) == 1 and stale not in tokens  # the second used what the first stored
    grant = next(g for g in emulator.grants() if g["user"] == "admin")
    assert grant["access_tokens_issued"] == 2  # the authorization and exactly one refresh
    assert stored_tokens()["refresh_token"] == grant["refresh_token"]
    assert stored_tokens()["access_token"] in tokens
