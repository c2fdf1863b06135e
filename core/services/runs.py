"""Reading runs and their per-row ledger. Nothing here writes: a run whose process died (its lease lapsed) is shown
as interrupted (``offramp.core.runner.lifecycle.shown_status``), and the next run or ``--resume`` stores that.

What is read here is shown to people and exported to files, so free text (a run's error and hint, the vendor's
message for a row) goes through :func:`clean` on the way out: no secret-looking value (``app_secret=...``, an
``Access-Token`` header, a password in a database URL) leaves the store, even if an exception message carried one in.
The ledger itself holds no raw PII (event ids, reason codes, the vendor's codes and messages).
"""

from __future__ import annotations

import json
import re
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from offramp.core.errors import ObjectNotFoundError
from offramp.core.log_redaction import MASK, redact
from offramp.core.runner.groups import GROUP_INTERRUPTED_ERROR, resume_command, shown_group_status
from offramp.core.runner.ledger import shown_key, totals, warned_events
from offramp.core.runner.lifecycle import get_run, shown_status
from offramp.core.runner.types import EVENT_COUNTS, reasons_by_outcome
from offramp.core.state.models import GroupRun, Orchestration, OrchestrationGroup, RowOutcome, Run, Workspace, utcnow

COUNTS = ("queried", "sent", "rejected", "failed", "skipped", "unknown")  # unknown: see offramp.core.runner.inflight
OUTCOMES = COUNTS[1:]
UNFINISHED = ("running", "interrupted")  # statuses whose counts the run row does not hold yet: read the ledger
LEDGER_OUTCOMES = ("rejected", "failed", "unknown")  # what `runs show --rejects/--failed/--unknown` lists
LEDGER_FIELDS = ("event_id", "outcome", "reason", "vendor_code", "message", "rows", "attempts", "request_id")
WARNING_FIELDS = ("event_id", "warnings")  # what `runs show --warnings` lists
SUMMARY_VERSION = 1  # of the run summary JSON (summary_json); raised when a key changes meaning or goes away

# scheme://user:password@host -> scheme://user:***@host
_URL_PASSWORD = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://[^\s:/@]*:)([^\s@/]+)(@)")


def clean(text: str | None) -> str | None:
    """Free text of a run with every secret-looking value masked."""
    if text is None:
        return None
    return _URL_PASSWORD.sub(lambda m: f"{m.group(1)}{MASK}{m.group(3)}", redact(text))


def list_runs(session: Session, workspace: Workspace, orchestration: str | None = None, limit: int = 50) -> list[Run]:
    """Runs of a workspace, newest first (read as stored: :func:`summary_json` shows a lapsed run as interrupted).

    ``orchestration``: the runs of the orchestration of that name by its id, so that runs from before a rename are
    listed; when no orchestration has that name (it was deleted), the runs stored under that name.
    """
    query = select(Run).where(Run.workspace_id == workspace.id)
    if orchestration is not None:
        row = session.scalar(
            select(Orchestration).where(Orchestration.workspace_id == workspace.id, Orchestration.name == orchestration)
        )
        if row is not None:
            query = query.where(Run.orchestration_id == row.id)
        else:
            query = query.where(Run.orchestration_name == orchestration)
    return list(session.scalars(query.order_by(Run.started_at.desc(), Run.id).limit(limit)))


def _seconds_between(start: datetime, end: datetime) -> float:
    return round((end - start).total_seconds(), 3)


def _parsed(body: Any) -> Any:
    """A kept request body as a JSON value (it was kept as the text that would have gone)."""
    if not isinstance(body, str):
        return body
    try:
        return json.loads(body)
    except ValueError:
        return body


