"""Guardrails that protect the runs people actually have: small runs, a typo in an alias, scheduled runs.

Through the CLI, a DuckDB orders file -> the TikTok destination -> the emulator over loopback. A run whose rows were
all rejected, or that sent nothing while rejecting rows, fails (exit 1) naming the most likely cause;
``max_reject_rate`` is checked at the end of every run whatever its size; guardrails stored on the orchestration
apply to runs that do not give them.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from conftest import ORDERS_SQL, Emulator, write_orders

TYPO_SQL = ORDERS_SQL.replace("email,", "email AS emial,")  # the alias typo of the issue


def run(cli: Any, *args: str, code: int = 0) -> dict[str, Any]:
    result = cli("run", *args, "--json")
    assert result.exit_code == code, result.output
    summary: dict[str, Any] = json.loads(result.stdout)
    assert summary["counts_add_up"] is True
    return summary


def add(cli: Any, name: str, source: Path, sql: str = ORDERS_SQL, *options: str) -> None:
    cli.ok("orchestrations", "add", name, "--destination", "stores", "--source", f"duckdb:{source}",
           "--sql", sql, "--map", "Order Completed=Purchase", *options)  # fmt: skip


def test_a_typo_in_an_alias_rejects_every_row_fails_the_run_and_suggests_the_column(
    cli: Any, orchestration: str, emulator: Emulator, orders_file: tuple[Path, int]
) -> None:
    add(cli, "typo", orders_file[0], TYPO_SQL)
    rows = orders_file[1]

    result = cli("run", "typo")
    assert result.exit_code == 1, result.output
    out = result.stdout
    assert "failed" in out.splitlines()[0]
    assert f"error: all {rows} rows read were rejected, so nothing was sent" in out
    assert f"most likely cause: missing_identifiers ({rows} rows)" in out
    assert "column emial was not used (did you mean email?)" in out
    assert "columns not used: emial (did you mean email?)" in out
    assert emulator.events() == []

    summary = run(cli, "typo", code=1)
    assert summary["status"] == "failed"
    assert summary["rows"]["rejected"] == rows and summary["reasons"]["rejected"] == {"missing_identifiers": rows}
    assert summary["column_suggestions"] == {"emial": "email"}
    assert summary["unknown_columns"] == ["emial"]
    assert f"offramp runs show {summary['id']} --rejects" in summary["hint"]

    # A dry run fails the same way: it says what the real run would do, and a script can stop on it.
    dry = run(cli, "typo", "--dry-run", code=1)
    assert dry["status"] == "failed" and dry["dry_run"] is True
    assert "nothing would be sent" in dry["error"] and "did you mean email?" in dry["error"]


def test_max_reject_rate_is_checked_at_the_end_of_a_small_run(
    cli: Any, orchestration: str, emulator: Emulator, tmp_path: Path
) -> None:
    small = tmp_path / "small.duckdb"
    rows = write_orders(small, 25, bad_every=3)  # 50 rows; 8 of them (a third of the orders) without identifiers
    assert rows == 50
    add(cli, "small", small)

    summary = run(cli, "small", "--max-reject-rate", "0.1", code=1)
    assert summary["status"] == "failed"
    rejected = summary["rows"]["rejected"]
    assert 0 < rejected < rows and summary["rows"]["sent"] == rows - rejected
    assert (
        f"{rejected / rows:.1%} of the {rows} rows read were rejected, over --max-reject-rate 10.0%"
        in (summary["error"])
    )
    assert "most likely cause: missing_identifiers" in summary["error"]

    assert run(cli, "small", "--max-reject-rate", "0.5")["status"] == "succeeded"
    assert run(cli, "small")["status"] == "succeeded"  # no guardrail given or stored: rejections are counted


def test_guardrails_stored_on_the_orchestration_apply_to_runs_that_do_not_give_them(
    cli: Any, orchestration: str, emulator: Emulator, tmp_path: Path
) -> None:
    small = tmp_path / "small.duckdb"
    write_orders(small, 25, bad_every=3)
    add(cli, "guarded", small, ORDERS_SQL, "--option", "max_reject_rate=0.1")
    summary = run(cli, "guarded", code=1)
    assert "over the orchestration's max_reject_rate 10.0%" in summary["error"]
    assert run(cli, "guarded", "--max-reject-rate", "0.9")["status"] == "succeeded"  # the run's own value wins

    cli.ok("orchestrations", "add", "empty", "--destination", "stores", "--sql", "SELECT 1 AS x WHERE false",
           "--option", "fail_on_empty=true")  # fmt: skip
    empty = run(cli, "empty", code=1)
    assert empty["status"] == "failed" and "no rows" in empty["error"]


def test_a_run_with_no_rows_succeeds_unless_fail_on_empty(cli: Any, orchestration: str) -> None:
    cli.ok("orchestrations", "add", "empty", "--destination", "stores", "--sql", "SELECT 1 AS x WHERE false")
    summary = run(cli, "empty")
    assert summary["status"] == "succeeded" and summary["rows"]["queried"] == 0
    assert run(cli, "empty", "--fail-on-empty", code=1)["status"] == "failed"


def test_a_mode_new_rerun_that_finds_only_delivered_rows_succeeds(
    cli: Any, orchestration: str, emulator: Emulator, orders_file: tuple[Path, int], tmp_path: Path
) -> None:
    clean = tmp_path / "clean.duckdb"
    rows = write_orders(clean, 40)  # every order has identifiers
    add(cli, "fresh", clean, ORDERS_SQL, "--mode", "new")
    first = run(cli, "fresh")
    assert first["rows"]["sent"] == rows
    again = run(cli, "fresh")
    assert again["status"] == "succeeded"
    assert again["rows"]["skipped"] == rows and again["rows"]["sent"] == 0 and again["rows"]["rejected"] == 0

    # The usual data (some rows always rejected): a rerun sends nothing new, skips what was delivered, and rejects
    # the same rows again. That is not a broken query: it succeeds.
    add(cli, "usual", orders_file[0], ORDERS_SQL, "--mode", "new")
    run(cli, "usual")
    rerun = run(cli, "usual", "--max-reject-rate", "0.5")
    assert rerun["status"] == "succeeded"
    assert rerun["rows"]["sent"] == 0 and rerun["rows"]["skipped"] > 0 and rerun["rows"]["rejected"] > 0
