"""What the scheduler does with a schedule at a given instant: pure decisions, the clock passed in.

The scheduler process (and ``offramp scheduler --once``) asks :func:`due` for each schedule, records what it says
(the run to start, the fires skipped with their reasons, the new ``last_fire``) and sleeps until the earliest
``next_fire``. Keeping the decisions free of the store, the clock and processes lets the unit tests drive them
across DST transitions, downtime and lateness with plain datetimes.

Missed fires. ``last_fire`` is how far the schedule's fires are already handled; every fire after it and up to
``now`` is due. Then, in this order:

1. A due fire older than ``now - max_lateness`` is skipped: ``later than the maximum lateness (N min)``.
2. Of the others, with ``catch_up="latest"`` (the default) the latest runs, one run for all of them; the earlier
   ones are recorded as skipped, folded into it. With ``catch_up="skip"`` none of the missed ones runs
   (``missed while the scheduler was down (catch-up skip)``); only a fire seen within ``on_time`` of its instant
   counts as on time and runs, since a scheduler polling, starting under cron or scheduled as a Kubernetes
   CronJob always sees a fire a little after its instant.

A new schedule (``last_fire`` None) has missed nothing: it never runs everything since the epoch, and its first
run is its next fire after ``now``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

from offramp.core.errors import ConfigError
from offramp.core.scheduling.fires import _checked, _require_aware, fire_times

CatchUp = Literal["latest", "skip"]

#: How late a scheduler may see a fire and still call it on time under ``catch_up="skip"``: enough for a polling
#: loop, a cold start under cron or a CronJob pod's scheduling delay, and far less than any real downtime.
ON_TIME = timedelta(minutes=5)

MISSED_SKIP = "missed while the scheduler was down (catch-up skip)"
NO_NEW_DATA = "no new data"


@dataclass(frozen=True)
class Schedule:
    """A schedule as the decisions need it; validated when built, errors naming the field.

    Attributes:
        cron: Cron expression, read in ``zone`` (``0 6 * * *``).
        zone: IANA timezone of the expression (``Europe/Berlin``).
        catch_up: ``latest``: after downtime, one run for the latest missed fire; ``skip``: none, wait for the next.
        max_lateness: A missed fire older than this is skipped and recorded as such; None: no limit.
        enabled: A disabled schedule never fires, and its fires are not missed: nothing is caught up on enabling.
    """

    cron: str
    zone: str = "UTC"
    catch_up: CatchUp = "latest"
    max_lateness: timedelta | None = None
    enabled: bool = True

    def __post_init__(self) -> None:
        _checked(self.cron, self.zone)
        if self.catch_up not in ("latest", "skip"):
            raise ConfigError(
                f"catch_up: {self.catch_up!r} is not a catch-up policy", hint="write latest or skip", field="catch_up"
            )
        if self.max_lateness is not None and self.max_lateness <= timedelta(0):
            raise ConfigError(
                f"max_lateness: {self.max_lateness} is not a positive duration",
                hint="give a duration such as 30 minutes, or none for no limit",
                field="max_lateness",
            )


@dataclass(frozen=True)
class SkippedFire:
    """A fire that does not run, with the reason the schedule's history shows."""

    fire: datetime
    reason: str


@dataclass(frozen=True)
class Decision:
    """What to do now for one schedule.

    Attributes:
        run: The scheduled instant (UTC) of the fire to run now (the run's fire time, the claim's key), or None.
        skipped: The due fires that do not run, oldest first, each with its reason; record them all.
        next_fire: The schedule's next fire after ``now`` (when to wake up), or None (disabled, or no further date).
        last_fire: What to pass as ``last_fire`` next time, once ``run`` and ``skipped`` are recorded.
    """

    run: datetime | None
    skipped: tuple[SkippedFire, ...]
    next_fire: datetime | None
    last_fire: datetime


