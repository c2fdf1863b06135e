"""Sandboxes, as a user meets them after review: binding a sandbox destination to the sandbox's own credential of
production's name, blank test codes, a webhook given a test code, a deleted sandbox's runs, two query columns for one
field, an orchestration's own test code on its way to production, and a workspace that cannot be promoted.

Over the CLI against the TikTok emulator, on SQLite and PostgreSQL (``store`` comes first in each test: it picks the
store the other fixtures set up). Production is the runner's fixture (credential `tt`, destination `stores`,
orchestration `orders`); sandbox `sb` is made from it with `offramp sandboxes create`.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import SANDBOX, run_json, runs_of
from sqlalchemy import select

from offramp.core.services.context import Context
from offramp.core.services.sandbox_checks import Finding, Validation, validate_sandbox
from offramp.core.state.models import Workspace
from offramp.plugins.tiktok.emulator import DEFAULT_APP_ID, DEFAULT_APP_SECRET


def credentials_in_sandbox(cli: Any) -> list[dict[str, Any]]:
    listed: list[dict[str, Any]] = json.loads(cli.ok("credentials", "list", "-w", SANDBOX, "--json").stdout)
    return listed


def own_and_shared_users(cli: Any, name: str) -> tuple[list[str], list[str]]:
    """The sandbox's destinations bound to its own ``name`` and to production's ``name``."""
    listed = [item for item in credentials_in_sandbox(cli) if item["name"] == name]
    own = [item["used_by"] for item in listed if "shared_from" not in item]
    shared = [item["used_by"] for item in listed if item.get("shared_from") == "production"]
    assert len(own) == 1 and len(shared) == 1, listed
    return own[0], shared[0]


def add_own_tt(cli: Any, emulator: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """The sandbox's own TikTok credential `tt` (a test advertiser's app, say), authorized: production's name."""
    monkeypatch.setenv("EMULATOR_APP_SECRET", DEFAULT_APP_SECRET)
    cli.ok(
        "credentials", "add", "tt", "-w", SANDBOX, "--type", "tiktok-offline-events",
        "--set", f"app_id={DEFAULT_APP_ID}", "--set", "app_secret=env:EMULATOR_APP_SECRET",
        "--set", f"api_base_url={emulator.base_url}", "--set", f"auth_url={emulator.base_url}/portal/auth",
    )  # fmt: skip
    # Production's authorization spent the seeded admin code: the emulator issues another, as TikTok would.
    code = httpx.post(f"{emulator.base_url}/_emulator/auth-codes", json={}).raise_for_status().json()["auth_code"]
    cli.ok("credentials", "authorize", "tt", "-w", SANDBOX, input=f"{code}\n")


def only(findings: list[Finding], subject: str, words: str) -> Finding:
    found = [finding for finding in findings if finding.subject == subject and words in finding.message]
    assert len(found) == 1, f"expected one {words!r} finding about {subject}, got {findings}"
    return found[0]


def assert_hints_work(hint_checker: Callable[..., list[str]], validation: Validation) -> None:
    text = "\n".join(f"hint: {finding.hint}" for finding in [*validation.errors, *validation.warnings] if finding.hint)
    assert hint_checker(["orchestrations", "list", "-w", SANDBOX], text) == []


# -- 1. a sandbox's own credential of production's name --------------------------------------------------------------


