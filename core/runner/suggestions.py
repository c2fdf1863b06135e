"""Suggestions for query columns a destination did not use: ``emial (did you mean email?)``.

A destination type declares its column contract (``DestinationType.columns``); a query column outside it is listed
as not used, and when it is close to a contract column (a typo in an alias, ``AS emial``) or is a name people
commonly use for one (``event_time`` for ``timestamp``), the run report suggests that column. One place, so the run
report, ``runs show`` and the guardrail's error say the same.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence

CUTOFF = 0.6  # difflib's ratio: "emial"/"email" is 0.8, "evnt"/"event" 0.89, "name"/"event" 0.44

# Names people give a contract column in their warehouse; checked before the spelling (they are not close to it).
ALIASES = {
    "event_time": "timestamp",
    "event_timestamp": "timestamp",
    "created_at": "timestamp",
    "time": "timestamp",
    "ts": "timestamp",
    "event_name": "event",
    "mail": "email",
    "email_address": "email",
    "phone_number": "phone",
    "mobile": "phone",
    "user_id": "external_id",
    "customer_id": "external_id",
    "amount": "value",
    "revenue": "value",
    "total": "value",
}


def suggest_columns(unused: Iterable[str], contract: Sequence[str]) -> dict[str, str]:
    """{unused column: the contract column it most likely means}, for those close to one (case-insensitive)."""
    if not contract:
        return {}
    by_lower = {name.lower(): name for name in contract}
    found: dict[str, str] = {}
    for column in unused:
        lowered = column.lower()
        alias = ALIASES.get(lowered)
        if alias is not None and alias.lower() in by_lower:
            found[column] = by_lower[alias.lower()]
            continue
        close = difflib.get_close_matches(lowered, list(by_lower), n=1, cutoff=CUTOFF)
        if close:
            found[column] = by_lower[close[0]]
    return found


def columns_not_used(unused: Sequence[str], suggestions: dict[str, str]) -> str:
    """``emial (did you mean email?), note``: the unused columns with their suggestions."""
    return ", ".join(
        f"{column} (did you mean {suggestions[column]}?)" if column in suggestions else column for column in unused
    )


__all__ = ["ALIASES", "CUTOFF", "columns_not_used", "suggest_columns"]