def summary_json(session: Session, run: Run) -> dict[str, Any]:
    """A run's summary in the one shape ``run --json``, ``runs show --json`` and ``runs list --json`` print
    (version 1, documented in docs/user-guide.md; keys in this order):

    ``version``, ``id``, ``workspace``, ``orchestration``, ``status``, ``mode``, ``dry_run``, ``actor``,
    ``started_at``, ``finished_at``, ``duration_seconds`` (rounded to 0.001), ``rows`` {queried, sent, rejected,
    failed, skipped, unknown}, ``events`` {prepared, sent, ...}, ``counts_add_up`` (both invariants), ``counted_from``
    (``run``, or ``ledger`` for a run still running or interrupted before its end), ``reasons`` {rejected: {code:
    rows}, skipped: ..., unknown: ...}, ``vendor_codes`` {code: rows}, ``warnings`` {name: count}, ``unknown_columns``,
    ``column_suggestions`` {unused column: contract column}, ``labels`` {reason: [label]}, ``request_ids``,
    ``options`` (the run's stored options), ``error``, ``hint``, ``sample_requests`` (a dry run's request bodies,
    as JSON objects), ``group_run_id`` (the group run it is a member run of, or null).
    """
    report: dict[str, Any] = dict(run.report or {})
    rows = {name: int(getattr(run, name)) for name in COUNTS}
    reason_counts: dict[str, Any] = dict(run.reason_counts)
    vendor_codes: dict[str, Any] = dict(report.get("vendor_codes", {}))
    events: dict[str, int] | None = report.get("events")
    counted_from = "run"
    status, error, finished_at = shown_status(run)
    if status in UNFINISHED or events is None:
        so_far = totals(session, run.id)
        events = so_far["events"]
        if status in UNFINISHED:
            rows = {"queried": sum(so_far["counts"].values()), **so_far["counts"]}
            reason_counts, vendor_codes = so_far["reasons"], so_far["vendor_codes"]
            counted_from = "ledger"
    events = {name: int(events.get(name, 0)) for name in EVENT_COUNTS}
    split = reasons_by_outcome(reason_counts)
    workspace = session.get(Workspace, run.workspace_id)
    current = session.get(Orchestration, run.orchestration_id) if run.orchestration_id is not None else None
    end = finished_at or utcnow()
    return {
        "version": SUMMARY_VERSION,
        "id": run.id,
        "workspace": workspace.name if workspace is not None else None,
        "orchestration": current.name if current is not None else run.orchestration_name,
        "status": status,
        "mode": run.mode,
        "dry_run": run.dry_run,
        "actor": report.get("actor"),
        "started_at": run.started_at.isoformat(),
        "finished_at": finished_at.isoformat() if finished_at else None,
        "duration_seconds": _seconds_between(run.started_at, end),
        "rows": rows,
        "events": events,
        "counts_add_up": adds_up(rows, events),
        "counted_from": counted_from,
        "reasons": {outcome: split.get(outcome, {}) for outcome in ("rejected", "skipped", "unknown")},
        "vendor_codes": vendor_codes,
        "warnings": report.get("warnings", {}),
        "unknown_columns": report.get("unknown_columns", []),
        "column_suggestions": report.get("column_suggestions", {}),
        "labels": report.get("labels", {}),
        "request_ids": report.get("request_ids", []),
        "options": {key: value for key, value in run.options.items() if value is not None and value != {}},
        "error": clean(error),
        "hint": clean(report.get("hint")),
        "sample_requests": [_parsed(body) for body in report.get("sample_requests", [])] if run.dry_run else [],
        "group_run_id": run.group_run_id,
    }


def adds_up(rows: dict[str, int], events: dict[str, int]) -> bool:
    """Both invariants: queried = sent + rejected + failed + skipped + unknown (rows), and prepared = the same sum
    of events."""
    return rows["queried"] == sum(rows[name] for name in OUTCOMES) and events["prepared"] == sum(
        events[name] for name in OUTCOMES
    )