def test_update_binds_a_sandbox_destination_to_the_sandboxs_own_credential_of_productions_name(
    store: str, cli: Any, ctx: Context, sandbox: str, emulator: Any, monkeypatch: pytest.MonkeyPatch,
    hint_checker: Callable[..., list[str]],
) -> None:  # fmt: skip
    add_own_tt(cli, emulator, monkeypatch)
    # Both are listed: the sandbox's own, and production's, which `stores` (copied from production) is still bound to.
    assert own_and_shared_users(cli, "tt") == ([], ["stores"])
    [shadowed] = [item for item in credentials_in_sandbox(cli) if item.get("shared_from")]
    assert shadowed["shadowed"] is True
    table = cli.ok("credentials", "list", "-w", SANDBOX).stdout
    assert "shared from production" in table and "shadowed" in table

    # Without --credential the binding stays, whatever it is.
    cli.ok("destinations", "update", "stores", "-w", SANDBOX, "--set", "batch_size=20", "--no-test")
    assert own_and_shared_users(cli, "tt") == ([], ["stores"])

    # --credential tt means what it means to `add`: the sandbox's own first (connection test included).
    moved = cli.ok("destinations", "update", "stores", "-w", SANDBOX, "--credential", "tt")
    assert "credential changed" in moved.stdout
    assert own_and_shared_users(cli, "tt") == (["stores"], [])
    again = cli.ok("destinations", "update", "stores", "-w", SANDBOX, "--credential", "tt", "--no-test")
    assert "nothing to change" in again.stdout

    # Validation: the credential will not exist in production, and production has one of its name: the hint says how
    # to reach it, since the name finds the sandbox's own first.
    result = validate_sandbox(ctx, SANDBOX, connection_tests=False)
    error = only(result.errors, "destination stores", "credential 'tt' of sandbox 'sb'")
    assert error.hint is not None and "add a" not in error.hint
    assert "offramp credentials rename tt tt-sb -w sb" in error.hint
    assert "offramp destinations update stores --credential tt -w sb" in error.hint
    assert_hints_work(hint_checker, result)

    cli.ok("credentials", "rename", "tt", "tt-sb", "-w", SANDBOX)  # the hint's fix, in its order
    cli.ok("destinations", "update", "stores", "-w", SANDBOX, "--credential", "tt", "--no-test")
    assert [item["name"] for item in credentials_in_sandbox(cli) if item["used_by"] == ["stores"]] == ["tt"]
    fixed = validate_sandbox(ctx, SANDBOX, connection_tests=False)
    assert [finding for finding in fixed.errors if finding.subject == "destination stores"] == []


# -- 2. a blank test code is no code ---------------------------------------------------------------------------------


def test_a_blank_test_code_is_no_code_and_a_given_one_is_sent_stripped(
    store: str, cli: Any, ctx: Context, sandbox: str, emulator: Any
) -> None:
    cli("run", "orders", "-w", SANDBOX, "--test-event-code", "  ").one_line_error(
        "sandbox 'sb' has no test_event_code for orchestration 'orders'", "nothing was run"
    )
    cli.ok("orchestrations", "update", "orders", "-w", SANDBOX, "--test-event-code", " ")  # stored blank
    cli("run", "orders", "-w", SANDBOX).one_line_error("sandbox 'sb' has no test_event_code", "nothing was run")
    assert runs_of(cli, SANDBOX) == [] and emulator.events() == []

    summary = run_json(cli, "orders", "-w", SANDBOX, "--limit", "5", "--test-event-code", " TEST-RUN ")
    assert summary["status"] == "succeeded" and summary["rows"]["sent"] > 0
    assert {item["test_event_code"] for item in emulator.events()} == {"TEST-RUN"}

    # The sandbox's own setting, as stored (the CLI strips it; a store written otherwise may not have).
    cli.ok("orchestrations", "update", "orders", "-w", SANDBOX, "--unset", "test_event_code")
    for stored, sent in (("   ", None), ("  TEST-SB ", "TEST-SB")):
        with ctx.store.session() as session:
            row = session.scalar(select(Workspace).where(Workspace.name == SANDBOX))
            assert row is not None
            row.test_event_code = stored
        if sent is None:
            cli("run", "orders", "-w", SANDBOX).one_line_error("sandbox 'sb' has no test_event_code")
            continue
        seen = len(emulator.events())
        assert run_json(cli, "orders", "-w", SANDBOX, "--limit", "5")["status"] == "succeeded"
        assert {item["test_event_code"] for item in emulator.events()[seen:]} == {sent}


# -- 3. a webhook given a test code in a sandbox ---------------------------------------------------------------------