def due(schedule: Schedule, last_fire: datetime | None, now: datetime, *, on_time: timedelta = ON_TIME) -> Decision:
    """Decide what ``schedule`` does at ``now``, given the fires handled up to ``last_fire`` (see the module doc).

    Args:
        schedule: The schedule.
        last_fire: The scheduled instant of the last fire handled (run or recorded as skipped), or the instant the
            schedule was created or last enabled if later; None for a schedule never seen before.
        now: The current instant (aware).
        on_time: How late a fire may be seen and still run under ``catch_up="skip"``.
    """
    _require_aware(now, "now")
    now = now.astimezone(UTC)
    if last_fire is not None:
        _require_aware(last_fire, "last_fire")
        last_fire = last_fire.astimezone(UTC)
    # Never move backwards: a clock behind the recorded last fire (another machine's clock) handles nothing twice.
    horizon = now if last_fire is None else max(now, last_fire)
    if not schedule.enabled:
        return Decision(run=None, skipped=(), next_fire=None, last_fire=horizon)
    next_fire = next(fire_times(schedule.cron, schedule.zone, horizon, count=1), None)
    if last_fire is None:
        return Decision(run=None, skipped=(), next_fire=next_fire, last_fire=horizon)

    missed = list(fire_times(schedule.cron, schedule.zone, last_fire, until=now))
    skipped: list[SkippedFire] = []
    fresh = missed
    if schedule.max_lateness is not None:
        oldest_allowed = now - schedule.max_lateness
        late = late_reason(schedule.max_lateness)
        skipped = [SkippedFire(fire, late) for fire in missed if fire < oldest_allowed]
        fresh = missed[len(skipped) :]  # fires are increasing, so the late ones are a prefix

    run: datetime | None = None
    if fresh:
        latest = fresh[-1]
        if schedule.catch_up == "latest":
            run = latest
            folded = f"missed while the scheduler was down (catch-up latest: folded into the run for {_iso(latest)})"
            skipped += [SkippedFire(fire, folded) for fire in fresh[:-1]]
        else:
            run = latest if now - latest <= on_time else None
            skipped += [SkippedFire(fire, MISSED_SKIP) for fire in (fresh if run is None else fresh[:-1])]
    return Decision(run=run, skipped=tuple(skipped), next_fire=next_fire, last_fire=missed[-1] if missed else horizon)


def overlap(running_run_id: str | None) -> str | None:
    """The skip reason for a fire while the previous run of the same orchestration or group still runs, or None.

    A fire is never queued behind a running one: queued fires pile up behind a slow run and then run back to back
    on stale data. The caller records the fire as skipped with this reason.
    """
    return None if running_run_id is None else f"still running: {running_run_id}"


def changed(previous_value: str | None, current_value: str | None) -> bool:
    """Whether a fire with a freshness query runs: its value differs from the one of the last successful run.

    ``previous_value`` is the value recorded at the last successful run (as text), None if none was ever recorded:
    then the fire runs, since there is nothing to compare with and a first run records the value. Otherwise the
    values are compared as text, so any difference runs, a decrease too (a table reloaded with older data is new
    data to send); a query now returning NULL after a value is a change as well. When this is False the caller
    records the fire as skipped with :data:`NO_NEW_DATA`.
    """
    return previous_value is None or previous_value != current_value


def may_fire(*, sandbox: bool, sandbox_schedules_enabled: bool) -> bool:
    """Whether a workspace's schedules fire at all: always in production, in a sandbox only if it enabled them.

    A sandbox copies production's schedules; firing them by default would double every scheduled send. When a
    sandbox does enable them, its runs are test traffic like every sandbox send (the runner refuses a sandbox
    run without a test event code), so this needs no second rule here.
    """
    return not sandbox or sandbox_schedules_enabled


def late_reason(max_lateness: timedelta) -> str:
    """The skip reason of a fire later than the schedule's maximum lateness."""
    seconds = int(max_lateness.total_seconds())
    amount = f"{seconds // 60} min" if seconds % 60 == 0 else f"{seconds} s"
    return f"later than the maximum lateness ({amount})"


def _iso(instant: datetime) -> str:
    return instant.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
