"""Every send from a sandbox is test traffic: a real run there carries a test event code or is refused before
anything is read; TikTok (the emulator) receives it in its Test Events view. Over the CLI, against the emulator, on
SQLite and PostgreSQL (``store`` comes first in each test: it picks the store the other fixtures set up).

The sandboxes here are made with `workspaces add` (empty, no base) and get their destination through the CLI, bound
to production's credential `tt`, which a sandbox shares by reference.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from conftest import ORDERS_SQL, Emulator, run_json, runs_of

from offramp.core.environment import Environment
from offramp.core.state.models import Run
from offramp.core.state.store import open_store
from offramp.plugins.tiktok.emulator import DEFAULT_ADVERTISER_ID, DEFAULT_EVENT_SET_ID

SANDBOX = "sb"
ORDERS_WITH_IDENTIFIERS = 300 - 300 // 50  # the orders file: every 50th order has no email (rejected)


def make_sandbox(cli: Any, orders_file: tuple[Path, int], name: str = SANDBOX) -> str:
    """Sandbox ``name``: destination `stores` bound to production's `tt` (found through the fallback) and
    orchestration `orders`, as in production."""
    cli.ok("workspaces", "add", name)
    cli.ok(
        "destinations", "add", "stores", "-w", name, "--type", "tiktok-ads-offline-events", "--credential", "tt",
        "--set", f"advertiser_id={DEFAULT_ADVERTISER_ID}", "--set", f"event_set_id={DEFAULT_EVENT_SET_ID}",
        "--set", "batch_size=50",
    )  # fmt: skip
    cli.ok(
        "orchestrations", "add", "orders", "-w", name, "--destination", "stores", "--source",
        f"duckdb:{orders_file[0]}", "--sql", ORDERS_SQL, "--map", "Order Completed=Purchase",
    )  # fmt: skip
    return name


def stored_report(run_id: str) -> dict[str, Any]:
    store = open_store(Environment())
    try:
        with store.read_session() as session:
            run = session.get(Run, run_id)
            assert run is not None
            return dict(run.report or {})
    finally:
        store.dispose()


def set_sandbox_code(cli: Any, workspace: str, code: str) -> None:
    """The sandbox's own test code (a sandbox made by `workspaces add` takes one as one made from production)."""
    cli.ok("sandboxes", "update", workspace, "--test-event-code", code)


def test_a_sandbox_run_without_a_test_code_is_refused_before_anything_is_read(
    store: str, cli: Any, orchestration: str, emulator: Emulator, orders_file: tuple[Path, int]
) -> None:
    make_sandbox(cli, orders_file)
    hidden = orders_file[0].with_suffix(".away")
    orders_file[0].rename(hidden)  # a run that read the source would fail on the missing file, not be refused
    try:
        refused = cli("run", "orders", "-w", SANDBOX)
        line = refused.one_line_error(
            "sandbox 'sb' has no test_event_code for orchestration 'orders'", "test view", "nothing was run",
            "offramp sandboxes update sb --test-event-code CODE", "offramp run orders --test-event-code CODE -w sb",
            "offramp run orders --dry-run -w sb",
        )  # fmt: skip
        assert "missing" not in line and "No such file" not in line
        assert cli("run", "orders", "-w", SANDBOX, "--json").exit_code == 1  # --json too
    finally:
        hidden.rename(orders_file[0])
    assert runs_of(cli, SANDBOX) == []  # nothing recorded
    assert emulator.events() == []


def test_a_sandbox_dry_run_is_allowed_and_previews_the_sandbox_code(
    store: str, cli: Any, orchestration: str, emulator: Emulator, orders_file: tuple[Path, int]
) -> None:
    make_sandbox(cli, orders_file)
    summary = run_json(cli, "orders", "-w", SANDBOX, "--dry-run")
    assert summary["status"] == "succeeded" and summary["dry_run"] is True
    assert "test_event_code" not in summary["sample_requests"][0]

    set_sandbox_code(cli, SANDBOX, "TEST-SB")
    preview = run_json(cli, "orders", "-w", SANDBOX, "--dry-run")
    assert preview["sample_requests"][0]["test_event_code"] == "TEST-SB"  # what the real run would send
    assert emulator.events() == []
    assert "test_traffic" not in stored_report(preview["id"])  # nothing was sent