def test_a_webhook_run_with_a_test_code_in_a_sandbox_gets_the_sandbox_refusal(
    store: str, cli: Any, orchestration: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOOK_SECRET", "webhook-signing-secret")
    cli.ok("credentials", "add", "signing", "--type", "hmac-secret", "--set", "secret=env:HOOK_SECRET")
    cli.ok("sandboxes", "create", SANDBOX)
    cli.ok(
        "destinations", "add", "hooks", "-w", SANDBOX, "--type", "webhook", "--credential", "signing", "--no-test",
        "--set", "url=http://127.0.0.1:9/events",
    )  # fmt: skip
    sql = "SELECT 'ord-' || i AS event_id, i AS total FROM range(3) AS t(i)"
    cli.ok("orchestrations", "add", "hooked", "-w", SANDBOX, "--destination", "hooks", "--sql", sql)
    line = cli("run", "hooked", "-w", SANDBOX, "--test-event-code", "TEST-X").one_line_error(
        "destination type webhook cannot keep test traffic apart from real traffic", "sandbox 'sb'",
        "nothing was run", "offramp run hooked --dry-run -w sb",
    )  # fmt: skip
    assert "unknown run option" not in line
    # A dry run still checks the overrides: the type has no such option.
    cli("run", "hooked", "-w", SANDBOX, "--dry-run", "--test-event-code", "TEST-X").one_line_error(
        "unknown run option test_event_code"
    )
    assert runs_of(cli, SANDBOX) == []


# -- 4. a deleted sandbox does not run -------------------------------------------------------------------------------


def test_a_deleted_sandbox_does_not_run_and_its_runs_stay_readable(
    store: str, cli: Any, ctx: Context, sandbox: str, emulator: Any
) -> None:
    kept = run_json(cli, "orders", "-w", SANDBOX, "--dry-run", "--limit", "5")
    cli.ok("sandboxes", "delete", SANDBOX)
    with ctx.store.read_session() as session:
        [deleted] = session.scalars(select(Workspace.name).where(Workspace.deleted_at.is_not(None)))
    assert deleted.startswith(f"{SANDBOX}~deleted-")

    for args in ((), ("--dry-run",), ("--test-event-code", "TEST-X")):
        cli("run", "orders", "-w", deleted, *args).one_line_error(
            "sandbox 'sb' was deleted; its runs are kept as history"
        )
    assert [run["id"] for run in runs_of(cli, deleted)] == [kept["id"]]  # reading them stays allowed
    assert emulator.events() == []


# -- 5. validation: two columns for one field, an own test code, a workspace without a base --------------------------


@pytest.mark.parametrize(
    "columns", ["email, email", "email AS Email, email"], ids=["same-name", "names-differing-in-case"]
)
def test_two_query_columns_for_one_field_are_an_error_and_fail_the_run(
    store: str, cli: Any, ctx: Context, sandbox: str, emulator: Any, columns: str,
    hint_checker: Callable[..., list[str]],
) -> None:  # fmt: skip
    sql = f"SELECT order_id AS event_id, 'Order Completed' AS event, ordered_at AS timestamp, {columns} FROM orders"
    cli.ok("orchestrations", "update", "orders", "-w", SANDBOX, "--sql", sql)

    result = validate_sandbox(ctx, SANDBOX, connection_tests=False)
    error = only(result.errors, "orchestration orders", "the query has two columns for 'email'")
    assert "every run of it fails" in error.message and not result.ok
    assert_hints_work(hint_checker, result)

    # What validation foresees is what a run does.
    summary = run_json(cli, "orders", "-w", SANDBOX, "--test-event-code", "TEST-X", code=1)
    assert summary["status"] == "failed" and "two columns for 'email'" in summary["error"]
    assert emulator.events() == []


def test_an_orchestrations_own_test_code_on_its_way_to_production_is_a_warning(
    store: str, cli: Any, ctx: Context, sandbox: str, emulator: Any, hint_checker: Callable[..., list[str]]
) -> None:
    cli.ok("orchestrations", "update", "orders", "-w", SANDBOX, "--test-event-code", "TEST-ORCH")
    result = validate_sandbox(ctx, SANDBOX, connection_tests=False)
    warning = only(result.warnings, "orchestration orders", "its own test code would go to production")
    assert warning.hint is not None
    assert "offramp orchestrations update orders --unset test_event_code -w sb" in warning.hint
    assert result.ok  # a warning: it does not block promotion
    assert_hints_work(hint_checker, result)

    cli.ok("orchestrations", "update", "orders", "-w", SANDBOX, "--unset", "test_event_code")  # the hint's fix
    after = validate_sandbox(ctx, SANDBOX, connection_tests=False)
    assert [w for w in after.warnings if "own test code" in w.message] == []


def test_validation_says_whether_the_workspace_can_be_promoted(
    store: str, cli: Any, ctx: Context, sandbox: str, orders_file: tuple[Path, int]
) -> None:
    assert validate_sandbox(ctx, SANDBOX, connection_tests=False).promotable is True
    cli.ok("workspaces", "add", "scratch")  # empty, no base: checked, but never promoted
    assert validate_sandbox(ctx, "scratch", connection_tests=False).promotable is False
    assert cli("sandboxes", "promote", "scratch", "--message", "try").exit_code == 1  # as promotion says
