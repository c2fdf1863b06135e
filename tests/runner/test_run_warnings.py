"""What a run says about events that went through with a problem, event names nobody mapped, and a vendor that
cannot be reached: `runs show --warnings`, labels per reason, one line per retry.

Through the CLI, a DuckDB orders file -> the TikTok destination -> the emulator over loopback (or a closed port).
"""

from __future__ import annotations

import csv
import io
import json
import re
import socket
from pathlib import Path
from typing import Any

import duckdb
import sqlalchemy as sa
from conftest import Emulator

from offramp.core.environment import Environment

# Orders whose number ends in 7 have a phone number no region has: the event goes with its email only, and the
# event carries the warning invalid_phone.
PHONE_SQL = """
SELECT order_id AS event_id, 'Order Completed' AS event, ordered_at AS timestamp, email, order_id,
       CASE WHEN order_id LIKE '%7' THEN '12' END AS phone,
       sku AS content_id, price, qty AS quantity
FROM orders ORDER BY order_id, sku
"""

# Event names nobody mapped: two of them, on some orders.
NAMES_SQL = """
SELECT order_id AS event_id,
       CASE WHEN order_id LIKE '%3' THEN 'Refund' WHEN order_id LIKE '%9' THEN 'Order Complete'
            ELSE 'Order Completed' END AS event,
       ordered_at AS timestamp, email, order_id, sku AS content_id, price, qty AS quantity
FROM orders ORDER BY order_id, sku
"""


def add(cli: Any, name: str, source: Path, sql: str) -> None:
    cli.ok("orchestrations", "add", name, "--destination", "stores", "--source", f"duckdb:{source}",
           "--sql", sql, "--map", "Order Completed=Purchase")  # fmt: skip


def test_runs_show_warnings_lists_the_events_with_their_warnings_and_exports_them(
    store: str, cli: Any, orchestration: str, emulator: Emulator, orders_file: tuple[Path, int], tmp_path: Path
) -> None:
    with duckdb.connect(str(orders_file[0]), read_only=True) as con:
        warned = {
            row[0]
            for row in con.sql(
                "SELECT DISTINCT order_id FROM orders WHERE order_id LIKE '%7' AND email IS NOT NULL"
            ).fetchall()
        }
    add(cli, "phones", orders_file[0], PHONE_SQL)
    result = cli.ok("run", "phones")
    [run_id] = re.findall(r"^run (\w+) ", result.stdout, flags=re.MULTILINE)
    assert "warnings: invalid_phone" in result.stdout
    assert f"events with warnings: offramp runs show {run_id} --warnings" in result.stdout

    shown = json.loads(cli.ok("runs", "show", run_id, "--warnings", "--json").stdout)
    assert {item["event_id"] for item in shown["warning_events"]} == warned
    assert all(item["warnings"] == ["invalid_phone"] for item in shown["warning_events"])
    table = cli.ok("runs", "show", run_id, "--warnings").stdout
    assert "Events with warnings" in table and all(event_id in table for event_id in warned)

    exported = list(csv.DictReader(io.StringIO(cli.ok("runs", "show", run_id, "--warnings", "--format", "csv").stdout)))
    assert {row["event_id"]: row["warnings"] for row in exported} == dict.fromkeys(warned, "invalid_phone")
    target = tmp_path / "warnings.json"
    said = cli.ok("runs", "show", run_id, "--warnings", "--output", str(target)).stdout
    assert f"Wrote {len(warned)} events with warnings of run {run_id}" in said
    assert {item["event_id"] for item in json.loads(target.read_text(encoding="utf-8"))} == warned
    # Names only: the store holds no phone number or email for them.
    engine = sa.create_engine(Environment().store_url)
    try:
        with engine.connect() as connection:
            stored = connection.execute(sa.text("SELECT event_id, warnings FROM run_warnings")).fetchall()
    finally:
        engine.dispose()
    assert {warnings for _, warnings in stored} == {"invalid_phone"} and "@" not in repr(stored)
    cli("runs", "show", run_id, "--warnings", "--rejects", "--format", "csv").one_line_error("--warnings")


def test_event_names_nobody_mapped_are_listed_under_their_reason(
    cli: Any, orchestration: str, emulator: Emulator, orders_file: tuple[Path, int]
) -> None:
    add(cli, "names", orders_file[0], NAMES_SQL)
    result = cli.ok("run", "names")
    [line] = [line for line in result.stdout.splitlines() if line.startswith("unknown_event_name: ")]
    assert sorted(line.removeprefix("unknown_event_name: ").split(", ")) == ["Order Complete", "Refund"]
    [summary] = json.loads(cli.ok("runs", "list", "--orchestration", "names", "--json").stdout)
    assert sorted(summary["labels"]["unknown_event_name"]) == ["Order Complete", "Refund"]
    assert "unknown_event_name: " in cli.ok("runs", "show", summary["id"]).stdout


def test_a_vendor_that_cannot_be_reached_is_said_at_every_retry(
    cli: Any, orchestration: str, emulator: Emulator
) -> None:
    with socket.socket() as probe:  # a port nothing listens on: every request is refused
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    engine = sa.create_engine(Environment().store_url)
    try:
        with engine.begin() as connection:
            connection.execute(
                sa.text("UPDATE credentials SET settings = json_set(settings, '$.api_base_url', :url)"),
                {"url": f"http://127.0.0.1:{closed}"},
            )
    finally:
        engine.dispose()

    result = cli("run", orchestration, "--limit", "10")
    assert result.exit_code == 1
    retries = [line for line in result.stderr.splitlines() if "retrying in" in line]
    assert len(retries) == 9, result.stderr  # 10 attempts: 9 retries, each said
    # The destination's own words for the transient error (they name TikTok), without its hint: then the wait.
    assert all(line.startswith("offramp: WARNING: TikTok unreachable (connection refused); ") for line in retries)
    assert re.search(r"; retrying in [0-9.]+ s, attempt 2 of 10$", retries[0])
    assert retries[-1].endswith("attempt 10 of 10")
    assert "stamina" not in result.stderr  # stamina's own instrumentation is silenced
    assert "--resume" in result.stdout and result.stdout.count("--resume") == 1  # the resume hint, said once
