"""Task events: every state change is one event, in commit order, kept until retention;
a reader resuming after dropped events is told so."""

from __future__ import annotations

import pytest

from app.core.models import ErrorReport, TaskState
from app.store.base import Store

from .test_store_contract import NOW, new, submit_one

pytestmark = pytest.mark.anyio

BOOM = ErrorReport(type="RuntimeError", message="boom")


async def test_each_state_change_is_one_event_in_order(store: Store) -> None:
    start = await store.events_after(None, None, 0)
    assert start.events == [] and not start.gap

    task = (await submit_one(store, new())).task
    (leased,) = await store.claim("q", "w", 1, None, None, NOW + 1)
    assert leased.lease_token
    await store.heartbeat(task.id, leased.lease_token, None, NOW + 2)  # no state change
    await store.fail(task.id, leased.lease_token, BOOM, True, 0, NOW + 3)
    (again,) = await store.claim("q", "w", 1, None, None, NOW + 10_000)
    assert again.lease_token
    await store.complete(task.id, again.lease_token, "null", NOW + 10_001)
    other = (await submit_one(store, new(queue="other"))).task
    await store.cancel(other.id, NOW + 10_002)

    page = await store.events_after(start.last_id, None, 100)

    assert [(e.task_id, e.state, e.attempts) for e in page.events] == [
        (task.id, TaskState.queued, 0),
        (task.id, TaskState.running, 1),
        (task.id, TaskState.queued, 1),
        (task.id, TaskState.running, 2),
        (task.id, TaskState.succeeded, 2),
        (other.id, TaskState.queued, 0),
        (other.id, TaskState.cancelled, 0),
    ]
    ids = [e.id for e in page.events]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    assert page.last_id == ids[-1] and not page.gap
    assert [e.at_ms for e in page.events[:2]] == [NOW, NOW + 1]

    on_other = await store.events_after(start.last_id, "other", 100)
    assert [e.state for e in on_other.events] == [TaskState.queued, TaskState.cancelled]
    resumed = await store.events_after(ids[3], None, 2)
    assert [e.id for e in resumed.events] == ids[4:6]


async def test_a_batch_submit_makes_one_event_per_task(store: Store) -> None:
    start = await store.events_after(None, None, 0)
    outcomes = await store.submit([new() for _ in range(50)], NOW)

    page = await store.events_after(start.last_id, None, 100)

    assert [e.task_id for e in page.events] == [o.task.id for o in outcomes]  # type: ignore[union-attr]


async def test_retention_drops_old_events_and_readers_behind_them_see_a_gap(
    store: Store,
) -> None:
    first = (await submit_one(store, new(), now=NOW)).task
    await submit_one(store, new(), now=NOW + 60_000)
    page = await store.events_after(0, None, 10)
    first_id, second_id = (e.id for e in page.events)
    assert page.events[0].task_id == first.id

    assert await store.delete_events_before(NOW + 1, 100) == 1

    behind = await store.events_after(0, None, 10)
    assert behind.gap and [e.id for e in behind.events] == [second_id]
    just_before = await store.events_after(first_id, None, 10)
    assert not just_before.gap and [e.id for e in just_before.events] == [second_id]
    # The newest id is remembered even once its event is gone.
    assert await store.delete_events_before(NOW + 120_000, 100) == 1
    empty = await store.events_after(second_id, None, 10)
    assert empty.events == [] and empty.last_id == second_id and not empty.gap
