"""`offramp run ORCHESTRATION`: query, shape, send and record every row; exit status for schedulers.

Exit 0 when the run completed (rejected and vendor-refused rows are counted, not fatal), 1 when it failed or was
stopped, 2 for a usage error. On a terminal the command shows a progress bar; off one it stays quiet until the
summary; ``--json`` prints the summary for scripts.
"""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from offramp.core.cli.common import ActorOption, JsonOption, WorkspaceOption, build_context, reading, workspace_name
from offramp.core.cli.output import print_json, say
from offramp.core.commands import progress_counts, run_report_lines
from offramp.core.runner import RunRequest, RunSummary, run_orchestration
from offramp.core.services.runs import clean, get_run, summary_json


@contextmanager
def _stop_on_interrupt(stop: threading.Event) -> Iterator[None]:
    """Ctrl-C asks the run to finish the batches in flight and stop; a second Ctrl-C interrupts at once."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.getsignal(signal.SIGINT)

    def handle(signum: int, frame: FrameType | None) -> None:
        if stop.is_set():
            signal.signal(signal.SIGINT, previous)
            raise KeyboardInterrupt
        stop.set()
        sys.stderr.write("\nstopping after the batches in flight (Ctrl-C again to stop at once)\n")

    signal.signal(signal.SIGINT, handle)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def run(
    orchestration: Annotated[str, typer.Argument(help="Orchestration to run.")],
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="No network: prepare everything, keep sample request bodies.")
    ] = False,
    limit: Annotated[int | None, typer.Option(min=1, help="Read at most this many rows.")] = None,
    test_event_code: Annotated[
        str | None,
        typer.Option(
            "--test-event-code",
            help="Overrides the run option test_event_code of the destination type.",
        ),
    ] = None,
    resume: Annotated[
        bool, typer.Option("--resume", help="Continue the last cancelled, interrupted or failed run.")
    ] = False,
    replay_failed: Annotated[
        str | None, typer.Option("--replay-failed", metavar="RUN_ID", help="Send again only that run's failed rows.")
    ] = None,
    fail_on_empty: Annotated[
        bool,
        typer.Option(
            "--fail-on-empty", help="A query with no rows fails the run (default: the orchestration's fail_on_empty)."
        ),
    ] = False,
    max_reject_rate: Annotated[
        float | None,
        typer.Option(
            min=0.0,
            max=1.0,
            help="Fail the run when more than this share of rows is rejected: checked at its end whatever its size, "
            "and during it after the first 1,000 rows (default: the orchestration's max_reject_rate).",
        ),
    ] = None,
    concurrency: Annotated[int | None, typer.Option(min=1, max=64, help="Requests in flight (default 4).")] = None,
    resend_unknown: Annotated[
        bool,
        typer.Option(
            "--resend-unknown",
            help="Also send events a killed run had in flight longer ago than the destination's deduplication "
            "window (counted 'unknown' otherwise); the vendor may count any it already had twice.",
        ),
    ] = False,
    workspace: WorkspaceOption = None,
    actor: ActorOption = None,
    json_output: JsonOption = False,
) -> None:
    """Run an orchestration: query, shape, send, and record what became of every row.

    A run fails (exit 1) when every row it read was rejected, when it sent nothing while rejecting rows, or when
    more rows were rejected than max_reject_rate allows; a dry run is judged the same way, so that it fails where
    the real run would. The run's start and end are in the audit trail (offramp audit --type run).
    """
    if resume and replay_failed:
        raise typer.BadParameter("use --resume or --replay-failed, not both")
    ctx = build_context(actor)
    request = RunRequest(
        workspace=workspace_name(ctx, workspace),
        orchestration=orchestration,
        dry_run=dry_run,
        limit=limit,
        options={} if test_event_code is None else {"test_event_code": test_event_code},
        resume=resume,
        replay_failed=replay_failed,
        fail_on_empty=fail_on_empty,
        max_reject_rate=max_reject_rate,
        concurrency=concurrency,
        resend_unknown=resend_unknown,
        actor=ctx.actor,
    )
    stop = threading.Event()
    interactive = sys.stdout.isatty() and not json_output
    with _stop_on_interrupt(stop):
        if interactive:
            columns = (
                TextColumn("[bold]{task.description}"), BarColumn(), TextColumn("{task.fields[counts]}"),
                TimeElapsedColumn(),
            )  # fmt: skip
            with Progress(*columns, transient=True) as bar:
                task = bar.add_task(orchestration, total=None, counts="")

                def show(summary: RunSummary) -> None:
                    bar.update(task, completed=summary.settled, counts=progress_counts(summary))

                summary = run_orchestration(ctx, request, progress=show, stop=stop)
        else:
            summary = run_orchestration(ctx, request, stop=stop)
    if json_output:
        with reading(ctx) as session:
            data: dict[str, Any] = summary_json(session, get_run(session, summary.run_id))
        # What this process saw: the whole error (the store may keep only its kind, when it could quote a warehouse
        # value), and its own end when it lost its lease to another process.
        data.update(status=summary.status, error=clean(summary.error), hint=clean(summary.hint))
        print_json(data)
    else:
        for line in run_report_lines(summary):
            say(line)
    if summary.status not in ("succeeded", "partially_failed"):
        raise typer.Exit(1)


__all__ = ["run"]
