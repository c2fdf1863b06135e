"""`offramp bench`: preparation and end-to-end throughput (rows/s and events/s), the emulator's ceiling measured in
the same run with end to end as a share of it, and peak memory, on synthetic orders.

Contributed to the CLI by this plugin (``BENCH`` in this package); the benchmark itself is
:mod:`offramp.plugins.tiktok.commands.benchmark`, imported when the command runs (it loads DuckDB).
"""

from __future__ import annotations

from typing import Annotated

import typer

from offramp.core.commands import print_json, say


def bench(
    rows: Annotated[int, typer.Option(min=100, help="Synthetic order lines to generate.")] = 200_000,
    json_output: Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")] = False,
) -> None:
    """Measure preparation (dry run) and end-to-end throughput against the emulator, its ceiling, and peak memory."""
    from offramp.plugins.tiktok.commands.benchmark import run_bench

    if not json_output:
        say(f"Generating {rows:,} synthetic order lines and starting the TikTok emulator in its own process...")
    result = run_bench(rows)
    if json_output:
        print_json(result.as_dict())
        return
    dry = result.dry_run
    say(f"rows: {result.rows:,} (dry run: {dry['sent']:,} would be sent, {dry['rejected']:,} rejected); "
        f"{result.events:,} events sent, {result.emulator_accepted:,} accepted by the emulator")  # fmt: skip
    say(f"preparation (dry run):   {result.prepare_rows_per_second:>10,.0f} rows/s "
        f"{result.prepare_events_per_second:>10,.0f} events/s")  # fmt: skip
    say(f"end to end (emulator):   {result.end_to_end_rows_per_second:>10,.0f} rows/s "
        f"{result.end_to_end_events_per_second:>10,.0f} events/s")  # fmt: skip
    say(f"emulator ceiling:        {'':>17} {result.ceiling_events_per_second:>10,.0f} events/s "
        f"(prebuilt bodies of 1,000 events, {result.ceiling_connections} connections)")  # fmt: skip
    say(f"end to end / ceiling:    {'':>17} {result.ceiling_share:>10.0%} of the ceiling's events/s")
    say(f"peak memory:             {result.peak_memory_mb:>10,.0f} MB resident")
    say("These figures are for this machine; compare ratios, not absolutes, across machines (docs/user-guide.md).")
    say("The ceiling is the emulator fed bodies built ahead of time (offramp's own events) by a client that only posts")
    say("them; in the end-to-end run the emulator shares this machine's cores with offramp.")


__all__ = ["bench"]