def test_a_sandbox_run_with_a_test_code_reaches_tiktoks_test_view(
    store: str, cli: Any, orchestration: str, emulator: Emulator, orders_file: tuple[Path, int]
) -> None:
    make_sandbox(cli, orders_file)
    summary = run_json(cli, "orders", "-w", SANDBOX, "--test-event-code", "TEST-RUN")
    assert summary["status"] == "succeeded"
    assert summary["rows"]["sent"] > 0
    received = emulator.events()
    assert len(received) == ORDERS_WITH_IDENTIFIERS
    assert {item["test_event_code"] for item in received} == {"TEST-RUN"}
    assert emulator.state.stats.test_events == len(received)  # TikTok's Test Events view, not attribution
    assert stored_report(summary["id"])["test_traffic"] is True


def test_the_sandbox_code_is_sent_and_the_orchestrations_own_option_wins_over_it(
    store: str, cli: Any, orchestration: str, emulator: Emulator, orders_file: tuple[Path, int]
) -> None:
    make_sandbox(cli, orders_file)
    set_sandbox_code(cli, SANDBOX, "TEST-SB")

    def codes_of_run(*args: str) -> set[str | None]:
        seen = len(emulator.events())
        summary = run_json(cli, "orders", "-w", SANDBOX, "--limit", "10", *args)
        assert summary["status"] == "succeeded" and summary["rows"]["sent"] > 0
        assert stored_report(summary["id"])["test_traffic"] is True
        return {item["test_event_code"] for item in emulator.events()[seen:]}

    assert codes_of_run() == {"TEST-SB"}  # the sandbox's own code, in the request body
    cli.ok("orchestrations", "update", "orders", "-w", SANDBOX, "--test-event-code", "TEST-ORCH")
    assert codes_of_run() == {"TEST-ORCH"}  # the orchestration's option wins over the sandbox's
    assert codes_of_run("--test-event-code", "TEST-RUN") == {"TEST-RUN"}  # and the run's own over both


def test_a_webhook_in_a_sandbox_only_dry_runs(
    store: str, cli: Any, orchestration: str, emulator: Emulator, monkeypatch: Any
) -> None:
    monkeypatch.setenv("HOOK_SECRET", "webhook-signing-secret")
    cli.ok("credentials", "add", "signing", "--type", "hmac-secret", "--set", "secret=env:HOOK_SECRET")
    cli.ok("workspaces", "add", SANDBOX)
    set_sandbox_code(cli, SANDBOX, "TEST-SB")  # a test code does not help a type that cannot isolate test traffic
    cli.ok(
        "destinations", "add", "hooks", "-w", SANDBOX, "--type", "webhook", "--credential", "signing", "--no-test",
        "--set", "url=http://127.0.0.1:9/events",
    )  # fmt: skip
    sql = "SELECT 'ord-' || i AS event_id, i AS total FROM range(3) AS t(i)"
    cli.ok("orchestrations", "add", "hooked", "-w", SANDBOX, "--destination", "hooks", "--sql", sql)
    cli("run", "hooked", "-w", SANDBOX).one_line_error(
        "destination type webhook cannot keep test traffic apart from real traffic", "sandbox 'sb'",
        "nothing was run", "offramp run hooked --dry-run -w sb",
    )  # fmt: skip
    assert runs_of(cli, SANDBOX) == []
    assert run_json(cli, "hooked", "-w", SANDBOX, "--dry-run")["status"] == "succeeded"


def test_production_runs_are_unaffected_and_a_test_code_there_is_recorded_as_test_traffic(
    store: str, cli: Any, orchestration: str, emulator: Emulator, orders_file: tuple[Path, int]
) -> None:
    make_sandbox(cli, orders_file)  # a sandbox without a code changes nothing for production
    live = run_json(cli, orchestration, "--limit", "10")
    assert live["status"] == "succeeded"
    assert {item["test_event_code"] for item in emulator.events()} == {None}
    assert "test_traffic" not in stored_report(live["id"])

    seen = len(emulator.events())
    test = run_json(cli, orchestration, "--limit", "10", "--test-event-code", "TEST-PROD")
    assert {item["test_event_code"] for item in emulator.events()[seen:]} == {"TEST-PROD"}
    assert stored_report(test["id"])["test_traffic"] is True
