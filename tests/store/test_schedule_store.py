"""The Store contract for schedules: CRUD, due listing, and firing as a compare-and-set."""

from __future__ import annotations

import asyncio
from dataclasses import replace

import pytest

from app.core.clock import format_ms
from app.core.errors import Conflict, NotFound
from app.core.models import FireOrder, MissedPolicy, Schedule, SubmitOutcome, TaskFilter
from app.service.scheduler import idempotency_key
from app.service.submission import build_new_task
from app.store.base import Store

pytestmark = pytest.mark.anyio

NOW = 1_800_000_000_000
MINUTE = 60_000


def schedule(schedule_id: str = "nightly", **fields: object) -> Schedule:
    base = Schedule(
        id=schedule_id,
        cron="* * * * *",
        timezone="UTC",
        queue="q",
        task_json='{"type": "t", "payload": {"n": 1}, "priority": "normal", "tags": []}',
        missed=MissedPolicy.run_once,
        max_catch_up=100,
        paused=False,
        next_run_at_ms=NOW + MINUTE,
        last_run_at_ms=None,
        last_task_id=None,
        revision=1,
        created_at_ms=NOW,
        updated_at_ms=NOW,
    )
    return replace(base, **fields)  # type: ignore[arg-type]


def fire_order(
    current: Schedule, fire_times: tuple[int, ...], next_run_at_ms: int | None
) -> FireOrder:
    """What the scheduler would send for `current` (as it was read)."""
    assert current.next_run_at_ms is not None
    tasks = tuple(
        build_new_task(
            current.queue,
            {
                "type": "t",
                "payload": {"n": 1},
                "run_at": format_ms(fire_ms),
                "idempotency_key": idempotency_key(current.id, fire_ms),
            },
            None,
            NOW,
        )
        for fire_ms in fire_times
    )
    return FireOrder(
        schedule_id=current.id,
        revision=current.revision,
        expected_next_run_at_ms=current.next_run_at_ms,
        next_run_at_ms=next_run_at_ms,
        fire_times_ms=fire_times,
        tasks=tasks,
    )


async def tasks_in(store: Store, queue: str = "q") -> list[str | None]:
    return [t.idempotency_key for t in await store.list_tasks(TaskFilter(queue=queue))]


async def test_create_then_read_back_what_was_stored(store: Store) -> None:
    created = await store.create_schedule(schedule(), NOW)
    assert created == schedule()
    assert await store.get_schedule("nightly") == created
    assert await store.get_schedule("missing") is None


async def test_a_taken_id_is_a_conflict_and_changes_nothing(store: Store) -> None:
    await store.create_schedule(schedule(), NOW)
    with pytest.raises(Conflict, match="exists already"):
        await store.create_schedule(schedule(cron="0 0 * * *", queue="other"), NOW + 1)
    stored = await store.get_schedule("nightly")
    assert stored is not None and stored.cron == "* * * * *" and stored.queue == "q"


async def test_list_pages_by_id(store: Store) -> None:
    for name in ("c", "a", "b", "d"):
        await store.create_schedule(schedule(name), NOW)
    first = await store.list_schedules(None, 2)
    assert [s.id for s in first] == ["a", "b"]
    rest = await store.list_schedules("b", 10)
    assert [s.id for s in rest] == ["c", "d"]


async def test_update_replaces_settings_and_bumps_the_revision(store: Store) -> None:
    created = await store.create_schedule(schedule(), NOW)
    changed = replace(
        created,
        cron="*/5 * * * *",
        queue="elsewhere",
        missed=MissedPolicy.run_all,
        max_catch_up=7,
        next_run_at_ms=NOW + 5 * MINUTE,
    )
    updated = await store.update_schedule(changed, True, NOW + 1000)
    assert updated == replace(changed, revision=2, updated_at_ms=NOW + 1000)
    with pytest.raises(Conflict, match="changed at the same time"):
        await store.update_schedule(changed, True, NOW + 2000)  # still revision 1
    with pytest.raises(NotFound):
        await store.update_schedule(replace(changed, id="missing"), True, NOW)


async def test_update_without_reschedule_keeps_a_fire_that_moved_next_run_at(
    store: Store,
) -> None:
    created = await store.create_schedule(schedule(), NOW)
    # A fire moves next_run_at on while a PATCH of the template is being prepared.
    (fired,) = await store.fire_schedules(
        [fire_order(created, (NOW + MINUTE,), NOW + 2 * MINUTE)], NOW + MINUTE
    )
    assert fired.fired
    patched = replace(created, task_json='{"type": "u", "payload": null}')
    updated = await store.update_schedule(patched, False, NOW + MINUTE + 1)
    assert updated.next_run_at_ms == NOW + 2 * MINUTE
    assert updated.task_json == patched.task_json
    assert updated.last_run_at_ms == NOW + MINUTE


async def test_delete_needs_the_current_revision(store: Store) -> None:
    created = await store.create_schedule(schedule(), NOW)
    updated = await store.update_schedule(replace(created, paused=True), False, NOW)
    with pytest.raises(Conflict):
        await store.delete_schedule("nightly", created.revision)
    await store.delete_schedule("nightly", updated.revision)
    assert await store.get_schedule("nightly") is None
    with pytest.raises(NotFound):
        await store.delete_schedule("nightly", updated.revision)