def counts_line(rows: dict[str, int], events: dict[str, int], *, dry_run: bool = False) -> str:
    """``queried 3683 rows -> 1638 events: sent 1410 events (3455 rows), rejected 228 events (228 rows), failed 0,
    skipped 0, unknown 0``; a dry run ``would send`` instead of ``sent``."""
    parts = []
    for name in OUTCOMES:
        label = "would send" if name == "sent" and dry_run else name
        if rows[name] or events[name]:
            parts.append(f"{label} {_events(events[name])} ({_rows(rows[name])})")
        else:
            parts.append(f"{label} 0")
    return f"queried {_rows(rows['queried'])} -> {_events(events['prepared'])}: " + ", ".join(parts)


def _rows(count: int) -> str:
    return f"{count} row{'s' if count != 1 else ''}"


def _events(count: int) -> str:
    return f"{count} event{'s' if count != 1 else ''}"


def accounting(rows: dict[str, int], events: dict[str, int]) -> str:
    """The line saying whether both invariants hold, in rows and in events."""
    row_parts = " + ".join(f"{name} {rows[name]}" for name in OUTCOMES)
    event_parts = " + ".join(f"{name} {events[name]}" for name in OUTCOMES)
    rows_hold = rows["queried"] == sum(rows[name] for name in OUTCOMES)
    events_hold = events["prepared"] == sum(events[name] for name in OUTCOMES)
    return (
        f"rows: queried {rows['queried']} = {row_parts}: {'holds' if rows_hold else 'does NOT hold'}; "
        f"events: prepared {events['prepared']} = {event_parts}: {'holds' if events_hold else 'does NOT hold'}"
    )


def list_group_runs(session: Session, workspace: Workspace, group: str, limit: int = 50) -> list[GroupRun]:
    """Group runs of the group ``group``, newest first: by its id (those from before a rename included), or, when no
    group has that name (it was deleted), those stored under that name.

    Raises:
        ObjectNotFoundError: no group has that name and no group run was stored under it (listing the groups).
    """
    query = select(GroupRun).where(GroupRun.workspace_id == workspace.id)
    row = session.scalar(
        select(OrchestrationGroup).where(
            OrchestrationGroup.workspace_id == workspace.id, OrchestrationGroup.name == group
        )
    )
    query = query.where(GroupRun.group_id == row.id) if row is not None else query.where(GroupRun.group_name == group)
    found = list(session.scalars(query.order_by(GroupRun.started_at.desc(), GroupRun.id).limit(limit)))
    if row is None and not found:
        from offramp.core.services.groups import get_group

        get_group(session, workspace, group)  # no such group, nor any history of one: the error lists the groups
    return found


def find_run(session: Session, run_id: str, workspace: Workspace | None = None) -> Run | GroupRun:
    """The run or group run ``run_id`` (a unique prefix of either), of ``workspace`` when given."""
    prefix = run_id.strip().lower()
    query = select(GroupRun).where(GroupRun.id.startswith(prefix, autoescape=True))
    if workspace is not None:
        query = query.where(GroupRun.workspace_id == workspace.id)
    group_runs = list(session.scalars(query.limit(2))) if prefix else []
    try:
        run = get_run(session, run_id, workspace)
    except ObjectNotFoundError:
        if len(group_runs) == 1:
            return group_runs[0]
        if group_runs:
            raise ObjectNotFoundError(
                f"more than one group run with id {run_id!r}", hint="give more of the id"
            ) from None
        raise
    if group_runs:
        raise ObjectNotFoundError(f"a run and a group run have ids starting {run_id!r}", hint="give more of the id")
    return run


