"""The scheduler's decisions, driven by a controllable clock: what runs, what is skipped and why.

The clock is plain datetimes passed in; the "scheduler loop" tests feed each decision's ``last_fire`` back in, as
the scheduler process does through its store.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from offramp.core.errors import ConfigError
from offramp.core.scheduling import (
    MISSED_SKIP,
    NO_NEW_DATA,
    ON_TIME,
    Decision,
    Schedule,
    SkippedFire,
    changed,
    due,
    fire_times,
    may_fire,
    overlap,
)

HOURLY = Schedule(cron="0 * * * *")


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


def folded_into(fire: datetime) -> str:
    return f"missed while the scheduler was down (catch-up latest: folded into the run for {fire:%Y-%m-%dT%H:%M:%SZ})"


def run_scheduler(schedule: Schedule, start: datetime, end: datetime, poll: timedelta) -> list[Decision]:
    """Poll ``due`` every ``poll`` from ``start`` to ``end``, as a scheduler would, keeping what it would store."""
    decisions = []
    last_fire = due(schedule, None, start).last_fire  # the schedule is created at `start`
    now = start
    while now <= end:
        decision = due(schedule, last_fire, now)
        decisions.append(decision)
        last_fire = decision.last_fire
        now += poll
    return decisions


# --- New schedules and normal operation ----------------------------------------------------------------------------


def test_a_new_schedule_has_missed_nothing_and_waits_for_its_next_fire() -> None:
    decision = due(Schedule(cron="0 6 * * *", zone="Europe/Berlin"), None, utc(2026, 5, 1, 12))
    assert decision == Decision(run=None, skipped=(), next_fire=utc(2026, 5, 2, 4), last_fire=utc(2026, 5, 1, 12))


def test_a_fire_seen_shortly_after_its_instant_runs_once() -> None:
    before = due(HOURLY, utc(2026, 5, 1, 5), utc(2026, 5, 1, 5, 59, 59))
    assert (before.run, before.skipped, before.next_fire) == (None, (), utc(2026, 5, 1, 6))
    at = due(HOURLY, before.last_fire, utc(2026, 5, 1, 6, 0, 3))
    assert (at.run, at.skipped, at.next_fire, at.last_fire) == (utc(2026, 5, 1, 6), (), utc(2026, 5, 1, 7), at.run)
    again = due(HOURLY, at.last_fire, utc(2026, 5, 1, 6, 0, 40))
    assert (again.run, again.skipped) == (None, ())


def test_a_polling_scheduler_runs_every_fire_exactly_once_across_both_berlin_transitions() -> None:
    schedule = Schedule(cron="*/15 * * * *", zone="Europe/Berlin")
    for start in (utc(2026, 3, 28, 22), utc(2026, 10, 24, 22)):
        end = start + timedelta(hours=6)
        decisions = run_scheduler(schedule, start, end, poll=timedelta(minutes=4))
        runs = [decision.run for decision in decisions if decision.run is not None]
        assert runs == list(fire_times(schedule.cron, schedule.zone, start, until=end))
        assert not [skip for decision in decisions for skip in decision.skipped]


def test_the_repeated_0130_in_new_york_runs_once() -> None:
    schedule = Schedule(cron="30 1 * * *", zone="America/New_York")
    first = due(schedule, utc(2026, 10, 31, 5, 30), utc(2026, 11, 1, 5, 30, 5))  # 01:30 EDT
    assert first.run == utc(2026, 11, 1, 5, 30)
    second = due(schedule, first.last_fire, utc(2026, 11, 1, 6, 30, 5))  # 01:30 EST, an hour later
    assert (second.run, second.skipped, second.next_fire) == (None, (), utc(2026, 11, 2, 6, 30))


def test_the_missing_0230_in_berlin_runs_at_0300_cest() -> None:
    schedule = Schedule(cron="30 2 * * *", zone="Europe/Berlin")
    early = due(schedule, utc(2026, 3, 28, 1, 30), utc(2026, 3, 29, 0, 59))
    assert (early.run, early.next_fire) == (None, utc(2026, 3, 29, 1))
    assert due(schedule, early.last_fire, utc(2026, 3, 29, 1, 0, 2)).run == utc(2026, 3, 29, 1)


# --- Missed fires: catch-up policy and maximum lateness -------------------------------------------------------------


def test_catch_up_latest_runs_the_latest_missed_fire_once_and_folds_the_others_into_it() -> None:
    decision = due(HOURLY, utc(2026, 5, 1, 1), utc(2026, 5, 1, 5, 10))  # down from 01:10 to 05:10
    assert decision.run == utc(2026, 5, 1, 5)
    assert decision.skipped == tuple(
        SkippedFire(utc(2026, 5, 1, hour), folded_into(decision.run)) for hour in (2, 3, 4)
    )
    assert (decision.next_fire, decision.last_fire) == (utc(2026, 5, 1, 6), utc(2026, 5, 1, 5))


def test_catch_up_skip_runs_none_of_the_missed_fires_and_waits_for_the_next() -> None:
    schedule = Schedule(cron="0 * * * *", catch_up="skip")
    decision = due(schedule, utc(2026, 5, 1, 1), utc(2026, 5, 1, 5, 10))
    assert decision.run is None
    assert decision.skipped == tuple(SkippedFire(utc(2026, 5, 1, hour), MISSED_SKIP) for hour in (2, 3, 4, 5))
    assert MISSED_SKIP == "missed while the scheduler was down (catch-up skip)"
    assert (decision.next_fire, decision.last_fire) == (utc(2026, 5, 1, 6), utc(2026, 5, 1, 5))
    assert due(schedule, decision.last_fire, utc(2026, 5, 1, 6, 0, 1)).run == utc(2026, 5, 1, 6)


def test_catch_up_skip_still_runs_a_fire_seen_on_time_after_downtime() -> None:
    schedule = Schedule(cron="0 * * * *", catch_up="skip")
    decision = due(schedule, utc(2026, 5, 1, 1), utc(2026, 5, 1, 5) + ON_TIME)  # back up just as 05:00 fires
    assert decision.run == utc(2026, 5, 1, 5)
    assert [skip.fire for skip in decision.skipped] == [utc(2026, 5, 1, hour) for hour in (2, 3, 4)]
    late = due(schedule, utc(2026, 5, 1, 4), utc(2026, 5, 1, 5) + ON_TIME + timedelta(seconds=1))
    assert (late.run, late.skipped) == (None, (SkippedFire(utc(2026, 5, 1, 5), MISSED_SKIP),))


def test_maximum_lateness_skips_the_missed_fires_older_than_it_and_latest_runs_the_rest() -> None:
    schedule = Schedule(cron="0 * * * *", max_lateness=timedelta(minutes=90))
    decision = due(schedule, utc(2026, 5, 1, 1), utc(2026, 5, 1, 5, 10))  # fires before 03:40 are too late
    late = "later than the maximum lateness (90 min)"
    assert decision.run == utc(2026, 5, 1, 5)
    assert decision.skipped == (
        SkippedFire(utc(2026, 5, 1, 2), late),
        SkippedFire(utc(2026, 5, 1, 3), late),
        SkippedFire(utc(2026, 5, 1, 4), folded_into(utc(2026, 5, 1, 5))),
    )


def test_a_fire_later_than_the_maximum_lateness_does_not_run_even_alone() -> None:
    schedule = Schedule(cron="0 6 * * *", zone="Europe/Berlin", max_lateness=timedelta(minutes=30))
    decision = due(schedule, utc(2026, 5, 1, 4), utc(2026, 5, 3, 4, 45))  # down two days, back 45 min late
    late = "later than the maximum lateness (30 min)"
    assert decision.run is None
    assert decision.skipped == (SkippedFire(utc(2026, 5, 2, 4), late), SkippedFire(utc(2026, 5, 3, 4), late))
    assert decision.next_fire == utc(2026, 5, 4, 4)


def test_a_fire_exactly_at_the_maximum_lateness_still_runs() -> None:
    schedule = Schedule(cron="0 6 * * *", max_lateness=timedelta(seconds=90))
    assert due(schedule, utc(2026, 5, 1, 6), utc(2026, 5, 2, 6, 1, 30)).run == utc(2026, 5, 2, 6)
    skipped = due(schedule, utc(2026, 5, 1, 6), utc(2026, 5, 2, 6, 1, 31)).skipped
    assert skipped == (SkippedFire(utc(2026, 5, 2, 6), "later than the maximum lateness (90 s)"),)


def test_skip_with_maximum_lateness_records_each_fire_with_its_own_reason() -> None:
    schedule = Schedule(cron="0 * * * *", catch_up="skip", max_lateness=timedelta(hours=2))
    decision = due(schedule, utc(2026, 5, 1, 1), utc(2026, 5, 1, 5, 10))
    assert decision.run is None
    assert [(skip.fire.hour, skip.reason) for skip in decision.skipped] == [
        (2, "later than the maximum lateness (120 min)"),
        (3, "later than the maximum lateness (120 min)"),
        (4, MISSED_SKIP),
        (5, MISSED_SKIP),
    ]


def test_downtime_across_a_dst_transition_catches_up_real_fires_only() -> None:
    # Down from 23:50 UTC to 03:10 UTC over Berlin's fall-back night: 02:xx CET repeats nothing.
    decision = due(
        Schedule(cron="30 * * * *", zone="Europe/Berlin"), utc(2026, 10, 24, 23, 30), utc(2026, 10, 25, 3, 10)
    )
    assert decision.run == utc(2026, 10, 25, 2, 30)  # 03:30 CET
    assert [skip.fire for skip in decision.skipped] == [utc(2026, 10, 25, 0, 30)]  # 02:30 CEST, once


# --- Disabled schedules, odd clocks, validation --------------------------------------------------------------------


def test_a_disabled_schedule_never_fires_and_catches_nothing_up_when_enabled_again() -> None:
    disabled = Schedule(cron="0 * * * *", enabled=False)
    decision = due(disabled, utc(2026, 5, 1, 1), utc(2026, 5, 1, 5, 10))
    assert decision == Decision(run=None, skipped=(), next_fire=None, last_fire=utc(2026, 5, 1, 5, 10))
    enabled = due(HOURLY, decision.last_fire, utc(2026, 5, 1, 5, 20))
    assert (enabled.run, enabled.skipped, enabled.next_fire) == (None, (), utc(2026, 5, 1, 6))


def test_a_clock_behind_the_recorded_last_fire_handles_nothing_twice() -> None:
    decision = due(HOURLY, utc(2026, 5, 1, 6), utc(2026, 5, 1, 5, 59, 58))  # another machine's clock, 2 s behind
    assert decision == Decision(run=None, skipped=(), next_fire=utc(2026, 5, 1, 7), last_fire=utc(2026, 5, 1, 6))


def test_a_schedule_that_never_matches_never_runs() -> None:
    decision = due(Schedule(cron="0 0 30 2 *"), utc(2026, 1, 1), utc(2027, 1, 1))
    assert (decision.run, decision.skipped, decision.next_fire) == (None, (), None)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"cron": "every day"}, r"^schedule: 'every day' is not a cron expression"),
        ({"cron": "0 6 * * *", "zone": "Mars/Olympus"}, r"^timezone: unknown timezone 'Mars/Olympus'"),
        (
            {"cron": "0 6 * * *", "catch_up": "all"},
            r"^catch_up: 'all' is not a catch-up policy \(write latest or skip\)",
        ),
        ({"cron": "0 6 * * *", "max_lateness": timedelta(0)}, r"^max_lateness: 0:00:00 is not a positive duration"),
    ],
)
def test_a_bad_schedule_is_refused_naming_the_field(fields: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        Schedule(**fields)  # type: ignore[arg-type]


def test_naive_clock_values_are_refused() -> None:
    with pytest.raises(ValueError, match="now must be an aware datetime"):
        due(HOURLY, None, datetime(2026, 5, 1))
    with pytest.raises(ValueError, match="last_fire must be an aware datetime"):
        due(HOURLY, datetime(2026, 5, 1), utc(2026, 5, 1))


# --- Overlap, change triggers, sandboxes ---------------------------------------------------------------------------


def test_a_fire_while_the_previous_run_still_runs_is_skipped_naming_it() -> None:
    assert overlap("run_7f3a") == "still running: run_7f3a"
    assert overlap(None) is None


@pytest.mark.parametrize(
    ("previous", "current", "runs"),
    [
        (None, None, True),  # nothing recorded yet: the first fire runs and records a value
        (None, "2026-05-01 06:00:00", True),
        ("2026-05-01 06:00:00", "2026-05-01 06:00:00", False),  # no new data
        ("2026-05-01 06:00:00", "2026-05-01 07:00:00", True),
        ("2026-05-01 07:00:00", "2026-05-01 06:00:00", True),  # reloaded with older data: still a change
        ("2026-05-01 06:00:00", None, True),  # the table was emptied: a change too
    ],
)
def test_a_change_trigger_runs_only_when_the_value_differs_from_the_last_successful_run(
    previous: str | None, current: str | None, runs: bool
) -> None:
    assert changed(previous, current) is runs
    assert NO_NEW_DATA == "no new data"


def test_schedules_fire_in_production_and_in_a_sandbox_only_when_it_enables_them() -> None:
    assert may_fire(sandbox=False, sandbox_schedules_enabled=False)
    assert not may_fire(sandbox=True, sandbox_schedules_enabled=False)
    assert may_fire(sandbox=True, sandbox_schedules_enabled=True)


# --- Property: every due fire is accounted for exactly once ---------------------------------------------------------


@settings(max_examples=150, deadline=None)
@given(
    cron=st.sampled_from(["*/15 * * * *", "30 * * * *", "30 2 * * *", "30 1 * * *", "0 9 31 * *"]),
    zone=st.sampled_from(["Europe/Berlin", "America/New_York", "Pacific/Auckland", "UTC"]),
    catch_up=st.sampled_from(["latest", "skip"]),
    max_lateness=st.one_of(st.none(), st.integers(1, 48 * 60).map(lambda minutes: timedelta(minutes=minutes))),
    last_fire=st.datetimes(datetime(2026, 3, 1), datetime(2026, 11, 30), timezones=st.just(UTC)),
    down=st.integers(0, 3 * 24 * 60).map(lambda minutes: timedelta(minutes=minutes)),
)
def test_each_due_fire_is_run_or_skipped_exactly_once(
    cron: str, zone: str, catch_up: str, max_lateness: timedelta | None, last_fire: datetime, down: timedelta
) -> None:
    schedule = Schedule(cron=cron, zone=zone, catch_up=catch_up, max_lateness=max_lateness)  # type: ignore[arg-type]
    now = last_fire + down
    decision = due(schedule, last_fire, now)
    expected = list(fire_times(cron, zone, last_fire, until=now))
    handled = sorted([skip.fire for skip in decision.skipped] + ([decision.run] if decision.run else []))
    assert handled == expected  # nothing lost, nothing twice
    assert [skip.fire for skip in decision.skipped] == sorted(skip.fire for skip in decision.skipped)
    if decision.run is not None:
        assert decision.run == expected[-1]  # only ever the latest
        assert max_lateness is None or decision.run >= now - max_lateness
    assert decision.last_fire == (expected[-1] if expected else now)
    assert decision.next_fire == next(fire_times(cron, zone, now, count=1), None)
