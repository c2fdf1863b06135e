"""A sandbox shares production's credentials by reference: a refresh in the sandbox rotates production's stored
token (TikTok refuses a spent refresh token, so a copy would cut production off), and production keeps working.

Over the CLI against the emulator, on SQLite and PostgreSQL. The sandbox is made with `workspaces add` and its
destination is bound to production's `tt` through the fallback (`--credential tt` finds no `tt` in the sandbox).
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from offramp.plugins.tiktok.emulator import ADMIN_AUTH_CODE, DEFAULT_ADVERTISER_ID, DEFAULT_EVENT_SET_ID

SANDBOX = "sb"
SQL = """
SELECT 'ord-' || i AS event_id, 'Purchase' AS event, now() AS timestamp, 'customer' || i || '@example.com' AS email
FROM range(3) AS t(i)
"""


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def store_kind(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    if request.param == "postgresql":
        monkeypatch.setenv("OFFRAMP_DATABASE_URL", request.getfixturevalue("postgres_url"))
    return str(request.param)


def add_destination_and_orchestration(cli: Any, *workspace: str) -> None:
    cli.ok(
        "destinations", "add", "stores", *workspace, "--type", "tiktok-ads-offline-events", "--credential", "tt",
        "--set", f"advertiser_id={DEFAULT_ADVERTISER_ID}", "--set", f"event_set_id={DEFAULT_EVENT_SET_ID}",
    )  # fmt: skip
    cli.ok("orchestrations", "add", "orders", *workspace, "--destination", "stores", "--sql", SQL)


@pytest.fixture
def sandbox(store_kind: str, cli: Any, tiktok_credential: str) -> str:
    """Production: `tt` (authorized), `stores`, `orders`; sandbox `sb`: its own `stores` bound to production's `tt`,
    `orders`, and a test code."""
    cli.ok("credentials", "authorize", "tt", input=f"{ADMIN_AUTH_CODE}\n")
    add_destination_and_orchestration(cli)
    cli.ok("workspaces", "add", SANDBOX)
    add_destination_and_orchestration(cli, "-w", SANDBOX)
    cli.ok("sandboxes", "update", SANDBOX, "--test-event-code", "TEST-SB")
    return SANDBOX


def run_json(cli: Any, *args: str) -> dict[str, Any]:
    result = cli("run", *args, "--json")
    assert result.exit_code == 0, result.output
    summary: dict[str, Any] = json.loads(result.stdout)
    return summary


def test_a_sandbox_refresh_rotates_productions_token_and_production_keeps_working(
    sandbox: str, cli: Any, emulator: Any, stored_tokens: Any
) -> None:
    before = stored_tokens()  # production's row: the only one there is
    emulator.advance_clock(2 * 86_400)  # TikTok's clock says the access token expired; offramp's does not know yet

    in_sandbox = run_json(cli, "orders", "-w", sandbox)

    assert in_sandbox["status"] == "succeeded" and in_sandbox["rows"]["sent"] == 3
    after = stored_tokens()
    assert after["refresh_token"] != before["refresh_token"]
    assert after["refresh_token"] == emulator.current_refresh_token()  # production's row holds the rotation
    assert emulator.refresh_with(str(before["refresh_token"]))["code"] == 40107  # the old one is spent
    grant = next(g for g in emulator.grants() if g["user"] == "admin")
    assert grant["access_tokens_issued"] == 2  # the authorization and the sandbox's one refresh

    in_production = run_json(cli, "orders")
    assert in_production["status"] == "succeeded" and in_production["rows"]["sent"] == 3
    assert stored_tokens() == after  # no refresh, no re-authorization needed
    codes = [item["test_event_code"] for item in emulator.state.events()]
    assert codes == ["TEST-SB"] * 3 + [None] * 3  # the sandbox's went to the Test Events view


def test_a_sandbox_lists_productions_credential_as_shared_and_holds_none_of_its_own(sandbox: str, cli: Any) -> None:
    listed = json.loads(cli.ok("credentials", "list", "-w", sandbox, "--json").stdout)
    assert [(item["name"], item.get("shared_from"), item["used_by"]) for item in listed] == [
        ("tt", "production", ["stores"])  # the sandbox's own destination, not production's
    ]
    assert "tt (shared from production)" in cli.ok("credentials", "list", "-w", sandbox).stdout
    production = json.loads(cli.ok("credentials", "list", "--json").stdout)
    assert [(item["name"], "shared_from" in item, item["used_by"]) for item in production] == [
        ("tt", False, ["stores", "stores (sandbox sb)"])
    ]


def test_a_sandbox_names_a_missing_credential_with_both_lists(sandbox: str, cli: Any) -> None:
    refused = cli(
        "destinations", "add", "other", "-w", sandbox, "--type", "tiktok-ads-offline-events", "--credential", "nope",
        "--no-test", "--set", f"advertiser_id={DEFAULT_ADVERTISER_ID}", "--set", f"event_set_id={DEFAULT_EVENT_SET_ID}",
    )  # fmt: skip
    refused.one_line_error("no credential named 'nope' in sandbox 'sb' (its own: none) or in production (shared: tt)")


# The refusals point at the command in production, which takes no -w: the hint checker wants every hint printed by
# a command acting in a sandbox to carry -w SANDBOX, so these hints are checked here as production's commands.
@pytest.mark.hints_unchecked
@pytest.mark.parametrize(
    "command",
    [
        ("update", "tt", "--set", "api_base_url=https://example.invalid"),
        ("delete", "tt"),
        ("rename", "tt", "tt2"),
        ("authorize", "tt"),
    ],
)
def test_a_sandbox_does_not_change_productions_credential(
    sandbox: str, cli: Any, command: tuple[str, ...], hint_checker: Any
) -> None:
    verb = command[0]
    refused = cli("credentials", *command, "-w", sandbox)
    refused.one_line_error(
        "credential 'tt' belongs to production and is shared with sandbox 'sb'",
        f"{verb} it in production, for every workspace that uses it: offramp credentials {verb} tt",
    )
    assert hint_checker(["credentials", *command], refused.stderr) == []  # a working command in production
    shown = json.loads(cli.ok("credentials", "show", "tt", "-w", sandbox, "--json").stdout)
    assert (shown["workspace"], shown["status"]) == ("production", "ready")  # unchanged
