"""Reading runs and their per-row ledger."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from offramp.core.errors import ObjectNotFoundError
from offramp.core.state.models import RowOutcome, Run, Workspace


def list_runs(session: Session, workspace: Workspace, orchestration: str | None = None, limit: int = 50) -> list[Run]:
    """Runs of a workspace, newest first; a running run whose lease lapsed is marked interrupted on the way."""
    from offramp.core.runner.lease import expire_lapsed

    query = select(Run).where(Run.workspace_id == workspace.id)
    if orchestration is not None:
        query = query.where(Run.orchestration_name == orchestration)
    runs = list(session.scalars(query.order_by(Run.started_at.desc()).limit(limit)))
    expire_lapsed(session, runs)
    return runs


def get_run(session: Session, run_id: str) -> Run:
    """A run by id (a unique prefix is enough)."""
    matches = list(session.scalars(select(Run).where(Run.id.startswith(run_id, autoescape=True)).limit(2)))
    if len(matches) != 1:
        problem = "no run" if not matches else "more than one run"
        raise ObjectNotFoundError(f"{problem} with id {run_id!r}", hint="see `offramp runs list`")
    return matches[0]


def describe_run(run: Run) -> dict[str, Any]:
    """A run's summary: status, counts (which add up), timings, reasons."""
    return {
        "id": run.id,
        "orchestration": run.orchestration_name,
        "status": run.status,
        "mode": run.mode,
        "dry_run": run.dry_run,
        "started_at": run.started_at.isoformat(),
        "finished_at": run.finished_at.isoformat() if run.finished_at else None,
        "counts": {
            "queried": run.queried,
            "sent": run.sent,
            "rejected": run.rejected,
            "failed": run.failed,
            "skipped": run.skipped,
        },
        "counts_add_up": run.queried == run.sent + run.rejected + run.failed + run.skipped,
        "reason_counts": run.reason_counts,
        "vendor_codes": run.report.get("vendor_codes", {}),
        "warnings": run.report.get("warnings", {}),
        "unknown_columns": run.report.get("unknown_columns", []),
        "seconds": run.report.get("seconds"),
        "request_ids": run.report.get("request_ids", []),
        "error": run.error,
        "hint": run.report.get("hint"),
    }


def row_outcomes(session: Session, run: Run, outcome: str) -> list[RowOutcome]:
    """Ledger rows of one outcome (``rejected``, ``failed``, ...), by event_id."""
    query = select(RowOutcome).where(RowOutcome.run_id == run.id, RowOutcome.outcome == outcome)
    return list(session.scalars(query.order_by(RowOutcome.event_id)))


__all__ = ["describe_run", "get_run", "list_runs", "row_outcomes"]
