"""A schedule fires at the instants its cron expression names in its timezone: none lost, none doubled across DST.

The expected instants are written out in UTC by hand (from the zones' published transitions), so these tests do
not trust the code's own zone arithmetic; the property tests compare it with a minute-by-minute brute force.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from croniter import croniter
from hypothesis import given, settings
from hypothesis import strategies as st

from offramp.core.errors import ConfigError
from offramp.core.scheduling import NextFire, fire_times, next_fires


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


def fires(cron: str, zone: str, after: datetime, count: int) -> list[datetime]:
    return list(fire_times(cron, zone, after, count=count))


# --- Daily schedules at a wall time that is missing or repeated once a year -----------------------------------


def test_daily_0230_in_berlin_fires_at_0300_cest_on_the_spring_forward_night() -> None:
    # 29 March 2026: 02:00 CET jumps to 03:00 CEST at 01:00 UTC; 02:30 does not exist that night.
    assert fires("30 2 * * *", "Europe/Berlin", utc(2026, 3, 28), 3) == [
        utc(2026, 3, 28, 1, 30),  # 02:30 CET
        utc(2026, 3, 29, 1, 0),  # 03:00 CEST: the first valid instant after 02:30, once
        utc(2026, 3, 30, 0, 30),  # 02:30 CEST
    ]


def test_daily_0230_in_berlin_fires_once_at_the_first_0230_on_the_fall_back_night() -> None:
    # 25 October 2026: 03:00 CEST falls back to 02:00 CET at 01:00 UTC; 02:30 happens at 00:30 and 01:30 UTC.
    assert fires("30 2 * * *", "Europe/Berlin", utc(2026, 10, 24), 3) == [
        utc(2026, 10, 24, 0, 30),
        utc(2026, 10, 25, 0, 30),  # 02:30 CEST, the first occurrence; not again at 02:30 CET
        utc(2026, 10, 26, 1, 30),  # 02:30 CET
    ]


def test_daily_0230_in_new_york_fires_at_0300_edt_on_the_spring_forward_night() -> None:
    # 8 March 2026: 02:00 EST jumps to 03:00 EDT at 07:00 UTC.
    assert fires("30 2 * * *", "America/New_York", utc(2026, 3, 7), 3) == [
        utc(2026, 3, 7, 7, 30),  # 02:30 EST
        utc(2026, 3, 8, 7, 0),  # 03:00 EDT
        utc(2026, 3, 9, 6, 30),  # 02:30 EDT
    ]


def test_daily_0130_in_new_york_fires_once_in_the_repeated_hour() -> None:
    # 1 November 2026: 02:00 EDT falls back to 01:00 EST at 06:00 UTC; 01:30 happens at 05:30 and 06:30 UTC.
    assert fires("30 1 * * *", "America/New_York", utc(2026, 10, 31), 3) == [
        utc(2026, 10, 31, 5, 30),
        utc(2026, 11, 1, 5, 30),  # 01:30 EDT only
        utc(2026, 11, 2, 6, 30),  # 01:30 EST
    ]


@pytest.mark.parametrize(
    ("zone", "spring_night", "spring_fire", "autumn_night", "autumn_fire"),
    [
        # Sydney: 4 Oct 2026 02:00 AEST -> 03:00 AEDT (16:00 UTC); 5 Apr 2026 03:00 AEDT -> 02:00 AEST (16:00 UTC).
        ("Australia/Sydney", utc(2026, 10, 3, 12), utc(2026, 10, 3, 16), utc(2026, 4, 4, 12), utc(2026, 4, 4, 15, 30)),
        # Auckland: 27 Sep 2026 02:00 NZST -> 03:00 NZDT (14:00 UTC); 5 Apr 2026 03:00 NZDT -> 02:00 NZST (14:00 UTC).
        ("Pacific/Auckland", utc(2026, 9, 26, 10), utc(2026, 9, 26, 14), utc(2026, 4, 4, 10), utc(2026, 4, 4, 13, 30)),
    ],
)
def test_daily_0230_in_the_southern_hemisphere(
    zone: str, spring_night: datetime, spring_fire: datetime, autumn_night: datetime, autumn_fire: datetime
) -> None:
    assert fires("30 2 * * *", zone, spring_night, 1) == [spring_fire]  # 03:00 summer time
    first, second = fires("30 2 * * *", zone, autumn_night, 2)
    assert first == autumn_fire  # 02:30 summer time, the first occurrence
    assert second - first == timedelta(hours=25)  # the next day's 02:30 standard time: the repeated one is skipped


# --- Sub-daily schedules across the transitions ------------------------------------------------------------------


def test_hourly_on_the_half_hour_in_berlin_across_spring_forward() -> None:
    assert fires("30 * * * *", "Europe/Berlin", utc(2026, 3, 28, 23), 4) == [
        utc(2026, 3, 28, 23, 30),  # 00:30 CET
        utc(2026, 3, 29, 0, 30),  # 01:30 CET
        utc(2026, 3, 29, 1, 0),  # 03:00 CEST, for the missing 02:30
        utc(2026, 3, 29, 1, 30),  # 03:30 CEST
    ]


def test_hourly_on_the_half_hour_fires_once_for_the_repeated_0230_in_berlin() -> None:
    # The rule of the module: a repeated wall time fires at its first occurrence, whatever the frequency.
    assert fires("30 * * * *", "Europe/Berlin", utc(2026, 10, 24, 23), 3) == [
        utc(2026, 10, 24, 23, 30),  # 01:30 CEST
        utc(2026, 10, 25, 0, 30),  # 02:30 CEST
        utc(2026, 10, 25, 2, 30),  # 03:30 CET; 02:30 CET (01:30 UTC) does not fire again
    ]


def test_hourly_on_the_half_hour_fires_once_for_the_repeated_0130_in_new_york() -> None:
    assert fires("30 * * * *", "America/New_York", utc(2026, 11, 1, 4), 3) == [
        utc(2026, 11, 1, 4, 30),  # 00:30 EDT
        utc(2026, 11, 1, 5, 30),  # 01:30 EDT
        utc(2026, 11, 1, 7, 30),  # 02:30 EST; 01:30 EST (06:30 UTC) does not fire again
    ]


def test_every_15_minutes_fires_once_for_the_whole_missing_hour_and_keeps_real_15_minute_steps() -> None:
    # 02:00, 02:15, 02:30 and 02:45 do not exist; with 03:00 they are one instant, 01:00 UTC, fired once.
    assert list(
        fire_times("*/15 * * * *", "Europe/Berlin", utc(2026, 3, 29, 0, 30), until=utc(2026, 3, 29, 1, 30))
    ) == [
        utc(2026, 3, 29, 0, 45),  # 01:45 CET
        utc(2026, 3, 29, 1, 0),  # 03:00 CEST
        utc(2026, 3, 29, 1, 15),
        utc(2026, 3, 29, 1, 30),
    ]


def test_every_15_minutes_does_not_fire_again_in_the_repeated_hour() -> None:
    got = list(fire_times("*/15 * * * *", "Europe/Berlin", utc(2026, 10, 24, 23, 30), until=utc(2026, 10, 25, 2, 15)))
    assert got == [
        utc(2026, 10, 24, 23, 45),  # 01:45 CEST
        utc(2026, 10, 25, 0, 0),  # 02:00 CEST
        utc(2026, 10, 25, 0, 15),
        utc(2026, 10, 25, 0, 30),
        utc(2026, 10, 25, 0, 45),  # 02:45 CEST
        utc(2026, 10, 25, 2, 0),  # 03:00 CET: 02:00-02:45 CET are wall times that already fired
        utc(2026, 10, 25, 2, 15),
    ]


def test_starting_inside_the_repeated_hour_waits_for_the_next_new_wall_time() -> None:
    # 02:20 CET, the second pass through 02:xx: the 02:30 of this hour already fired (at 02:30 CEST).
    assert fires("*/15 * * * *", "Europe/Berlin", utc(2026, 10, 25, 1, 20), 1) == [utc(2026, 10, 25, 2, 0)]


def test_a_zone_without_dst_and_utc_fire_every_matching_minute() -> None:
    assert fires("*/15 * * * *", "UTC", utc(2026, 10, 25, 0, 50), 3) == [
        utc(2026, 10, 25, 1, 0),
        utc(2026, 10, 25, 1, 15),
        utc(2026, 10, 25, 1, 30),
    ]
    assert fires("0 6 * * *", "Asia/Kolkata", utc(2026, 3, 29), 1) == [utc(2026, 3, 29, 0, 30)]


# --- Calendar edges -----------------------------------------------------------------------------------------------


def test_the_31st_fires_only_in_months_that_have_one_at_the_right_offset() -> None:
    got = fires("0 9 31 * *", "Europe/Berlin", utc(2026, 1, 1), 7)
    assert got == [
        utc(2026, 1, 31, 8),  # CET
        utc(2026, 3, 31, 7),  # CEST
        utc(2026, 5, 31, 7),
        utc(2026, 7, 31, 7),
        utc(2026, 8, 31, 7),
        utc(2026, 10, 31, 8),  # CET again
        utc(2026, 12, 31, 8),
    ]


def test_leap_day_fires_every_four_years_and_not_in_2100() -> None:
    assert fires("0 12 29 2 *", "America/New_York", utc(2026, 1, 1), 2) == [utc(2028, 2, 29, 17), utc(2032, 2, 29, 17)]
    assert fires("0 12 29 2 *", "America/New_York", utc(2096, 3, 1), 1) == [utc(2104, 2, 29, 17)]


def test_an_expression_that_never_matches_has_no_fires() -> None:
    assert fires("0 0 30 2 *", "UTC", utc(2026, 1, 1), 3) == []
    assert next_fires("0 0 30 2 *", "UTC", utc(2026, 1, 1)) == []


def test_a_day_that_a_zone_skips_entirely_fires_at_the_start_of_the_next_day() -> None:
    # Samoa skipped 30 December 2011 (23:59:59 on the 29th at -10 was followed by 00:00 on the 31st at +14).
    assert fires("0 9 * * *", "Pacific/Apia", utc(2011, 12, 29, 12), 2) == [
        utc(2011, 12, 29, 19),  # 29 Dec 09:00 -10
        utc(2011, 12, 30, 10),  # 31 Dec 00:00 +14: the first instant after the missing 30 Dec 09:00
    ]


# --- Bounds, next_fires, errors -------------------------------------------------------------------------------------


def test_fires_are_strictly_after_after_and_until_is_inclusive() -> None:
    assert fires("0 6 * * *", "UTC", utc(2026, 5, 1, 6), 1) == [utc(2026, 5, 2, 6)]
    window = fire_times("0 6 * * *", "UTC", utc(2026, 5, 1, 6), until=utc(2026, 5, 3, 6))
    assert list(window) == [utc(2026, 5, 2, 6), utc(2026, 5, 3, 6)]
    assert fires("0 6 * * *", "UTC", utc(2026, 5, 1), 0) == []


def test_after_in_another_offset_means_the_same_instant() -> None:
    berlin = datetime(2026, 5, 1, 8, tzinfo=ZoneInfo("Europe/Berlin"))  # 06:00 UTC
    assert fires("0 6 * * *", "UTC", berlin, 1) == [utc(2026, 5, 2, 6)]


def test_next_fires_shows_the_local_time_with_its_offset_and_utc() -> None:
    got = next_fires("30 1 * * *", "America/New_York", utc(2026, 10, 31, 12))
    assert [(fire.local.isoformat(), fire.utc) for fire in got] == [
        ("2026-11-01T01:30:00-04:00", utc(2026, 11, 1, 5, 30)),
        ("2026-11-02T01:30:00-05:00", utc(2026, 11, 2, 6, 30)),
        ("2026-11-03T01:30:00-05:00", utc(2026, 11, 3, 6, 30)),
    ]
    assert isinstance(got[0], NextFire)
    assert next_fires("30 2 * * *", "Europe/Berlin", utc(2026, 3, 28, 12), count=1)[0].local.isoformat() == (
        "2026-03-29T03:00:00+02:00"
    )


def test_a_bad_expression_is_refused_at_the_call_naming_the_schedule_field() -> None:
    with pytest.raises(ConfigError, match=r"^schedule: '0 6 \* \*' is not a cron expression \(five fields"):
        fire_times("0 6 * *", "UTC", utc(2026, 1, 1))  # not iterated: the error comes from the call itself


def test_a_bad_zone_is_refused_naming_the_timezone_field() -> None:
    with pytest.raises(ConfigError, match=r"^timezone: unknown timezone 'Europe/Berlln'; use an IANA name"):
        next_fires("0 6 * * *", "Europe/Berlln", utc(2026, 1, 1))


def test_a_naive_start_is_refused() -> None:
    with pytest.raises(ValueError, match="after must be an aware datetime"):
        fire_times("0 6 * * *", "UTC", datetime(2026, 1, 1))


# --- Properties --------------------------------------------------------------------------------------------------

ZONES = [
    "Europe/Berlin",
    "America/New_York",
    "Australia/Sydney",
    "Pacific/Auckland",
    "Australia/Lord_Howe",  # a 30-minute DST shift
    "America/Sao_Paulo",  # had its gap at midnight until 2019
    "Pacific/Chatham",  # +12:45 / +13:45
    "Asia/Kolkata",
    "UTC",
]
CRONS = st.builds(
    lambda minute, hour, day, month, weekday: f"{minute} {hour} {day} {month} {weekday}",
    st.sampled_from(["0", "30", "*/15", "5,35", "*/7", "45", "*"]),
    st.sampled_from(["*", "0", "1", "2", "3", "*/2", "1-3", "0,2"]),
    st.sampled_from(["*", "*", "1", "29", "31"]),
    st.sampled_from(["*", "*", "*", "3", "4", "10", "11", "9-11"]),
    st.sampled_from(["*", "*", "0", "1-5"]),
)


@functools.cache
def transitions(zone: str) -> list[datetime]:
    """The instants (to the hour) at which ``zone``'s UTC offset changed between 2016 and 2029."""
    tz = ZoneInfo(zone)
    found = []
    instant, end = utc(2016, 1, 1), utc(2029, 1, 1)
    offset = instant.astimezone(tz).utcoffset()
    while instant < end:
        instant += timedelta(hours=1)
        current = instant.astimezone(tz).utcoffset()
        if current != offset:
            found.append(instant)
            offset = current
    return found or [utc(2026, 3, 29)]


