"""The TikTok credential's and destination's hooks, called as core calls them: with a real credential handle and
destination context (offramp.core.testing.PluginWorkspace), against the emulator on loopback."""

from __future__ import annotations

import subprocess
import sys
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from offramp.core import CredentialHandle, OfframpError, Terminal
from offramp.core.testing import PluginWorkspace
from offramp.credentials import tiktok
from offramp.credentials.tiktok_session import HOOKS, TikTokCredentialSession
from offramp.plugins.tiktok.destination import HOOKS as DESTINATION_HOOKS
from offramp.plugins.tiktok.emulator import (
    ADMIN_AUTH_CODE,
    ANALYST_AUTH_CODE,
    DEFAULT_ADVERTISER_ID,
    DEFAULT_EVENT_SET_ID,
    EmulatorConfig,
)

Emulator = Any  # tests/credentials/conftest.py's Emulator: the running emulator and its control calls


def authorize(handle: CredentialHandle, code: str = ADMIN_AUTH_CODE) -> str:
    assert HOOKS.complete_authorization is not None
    return HOOKS.complete_authorization(handle, code).message


def stored_access_token(handle: CredentialHandle) -> str | None:
    token = handle.read().settings.access_token
    return token.get_secret_value() if token is not None else None


def test_the_descriptor_names_the_hooks_and_the_prompt() -> None:
    assert tiktok.CREDENTIAL_TYPE.load() is HOOKS
    assert tiktok.CREDENTIAL_TYPE.authorization_prompt == (
        "sign in with an Admin or Operator of the ad account, and approve"
    )


def test_the_consent_page_carries_the_app_the_state_and_the_redirect(handle: CredentialHandle) -> None:
    assert HOOKS.authorization_url is not None
    url = HOOKS.authorization_url(handle, "st4te", "http://127.0.0.1:8765/callback")

    query = parse_qs(urlsplit(url).query)
    assert url.startswith(handle.read().settings.auth_url)
    assert query == {"app_id": [handle.read().settings.app_id], "state": ["st4te"],
                     "redirect_uri": ["http://127.0.0.1:8765/callback"]}  # fmt: skip


def test_completing_an_authorization_stores_the_tokens_and_says_what_it_got(handle: CredentialHandle) -> None:
    assert handle.read().status == "needs_authorization"

    message = authorize(handle)

    assert message == (
        "Authorized credential tt: advertisers 7200000000000000001, 7200000000000000002; "
        "the access token expires in 86400 s and is refreshed automatically."
    )
    state = handle.read()
    assert state.status == "ready" and state.token_expires_at is not None and state.refreshed_at is not None
    assert state.settings.access_token is not None and state.settings.refresh_token is not None


@pytest.mark.parametrize("emulator_config", [EmulatorConfig(refresh_tokens=False)])
def test_a_long_term_token_does_not_expire(handle: CredentialHandle) -> None:
    assert authorize(handle).endswith("the access token does not expire.")
    assert handle.read().token_expires_at is None


def test_describe_access_reports_each_advertiser_and_the_authorizing_role(handle: CredentialHandle) -> None:
    authorize(handle, ANALYST_AUTH_CODE)
    assert HOOKS.describe_access is not None

    report = HOOKS.describe_access(handle)

    assert report.summary == f"the token reaches {len(report.items)} advertiser(s)"
    assert (report.title, report.key) == ("Advertisers", "advertisers")
    assert list(report.columns) == ["advertiser id", "name", "status", "your role", "can send events"]
    first = report.items[0]
    assert set(first) == {"advertiser_id", "name", "status", "account_role", "role", "can_send"}
    assert (first["advertiser_id"], first["role"], first["can_send"]) == (DEFAULT_ADVERTISER_ID, "ANALYST", False)
    assert list(report.rows[0]) == [DEFAULT_ADVERTISER_ID, str(first["name"]), str(first["status"]), "ANALYST",
                                    "no: needs Admin or Operator"]  # fmt: skip
    assert all(isinstance(cell, str) for row in report.rows for cell in row)


def test_a_fresh_token_is_used_from_the_cache_without_reading_the_store_again(
    handle: CredentialHandle, emulator: Emulator
) -> None:
    authorize(handle)
    session = TikTokCredentialSession(handle)
    token = session.access_token()
    handle.mark_needs_reauthorization("changed behind the session's back")  # the store says otherwise now

    assert session.access_token() == token  # still fresh: the cached token, no read
    assert TikTokCredentialSession(handle).settings().app_id  # a new session reads the store
    with pytest.raises(OfframpError, match="refused by TikTok"):
        TikTokCredentialSession(handle).access_token()


def test_a_40102_on_an_account_call_refreshes_once_and_the_call_succeeds(
    handle: CredentialHandle, emulator: Emulator
) -> None:
    authorize(handle)
    before = stored_access_token(handle)
    emulator.advance_clock(2 * 86_400)  # TikTok's clock says the token expired; offramp's does not know yet
    assert HOOKS.describe_access is not None

    assert HOOKS.describe_access(handle).items

    assert stored_access_token(handle) != before
    settings = handle.read().settings
    assert settings.refresh_token is not None
    assert settings.refresh_token.get_secret_value() == emulator.current_refresh_token()


