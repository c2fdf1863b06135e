"""Matching a query's column names to the destination's contract (case-insensitive, any order)."""

from __future__ import annotations

from collections.abc import Sequence

from offramp.core import ConfigError
from offramp.plugins.tiktok.rules import CONTRACT_COLUMNS

_CONTRACT = frozenset(CONTRACT_COLUMNS)


def contract_names(columns: Sequence[str]) -> tuple[dict[str, str], list[str]]:
    """({query column: contract name} for the columns we read, [columns we do not read]).

    Two query columns that differ only in case would both claim one field, so that is refused with the fix.
    """
    known: dict[str, str] = {}
    unknown: list[str] = []
    claimed: dict[str, str] = {}
    for column in columns:
        name = column.strip().lower()
        if name not in _CONTRACT:
            unknown.append(column)
            continue
        if name in claimed:
            raise ConfigError(
                f"the query has two columns for {name!r}: {claimed[name]!r} and {column!r}",
                hint="drop or rename one of them in the SELECT list",
            )
        claimed[name] = column
        known[column] = name
    return known, unknown


__all__ = ["contract_names"]
