"""Commands the TikTok plugin adds to the CLI, through the entry point group ``offramp.commands``.

``offramp demo`` (the main job against the emulator, in one command), ``offramp bench`` (throughput and memory on
synthetic orders) and ``offramp emulator tiktok`` (the emulator of TikTok's Business API). Each is a
:class:`offramp.core.commands.CommandContribution`; the heavy parts (DuckDB, the web stack) are imported when the
command runs.
"""

from offramp.core.commands import CommandContribution
from offramp.plugins.tiktok.commands import bench, demo, emulator

DEMO = CommandContribution(
    name="demo",
    help="Start the TikTok emulator, set up a demo workspace, run it twice and show what TikTok received.",
    app=demo.demo,
)
BENCH = CommandContribution(
    name="bench",
    help="Measure preparation (dry run) and end-to-end throughput against the emulator and its own ceiling, and "
    "peak memory.",
    app=bench.bench,
)
EMULATOR = CommandContribution(
    name="emulator",
    help="Local emulators of vendor APIs, for tests, demos and benchmarks (nothing is sent to the vendor).",
    app=emulator.app,
)

__all__ = ["BENCH", "DEMO", "EMULATOR"]
