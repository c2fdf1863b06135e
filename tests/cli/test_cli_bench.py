"""`offramp bench`: synthetic orders, a dry run and a real run against the emulator in its own process."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import duckdb

from offramp.plugins.tiktok.commands.benchmark import write_orders


def test_bench_measures_both_stages_and_the_ceiling_and_every_row_is_accounted_for(cli: Any) -> None:
    result = cli("bench", "--rows", "3000", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)

    assert data["rows"] == 3000
    for run in (data["dry_run"], data["run"]):
        assert run["status"] == "succeeded"
        assert run["queried"] == 3000 == run["sent"] + run["rejected"] + run["failed"] + run["skipped"]
        assert set(run["reason_counts"]) <= {"missing_identifiers", "unknown_event_name"}
    assert data["run"]["sent"] == data["dry_run"]["sent"]  # the dry run prepares exactly what is then sent
    assert data["run"]["events"]["sent"] == data["dry_run"]["events"]["sent"] == data["events"]
    assert data["emulator_accepted"] == data["events"] > 0  # every event sent was accepted, once
    assert data["peak_memory_mb"] > 0

    # Both stages in rows/s and events/s, and end to end as a share of the emulator's ceiling measured in the run.
    for stage in ("prepare", "end_to_end"):
        rows, events = data[f"{stage}_rows_per_second"], data[f"{stage}_events_per_second"]
        assert 0 < events <= rows  # an event is one or more rows, and some rows are rejected
    assert data["ceiling_events_per_second"] > 0
    assert data["ceiling_connections"] >= 1
    assert abs(data["ceiling_share"] - data["end_to_end_events_per_second"] / data["ceiling_events_per_second"]) < 1e-9


def test_bench_prints_both_stages_and_the_ceiling(cli: Any) -> None:
    result = cli("bench", "--rows", "3000")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()

    def figures(start: str) -> dict[str, float]:
        """The figures of the line that starts with ``start``, by unit (``rows/s``, ``events/s``, ``%``)."""
        (line,) = [line for line in lines if line.startswith(start)]
        found = re.findall(r"([\d,]+)\s?(rows/s|events/s|%)", line[len(start) :])
        return {unit: float(number.replace(",", "")) for number, unit in found}

    preparation, end_to_end = figures("preparation (dry run):"), figures("end to end (emulator):")
    for stage in (preparation, end_to_end):
        assert set(stage) == {"rows/s", "events/s"} and 0 < stage["events/s"] <= stage["rows/s"]
    ceiling = figures("emulator ceiling:")["events/s"]
    share = figures("end to end / ceiling:")["%"]
    assert abs(share - 100 * end_to_end["events/s"] / ceiling) <= 1  # both figures printed rounded


def test_synthetic_orders_look_like_a_store(tmp_path: Path) -> None:
    path = tmp_path / "o.duckdb"
    assert write_orders(path, 30_000) == 30_000
    with duckdb.connect(str(path), read_only=True) as con:
        per_order = con.sql("SELECT count(*) AS n FROM orders GROUP BY order_id").fetchall()
        share = con.sql(
            "SELECT avg((email IS NOT NULL)::INT), avg((phone IS NOT NULL)::INT), "
            "avg((email IS NULL AND phone IS NULL)::INT), avg((event_name <> 'Order Completed')::INT) FROM orders"
        ).fetchall()[0]
    assert {n for (n,) in per_order} <= {1, 2, 3, 4, 5} and len({n for (n,) in per_order}) == 5
    with_email, with_phone, without_ids, unknown_events = share
    assert 0.85 < with_email < 0.99 and 0.4 < with_phone < 0.6
    assert 0 < without_ids < 0.05 and 0 < unknown_events < 0.05
