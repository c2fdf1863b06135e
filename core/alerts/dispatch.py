"""After a run or a group run: decide its alert notices and deliver them (owned by the alerts work; see
/work/notes/contract15.md). Called by the runner at the end of every run and by the group runner at the end of
every group run, however they were started."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from offramp.core.runner.types import RunSummary
    from offramp.core.services.context import Context


def after_run(ctx: Context, summary: RunSummary) -> None:
    """Decide and deliver the notices of a finished run of an orchestration (never raises)."""


def after_group_run(ctx: Context, group_run_id: str) -> None:
    """Decide and deliver the notices of a finished group run (never raises)."""