@st.composite
def starts(draw: st.DrawFn) -> tuple[str, datetime]:
    """A zone and an instant within a day before one of its transitions, where the rules matter."""
    zone = draw(st.sampled_from(ZONES))
    transition = draw(st.sampled_from(transitions(zone)))
    return zone, transition - timedelta(minutes=draw(st.integers(0, 20 * 60)))


@functools.cache
def matcher(cron: str) -> Callable[[datetime], bool]:
    """Whether a naive wall time matches ``cron`` (the generated expressions' subset), much faster than
    ``croniter.match`` for a minute-by-minute scan; the day-of-month/day-of-week rule is cron's: either, when both
    are restricted."""
    minutes, hours, days, months, weekdays = (
        None if field == ["*"] else set(field) for field in croniter.expand(cron)[0]
    )

    def matches(wall: datetime) -> bool:
        if (minutes is not None and wall.minute not in minutes) or (hours is not None and wall.hour not in hours):
            return False
        if months is not None and wall.month not in months:
            return False
        day_ok = days is None or wall.day in days
        weekday_ok = weekdays is None or (wall.weekday() + 1) % 7 in weekdays
        return (day_ok or weekday_ok) if days is not None and weekdays is not None else day_ok and weekday_ok

    return matches


def expected_by_brute_force(cron: str, zone: str, after: datetime, until: datetime) -> list[datetime]:
    """Every whole minute in (after, until] that the rules say fires, found minute by minute.

    A minute fires if its local wall time matches and is the first occurrence of that wall time (fold 0), or if
    the clock jumps forward at it over a wall time that matches.
    """
    tz, matches = ZoneInfo(zone), matcher(cron)
    expected = []
    minute = after.replace(second=0, microsecond=0) + timedelta(minutes=1)
    while minute <= until:
        local = minute.astimezone(tz)
        wall = local.replace(tzinfo=None)
        before = (minute - timedelta(minutes=1)).astimezone(tz).replace(tzinfo=None)
        jumped = int((wall - before) / timedelta(minutes=1))  # 1 on an ordinary minute, more at a gap
        skipped_walls = (before + timedelta(minutes=step) for step in range(1, jumped))
        if (matches(wall) and local.fold == 0) or any(matches(skipped) for skipped in skipped_walls):
            expected.append(minute)
        minute += timedelta(minutes=1)
    return expected


