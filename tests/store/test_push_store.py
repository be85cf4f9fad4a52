"""The Store's push-delivery side: delivery config, limited claims, release, worker info."""

from __future__ import annotations

import pytest

from app.core.errors import Conflict, LeaseLost
from app.core.models import Delivery, DeliveryConfig, QueueOverrides, TaskState, Webhook
from app.store.base import Store

from .test_store_contract import NOW, new, submit_one

pytestmark = pytest.mark.anyio

SECRET = "whsec_" + "A" * 32


def push(**limits: object) -> DeliveryConfig:
    webhook = Webhook(url="https://hooks.example/x", signing_secrets=(SECRET,), **limits)  # type: ignore[arg-type]
    return DeliveryConfig(mode=Delivery.push, webhook=webhook)


async def make_push_queue(store: Store, name: str = "q", **limits: object) -> None:
    await store.configure_queue(name, QueueOverrides(), frozenset(), NOW, push(**limits))


async def test_delivery_config_round_trips_and_lists_running_push_queues(store: Store) -> None:
    await make_push_queue(store, "hooks", max_concurrency=3, max_dispatches_per_second=2.5)
    await store.configure_queue("plain", QueueOverrides(), frozenset(), NOW)
    info = await store.get_queue("hooks", NOW)
    assert info is not None and info.delivery == push(
        max_concurrency=3, max_dispatches_per_second=2.5
    )
    plain = await store.get_queue("plain", NOW)
    assert plain is not None and plain.delivery == DeliveryConfig()
    assert [q.name for q in await store.list_push_queues()] == ["hooks"]
    await store.set_paused("hooks", True, "maintenance", NOW)
    assert await store.list_push_queues() == []


async def test_other_config_changes_keep_the_delivery(store: Store) -> None:
    await make_push_queue(store)
    await store.configure_queue(
        "q", QueueOverrides(max_attempts=9), frozenset({"max_attempts"}), NOW
    )
    info = await store.get_queue("q", NOW)
    assert info is not None and info.delivery.mode is Delivery.push
    assert info.config.max_attempts == 9


async def test_pull_claims_on_a_push_queue_are_refused_and_change_nothing(store: Store) -> None:
    await make_push_queue(store)
    task = (await submit_one(store, new())).task
    with pytest.raises(Conflict):
        await store.claim("q", "w", 1, None, None, NOW, worker_info={"host": "h"})
    assert await store.list_workers(10) == []
    again = await store.get_task(task.id)
    assert again is not None and again.state is TaskState.queued and again.attempts == 0


async def test_push_claims_stop_at_max_concurrency_counting_every_holder(store: Store) -> None:
    await make_push_queue(store, max_concurrency=3)
    for _ in range(5):
        await submit_one(store, new())
    first = await store.claim_push("q", "node-a", 2, 60, NOW)
    second = await store.claim_push("q", "node-b", 5, 60, NOW)
    assert len(first.tasks) == 2 and not first.limited
    assert len(second.tasks) == 1 and second.limited
    third = await store.claim_push("q", "node-a", 5, 60, NOW)
    assert third.tasks == [] and third.limited
    done = first.tasks[0]
    assert done.lease_token is not None
    await store.complete(done.id, done.lease_token, "null", NOW)
    assert len((await store.claim_push("q", "node-b", 5, 60, NOW)).tasks) == 1


async def test_push_claims_follow_the_dispatch_rate(store: Store) -> None:
    await make_push_queue(store, max_concurrency=100, max_dispatches_per_second=4)
    for _ in range(10):
        await submit_one(store, new())
    burst = await store.claim_push("q", "n", 10, 60, NOW)
    assert len(burst.tasks) == 4 and burst.limited
    assert (await store.claim_push("q", "n", 10, 60, NOW + 100)).tasks == []
    assert len((await store.claim_push("q", "n", 10, 60, NOW + 500)).tasks) == 2
    # The bucket never holds more than one second's worth.
    assert len((await store.claim_push("q", "n", 10, 60, NOW + 60_000)).tasks) == 4


async def test_push_claims_ignore_pull_and_paused_queues(store: Store) -> None:
    await submit_one(store, new(queue="pull"))
    assert (await store.claim_push("pull", "n", 5, 60, NOW)).tasks == []
    await make_push_queue(store)
    await submit_one(store, new())
    await store.set_paused("q", True, None, NOW)
    assert (await store.claim_push("q", "n", 5, 60, NOW)).tasks == []


async def test_push_claims_lease_for_the_given_time(store: Store) -> None:
    await make_push_queue(store)
    await submit_one(store, new())
    (task,) = (await store.claim_push("q", "dispatcher", 1, 45, NOW)).tasks
    assert task.lease_expires_at_ms == NOW + 45_000 and task.worker_id == "dispatcher"


async def test_release_hands_the_task_back_without_using_an_attempt(store: Store) -> None:
    await submit_one(store, new())
    (task,) = await store.claim("q", "w", 1, None, None, NOW)
    assert task.lease_token is not None and task.attempts == 1
    released = await store.release(task.id, task.lease_token, NOW + 5)
    assert released.state is TaskState.queued and released.attempts == 0
    assert released.lease_token is None and released.run_at_ms == NOW + 5
    with pytest.raises(LeaseLost):
        await store.release(task.id, task.lease_token, NOW + 6)


async def test_release_of_a_task_asked_to_cancel_cancels_it(store: Store) -> None:
    await submit_one(store, new())
    (task,) = await store.claim("q", "w", 1, None, None, NOW)
    assert task.lease_token is not None
    await store.cancel(task.id, NOW)
    released = await store.release(task.id, task.lease_token, NOW)
    assert released.state is TaskState.cancelled


async def test_worker_info_from_claims_is_kept(store: Store) -> None:
    info = {"host": "box", "pid": 42, "version": "1.0", "sdk": "taskgate-python"}
    await store.claim("q", "w1", 1, None, None, NOW, info)
    await store.claim("q", "w1", 1, None, None, NOW + 1)
    await store.claim("q", "w2", 1, None, None, NOW + 2)
    workers = {w.id: w for w in await store.list_workers(10)}
    assert workers["w1"].info == info
    assert workers["w2"].info is None
