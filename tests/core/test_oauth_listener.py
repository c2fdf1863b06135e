"""`offramp credentials authorize --listen`: only the redirect of this authorization binds the credential.

Over real sockets: a connection that sends nothing cannot block the real redirect or the timeout, and a callback
without the authorization's ``state`` (any local process, or a web page through the user's browser, can call the
loopback URI) is refused, like one with another state.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from offramp.core.errors import ConfigError
from offramp.core.oauth_callback import LoopbackListener
from offramp.plugins.tiktok.emulator import ADMIN_AUTH_CODE, DEFAULT_APP_ID, DEFAULT_APP_SECRET, run_emulator

OFFRAMP = str(Path(sys.executable).with_name("offramp"))


@pytest.fixture
def emulator_url() -> Iterator[str]:
    with run_emulator() as running:
        yield running.base_url


@pytest.fixture
def credential(cli: Any, initialized: Path, emulator_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("EMULATOR_APP_SECRET", DEFAULT_APP_SECRET)
    cli.ok(
        "credentials", "add", "tt", "--type", "tiktok-offline-events",
        "--set", f"app_id={DEFAULT_APP_ID}", "--set", "app_secret=env:EMULATOR_APP_SECRET",
        "--set", f"api_base_url={emulator_url}", "--set", f"auth_url={emulator_url}/portal/auth",
    )  # fmt: skip
    return "tt"


def grants(emulator_url: str) -> list[dict[str, Any]]:
    return list(httpx.get(f"{emulator_url}/_emulator/grants").json()["grants"])


def start_authorize(offramp_home: Path, *options: str) -> tuple[subprocess.Popen[str], str]:
    """`offramp credentials authorize tt --listen ...` in its own process; (process, consent page URL)."""
    process = subprocess.Popen(
        [OFFRAMP, "credentials", "authorize", "tt", "--listen", *options],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "OFFRAMP_HOME": str(offramp_home)},
    )
    assert process.stdout is not None
    for line in process.stdout:
        if "/portal/auth?" in line:
            return process, line.strip()
    process.kill()
    raise AssertionError(f"no consent URL printed: {process.communicate()}")


def idle_connection(redirect_uri: str) -> socket.socket:
    """A connection to the listener that never sends a byte."""
    parts = urlsplit(redirect_uri)
    assert parts.hostname is not None and parts.port is not None
    return socket.create_connection((parts.hostname, parts.port), timeout=30)


def test_a_callback_without_state_is_refused_and_the_real_redirect_still_lands_past_an_idle_connection(
    cli: Any, credential: str, emulator_url: str, offramp_home: Path
) -> None:
    process, url = start_authorize(offramp_home, "--timeout", "120")
    try:
        redirect_uri = parse_qs(urlsplit(url).query)["redirect_uri"][0]
        with idle_connection(redirect_uri):
            # The attacker's grant, delivered without a state: refused, and nothing is exchanged.
            forged = httpx.get(redirect_uri, params={"auth_code": ADMIN_AUTH_CODE}, timeout=30)
            assert forged.status_code == 400
            assert process.poll() is None, "the listener keeps waiting for the real redirect"
            # And with a state that is not this authorization's: refused the same way.
            wrong = httpx.get(redirect_uri, params={"auth_code": ADMIN_AUTH_CODE, "state": "forged"}, timeout=30)
            assert wrong.status_code == 400
            assert process.poll() is None, "the listener keeps waiting for the real redirect"
            assert grants(emulator_url) == []
            # The emulator's consent page approves as its admin and redirects the "browser" with the right state.
            page = httpx.get(url, follow_redirects=True, timeout=30)
            assert page.status_code == 200 and "offramp is authorized" in page.text
            out, err = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0, err
    assert "Authorized credential tt" in out
    assert [grant["user"] for grant in grants(emulator_url)] == ["admin"]
    assert cli.ok("credentials", "show", "tt", "--json").stdout.count('"ready"') == 1


def test_the_real_redirect_lands_after_a_burst_of_held_connections(
    cli: Any, credential: str, emulator_url: str, offramp_home: Path
) -> None:
    # Far fewer seconds than the burst took before the fix (the accept queue held 5, then every SYN was dropped
    # and retransmitted 1 s later: ~6 connections a second), and far more than it takes now.
    process, url = start_authorize(offramp_home, "--timeout", "45")
    held: list[socket.socket] = []
    try:
        redirect_uri = parse_qs(urlsplit(url).query)["redirect_uri"][0]
        # Another local process opens connections in a tight loop and keeps them all open, sending nothing.
        for _ in range(500):
            held.append(idle_connection(redirect_uri))
        assert process.poll() is None, "the listener keeps waiting for the real redirect"
        page = httpx.get(url, follow_redirects=True, timeout=60)
        assert page.status_code == 200 and "offramp is authorized" in page.text
        out, err = process.communicate(timeout=120)
    finally:
        for connection in held:
            connection.close()
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0, err
    assert "Authorized credential tt" in out and err == ""
    assert [grant["user"] for grant in grants(emulator_url)] == ["admin"]


def test_listen_honours_its_timeout_even_with_an_idle_connection_open(
    cli: Any, credential: str, offramp_home: Path
) -> None:
    process, url = start_authorize(offramp_home, "--timeout", "3")
    try:
        redirect_uri = parse_qs(urlsplit(url).query)["redirect_uri"][0]
        with idle_connection(redirect_uri):
            # Generous: the command must return on its own, long before this; no timing is asserted.
            out, err = process.communicate(timeout=90)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 1
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("offramp: error: ") and "timed out after 3 s" in lines[0], err
    assert '"needs_authorization"' in cli.ok("credentials", "show", "tt", "--json").stdout


def test_a_pasted_redirect_url_without_state_is_refused_and_nothing_is_stored(
    cli: Any, credential: str, emulator_url: str
) -> None:
    pasted = f"http://127.0.0.1:1/callback?auth_code={ADMIN_AUTH_CODE}\n"
    cli("credentials", "authorize", "tt", input=pasted).one_line_error("carries no state")
    assert grants(emulator_url) == []  # the code was never spent
    assert '"needs_authorization"' in cli.ok("credentials", "show", "tt", "--json").stdout


def test_a_listener_that_knows_the_state_refuses_another_one_and_keeps_waiting() -> None:
    listener = LoopbackListener(state="the-right-state")
    try:
        with idle_connection(listener.redirect_uri):
            wrong = httpx.get(listener.redirect_uri, params={"auth_code": "c1", "state": "another"}, timeout=30)
            missing = httpx.get(listener.redirect_uri, params={"auth_code": "c2"}, timeout=30)
            right = httpx.get(listener.redirect_uri, params={"auth_code": "c3", "state": "the-right-state"}, timeout=30)
            assert (wrong.status_code, missing.status_code, right.status_code) == (400, 400, 200)
            redirect = listener.wait(60)
    finally:
        listener.close()
    assert (redirect.code, redirect.state) == ("c3", "the-right-state")
    with pytest.raises(httpx.TransportError):  # closed: nothing listens any more
        httpx.get(listener.redirect_uri, params={"auth_code": "c4", "state": "the-right-state"}, timeout=5)


def test_a_listener_that_times_out_says_so() -> None:
    listener = LoopbackListener()
    with idle_connection(listener.redirect_uri), pytest.raises(ConfigError, match="timed out after 1 s"):
        listener.wait(1)