async def test_due_lists_only_running_schedules_due_by_now(store: Store) -> None:
    await store.create_schedule(schedule("late", next_run_at_ms=NOW - MINUTE), NOW)
    await store.create_schedule(schedule("now", next_run_at_ms=NOW), NOW)
    await store.create_schedule(schedule("future", next_run_at_ms=NOW + 1), NOW)
    await store.create_schedule(schedule("paused", paused=True, next_run_at_ms=None), NOW)
    due = await store.due_schedules(NOW, 10)
    assert [s.id for s in due] == ["late", "now"]
    assert [s.id for s in await store.due_schedules(NOW, 1)] == ["late"]


async def test_fire_submits_and_moves_on_in_one_transaction(store: Store) -> None:
    created = await store.create_schedule(schedule(), NOW)
    fire_times = (NOW + MINUTE, NOW + 2 * MINUTE)
    (outcome,) = await store.fire_schedules(
        [fire_order(created, fire_times, NOW + 3 * MINUTE)], NOW + 2 * MINUTE
    )
    assert outcome.fired
    results = [r for r in outcome.outcomes if isinstance(r, SubmitOutcome)]
    assert [r.created for r in results] == [True, True]
    assert [r.task.run_at_ms for r in results] == list(fire_times)
    after = await store.get_schedule("nightly")
    assert after is not None
    assert after.next_run_at_ms == NOW + 3 * MINUTE
    assert after.last_run_at_ms == NOW + 2 * MINUTE
    assert after.last_task_id == results[-1].task.id
    assert after.revision == created.revision  # firing is not a change of the settings
    assert sorted(await tasks_in(store)) == [f"schedule:nightly:{ms}" for ms in fire_times]


async def test_a_stale_fire_changes_nothing(store: Store) -> None:
    created = await store.create_schedule(schedule(), NOW)
    order = fire_order(created, (NOW + MINUTE,), NOW + 2 * MINUTE)
    assert [o.fired for o in await store.fire_schedules([order], NOW + MINUTE)] == [True]
    # The same plan again (a process that read the row before the first fire committed).
    (again,) = await store.fire_schedules([order], NOW + MINUTE)
    assert not again.fired and again.outcomes == ()
    # A plan made before a change of the settings (same next_run_at, older revision).
    current = await store.get_schedule("nightly")
    assert current is not None
    await store.update_schedule(current, False, NOW + MINUTE)
    stale = fire_order(current, (NOW + 2 * MINUTE,), NOW + 3 * MINUTE)
    (lost,) = await store.fire_schedules([stale], NOW + 2 * MINUTE)
    assert not lost.fired
    assert await tasks_in(store) == [f"schedule:nightly:{NOW + MINUTE}"]


async def test_fire_orders_of_one_batch_stand_alone(store: Store) -> None:
    first = await store.create_schedule(schedule("a"), NOW)
    second = await store.create_schedule(schedule("b", queue="r"), NOW)
    stale = replace(first, revision=99)
    outcomes = await store.fire_schedules(
        [
            fire_order(stale, (NOW + MINUTE,), NOW + 2 * MINUTE),
            fire_order(second, (NOW + MINUTE,), NOW + 2 * MINUTE),
        ],
        NOW + MINUTE,
    )
    assert [o.fired for o in outcomes] == [False, True]
    assert await tasks_in(store) == []
    assert await tasks_in(store, "r") == [f"schedule:b:{NOW + MINUTE}"]


async def test_two_processes_firing_the_same_time_submit_once(
    store: Store, store_twin: Store
) -> None:
    created = await store.create_schedule(schedule(), NOW)
    order = fire_order(created, (NOW + MINUTE,), NOW + 2 * MINUTE)
    # Each store has its own writer thread and connection: the two transactions race
    # for the file's write lock exactly as two server processes do.
    results = await asyncio.gather(
        store.fire_schedules([order], NOW + MINUTE),
        store_twin.fire_schedules([order], NOW + MINUTE),
    )
    assert sorted(outcome.fired for (outcome,) in results) == [False, True]
    assert await tasks_in(store) == [f"schedule:nightly:{NOW + MINUTE}"]


async def test_the_idempotency_key_is_the_second_guard(store: Store) -> None:
    created = await store.create_schedule(schedule(), NOW)
    (first,) = await store.fire_schedules(
        [fire_order(created, (NOW + MINUTE,), NOW + 2 * MINUTE)], NOW + MINUTE
    )
    # Were a fire time ever planned twice past the compare-and-set (here: an order made
    # from the row as it is now, for the time that already fired), the key dedups it.
    current = await store.get_schedule("nightly")
    assert current is not None
    (second,) = await store.fire_schedules(
        [fire_order(current, (NOW + MINUTE,), NOW + 3 * MINUTE)], NOW + MINUTE
    )
    assert second.fired
    (replayed,) = second.outcomes
    (original,) = first.outcomes
    assert isinstance(replayed, SubmitOutcome) and isinstance(original, SubmitOutcome)
    assert not replayed.created and replayed.task.id == original.task.id
    assert len(await tasks_in(store)) == 1
