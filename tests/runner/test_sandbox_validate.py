"""`offramp sandboxes validate`'s checks (``sandbox_checks.validate_sandbox``): what blocks a promotion and what only
warns, on the real store (SQLite and PostgreSQL: ``store`` comes first in each test), with connection tests against
the TikTok emulator over loopback and queries planned against a real DuckDB file.

Production is the runner's fixture (credential `tt`, destination `stores`, orchestration `orders`); each test makes
sandbox `sb` from it with `offramp sandboxes create` (so it has a base) and changes it through the CLI.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from conftest import ORDERS_SQL, SANDBOX

from offramp.core.errors import ConfigError, ObjectNotFoundError
from offramp.core.services import destination_calls
from offramp.core.services.context import Context
from offramp.core.services.destinations import get_destination
from offramp.core.services.sandbox_checks import Finding, Validation, query_columns, validate_sandbox
from offramp.core.services.workspaces import get_workspace
from offramp.core.state.models import Orchestration, OrchestrationGroup, OrchestrationGroupMember
from offramp.plugins.tiktok.destination import HOOKS as TIKTOK_HOOKS
from offramp.plugins.tiktok.emulator import DEFAULT_APP_ID, DEFAULT_APP_SECRET

TIKTOK = "tiktok-ads-offline-events"
# ORDERS_SQL without its timestamp column: TikTok rejects every row of it (missing_timestamp).
NO_TIMESTAMP_SQL = "SELECT order_id AS event_id, 'Order Completed' AS event, email FROM orders"
needs_required_columns = pytest.mark.skipif(
    getattr(TIKTOK_HOOKS, "required_columns", None) is None,
    reason="the TikTok destination does not declare its required columns yet (DestinationHooks.required_columns)",
)


def validate(ctx: Context, *, connection_tests: bool = False) -> Validation:
    return validate_sandbox(ctx, SANDBOX, connection_tests=connection_tests)


def about(findings: list[Finding], subject: str) -> list[Finding]:
    return [finding for finding in findings if finding.subject == subject]


def only(findings: list[Finding], subject: str, words: str) -> Finding:
    """The one finding about ``subject`` whose message holds ``words``."""
    found = [finding for finding in about(findings, subject) if words in finding.message]
    assert len(found) == 1, f"expected one {words!r} finding about {subject}, got {findings}"
    return found[0]


def assert_hints_work(hint_checker: Callable[..., list[str]], validation: Validation) -> None:
    """Every hint is a command that works pasted in the sandbox (the CLI tests' hint rules)."""
    text = "\n".join(f"hint: {finding.hint}" for finding in [*validation.errors, *validation.warnings] if finding.hint)
    assert hint_checker(["orchestrations", "list", "-w", SANDBOX], text) == []


def schedule(cli: Any, name: str = "orders") -> None:
    cli.ok("orchestrations", "update", name, "-w", SANDBOX, "--schedule", "0 6 * * *")


def scheduled_group(ctx: Context, group: str, *members: str, cron: str | None = "0 6 * * *") -> None:
    """A group of the sandbox with ``members`` (groups are made by `offramp apply`; written here directly)."""
    with ctx.store.session() as session:
        workspace = get_workspace(session, SANDBOX)
        row = OrchestrationGroup(workspace=workspace, name=group, schedule=cron)
        session.add(row)
        for position, name in enumerate(members):
            orchestration = session.query(Orchestration).filter_by(workspace_id=workspace.id, name=name).one()
            row.members.append(OrchestrationGroupMember(orchestration=orchestration, position=position))


def test_a_clean_sandbox_validates_without_errors_or_warnings(
    store: str, cli: Any, ctx: Context, sandbox: str, emulator: Any, hint_checker: Callable[..., list[str]]
) -> None:
    unchanged = validate(ctx, connection_tests=True)
    assert unchanged.errors == [] and unchanged.warnings == [] and unchanged.ok  # nothing to promote, nothing wrong

    cli.ok("destinations", "update", "stores", "-w", SANDBOX, "--set", "batch_size=20")
    cli.ok("orchestrations", "update", "orders", "-w", SANDBOX, "--sql", ORDERS_SQL.replace("ORDER BY", "\nORDER BY"))
    schedule(cli)
    cli.ok("run", "orders", "-w", SANDBOX, "--test-event-code", "TEST-SB")
    before = len(emulator.events())

    result = validate(ctx, connection_tests=True)
    assert result.errors == [] and result.warnings == [] and result.ok
    assert len(emulator.events()) == before  # validation sends no event


def test_a_destination_bound_to_the_sandboxs_own_credential_is_an_error(
    store: str, cli: Any, ctx: Context, sandbox: str, emulator: Any, monkeypatch: pytest.MonkeyPatch,
    hint_checker: Callable[..., list[str]],
) -> None:  # fmt: skip
    monkeypatch.setenv("EMULATOR_APP_SECRET", DEFAULT_APP_SECRET)
    cli.ok(
        "credentials", "add", "tt-test", "-w", SANDBOX, "--type", "tiktok-offline-events",
        "--set", f"app_id={DEFAULT_APP_ID}", "--set", "app_secret=env:EMULATOR_APP_SECRET",
        "--set", f"api_base_url={emulator.base_url}", "--set", f"auth_url={emulator.base_url}/portal/auth",
    )  # fmt: skip
    cli.ok("destinations", "update", "stores", "-w", SANDBOX, "--credential", "tt-test", "--no-test")

    result = validate(ctx)
    error = only(result.errors, "destination stores", "credential 'tt-test' of sandbox 'sb'")
    assert "will not exist in production" in error.message
    assert error.hint == "bind it to a production credential: offramp destinations update stores --credential tt -w sb"
    assert not result.ok
    assert_hints_work(hint_checker, result)

    cli.ok("destinations", "update", "stores", "-w", SANDBOX, "--credential", "tt")  # the hint's fix
    assert about(validate(ctx).errors, "destination stores") == []


def test_a_destination_that_fails_its_connection_test_is_an_error(
    store: str, cli: Any, ctx: Context, sandbox: str, emulator: Any, hint_checker: Callable[..., list[str]]
) -> None:
    cli.ok("destinations", "update", "stores", "-w", SANDBOX, "--set", "event_set_id=999000999", "--no-test")

    result = validate(ctx, connection_tests=True)
    error = only(result.errors, "destination stores", "fails its connection test")
    assert "event set 999000999 does not exist" in error.message
    assert error.hint == "see every step with `offramp destinations test stores -w sb`"
    assert_hints_work(hint_checker, result)

    assert about(validate(ctx, connection_tests=False).errors, "destination stores") == []  # skipped on request


def test_a_query_that_does_not_plan_against_its_source_is_an_error(
    store: str, cli: Any, ctx: Context, sandbox: str, orders_file: tuple[Path, int],
    hint_checker: Callable[..., list[str]],
) -> None:  # fmt: skip
    cli.ok(
        "orchestrations",
        "update",
        "orders",
        "-w",
        SANDBOX,
        "--sql",
        "SELECT order_id AS event_id,\n  nope\nFROM orders",
    )
    result = validate(ctx)
    error = only(result.errors, "orchestration orders", "does not plan against its source")
    assert '"nope"' in error.message and "(line 2: 'nope')" in error.message  # the user's line, not the wrapper's
    assert error.hint == "fix the query (`offramp orchestrations show orders -w sb` prints its SQL)"
    assert_hints_work(hint_checker, result)

    missing = orders_file[0].with_name("gone.duckdb")
    cli.ok("orchestrations", "update", "orders", "-w", SANDBOX, "--sql", ORDERS_SQL, "--source", f"duckdb:{missing}")
    unopened = only(validate(ctx).errors, "orchestration orders", "does not plan against its source")
    assert f"DuckDB file {missing} does not exist" in unopened.message


def test_the_query_is_planned_without_reading_a_row(store: str, orders_file: tuple[Path, int]) -> None:
    source = f"duckdb:{orders_file[0]}"
    assert query_columns(source, ORDERS_SQL) == [
        "event_id", "event", "timestamp", "email", "order_id", "content_id", "price", "quantity",
    ]  # fmt: skip
    # Every row of the orders file would fail this cast (emails are not numbers): planned, never read.
    assert query_columns(source, "SELECT CAST(email AS INTEGER) AS n FROM orders -- trailing comment") == ["n"]
    empty = "SELECT order_id AS event_id FROM orders WHERE false"
    assert query_columns(source, empty) == ["event_id"]  # a query with no rows still has its columns


@needs_required_columns
def test_a_scheduled_orchestration_without_a_required_column_is_an_error(
    store: str, cli: Any, ctx: Context, sandbox: str, hint_checker: Callable[..., list[str]]
) -> None:
    cli.ok(
        "orchestrations",
        "update",
        "orders",
        "-w",
        SANDBOX,
        "--sql",
        NO_TIMESTAMP_SQL.replace("email", "email, ordered_at AS event_time"),
    )
    assert about(validate(ctx).errors, "orchestration orders") == []  # started by hand: the run report says it

    scheduled_group(ctx, "nightly", "orders")
    result = validate(ctx)
    error = only(result.errors, "orchestration orders", "no timestamp column")
    assert error.message.startswith("runs on group nightly, but its query has no timestamp column")
    assert "(did you mean event_time AS timestamp?)" in error.message
    assert_hints_work(hint_checker, result)

    cli.ok(
        "orchestrations",
        "update",
        "orders",
        "-w",
        SANDBOX,
        "--sql",
        NO_TIMESTAMP_SQL.replace("'Order Completed' AS event, ", ""),
    )
    both = [f.message for f in about(validate(ctx).errors, "orchestration orders")]
    assert any("no event column" in message for message in both) and any("no timestamp" in m for m in both)
    cli.ok("destinations", "update", "stores", "-w", SANDBOX, "--set", "fixed_event_name=Purchase", "--no-test")
    waived = [f.message for f in about(validate(ctx).errors, "orchestration orders")]
    assert not any("no event column" in message for message in waived)  # the destination names every event


def test_columns_the_destination_does_not_read_are_a_warning(
    store: str, cli: Any, ctx: Context, sandbox: str, hint_checker: Callable[..., list[str]]
) -> None:
    sql = ORDERS_SQL.replace("email,", "email AS emial, 'x' AS note,")
    cli.ok("orchestrations", "update", "orders", "-w", SANDBOX, "--sql", sql)
    result = validate(ctx)
    warning = only(result.warnings, "orchestration orders", "does not read")
    assert warning.message == f"{TIKTOK} does not read the query's column(s) emial (did you mean email?), note"
    assert about(result.errors, "orchestration orders") == []  # a warning only
    assert_hints_work(hint_checker, result)


def test_a_changed_orchestration_without_a_test_run_since_its_change_is_a_warning(
    store: str, cli: Any, ctx: Context, sandbox: str, emulator: Any, hint_checker: Callable[..., list[str]]
) -> None:
    schedule(cli)  # a change
    result = validate(ctx)
    warning = only(result.warnings, "orchestration orders", "send a test first")
    assert warning.hint == "offramp run orders --test-event-code CODE -w sb"
    assert result.ok  # warnings do not block
    assert_hints_work(hint_checker, result)

    cli.ok("run", "orders", "-w", SANDBOX, "--dry-run")
    assert about(validate(ctx).warnings, "orchestration orders")  # a dry run sends no test

    cli.ok("sandboxes", "update", SANDBOX, "--test-event-code", "TEST-SB")
    assert only(validate(ctx).warnings, "orchestration orders", "send a test first").hint == "offramp run orders -w sb"
    cli.ok("run", "orders", "-w", SANDBOX)
    assert about(validate(ctx).warnings, "orchestration orders") == []

    cli.ok("orchestrations", "update", "orders", "-w", SANDBOX, "--schedule", "0 7 * * *")  # changed since the test
    assert about(validate(ctx).warnings, "orchestration orders")
    cli.ok("run", "orders", "-w", SANDBOX)
    cli.ok("destinations", "update", "stores", "-w", SANDBOX, "--set", "batch_size=20")  # its destination changed
    assert only(validate(ctx).warnings, "orchestration orders", "send a test first")


def test_an_orchestration_in_no_group_and_with_no_schedule_is_a_warning(
    store: str, cli: Any, ctx: Context, sandbox: str, orders_file: tuple[Path, int],
    hint_checker: Callable[..., list[str]],
) -> None:  # fmt: skip
    cli.ok(
        "orchestrations", "add", "eu-orders", "-w", SANDBOX, "--destination", "stores",
        "--source", f"duckdb:{orders_file[0]}", "--sql", ORDERS_SQL, "--map", "Order Completed=Purchase",
    )  # fmt: skip
    result = validate(ctx)
    warning = only(result.warnings, "orchestration eu-orders", "no group")
    assert warning.hint == "schedule it, e.g. offramp orchestrations update eu-orders --schedule '0 6 * * *' -w sb"
    assert_hints_work(hint_checker, result)

    scheduled_group(ctx, "by-hand", "eu-orders", cron=None)
    assert not any("no group" in f.message for f in about(validate(ctx).warnings, "orchestration eu-orders"))


def test_findings_are_ordered_by_subject_and_a_workspace_made_empty_counts_everything_as_changed(
    store: str, cli: Any, ctx: Context, emulator: Any, orders_file: tuple[Path, int]
) -> None:
    cli.ok("workspaces", "add", SANDBOX)  # no base: every object is promotion's
    cli.ok(
        "destinations", "add", "stores", "-w", SANDBOX, "--type", TIKTOK, "--credential", "tt",
        "--set", "advertiser_id=1234567890", "--set", "event_set_id=999000999", "--no-test",
    )  # fmt: skip
    for name in ("b-orders", "a-orders"):
        cli.ok(
            "orchestrations", "add", name, "-w", SANDBOX, "--destination", "stores",
            "--source", f"duckdb:{orders_file[0]}", "--sql", ORDERS_SQL, "--map", "Order Completed=Purchase",
        )  # fmt: skip
    result = validate(ctx, connection_tests=True)
    assert [f.subject for f in result.errors] == ["destination stores"]  # tested: it is new
    subjects = [f.subject for f in result.warnings]
    assert subjects == sorted(subjects) and set(subjects) == {"orchestration a-orders", "orchestration b-orders"}


def test_production_and_unknown_workspaces_are_refused(store: str, ctx: Context) -> None:
    with pytest.raises(ConfigError, match="production is not a sandbox"):
        validate_sandbox(ctx, "production")
    with pytest.raises(ObjectNotFoundError, match="no workspace named 'nowhere'"):
        validate_sandbox(ctx, "nowhere")


def test_the_connection_test_is_the_one_destinations_test_runs(
    store: str, cli: Any, ctx: Context, sandbox: str, emulator: Any
) -> None:
    """The same steps as `offramp destinations test` (destination_calls.test_connection), not a second copy."""
    cli.ok("destinations", "update", "stores", "-w", SANDBOX, "--set", "event_set_id=999000999", "--no-test")
    with ctx.store.read_session() as session:
        row = get_destination(session, get_workspace(session, SANDBOX), "stores")
        _loaded = (row.workspace.name, row.credential.name)
    failed = [
        f"{step.name}: {step.detail}"
        for step in destination_calls.test_connection(ctx, row)
        if step.verdict == "failed"
    ]
    error = only(validate(ctx, connection_tests=True).errors, "destination stores", "fails its connection test")
    assert error.message == "fails its connection test: " + "; ".join(failed)