@settings(max_examples=100, deadline=None)
@given(cron=CRONS, start=starts())
def test_fires_match_a_minute_by_minute_brute_force_around_transitions(cron: str, start: tuple[str, datetime]) -> None:
    zone, after = start
    until = after + timedelta(hours=26)
    assert list(fire_times(cron, zone, after, until=until)) == expected_by_brute_force(cron, zone, after, until)


@settings(max_examples=150, deadline=None)
@given(cron=CRONS, start=starts())
def test_fires_are_strictly_increasing_utc_instants_whose_wall_time_matches(
    cron: str, start: tuple[str, datetime]
) -> None:
    zone, after = start
    tz = ZoneInfo(zone)
    got = fires(cron, zone, after, 40)
    assert all(fire.tzinfo is UTC for fire in got)
    assert all(earlier < later for earlier, later in zip([after, *got], got, strict=False))
    for fire in got:
        local = fire.astimezone(tz)
        wall = local.replace(tzinfo=None)
        if croniter.match(cron, wall):
            assert local.fold == 0, f"{fire} is the second occurrence of {wall}"
        else:
            # Not a match itself: it must be the end of a gap that swallowed a matching wall time.
            before = (fire - timedelta(seconds=1)).astimezone(tz).replace(tzinfo=None) + timedelta(seconds=1)
            assert wall - before > timedelta(0), f"{fire} ({wall}) neither matches {cron!r} nor ends a gap"
            first_match = croniter(cron, before - timedelta(seconds=1), ret_type=datetime).get_next(datetime)
            assert before <= first_match < wall
