"""Fencing: a process that lost its run's lease neither sends nor writes again.

A lease lapses when its process stops beating (killed, or only paused: a suspended VM, ``SIGSTOP``), and
``--resume`` may then take the run over. A paused process does not know it was paused: when it continues, it would
drive the run alongside the new one. So every takeover raises the run's ``lease_generation``, and each process keeps
the generation it was given. Every write a run makes (heartbeat, ledger checkpoint, request record, final counts)
first runs ``UPDATE runs ... WHERE id = :run AND lease_generation = :ours`` in its own transaction: that statement
takes the row's write lock (SQLite's database lock), so a takeover either happened before it (no row matches: the
lease is lost, nothing is written) or waits until it commits. Before every request the sender records it in such a
transaction, so a process that lost its lease stops before its next send, too.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import update
from sqlalchemy.orm import Session

from offramp.core.errors import StateError
from offramp.core.hints import offramp_command
from offramp.core.runner.types import RunSummary
from offramp.core.state.models import Run, utcnow


class LeaseLostError(StateError):
    """The run was taken over, or marked interrupted, while this process was paused past its lease."""


@dataclass
class Lease:
    """This process's hold on one run: the generation it was given, and whether it has lost it."""

    run_id: str
    generation: int
    lost: threading.Event = field(default_factory=threading.Event)

    def hold(self, session: Session) -> bool:
        """In the caller's transaction, before anything else it writes: True while this process holds the run.

        Refreshes the heartbeat as a side effect (any checkpoint shows the process is alive). False, with
        :attr:`lost` set, once another process took the run over; the caller then writes nothing.
        """
        if self.lost.is_set():
            return False
        result = session.execute(
            update(Run)
            # A lapsed lease is lost too: once another process marked the run interrupted (any `runs list` does),
            # `run --resume` or a new run may start, so this one must not go on beside it.
            .where(Run.id == self.run_id, Run.lease_generation == self.generation, Run.status == "running")
            .values(heartbeat_at=utcnow())
            .execution_options(synchronize_session=False)
        )
        if getattr(result, "rowcount", 1) == 0:
            self.lost.set()
            return False
        return True

    def end(
        self, summary: RunSummary, orchestration: str, totals: dict[str, Any], workspace: str | None = None
    ) -> RunSummary:
        """The summary of a process that lost its lease: failed, saying so; the counts are the run's ledger as the
        other process left it so far (nothing of this process's is written any more)."""
        error = self.error(orchestration, workspace)
        summary.status, summary.error, summary.hint = "failed", error.message, error.hint
        counts = totals["counts"]
        summary.queried = sum(counts.values())
        for outcome, rows in counts.items():
            setattr(summary, outcome, rows)
        summary.events = dict(totals["events"])
        summary.reason_counts, summary.vendor_codes = dict(totals["reasons"]), dict(totals["vendor_codes"])
        return summary

    def error(self, orchestration: str, workspace: str | None = None) -> LeaseLostError:
        """The one line a process that lost its lease ends with."""
        resume = offramp_command("run", orchestration, "--resume", workspace=workspace)
        shown = offramp_command("runs", "show", self.run_id, workspace=workspace)
        return LeaseLostError(
            f"this run ({self.run_id}) lost its lease while this process was paused for longer than the lease: "
            f"another process took it over ({resume}) or marked it interrupted; this "
            "process stopped before sending or recording anything more",
            hint=f"see the run with: {shown}; if no other process continues it, send what is left with: "
            f"{resume}; if pauses are expected (a suspended VM), give runs a longer "
            "lease with OFFRAMP_RUN_LEASE_SECONDS",
        )


__all__ = ["Lease", "LeaseLostError"]
