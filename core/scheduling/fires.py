"""When a cron schedule fires: the instants, in UTC, for a cron expression read in an IANA timezone.

A cron expression names *wall times* in the schedule's timezone ("06:00 in Europe/Berlin"). Most wall times are
one instant, but around a daylight-saving transition some wall times do not exist and others happen twice. The
rules, the same for every schedule whatever its frequency:

- **A wall time that does not exist** (02:30 on a spring-forward night in Europe/Berlin) fires once, at the first
  valid instant after it: the transition instant itself (03:00 CEST, 01:00 UTC). A schedule that matches several
  wall times inside the gap (``*/15 * * * *`` matches 02:00, 02:15, 02:30 and 02:45) fires once at that instant,
  also when the wall time right after the gap (03:00) matches: one instant is one fire.
- **A wall time that happens twice** (02:30 on a fall-back night in Europe/Berlin, 01:30 in America/New_York) fires
  once, at its first occurrence (the summer-time one, ``fold=0``). This holds for sub-daily schedules too: an
  hourly ``30 * * * *`` fires at 02:30 CEST and not again at 02:30 CET, and ``*/15 * * * *`` fires at 02:00, 02:15,
  02:30 and 02:45 CEST and next at 03:00 CET, so it is silent for the 75 real minutes of the repeated hour.

Why one rule for all: a schedule is the set of local wall times its expression names, and each of them fires once;
"fires twice once a year" is precisely the bug the rule exists to prevent, and a user reading a run history in
local time sees each wall time once. Firing on every instant whose local time matches would run an hourly
schedule twice at "02:30" and an every-15-minutes one eight times in "02:00-02:59". A schedule that must tick at
fixed real-time intervals through the transitions can say so: its timezone is UTC, which has none.

The wall times are enumerated by croniter on naive datetimes (calendar arithmetic only, no timezone) and mapped
to instants here with zoneinfo: croniter's own handling of aware datetimes across transitions is not what these
rules say, and mapping them ourselves keeps the rules in one readable place.
"""

from __future__ import annotations

import math
import zoneinfo
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import NamedTuple

from croniter import CroniterBadDateError, croniter

from offramp.core.errors import ConfigError
from offramp.core.orchestration_options import check_cron, check_timezone


class NextFire(NamedTuple):
    """One upcoming fire, as ``offramp schedules list`` shows it: in the schedule's timezone and in UTC."""

    local: datetime
    utc: datetime


def fire_times(
    cron: str, zone: str, after: datetime, *, count: int | None = None, until: datetime | None = None
) -> Iterator[datetime]:
    """The instants ``cron`` fires in timezone ``zone``, strictly after ``after`` and up to ``until`` (inclusive).

    Each is an aware UTC datetime; they are strictly increasing, never two at one instant, with the DST rules of
    the module docstring. The iteration ends after ``count`` fires, at ``until``, or when the expression matches no
    further date (``0 0 30 2 *``); with neither ``count`` nor ``until`` it is endless.

    Raises ConfigError naming the field (``schedule`` or ``timezone``) for a bad expression or zone, at the call,
    not at the first ``next()``; ValueError if ``after`` or ``until`` is naive (an instant is needed).
    """
    tz = _checked(cron, zone)
    _require_aware(after, "after")
    if until is not None:
        _require_aware(until, "until")
    if count is not None and count < 0:
        raise ValueError(f"count must be 0 or more, not {count}")
    return _fires(cron, tz, after.astimezone(UTC), count, None if until is None else until.astimezone(UTC))


def next_fires(cron: str, zone: str, now: datetime, count: int = 3) -> list[NextFire]:
    """The next ``count`` fires after ``now``, each in the schedule's timezone and in UTC (``schedules list``).

    Fewer (or none) if the expression matches no further date.
    """
    tz = _checked(cron, zone)
    return [NextFire(local=instant.astimezone(tz), utc=instant) for instant in fire_times(cron, zone, now, count=count)]


def _fires(
    cron: str, tz: zoneinfo.ZoneInfo, after: datetime, count: int | None, until: datetime | None
) -> Iterator[datetime]:
    # Start from `after`'s own wall time: no wall time earlier than it maps to an instant later than it (a repeated
    # wall time maps to its first occurrence, a missing one to the transition, both no later than `after`'s).
    walls = croniter(cron, after.astimezone(tz).replace(tzinfo=None, fold=0), ret_type=datetime)
    last = after
    produced = 0
    while count is None or produced < count:
        try:
            wall = walls.get_next(datetime)
        except CroniterBadDateError:
            return  # the expression matches no further date (30 February)
        instant = _instant(wall, tz)
        if instant <= last:
            continue  # several wall times in one gap, or the first occurrence of a repeated time before `after`
        if until is not None and instant > until:
            return
        yield instant
        last = instant
        produced += 1


def _instant(wall: datetime, tz: zoneinfo.ZoneInfo) -> datetime:
    """The UTC instant a matching wall time fires at: itself, its first occurrence, or the end of its gap."""
    first = wall.replace(tzinfo=tz, fold=0).astimezone(UTC)
    if first.astimezone(tz).replace(tzinfo=None) == wall:
        return first  # the wall time exists; fold=0 is its first occurrence if it happens twice
    return _gap_end(wall, tz)


def _gap_end(wall: datetime, tz: zoneinfo.ZoneInfo) -> datetime:
    """The transition instant that skips over ``wall``: the first instant whose local time is later than it.

    zoneinfo maps a missing wall time with the offsets before and after the transition (PEP 495 ``fold``), giving
    two instants on either side of it; the transition is found between them by bisection on whole seconds (tz
    database transitions fall on whole seconds). This also covers gaps of any size (Lord Howe's 30 minutes,
    Samoa's skipped 30 December 2011).
    """
    candidates = sorted(wall.replace(tzinfo=tz, fold=fold).astimezone(UTC) for fold in (0, 1))
    low, high = math.floor(candidates[0].timestamp()), math.ceil(candidates[1].timestamp())

    def later_than_wall(seconds: int) -> bool:
        return datetime.fromtimestamp(seconds, tz).replace(tzinfo=None) > wall

    if not later_than_wall(high):  # not a gap after all; cannot happen with tz database data
        return candidates[1]
    while high - low > 1:
        middle = (low + high) // 2
        if later_than_wall(middle):
            high = middle
        else:
            low = middle
    return datetime.fromtimestamp(high, UTC)


def _checked(cron: str, zone: str) -> zoneinfo.ZoneInfo:
    """The zone of a valid schedule; ConfigError naming the field (with check_cron/check_timezone's words) if not."""
    try:
        check_cron(cron)
    except ValueError as error:
        raise ConfigError(f"schedule: {error}", field="schedule") from None
    try:
        check_timezone(zone)
    except ValueError as error:
        raise ConfigError(f"timezone: {error}", field="timezone") from None
    return zoneinfo.ZoneInfo(zone)


def _require_aware(value: datetime, name: str) -> None:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be an aware datetime (an instant), not naive {value.isoformat()}")
