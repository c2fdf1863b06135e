"""Reading runs and their per-row ledger. Nothing here writes: a run whose process died (its lease lapsed) is shown
as interrupted (``offramp.core.runner.lifecycle.shown_status``), and the next run or ``--resume`` stores that.

What is read here is shown to people and exported to files, so free text (a run's error and hint, the vendor's
message for a row) goes through :func:`clean` on the way out: no secret-looking value (``app_secret=...``, an
``Access-Token`` header, a password in a database URL) leaves the store, even if an exception message carried one in.
The ledger itself holds no raw PII (event ids, reason codes, the vendor's codes and messages).
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from offramp.core.log_redaction import MASK, redact
from offramp.core.runner.ledger import totals
from offramp.core.runner.lifecycle import get_run, shown_status
from offramp.core.state.models import RowOutcome, Run, Workspace, utcnow

COUNTS = ("queried", "sent", "rejected", "failed", "skipped", "unknown")  # unknown: see offramp.core.runner.inflight
UNFINISHED = ("running", "interrupted")  # statuses whose counts the run row does not hold yet: read the ledger
LEDGER_OUTCOMES = ("rejected", "failed", "unknown")  # what `runs show --rejects/--failed/--unknown` lists
LEDGER_FIELDS = ("event_id", "outcome", "reason", "vendor_code", "message", "rows", "attempts", "request_id")

# scheme://user:password@host -> scheme://user:***@host
_URL_PASSWORD = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://[^\s:/@]*:)([^\s@/]+)(@)")


def clean(text: str | None) -> str | None:
    """Free text of a run with every secret-looking value masked."""
    if text is None:
        return None
    return _URL_PASSWORD.sub(lambda m: f"{m.group(1)}{MASK}{m.group(3)}", redact(text))


def list_runs(session: Session, workspace: Workspace, orchestration: str | None = None, limit: int = 50) -> list[Run]:
    """Runs of a workspace, newest first (read as stored: :func:`describe_run` shows a lapsed run as interrupted)."""
    query = select(Run).where(Run.workspace_id == workspace.id)
    if orchestration is not None:
        query = query.where(Run.orchestration_name == orchestration)
    return list(session.scalars(query.order_by(Run.started_at.desc(), Run.id).limit(limit)))


def _seconds_between(start: datetime, end: datetime) -> float:
    return round((end - start).total_seconds(), 3)


def describe_run(session: Session, run: Run, *, details: bool = False) -> dict[str, Any]:
    """A run's summary: status, counts (which add up), timings, reasons, the vendor's request ids, error and hint.

    A run still running, or interrupted before it could write its counts, is counted from its ledger (what it
    settled so far). ``details`` adds what only `runs show` prints: the run's options, its lease and, for a dry
    run, the request bodies it kept (identifiers hashed, as they would have gone).
    """
    counts = {name: int(getattr(run, name)) for name in COUNTS}
    reason_counts: dict[str, Any] = dict(run.reason_counts)
    vendor_codes: dict[str, Any] = dict(run.report.get("vendor_codes", {}))
    counted_from = "run"
    status, error, finished_at = shown_status(run)
    if status in UNFINISHED:
        so_far = totals(session, run.id)
        counts = {"queried": sum(so_far["counts"].values()), **so_far["counts"]}
        reason_counts, vendor_codes = so_far["reasons"], so_far["vendor_codes"]
        counted_from = "ledger"
    end = finished_at or utcnow()
    data: dict[str, Any] = {
        "id": run.id,
        "orchestration": run.orchestration_name,
        "status": status,
        "mode": run.mode,
        "dry_run": run.dry_run,
        "started_at": run.started_at.isoformat(),
        "finished_at": finished_at.isoformat() if finished_at else None,
        "duration_seconds": _seconds_between(run.started_at, end),
        "seconds": run.report.get("seconds"),
        "counts": counts,
        "counts_add_up": counts["queried"] == sum(counts[name] for name in COUNTS[1:]),
        "counted_from": counted_from,
        "reason_counts": reason_counts,
        "vendor_codes": vendor_codes,
        "warnings": run.report.get("warnings", {}),
        "unknown_columns": run.report.get("unknown_columns", []),
        "request_ids": run.report.get("request_ids", []),
        "error": clean(error),
        "hint": clean(run.report.get("hint")),
    }
    if details:
        data["options"] = {key: value for key, value in run.options.items() if value is not None and value != {}}
        data["heartbeat_at"] = run.heartbeat_at.isoformat() if run.heartbeat_at else None
        data["lease_owner"] = run.lease_owner
        data["sample_requests"] = run.report.get("sample_requests", [])
    return data


def accounting(counts: dict[str, int]) -> str:
    """The line saying whether queried = sent + rejected + failed + skipped + unknown holds."""
    parts = " + ".join(f"{name} {counts[name]}" for name in COUNTS[1:])
    holds = counts["queried"] == sum(counts[name] for name in COUNTS[1:])
    return f"queried {counts['queried']} = {parts}: {'holds' if holds else 'does NOT hold'}"


def row_outcomes(session: Session, run: Run, outcome: str) -> list[RowOutcome]:
    """Ledger rows of one outcome (``rejected``, ``failed``, ...), by event_id."""
    query = select(RowOutcome).where(RowOutcome.run_id == run.id, RowOutcome.outcome == outcome)
    return list(session.scalars(query.order_by(RowOutcome.event_id)))


def ledger_rows(session: Session, run: Run, outcome: str) -> list[dict[str, Any]]:
    """Ledger rows of one outcome as exported: event id, reason or vendor code, message, rows, attempts, request."""
    return [
        {
            "event_id": row.event_id,
            "outcome": row.outcome,
            "reason": row.reason_code,
            "vendor_code": row.vendor_code,
            "message": clean(row.message),
            "rows": row.rows,
            "attempts": row.attempts,
            "request_id": row.request_id,
        }
        for row in row_outcomes(session, run, outcome)
    ]


__all__ = [
    "COUNTS",
    "LEDGER_FIELDS",
    "LEDGER_OUTCOMES",
    "accounting",
    "clean",
    "describe_run",
    "get_run",
    "ledger_rows",
    "list_runs",
    "row_outcomes",
]
