"""Cron expressions in a zone, and which fire times a due schedule submits (no I/O)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from app.core.clock import format_ms, parse_rfc3339_ms
from app.core.cron import CronTimes, parse_cron, parse_zone
from app.core.errors import InvalidInput
from app.core.firing import MIN_GRACE_MS, grace_ms, plan_fires
from app.core.models import MissedPolicy, Schedule

UTC = parse_zone("UTC")
BERLIN = parse_zone("Europe/Berlin")
NEW_YORK = parse_zone("America/New_York")


def at(text: str) -> int:
    return parse_rfc3339_ms(text)


def cron(expression: str, zone_name: str = "UTC") -> CronTimes:
    return CronTimes(expression, parse_zone(zone_name))


def stamps(times: list[int]) -> list[str]:
    return [format_ms(ms) for ms in times]


def schedule(expression: str, next_run: str, **fields: object) -> Schedule:
    base = Schedule(
        id="s",
        cron=expression,
        timezone="UTC",
        queue="q",
        task_json='{"type": "t"}',
        missed=MissedPolicy.run_once,
        max_catch_up=100,
        paused=False,
        next_run_at_ms=at(next_run),
        last_run_at_ms=None,
        last_task_id=None,
        revision=1,
        created_at_ms=0,
        updated_at_ms=0,
    )
    return replace(base, **fields)  # type: ignore[arg-type]


# -- reading expressions and zones ------------------------------------------------------


@pytest.mark.parametrize(
    ("expression", "says"),
    [
        ("* * * *", "Wrong number of fields"),
        ("* * * * * * *", "Wrong number of fields"),
        ("61 * * * *", "Bad minute"),
        ("* 24 * * *", "Bad hour"),
        ("0 0 30 2 *", "Bad day-of-month"),
        ("* * * 13 *", "Bad month"),
        ("* * * * FUNDAY", "Bad day-of-week"),
        ("60 * * * * *", "Bad second"),
    ],
)
def test_unreadable_expressions_name_the_field(expression: str, says: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_cron(expression, UTC, at("2026-01-01T00:00:00Z"))
    assert says in caught.value.detail
    assert caught.value.errors[0].field == "body.cron"
    assert "5 fields" in caught.value.errors[0].message


def test_an_expression_that_never_fires_is_refused() -> None:
    # The 1st or 21st of a month that is also its last Monday: never within 50 years.
    with pytest.raises(InvalidInput) as caught:
        parse_cron("* * */20 * 1L", UTC, at("2026-01-01T00:00:00Z"))
    assert caught.value.errors[0].message == "never fires"


@pytest.mark.parametrize("name", ["Mars/Olympus", "utc", "localtime", "America", "../etc/passwd"])
def test_unknown_or_host_specific_zones_are_refused(name: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_zone(name)
    assert caught.value.errors[0].field == "body.timezone"


def test_first_fire_time_is_strictly_after_now() -> None:
    _, first = parse_cron("*/15 * * * *", UTC, at("2026-01-01T00:15:00Z"))
    assert format_ms(first) == "2026-01-01T00:30:00.000Z"
    _, first_second = parse_cron("* * * * * *", UTC, at("2026-01-01T00:00:00.999Z"))
    assert format_ms(first_second) == "2026-01-01T00:00:01.000Z"


def test_six_fields_put_seconds_first() -> None:
    times = cron("*/20 * * * * *")
    found = times.latest_between(at("2026-01-01T00:00:00Z"), at("2026-01-01T00:01:00Z"), 10)
    assert stamps(found) == [
        "2026-01-01T00:00:00.000Z",
        "2026-01-01T00:00:20.000Z",
        "2026-01-01T00:00:40.000Z",
        "2026-01-01T00:01:00.000Z",
    ]


def test_latest_between_keeps_the_latest_whichever_way_it_walks() -> None:
    times = cron("* * * * * *")
    start, end = at("2026-01-01T00:00:00Z"), at("2026-01-01T06:00:00Z")  # 21,601 fire times
    latest = times.latest_between(start, end, 3)
    assert stamps(latest) == [
        "2026-01-01T05:59:58.000Z",
        "2026-01-01T05:59:59.000Z",
        "2026-01-01T06:00:00.000Z",
    ]
    few = times.latest_between(start, start + 2_000, 5)
    assert stamps(few) == [
        "2026-01-01T00:00:00.000Z",
        "2026-01-01T00:00:01.000Z",
        "2026-01-01T00:00:02.000Z",
    ]
    assert times.latest_between(start, end, 0) == []
    assert times.latest_between(end, start, 5) == []


# -- daylight saving time ---------------------------------------------------------------
# Berlin: 2026-03-29 02:00 CET → 03:00 CEST (01:00 UTC); 2026-10-25 03:00 CEST → 02:00 CET.


def test_a_fixed_time_in_the_spring_gap_fires_once_right_after_it() -> None:
    times = cron("30 2 * * *", "Europe/Berlin")
    found = times.latest_between(at("2026-03-28T00:00:00Z"), at("2026-03-31T00:00:00Z"), 10)
    assert stamps(found) == [
        "2026-03-28T01:30:00.000Z",  # 02:30 CET
        "2026-03-29T01:00:00.000Z",  # 02:30 does not exist: 03:00 CEST, as Debian cron does
        "2026-03-30T00:30:00.000Z",  # 02:30 CEST
    ]


def test_a_fixed_time_in_the_repeated_autumn_hour_fires_once() -> None:
    times = cron("30 2 * * *", "Europe/Berlin")
    found = times.latest_between(at("2026-10-24T00:00:00Z"), at("2026-10-27T00:00:00Z"), 10)
    assert stamps(found) == [
        "2026-10-24T00:30:00.000Z",
        "2026-10-25T00:30:00.000Z",  # the first 02:30 (CEST) only
        "2026-10-26T01:30:00.000Z",
    ]
    # Asked from inside the repeated hour, the answer still lies ahead.
    assert format_ms(times.next_after(at("2026-10-25T01:10:00Z")) or 0) == (
        "2026-10-26T01:30:00.000Z"
    )


def test_frequent_and_six_field_schedules_follow_real_time() -> None:
    every_half_hour = cron("*/30 * * * *", "Europe/Berlin")
    autumn = every_half_hour.latest_between(
        at("2026-10-25T00:00:00Z"), at("2026-10-25T01:30:00Z"), 10
    )
    # 02:00 and 02:30 happen twice, and fire twice: once per real instant.
    assert stamps(autumn) == [
        "2026-10-25T00:00:00.000Z",
        "2026-10-25T00:30:00.000Z",
        "2026-10-25T01:00:00.000Z",
        "2026-10-25T01:30:00.000Z",
    ]
    with_seconds = cron("0 30 2 * * *", "Europe/Berlin")
    spring = with_seconds.latest_between(at("2026-03-28T00:00:00Z"), at("2026-03-31T00:00:00Z"), 10)
    # With seconds the expression is not Debian cron: a time that does not exist is skipped.
    assert stamps(spring) == ["2026-03-28T01:30:00.000Z", "2026-03-30T00:30:00.000Z"]


# -- missed-run policies -----------------------------------------------------------------


def test_grace_grows_with_a_slow_scheduler_loop() -> None:
    assert grace_ms(1.0) == MIN_GRACE_MS
    assert grace_ms(30.0) == 60_000


def test_on_time_fire_times_are_all_submitted_whatever_the_policy() -> None:
    for policy in MissedPolicy:
        due = schedule("* * * * * *", "2026-01-01T00:00:01Z", missed=policy)
        plan = plan_fires(due, cron("* * * * * *"), at("2026-01-01T00:00:03.400Z"), MIN_GRACE_MS)
        assert stamps(list(plan.fire_times_ms)) == [
            "2026-01-01T00:00:01.000Z",
            "2026-01-01T00:00:02.000Z",
            "2026-01-01T00:00:03.000Z",
        ], policy
        assert format_ms(plan.next_run_at_ms or 0) == "2026-01-01T00:00:04.000Z"


@pytest.mark.parametrize(
    ("policy", "max_catch_up", "expected"),
    [
        (MissedPolicy.skip, 100, []),
        (MissedPolicy.run_once, 100, ["04:50"]),
        (MissedPolicy.run_all, 100, ["04:00", "04:10", "04:20", "04:30", "04:40", "04:50"]),
        (MissedPolicy.run_all, 2, ["04:40", "04:50"]),
    ],
)
def test_missed_fire_times_follow_the_policy(
    policy: MissedPolicy, max_catch_up: int, expected: list[str]
) -> None:
    # Every 10 minutes; the server was down from 03:55 to 05:00:05.
    due = schedule("*/10 * * * *", "2026-01-01T04:00:00Z", missed=policy, max_catch_up=max_catch_up)
    now = at("2026-01-01T05:00:05Z")
    plan = plan_fires(due, cron("*/10 * * * *"), now, MIN_GRACE_MS)
    on_time = ["05:00"]  # 5 s late: inside the grace, so it fires under every policy
    assert [format_ms(ms)[11:16] for ms in plan.fire_times_ms] == expected + on_time
    assert format_ms(plan.next_run_at_ms or 0) == "2026-01-01T05:10:00.000Z"


def test_a_schedule_not_yet_due_plans_nothing() -> None:
    later = schedule("*/10 * * * *", "2026-01-01T04:00:00Z")
    plan = plan_fires(later, cron("*/10 * * * *"), at("2026-01-01T03:59:59Z"), MIN_GRACE_MS)
    assert plan.fire_times_ms == ()
    assert plan.next_run_at_ms == later.next_run_at_ms
