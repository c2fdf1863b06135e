"""The `tiktok-offline-events` credential against the emulator over loopback: authorize, use, refresh, refuse."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from offramp.plugins.tiktok.emulator import (
    ADMIN_AUTH_CODE,
    ANALYST_AUTH_CODE,
    DEFAULT_ADVERTISER_ID,
    DEFAULT_APP_SECRET,
    EmulatorConfig,
)

OFFRAMP = str(Path(sys.executable).with_name("offramp"))


def credential_row(cli, name: str = "tt") -> dict:
    return json.loads(cli.ok("credentials", "show", name, "--json").stdout)


def test_a_new_credential_needs_authorization_and_says_how(cli, tiktok_credential):
    listed = json.loads(cli.ok("credentials", "list", "--json").stdout)
    assert listed[0]["status"] == "needs_authorization"
    line = cli("credentials", "test", "tt").one_line_error("offramp credentials authorize tt")
    assert "holds no token" in line


def test_authorize_with_a_pasted_code_stores_the_tokens_encrypted(
    stored_tokens, cli, tiktok_credential, emulator, offramp_home
):
    result = cli.ok("credentials", "authorize", "tt", input=f"{ADMIN_AUTH_CODE}\n")

    assert f"{emulator.base_url}/portal/auth?app_id=" in result.stdout
    assert "Authorized credential tt: advertisers 7200000000000000001, 7200000000000000002" in result.stdout
    tokens = stored_tokens()
    assert tokens["refresh_token"] == emulator.current_refresh_token()
    assert tokens["access_token"]
    raw_store = b"".join(path.read_bytes() for path in offramp_home.glob("offramp.db*"))
    assert tokens["refresh_token"].encode() not in raw_store and tokens["access_token"].encode() not in raw_store
    shown = credential_row(cli)
    assert shown["status"] == "ready" and shown["last_refreshed_at"] and shown["access_token_expires_at"]
    assert shown["secrets"]["refresh_token"].startswith("set (changed")


def test_a_redirect_url_with_another_state_is_refused_and_nothing_is_stored(
    stored_tokens, cli, tiktok_credential, emulator
):
    pasted = f"http://127.0.0.1:1/callback?auth_code={ADMIN_AUTH_CODE}&state=not-the-one-we-sent\n"

    cli("credentials", "authorize", "tt", input=pasted).one_line_error("state does not match")

    assert stored_tokens() == {"access_token": None, "refresh_token": None}
    assert emulator.grants() == []  # the code was never spent


def test_an_auth_code_works_once(cli, tiktok_credential):
    cli.ok("credentials", "authorize", "tt", input=f"{ADMIN_AUTH_CODE}\n")
    cli("credentials", "authorize", "tt", input=f"{ADMIN_AUTH_CODE}\n").one_line_error("40110")


def test_authorize_listen_catches_the_redirect_of_the_consent_page(
    stored_tokens, tiktok_credential, emulator, offramp_home
):
    process = subprocess.Popen(
        [OFFRAMP, "credentials", "authorize", "tt", "--listen", "--timeout", "30"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "OFFRAMP_HOME": str(offramp_home)},
    )
    try:
        assert process.stdout is not None
        url = ""
        for line in process.stdout:
            if "/portal/auth?" in line:
                url = line.strip()
                break
        assert "redirect_uri=http%3A%2F%2F127.0.0.1%3A" in url
        # The emulator's consent page approves as its admin and redirects the "browser" to the listener.
        page = httpx.get(url, follow_redirects=True, timeout=30)
        assert "offramp is authorized" in page.text
        out, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0, err
    assert "Authorized credential tt" in out
    assert stored_tokens()["refresh_token"] == emulator.current_refresh_token()


@pytest.mark.parametrize("emulator_config", [EmulatorConfig(access_token_ttl=1)])
def test_an_expired_access_token_is_refreshed_before_use_and_the_rotation_is_kept(
    stored_tokens, cli, tiktok_credential, emulator
):
    cli.ok("credentials", "authorize", "tt", input=f"{ADMIN_AUTH_CODE}\n")
    first = stored_tokens()
    time.sleep(1.1)  # offramp reads expiry on its own clock: let the one-second token lapse

    cli.ok("credentials", "test", "tt")

    second = stored_tokens()
    assert second["access_token"] != first["access_token"]
    assert second["refresh_token"] != first["refresh_token"]
    assert second["refresh_token"] == emulator.current_refresh_token()
    assert emulator.refresh_with(str(first["refresh_token"]))["code"] == 40107  # the old one is spent
    assert credential_row(cli)["status"] == "ready"


def test_a_40102_from_a_call_refreshes_once_and_the_call_succeeds(stored_tokens, cli, tiktok_credential, emulator):
    cli.ok("credentials", "authorize", "tt", input=f"{ADMIN_AUTH_CODE}\n")
    before = stored_tokens()
    emulator.advance_clock(2 * 86_400)  # TikTok's clock says the token expired; offramp's does not know yet

    result = cli.ok("credentials", "test", "tt", "--json")

    assert json.loads(result.stdout)["ok"] is True
    after = stored_tokens()
    assert after["access_token"] != before["access_token"]
    assert after["refresh_token"] == emulator.current_refresh_token()


def test_a_revoked_grant_turns_needs_reauth_and_later_uses_fail_fast(cli, tiktok_credential, emulator):
    cli.ok("credentials", "authorize", "tt", input=f"{ADMIN_AUTH_CODE}\n")
    emulator.revoke("admin")

    cli("credentials", "test", "tt").one_line_error("re-authorize with: offramp credentials authorize tt")

    listed = json.loads(cli.ok("credentials", "list", "--json").stdout)
    assert listed[0]["status"] == "needs_reauth" and "40105" in listed[0]["status_reason"]
    requests_before = httpx.get(f"{emulator.base_url}/_emulator/stats").json()["requests"]
    cli("credentials", "test", "tt").one_line_error("re-authorize with: offramp credentials authorize tt")
    assert httpx.get(f"{emulator.base_url}/_emulator/stats").json()["requests"] == requests_before  # fail fast

    cli.ok("credentials", "authorize", "tt", input=f"{_fresh_code(emulator)}\n")
    assert credential_row(cli)["status"] == "ready"


def _fresh_code(emulator) -> str:
    return str(httpx.post(f"{emulator.base_url}/_emulator/auth-codes", json={"user": "admin"}).json()["auth_code"])


def test_a_refused_refresh_token_turns_needs_reauth(stored_tokens, cli, tiktok_credential, emulator):
    cli.ok("credentials", "authorize", "tt", input=f"{ADMIN_AUTH_CODE}\n")
    stolen = stored_tokens()["refresh_token"]
    assert emulator.refresh_with(str(stolen))["code"] == 0  # someone else spent the refresh token
    emulator.advance_clock(2 * 86_400)

    line = cli("credentials", "test", "tt").one_line_error("re-authorize with: offramp credentials authorize tt")

    assert "40107" in line
    assert credential_row(cli)["status"] == "needs_reauth"


@pytest.mark.parametrize("emulator_config", [EmulatorConfig(refresh_tokens=False)])
def test_a_long_term_access_token_works_without_refresh(stored_tokens, cli, tiktok_credential, emulator):
    result = cli.ok("credentials", "authorize", "tt", input=f"{ADMIN_AUTH_CODE}\n")
    assert "the access token does not expire" in result.stdout
    assert stored_tokens()["refresh_token"] is None

    emulator.advance_clock(365 * 86_400)
    answer = json.loads(cli.ok("credentials", "test", "tt", "--json").stdout)

    assert [a["advertiser_id"] for a in answer["advertisers"]][0] == DEFAULT_ADVERTISER_ID
    assert credential_row(cli)["access_token_expires_at"] is None


def test_credentials_test_reports_each_advertiser_and_the_authorizing_role(cli, tiktok_credential):
    cli.ok("credentials", "authorize", "tt", input=f"{ANALYST_AUTH_CODE}\n")

    answer = json.loads(cli.ok("credentials", "test", "tt", "--json").stdout)

    assert answer["advertisers"] == [
        {
            "advertiser_id": DEFAULT_ADVERTISER_ID,
            "name": "Emulator Store Co",
            "status": "STATUS_ENABLE",
            "account_role": "ROLE_ADVERTISER",
            "role": "ANALYST",
            "can_send": False,
        }
    ]
    table = cli.ok("credentials", "test", "tt").stdout
    assert "ANALYST" in table and "no: needs Admin or Operator" in table


def test_no_token_or_secret_appears_in_any_output_or_debug_log(stored_tokens, cli, tiktok_credential, emulator):
    outputs = [
        cli.ok("--debug", "credentials", "authorize", "tt", input=f"{ADMIN_AUTH_CODE}\n"),
        cli.ok("--debug", "credentials", "test", "tt"),
    ]
    emulator.advance_clock(2 * 86_400)
    outputs += [
        cli.ok("--debug", "credentials", "test", "tt"),  # refreshes after a 40102
        cli.ok("credentials", "show", "tt", "--json"),
        cli.ok("credentials", "list", "--json"),
        cli.ok("export"),
        cli.ok("audit", "--json"),
    ]
    text = "".join(result.output for result in outputs)
    logs = "".join(result.stderr for result in outputs)
    tokens = stored_tokens()
    assert "HTTP Request" in logs  # the debug log was captured, so the checks below mean something
    for secret in (DEFAULT_APP_SECRET, tokens["access_token"], tokens["refresh_token"]):
        assert secret and secret not in text, f"a secret leaked: {secret[:4]}..."
    # The test runner echoes what it types at the prompt (a terminal would not); the logs must not repeat it.
    assert ADMIN_AUTH_CODE not in logs


def test_authorize_and_test_name_what_a_static_token_cannot_do(cli, initialized):
    cli.ok("credentials", "add", "plain", "--type", "static-token", "--set", "token=abc")

    cli("credentials", "authorize", "plain").one_line_error("does not use an authorization")
    cli("credentials", "test", "plain").one_line_error("cannot be tested")
