"""The scheduler and schedule services over a real store, with a fixed clock (no sleeping)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import pytest

from app.core.clock import FixedClock, format_ms, parse_rfc3339_ms
from app.core.models import TaskFilter
from app.metrics.instruments import Metrics
from app.service.scheduler import Scheduler
from app.service.schedules import ScheduleService
from app.service.tasks import TaskLimits, TaskService
from app.service.waiters import Waiters
from app.store.base import Store

pytestmark = pytest.mark.anyio

Parts = Callable[..., tuple[FixedClock, ScheduleService, Scheduler]]


@pytest.fixture
def parts(store: Store) -> Parts:
    """`parts(start)`: a fixed clock at `start`, the schedule service and a scheduler."""

    def build(start: str) -> tuple[FixedClock, ScheduleService, Scheduler]:
        clock = FixedClock(parse_rfc3339_ms(start))
        return clock, ScheduleService(store, clock), Scheduler(store, Waiters(), clock, 1.0)

    return build


def body(**fields: Any) -> dict[str, Any]:
    return {"id": "s", "queue": "q", "task": {"type": "t", "payload": {"n": 1}}} | fields


async def run_times(store: Store, queue: str = "q") -> list[str]:
    """The due times of the queue's tasks, oldest first; also checks each one's key."""
    tasks = await store.list_tasks(TaskFilter(queue=queue, limit=1000))
    for task in tasks:
        assert task.idempotency_key is not None
        assert task.idempotency_key.endswith(f":{task.run_at_ms}")
    return sorted(format_ms(t.run_at_ms) for t in tasks)


def jump(clock: FixedClock, to: str) -> None:
    clock.current_ms = parse_rfc3339_ms(to)


async def test_fires_on_time_then_waits_for_the_next_time(store: Store, parts: Parts) -> None:
    clock, schedules, scheduler = parts("2026-01-01T00:00:30Z")
    created = await schedules.create(body(cron="* * * * *"))
    assert format_ms(created.next_run_at_ms or 0) == "2026-01-01T00:01:00.000Z"
    assert await scheduler.fire_due_once() == 0
    clock.advance(30.3)
    assert await scheduler.fire_due_once() == 1
    assert await scheduler.fire_due_once() == 0
    after = await schedules.get("s")
    assert format_ms(after.next_run_at_ms or 0) == "2026-01-01T00:02:00.000Z"
    assert format_ms(after.last_run_at_ms or 0) == "2026-01-01T00:01:00.000Z"
    (task,) = await store.list_tasks(TaskFilter(queue="q"))
    assert after.last_task_id == task.id
    assert task.payload_json == '{"n":1}' and task.type == "t"
    assert task.idempotency_key == "schedule:s:1767225660000"


@pytest.mark.parametrize(
    ("policy", "extra", "expected"),
    [
        ("skip", {}, ["05:00"]),
        ("run_once", {}, ["04:50", "05:00"]),
        ("run_all", {}, ["04:00", "04:10", "04:20", "04:30", "04:40", "04:50", "05:00"]),
        ("run_all", {"max_catch_up": 2}, ["04:40", "04:50", "05:00"]),
    ],
)
async def test_after_downtime_missed_times_follow_the_policy(
    store: Store, parts: Parts, policy: str, extra: dict[str, Any], expected: list[str]
) -> None:
    clock, schedules, scheduler = parts("2026-01-01T03:55:00Z")
    await schedules.create(body(cron="*/10 * * * *", missed=policy, **extra))
    # The server is down from 03:55 until 05:00:05; 05:00 is 5 s late, inside the grace.
    jump(clock, "2026-01-01T05:00:05Z")
    assert await scheduler.fire_due_once() == len(expected)
    assert [t[11:16] for t in await run_times(store)] == expected
    after = await schedules.get("s")
    assert format_ms(after.next_run_at_ms or 0) == "2026-01-01T05:10:00.000Z"
    assert format_ms(after.last_run_at_ms or 0) == "2026-01-01T05:00:00.000Z"


async def walk(clock: FixedClock, scheduler: Scheduler, until: str, step_s: float) -> None:
    """Let time pass in steps, with a scheduler pass after each (as the loop would)."""
    end = parse_rfc3339_ms(until)
    while clock.now_ms() < end:
        clock.advance(step_s)
        await scheduler.fire_due_once()


async def test_dst_spring_forward_fires_a_skipped_time_once_after_the_gap(
    store: Store, parts: Parts
) -> None:
    # Berlin, 2026-03-29: 02:00 CET jumps to 03:00 CEST (01:00 UTC); 02:30 never happens.
    clock, schedules, scheduler = parts("2026-03-28T12:00:00Z")
    await schedules.create(body(cron="30 2 * * *", timezone="Europe/Berlin"))
    await walk(clock, scheduler, "2026-03-30T12:00:00Z", step_s=300)
    assert await run_times(store) == [
        "2026-03-29T01:00:00.000Z",  # 03:00 CEST, right after the gap
        "2026-03-30T00:30:00.000Z",  # 02:30 CEST
    ]


async def test_dst_fall_back_fires_a_repeated_time_once(store: Store, parts: Parts) -> None:
    # Berlin, 2026-10-25: 03:00 CEST falls back to 02:00 CET; 02:30 happens twice.
    clock, schedules, scheduler = parts("2026-10-24T12:00:00Z")
    await schedules.create(body(cron="30 2 * * *", timezone="Europe/Berlin"))
    await schedules.create(body(id="half-hourly", cron="*/30 * * * *", timezone="Europe/Berlin"))
    await walk(clock, scheduler, "2026-10-25T02:00:00Z", step_s=60)
    nightly = [
        format_ms(t.run_at_ms)
        for t in await store.list_tasks(TaskFilter(queue="q", limit=1000))
        if t.idempotency_key and t.idempotency_key.startswith("schedule:s:")
    ]
    assert nightly == ["2026-10-25T00:30:00.000Z"]  # the first 02:30 (CEST) only
    # A frequent schedule follows real time: 02:00 and 02:30 local fire twice each.
    repeated = [t for t in await run_times(store) if "2026-10-25T00:00" <= t < "2026-10-25T02"]
    assert repeated == [
        "2026-10-25T00:00:00.000Z",
        "2026-10-25T00:30:00.000Z",
        "2026-10-25T00:30:00.000Z",  # the nightly one, at the same instant
        "2026-10-25T01:00:00.000Z",
        "2026-10-25T01:30:00.000Z",
    ]


async def test_two_schedulers_sharing_a_database_fire_each_time_once(
    store: Store, store_twin: Store
) -> None:
    clock = FixedClock(parse_rfc3339_ms("2026-01-01T00:00:00.250Z"))
    await ScheduleService(store, clock).create(body(cron="* * * * * *", missed="run_all"))
    one = Scheduler(store, Waiters(), clock, 1.0)
    other = Scheduler(store_twin, Waiters(), clock, 1.0)
    created = 0
    for _ in range(20):
        clock.advance(0.5)
        counts = await asyncio.gather(one.fire_due_once(), other.fire_due_once())
        created += sum(counts)
    times = await run_times(store)
    assert len(times) == len(set(times)) == created == 10
    assert times[0] == "2026-01-01T00:00:01.000Z" and times[-1] == "2026-01-01T00:00:10.000Z"


async def test_a_paused_schedule_does_not_fire_and_resuming_does_not_catch_up(
    store: Store, parts: Parts
) -> None:
    clock, schedules, scheduler = parts("2026-01-01T00:00:30Z")
    await schedules.create(body(cron="* * * * *", missed="run_all"))
    paused = await schedules.update("s", {"paused": True})
    assert paused.paused and paused.next_run_at_ms is None
    clock.advance(3600)
    assert await scheduler.fire_due_once() == 0
    resumed = await schedules.update("s", {"paused": False})
    assert format_ms(resumed.next_run_at_ms or 0) == "2026-01-01T01:01:00.000Z"
    clock.advance(30)
    assert await scheduler.fire_due_once() == 1
    assert await run_times(store) == ["2026-01-01T01:01:00.000Z"]


async def test_changing_the_template_keeps_the_timing(store: Store, parts: Parts) -> None:
    clock, schedules, scheduler = parts("2026-01-01T00:00:30Z")
    created = await schedules.create(body(cron="* * * * *"))
    changed = await schedules.update("s", {"task": {"type": "v", "priority": "high"}})
    assert changed.next_run_at_ms == created.next_run_at_ms
    assert changed.revision == created.revision + 1
    moved = await schedules.update("s", {"cron": "*/5 * * * *", "timezone": "Asia/Kolkata"})
    assert format_ms(moved.next_run_at_ms or 0) == "2026-01-01T00:05:00.000Z"
    clock.advance(270)
    assert await scheduler.fire_due_once() == 1
    (task,) = await store.list_tasks(TaskFilter(queue="q"))
    assert task.type == "v" and task.priority.name == "high" and task.payload_json == "null"


async def test_a_refused_task_is_logged_and_the_schedule_moves_on(
    store: Store, parts: Parts, caplog: pytest.LogCaptureFixture
) -> None:
    clock, schedules, scheduler = parts("2026-01-01T00:00:30Z")
    await schedules.create(body(cron="* * * * *"))
    # Someone submitted their own task under the key of the 00:01 fire time.
    key = "schedule:s:1767225660000"
    tasks = TaskService(store, Waiters(), clock, TaskLimits(), Metrics.in_process())
    submitted = await tasks.submit("q", {"type": "mine", "idempotency_key": key}, None)
    clock.advance(30)
    with caplog.at_level(logging.ERROR, logger="taskgate.scheduler"):
        assert await scheduler.fire_due_once() == 0
    assert "the task for 2026-01-01T00:01:00.000Z was refused" in caplog.text
    after = await schedules.get("s")
    assert format_ms(after.next_run_at_ms or 0) == "2026-01-01T00:02:00.000Z"
    assert after.last_task_id is None
    (only,) = await store.list_tasks(TaskFilter(queue="q"))
    assert only.id == submitted.task.id and only.type == "mine"


async def test_a_schedule_this_host_cannot_read_is_logged_once_and_others_fire(
    store: Store, parts: Parts, caplog: pytest.LogCaptureFixture
) -> None:
    clock, schedules, scheduler = parts("2026-01-01T00:00:30Z")
    readable = await schedules.create(body(cron="* * * * *"))
    # As if written by a host whose tz database knows a zone this one does not.
    await store.create_schedule(
        replace(readable, id="elsewhere", timezone="Atlantis/Capital"), clock.now_ms()
    )
    clock.advance(30)
    with caplog.at_level(logging.ERROR, logger="taskgate.scheduler"):
        assert await scheduler.fire_due_once() == 1
        clock.advance(60)
        assert await scheduler.fire_due_once() == 1
    assert caplog.text.count("schedule 'elsewhere' cannot fire on this host") == 1
    assert len(await run_times(store)) == 2


async def test_scheduled_tasks_count_as_submitted(store: Store) -> None:
    clock = FixedClock(parse_rfc3339_ms("2026-01-01T00:00:00.500Z"))
    metrics = Metrics.in_process()
    scheduler = Scheduler(store, Waiters(), clock, 1.0, metrics=metrics)
    await ScheduleService(store, clock).create(body(cron="* * * * * *"))
    clock.advance(2)

    created = await scheduler.fire_due_once()

    scrape = metrics.render([], clock.now_ms()).decode()
    assert created >= 1
    assert f'taskgate_tasks_submitted_total{{queue="q"}} {float(created)}' in scrape
