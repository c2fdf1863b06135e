"""Scheduling decisions, free of the store and the clock: when a cron schedule fires, and what a fire does.

:mod:`~offramp.core.scheduling.fires` turns a cron expression and an IANA timezone into fire instants with the DST
rules stated there; :mod:`~offramp.core.scheduling.decisions` decides, for a schedule, its last fire and the
current instant, what runs now and which fires are skipped and why. The scheduler process calls both.
"""

from __future__ import annotations

from offramp.core.scheduling.decisions import (
    MISSED_SKIP,
    NO_NEW_DATA,
    ON_TIME,
    CatchUp,
    Decision,
    Schedule,
    SkippedFire,
    changed,
    due,
    may_fire,
    overlap,
)
from offramp.core.scheduling.fires import NextFire, fire_times, next_fires

__all__ = [
    "CatchUp",
    "Decision",
    "MISSED_SKIP",
    "NO_NEW_DATA",
    "NextFire",
    "ON_TIME",
    "Schedule",
    "SkippedFire",
    "changed",
    "due",
    "fire_times",
    "may_fire",
    "next_fires",
    "overlap",
]
