"""`offramp scheduler [--once]`: fire due schedules through the same runner as `offramp run`.

The loop is :class:`offramp.core.scheduling.scheduler.Scheduler`; this module only starts it, turns SIGTERM and
Ctrl-C into a clean stop, and writes its one line per fire and outcome to stderr.
"""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from types import FrameType
from typing import Annotated

import typer

from offramp.core.cli.common import build_context


def _say(line: str) -> None:
    """One line on stderr, with the time it was said (a scheduler's log is read by its time)."""
    sys.stderr.write(f"{datetime.now(UTC):%Y-%m-%dT%H:%M:%SZ} {line}\n")
    sys.stderr.flush()


@contextmanager
def _stop_on_signals(stop: threading.Event) -> Iterator[None]:
    """SIGTERM and Ctrl-C ask the scheduler to stop: no new fire, the runs in progress finish the batches in flight
    and end cancelled (the next scheduler resumes them). A second Ctrl-C interrupts at once."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {number: signal.getsignal(number) for number in (signal.SIGINT, signal.SIGTERM)}

    def handle(signum: int, frame: FrameType | None) -> None:
        if stop.is_set() and signum == signal.SIGINT:
            signal.signal(signal.SIGINT, previous[signal.SIGINT])
            raise KeyboardInterrupt
        stop.set()
        _say("stopping: the runs in progress finish the batches in flight and end cancelled (resumable)")

    for number in previous:
        signal.signal(number, handle)
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


def scheduler(
    once: Annotated[
        bool,
        typer.Option(
            "--once",
            help="Fire what is due now (and take over runs left by dead schedulers), wait "
            "for those runs, exit: for cron or a Kubernetes CronJob.",
        ),  # fmt: skip
    ] = False,
    workers: Annotated[int, typer.Option("--workers", min=1, max=64, help="Runs executing at once.")] = 2,
    poll: Annotated[
        float,
        typer.Option("--poll", min=0.1, help="Seconds between passes at most: new schedules, takeovers."),
    ] = 15.0,
) -> None:
    """Run due schedules: a long-running process, or once (--once).

    Fires the schedules of production and of sandboxes that enabled them, each fire exactly once across every
    scheduler sharing the store (PostgreSQL: run as many as you like; SQLite: one at a time). Logs one line per
    fire and outcome on stderr. SIGTERM or Ctrl-C stops cleanly: the runs in progress end cancelled, and the next
    scheduler resumes them. Exit 0; with --once, exit 1 when a fire it ran itself failed (not for the outcome of
    another scheduler's run it only recorded).

    Leases and heartbeats assume the machines' clocks agree: at start the scheduler compares this machine's clock
    with the database's and logs a warning when they differ by more than 5 s (synchronize them with NTP).
    """
    from offramp.core.scheduling.scheduler import Scheduler

    ctx = build_context()
    stop = threading.Event()
    with _stop_on_signals(stop):
        loop = Scheduler(ctx, workers=workers, stop=stop, say=_say)
        instance = loop.start()
        _say(f"scheduler {instance} started ({workers} worker(s){', once' if once else ''})")
        try:
            if once:
                loop.once()
            else:
                loop.serve(poll)
        finally:
            loop.close()
        _say(f"scheduler {instance} stopped")
    if once and any(result.status == "failed" and result.ran for result in loop.results):
        raise typer.Exit(1)


__all__ = ["scheduler"]