def test_a_revoked_grant_marks_the_credential_and_later_uses_fail_fast_with_the_hint(
    handle: CredentialHandle, emulator: Emulator
) -> None:
    authorize(handle)
    emulator.revoke("admin")
    assert HOOKS.describe_access is not None

    with pytest.raises(OfframpError) as caught:
        HOOKS.describe_access(handle)

    assert isinstance(caught.value, Terminal)
    assert caught.value.hint == f"re-authorize with: {handle.reauthorize_command}"
    state = handle.read()
    assert state.status == "needs_reauth" and state.status_reason is not None and "40105" in state.status_reason
    with pytest.raises(OfframpError) as again:
        TikTokCredentialSession(handle).access_token()  # refused before any request
    assert "offramp credentials authorize tt" in str(again.value)


def test_a_refused_refresh_token_marks_the_credential(handle: CredentialHandle, emulator: Emulator) -> None:
    authorize(handle)
    settings = handle.read().settings
    assert settings.refresh_token is not None
    assert emulator.refresh_with(settings.refresh_token.get_secret_value())["code"] == 0  # spent elsewhere
    emulator.advance_clock(2 * 86_400)
    session = TikTokCredentialSession(handle)

    with pytest.raises(OfframpError, match="40107"):
        session.refreshed_after_failure(str(stored_access_token(handle)))

    assert handle.read().status == "needs_reauth"


# -- the destination's connection test and action --


def test_ensure_event_set_creates_one_set_and_hands_its_id_to_core(
    plugin_workspace: PluginWorkspace, handle: CredentialHandle, emulator: Emulator
) -> None:
    authorize(handle)
    plugin_workspace.add_destination("stores", "tiktok-ads-offline-events", "tt",
                                     {"advertiser_id": DEFAULT_ADVERTISER_ID, "event_set_name": "Call centre",
                                      "auto_tracking": True})  # fmt: skip
    action = DESTINATION_HOOKS.action("ensure-event-set")
    assert action is not None

    created = action.run(plugin_workspace.context("stores"))

    event_set_id = created.settings["event_set_id"]
    assert created.message == f"Created event set {event_set_id} and stored it on destination stores."
    record = emulator.state.event_sets[event_set_id]
    assert (record.name, record.auto_tracking, record.advertiser_id) == ("Call centre", True, DEFAULT_ADVERTISER_ID)
    values = {"advertiser_id": DEFAULT_ADVERTISER_ID, "event_set_id": DEFAULT_EVENT_SET_ID}
    plugin_workspace.add_destination("set", "tiktok-ads-offline-events", "tt", values)
    kept = action.run(plugin_workspace.context("set"))
    assert kept.message == f"Destination set already has event set {DEFAULT_EVENT_SET_ID}; nothing created."
    assert dict(kept.settings) == {}
    assert len(emulator.state.event_sets) == 2  # the seeded one and ours


def test_the_connection_test_walks_its_steps_and_fix_aligns_auto_tracking(
    plugin_workspace: PluginWorkspace, handle: CredentialHandle, emulator: Emulator
) -> None:
    authorize(handle)
    plugin_workspace.add_destination("stores", "tiktok-ads-offline-events", "tt",
                                     {"advertiser_id": DEFAULT_ADVERTISER_ID, "event_set_id": DEFAULT_EVENT_SET_ID,
                                      "auto_tracking": True})  # fmt: skip
    check = DESTINATION_HOOKS.check_connection
    assert check is not None
    context = plugin_workspace.context("stores")

    steps = {step.name: step.verdict for step in check(context, False)}

    assert steps == {"token": "ok", "advertiser": "ok", "event set": "ok", "event set name": "ok",
                     "auto tracking": "warning"}  # fmt: skip
    assert {step.name: step.verdict for step in check(context, True)}["auto tracking"] == "fixed"
    assert emulator.state.event_sets[DEFAULT_EVENT_SET_ID].auto_tracking is True


def test_importing_the_plugin_loads_no_core_internals() -> None:
    """The destination and credential use offramp.core's public API only: importing them loads no services, state
    store, runner or CLI module."""
    script = (
        "import sys, offramp.plugins.tiktok.destination, offramp.credentials.tiktok_session\n"
        "print(sorted(m for m in sys.modules if m.startswith(('offramp.core.services', 'offramp.core.state', "
        "'offramp.core.runner', 'offramp.core.cli'))))"
    )
    loaded = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout
    assert loaded.strip() == "[]"


def test_a_token_call_that_cannot_reach_tiktok_is_transient(plugin_workspace: PluginWorkspace) -> None:
    # Port 9 (discard) on loopback: nobody listens there.
    handle = plugin_workspace.add_credential("gone", "tiktok-offline-events",
                                             {"app_id": "1", "app_secret": "s", "api_base_url": "http://127.0.0.1:9",
                                              "refresh_token": "r"})  # fmt: skip

    with pytest.raises(OfframpError, match=r"TikTok unreachable \(connection refused\) at http://127.0.0.1:9"):
        TikTokCredentialSession(handle, timeout_seconds=2).access_token()
    assert handle.read().status == "ready"  # nothing to re-authorize: the network failed, not the grant
