"""A revoked grant alerts twice in one run (the failure, and the credential needing re-authorizing), and once more
when a run succeeds again after the credential was authorized anew: the TikTok emulator on loopback revokes the
grant as TikTok would."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from alert_servers import Receiver, receiving
from alert_setup import WEBHOOK_SECRET, run_process

from offramp.core.alerts import verify_signature
from offramp.plugins.tiktok.emulator import (
    ADMIN_AUTH_CODE,
    DEFAULT_ADVERTISER_ID,
    DEFAULT_APP_ID,
    DEFAULT_APP_SECRET,
    DEFAULT_EVENT_SET_ID,
    run_emulator,
)
from offramp.plugins.tiktok.emulator.server import RunningEmulator

SQL = """
SELECT 'ORD-' || i AS event_id, 'Purchase' AS event, now() - INTERVAL 1 HOUR AS timestamp,
       'customer' || i || '@example.com' AS email, 'ORD-' || i AS order_id, 9.5 AS price, 1 AS quantity,
       'SKU-1' AS content_id
FROM range(3) AS t(i)
"""


@pytest.fixture
def emulator() -> Iterator[RunningEmulator]:
    with run_emulator() as running:
        yield running


@pytest.fixture
def hook() -> Iterator[Receiver]:
    with receiving() as receiver:
        yield receiver


def test_a_revoked_grant_alerts_failure_and_reauthorization_then_recovery(
    cli: Any, initialized: Any, emulator: RunningEmulator, hook: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    base = emulator.base_url
    monkeypatch.setenv("EMULATOR_APP_SECRET", DEFAULT_APP_SECRET)
    monkeypatch.setenv("HOOK_SECRET", WEBHOOK_SECRET)
    cli.ok(
        "credentials", "add", "tt", "--type", "tiktok-offline-events",
        "--set", f"app_id={DEFAULT_APP_ID}", "--set", "app_secret=env:EMULATOR_APP_SECRET",
        "--set", f"api_base_url={base}", "--set", f"auth_url={base}/portal/auth",
    )  # fmt: skip
    cli.ok("credentials", "authorize", "tt", input=f"{ADMIN_AUTH_CODE}\n")
    cli.ok(
        "destinations", "add", "stores", "--type", "tiktok-ads-offline-events", "--credential", "tt",
        "--set", f"advertiser_id={DEFAULT_ADVERTISER_ID}", "--set", f"event_set_id={DEFAULT_EVENT_SET_ID}",
    )  # fmt: skip
    cli.ok("orchestrations", "add", "orders", "--destination", "stores", "--sql", SQL)
    cli.ok("credentials", "add", "signer", "--type", "hmac-secret", "--set", "secret=env:HOOK_SECRET")
    cli.ok("alerts", "channels", "add", "hook", "--type", "webhook", "--url", hook.url, "--credential", "signer")
    cli.ok("alerts", "rules", "set", "orders", "--channel", "hook")

    httpx.post(f"{base}/_emulator/revoke", json={"user": "admin"}).raise_for_status()
    code, failed, _ = run_process("orders")
    assert (code, failed["status"]) == (1, "failed")
    status = json.loads(cli.ok("credentials", "show", "tt", "--json").stdout)["status"]
    assert status == "needs_reauth"
    # Refused before it starts while the grant is revoked: no run, so no second notice.
    assert run_process("orders")[0] == 1

    cli.ok("credentials", "authorize", "tt", input=emulator.state.issue_auth_code("admin") + "\n")
    code, recovered, _ = run_process("orders", "--resume")
    assert (code, recovered["status"]) == (0, "succeeded")

    bodies = hook.bodies()
    assert [(b["kind"], b["run"]["id"]) for b in bodies] == [
        ("failure", failed["id"]),
        ("needs_reauthorization", failed["id"]),
        ("recovery", recovered["id"]),
    ]
    assert bodies[1]["headline"] == "credential 'tt' of orchestration 'orders' needs re-authorizing"
    assert bodies[1]["hint"] == "re-authorize: offramp credentials authorize tt"
    assert all(verify_signature(WEBHOOK_SECRET, r.body, r.headers) for r in hook.requests)


def test_a_sandbox_run_says_test_traffic_and_reauthorizes_productions_credential_in_production(
    cli: Any, initialized: Any, emulator: RunningEmulator, hook: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    base = emulator.base_url
    monkeypatch.setenv("EMULATOR_APP_SECRET", DEFAULT_APP_SECRET)
    monkeypatch.setenv("HOOK_SECRET", WEBHOOK_SECRET)
    cli.ok(
        "credentials", "add", "tt", "--type", "tiktok-offline-events",
        "--set", f"app_id={DEFAULT_APP_ID}", "--set", "app_secret=env:EMULATOR_APP_SECRET",
        "--set", f"api_base_url={base}", "--set", f"auth_url={base}/portal/auth",
    )  # fmt: skip
    cli.ok("credentials", "authorize", "tt", input=f"{ADMIN_AUTH_CODE}\n")
    cli.ok(
        "destinations", "add", "stores", "--type", "tiktok-ads-offline-events", "--credential", "tt",
        "--set", f"advertiser_id={DEFAULT_ADVERTISER_ID}", "--set", f"event_set_id={DEFAULT_EVENT_SET_ID}",
    )  # fmt: skip
    cli.ok("orchestrations", "add", "orders", "--destination", "stores", "--sql", SQL)
    cli.ok("credentials", "add", "signer", "--type", "hmac-secret", "--set", "secret=env:HOOK_SECRET")
    cli.ok("alerts", "channels", "add", "hook", "--type", "webhook", "--url", hook.url, "--credential", "signer")
    cli.ok("alerts", "rules", "set", "orders", "--channel", "hook")
    cli.ok("sandboxes", "create", "sb")  # its `orders` uses production's credential tt and channel hook

    httpx.post(f"{base}/_emulator/revoke", json={"user": "admin"}).raise_for_status()
    code, failed, _ = run_process("orders", "-w", "sb", "--test-event-code", "TEST1")
    assert (code, failed["status"]) == (1, "failed")

    bodies = hook.bodies()
    assert [(b["kind"], b["workspace"], b["sandbox"]) for b in bodies] == [
        ("failure", "sb", "sb"),
        ("needs_reauthorization", "sb", "sb"),
    ]
    assert bodies[0]["headline"] == "sandbox sb (test traffic): orchestration 'orders' failed"
    # tt is production's: it is authorized there (a command with -w sb would look for a credential of the sandbox).
    assert bodies[1]["hint"] == "re-authorize: offramp credentials authorize tt"
    assert bodies[1]["command"] == f"offramp runs show {failed['id']} -w sb"
