"""Which fire times of a due schedule get a task now, by its missed-run policy (no I/O)."""

from __future__ import annotations

from dataclasses import dataclass

from app.core.cron import CronTimes
from app.core.models import MissedPolicy, Schedule

# A fire time seen at most this late is on time, whatever the policy: the scheduler loop
# runs every `schedule_interval_seconds` and a write can wait for the lock for seconds.
MIN_GRACE_MS = 10_000


def grace_ms(interval_s: float) -> int:
    """How late a fire time may be seen and still count as on time rather than missed."""
    return max(MIN_GRACE_MS, round(2 * interval_s * 1000))


@dataclass(frozen=True, slots=True)
class FirePlan:
    """The fire times to submit a task for (oldest first) and the next one after now."""

    fire_times_ms: tuple[int, ...]
    next_run_at_ms: int | None


def plan_fires(schedule: Schedule, times: CronTimes, now_ms: int, grace: int) -> FirePlan:
    """What a due schedule does at `now_ms`.

    Fire times from `next_run_at` to `now_ms - grace` were missed: `skip` submits none,
    `run_once` the latest, `run_all` the latest `max_catch_up`. Later ones, up to now,
    are on time and always submitted.
    """
    due_from = schedule.next_run_at_ms
    if due_from is None or due_from > now_ms:
        return FirePlan((), due_from)
    on_time_from = max(due_from, now_ms - grace)
    # A fire time per second at most: the window holds at most grace/1000 + 1 of them.
    on_time = times.latest_between(on_time_from, now_ms, grace // 1000 + 2)
    missed: list[int] = []
    if due_from < on_time_from:
        keep = {
            MissedPolicy.skip: 0,
            MissedPolicy.run_once: 1,
            MissedPolicy.run_all: schedule.max_catch_up,
        }[schedule.missed]
        missed = times.latest_between(due_from, on_time_from - 1, keep)
    return FirePlan(tuple(missed + on_time), times.next_after(now_ms))