def _member_json(session: Session, group_run_id: str, member: dict[str, Any], group_status: str) -> dict[str, Any]:
    status, reason = str(member["status"]), member.get("reason")
    run = session.get(Run, member["run_id"]) if member.get("run_id") else None
    if run is None and status == "running":
        # Its run id is recorded at the run's first progress: a process killed before that left only the run row.
        query = select(Run).where(Run.group_run_id == group_run_id, Run.orchestration_id == member["orchestration_id"])
        run = session.scalar(query.order_by(Run.started_at.desc()).limit(1))
    started = finished = None
    if run is not None:
        shown, error, finished = shown_status(run)
        if status == "running":  # the group run's record is written at the member's end: its run says how it stands
            status, reason = shown, error
        started = run.started_at
    if status == "running" and group_status == "interrupted":
        # The member's own lease may lapse a moment after its group run's: the same process died.
        status, reason = "interrupted", GROUP_INTERRUPTED_ERROR
    return {
        "orchestration": member["orchestration"],
        "run_id": run.id if run is not None else member.get("run_id"),
        "status": status,
        "reason": clean(reason),
        "started_at": started.isoformat() if started else None,
        "finished_at": finished.isoformat() if finished else None,
        "duration_seconds": _seconds_between(started, finished or utcnow()) if started else None,
    }


def group_run_json(session: Session, group_run: GroupRun) -> dict[str, Any]:
    """A group run as ``runs show --json`` and ``runs list --group --json`` print it: ``kind`` (``group_run``),
    ``id``, ``workspace``, ``group``, ``status`` (a lapsed one: interrupted), ``dry_run``, ``actor``, ``fire_at``,
    ``started_at``, ``finished_at``, ``duration_seconds``, ``members`` (in order: ``orchestration``, ``run_id``,
    ``status``, ``reason``, ``started_at``, ``finished_at``, ``duration_seconds``), ``counts`` (members by status),
    ``error``, ``hint``."""
    status, error, finished_at = shown_group_status(group_run)
    workspace = session.get(Workspace, group_run.workspace_id)
    current = session.get(OrchestrationGroup, group_run.group_id) if group_run.group_id is not None else None
    name = current.name if current is not None else group_run.group_name
    members = [_member_json(session, group_run.id, member, status) for member in group_run.members or []]
    counts: dict[str, int] = {}
    for member in members:
        counts[member["status"]] = counts.get(member["status"], 0) + 1
    ws = workspace.name if workspace is not None else None
    hint = None
    if status in ("cancelled", "interrupted", "failed") and not group_run.dry_run and current is not None and ws:
        hint = "continue the group with: " + resume_command(name, ws)
    return {
        "version": SUMMARY_VERSION,
        "kind": "group_run",
        "id": group_run.id,
        "workspace": ws,
        "group": name,
        "status": status,
        "dry_run": group_run.dry_run,
        "actor": group_run.actor,
        "fire_at": group_run.fire_at.isoformat() if group_run.fire_at else None,
        "started_at": group_run.started_at.isoformat(),
        "finished_at": finished_at.isoformat() if finished_at else None,
        "duration_seconds": _seconds_between(group_run.started_at, finished_at or utcnow()),
        "members": members,
        "counts": counts,
        "error": clean(error),
        "hint": hint,
    }


def members_line(data: dict[str, Any]) -> str:
    """``3 members: 2 succeeded, 1 skipped`` for a table of group runs."""
    total = len(data["members"])
    parts = ", ".join(f"{count} {status.replace('_', ' ')}" for status, count in data["counts"].items())
    return f"{total} member{'s' if total != 1 else ''}: {parts}" if total else "no members"


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


def warning_rows(session: Session, run: Run) -> list[dict[str, Any]]:
    """The events of a run that had warnings, by event id (their ledger key as people read it), with the warnings'
    names (``runs show --warnings``); never a value."""
    return [{"event_id": shown_key(key), "warnings": names} for key, names in warned_events(session, run.id)]


__all__ = [
    "COUNTS",
    "find_run",
    "group_run_json",
    "list_group_runs",
    "members_line",
    "LEDGER_FIELDS",
    "LEDGER_OUTCOMES",
    "SUMMARY_VERSION",
    "WARNING_FIELDS",
    "accounting",
    "adds_up",
    "clean",
    "counts_line",
    "get_run",
    "ledger_rows",
    "list_runs",
    "row_outcomes",
    "summary_json",
    "warning_rows",
]
