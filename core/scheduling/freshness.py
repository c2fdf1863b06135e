"""The freshness query of a schedule (``--when-changed``): its value now, read from the orchestration's source.

The query runs under the same read-only rules as the orchestration's own query: it is checked as one read query
(:func:`~offramp.core.sources.check_read_only_query`) and runs through :func:`~offramp.core.sources.open_source`
with the orchestration's options (a DuckDB file opened read-only with its ``allowed_paths`` only, PostgreSQL in a
read-only transaction, its privileged-role check and statement timeout, SQLite ``query_only``). A group's query
runs on its first member's source.

The value is never stored as such: it may be personal data (``SELECT max(email) ...``). What the schedule state
keeps (``schedule_states.freshness_value``), and what is compared (:func:`~offramp.core.scheduling.changed`, by
equality only), is the SHA-256 hex digest of the value's text (:func:`digest`); NULL or no row stays None.
"""

from __future__ import annotations

import hashlib
from typing import Any

from sqlalchemy import select

from offramp.core.errors import ConfigError
from offramp.core.orchestration_options import SHARED_OPTIONS, OrchestrationOptions
from offramp.core.services.context import Context
from offramp.core.sources import check_read_only_query, open_source
from offramp.core.state.models import Orchestration, OrchestrationGroup, OrchestrationGroupMember


def _text(value: Any) -> str | None:
    """The value as stored and compared: None stays None; timestamps and numbers as their text."""
    if value is None:
        return None
    return value.isoformat() if hasattr(value, "isoformat") else str(value)


def digest(text: str | None) -> str | None:
    """The SHA-256 hex digest of a freshness value's text, as stored and compared; None stays None."""
    return None if text is None else hashlib.sha256(text.encode("utf-8")).hexdigest()


def _orchestration_of(ctx: Context, kind: str, target_id: int) -> Orchestration:
    with ctx.store.read_session() as session:
        if kind == "orchestration":
            row = session.get(Orchestration, target_id)
        else:
            group = session.get(OrchestrationGroup, target_id)
            member = session.scalar(
                select(OrchestrationGroupMember)
                .where(OrchestrationGroupMember.group_id == target_id)
                .order_by(OrchestrationGroupMember.position)
                .limit(1)
            )
            if group is None or member is None:
                raise ConfigError(f"group {getattr(group, 'name', target_id)!r} has no orchestration to read from")
            row = session.get(Orchestration, member.orchestration_id)
        if row is None:
            raise ConfigError(f"the {kind} of this schedule no longer exists")
        session.expunge(row)
        return row


def current_value(ctx: Context, kind: str, target_id: int, query: str) -> str | None:
    """The freshness query's value now, as stored and compared: the SHA-256 hex digest (:func:`digest`) of the
    first column of its first row as text (None for NULL or no row).

    Raises:
        ConfigError: the query is not one read query, or the source cannot be opened.
        SourceQueryError: the engine refused or failed the query.
    """
    checked = check_read_only_query(query)
    row = _orchestration_of(ctx, kind, target_id)
    stored = dict(row.options or {})
    options = OrchestrationOptions.model_validate({k: v for k, v in stored.items() if k in SHARED_OPTIONS})
    with open_source(row.source, options) as source:
        for batch in source.batches(checked, 1, 1):
            if batch.num_rows and batch.num_columns:
                return digest(_text(batch.column(0)[0].as_py()))
    return None


__all__ = ["current_value", "digest"]
