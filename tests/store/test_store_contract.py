"""The Store contract: every backend must pass these, against a real database."""

from __future__ import annotations

import asyncio
from dataclasses import replace

import pytest

from app.core.errors import Conflict, IdempotencyMismatch, LeaseLost, NotFound
from app.core.models import (
    ErrorReport,
    FailOrder,
    NewTask,
    Priority,
    QueueOverrides,
    RetryPatch,
    RetryPolicy,
    SubmitOutcome,
    Task,
    TaskFilter,
    TaskState,
)
from app.service.submission import new_task_id
from app.store.base import Store

pytestmark = pytest.mark.anyio

NOW = 1_800_000_000_000
BOOM = ErrorReport(type="RuntimeError", message="boom")


def new(queue: str = "q", **fields: object) -> NewTask:
    base = NewTask(
        id=new_task_id(),
        queue=queue,
        type="t",
        payload_json='{"n": 1}',
        priority=Priority.normal,
        run_at_ms=NOW,
        max_attempts=None,
        retry=None,
        lease_seconds=None,
        idempotency_key=None,
        request_hash="h",
    )
    return replace(base, **fields)  # type: ignore[arg-type]


async def submit_one(store: Store, task: NewTask, now: int = NOW) -> SubmitOutcome:
    (outcome,) = await store.submit([task], now)
    assert isinstance(outcome, SubmitOutcome), outcome
    return outcome


async def test_submit_fills_queue_defaults_and_reads_back(store: Store) -> None:
    outcome = await submit_one(store, new(tags=("a", "b")))
    assert outcome.created
    task = await store.get_task(outcome.task.id)
    assert task is not None
    assert task.state is TaskState.queued
    assert task.max_attempts == 3 and task.lease_seconds == 30
    assert task.payload_json == '{"n": 1}' and task.tags == ("a", "b")


async def test_submit_answers_exactly_what_it_stored(store: Store) -> None:
    await store.configure_queue(
        "tuned", QueueOverrides(max_attempts=7), frozenset({"max_attempts"}), NOW
    )
    batch = [
        new(),
        new(queue="tuned", payload_json='{"deep": [1, 2.5, "\\u00e9", null, {"k": true}]}'),
        new(priority=Priority.high, run_at_ms=NOW + 5_000, tags=("x", "y")),
        new(max_attempts=9, lease_seconds=120, retry=RetryPatch(factor=3.0)),
        new(idempotency_key="k-1"),
        new(payload_json="null", type="other.type"),
    ]

    outcomes = await store.submit(batch, NOW)

    for sent, outcome in zip(batch, outcomes, strict=True):
        assert isinstance(outcome, SubmitOutcome) and outcome.created
        assert outcome.task.id == sent.id
        assert outcome.task == await store.get_task(sent.id)


async def test_claim_orders_by_priority_then_due_time(store: Store) -> None:
    low = await submit_one(store, new(priority=Priority.low, run_at_ms=NOW - 3000))
    normal_late = await submit_one(store, new(run_at_ms=NOW - 1000))
    normal_early = await submit_one(store, new(run_at_ms=NOW - 2000))
    high = await submit_one(store, new(priority=Priority.high, run_at_ms=NOW))
    claimed = await store.claim("q", "w", 10, None, None, NOW)
    assert [t.id for t in claimed] == [
        high.task.id,
        normal_early.task.id,
        normal_late.task.id,
        low.task.id,
    ]
    assert all(t.state is TaskState.running and t.attempts == 1 for t in claimed)
    assert len({t.lease_token for t in claimed}) == 4


async def test_claim_skips_future_tasks_other_types_and_paused_queues(store: Store) -> None:
    await submit_one(store, new(run_at_ms=NOW + 60_000))
    await submit_one(store, new(type="other"))
    assert await store.claim("q", "w", 10, None, ["t"], NOW) == []
    await store.set_paused("q", True, "maintenance", NOW)
    assert await store.claim("q", "w", 10, None, None, NOW) == []
    info = await store.set_paused("q", False, None, NOW)
    assert not info.paused
    (claimed,) = await store.claim("q", "w", 10, None, None, NOW)
    assert claimed.type == "other"
    assert await store.next_due_ms("q") == NOW + 60_000


async def test_has_claimable_reads_what_a_claim_would_get(store: Store) -> None:
    assert not await store.has_claimable("q", None, NOW)
    await submit_one(store, new(run_at_ms=NOW + 1000))
    assert not await store.has_claimable("q", None, NOW)
    assert await store.has_claimable("q", None, NOW + 1000)
    assert not await store.has_claimable("q", ["other"], NOW + 1000)
    assert await store.has_claimable("q", ["other", "t"], NOW + 1000)
    await store.set_paused("q", True, None, NOW)
    assert not await store.has_claimable("q", None, NOW + 1000)


async def test_claim_respects_max_tasks_and_lease_override(store: Store) -> None:
    for _ in range(5):
        await submit_one(store, new())
    claimed = await store.claim("q", "w", 2, 5, None, NOW)
    assert len(claimed) == 2
    assert all(t.lease_expires_at_ms == NOW + 5000 for t in claimed)
    # The claim's lease length is for this lease only; the task keeps its own default.
    first = claimed[0]
    assert first.lease_seconds == 30 and first.lease_token is not None
    beat = await store.heartbeat(first.id, first.lease_token, None, NOW + 1000)
    assert beat.lease_expires_at_ms == NOW + 31_000


async def test_idempotent_submit_returns_original_or_conflicts(store: Store) -> None:
    first = await submit_one(store, new(idempotency_key="k", request_hash="h1"))
    again = await submit_one(store, new(idempotency_key="k", request_hash="h1"))
    assert not again.created and again.task.id == first.task.id
    (mismatch,) = await store.submit([new(idempotency_key="k", request_hash="h2")], NOW)
    assert isinstance(mismatch, IdempotencyMismatch)
    other_queue = await submit_one(store, new(queue="q2", idempotency_key="k", request_hash="h2"))
    assert other_queue.created
    after_window = await submit_one(
        store, new(idempotency_key="k", request_hash="h1"), now=NOW + 61_000
    )
    assert after_window.created and after_window.task.id != first.task.id


async def test_batch_rejects_items_alone(store: Store) -> None:
    await submit_one(store, new(idempotency_key="k", request_hash="h1"))
    outcomes = await store.submit(
        [new(), new(idempotency_key="k", request_hash="other"), new()], NOW
    )
    assert isinstance(outcomes[0], SubmitOutcome) and isinstance(outcomes[2], SubmitOutcome)
    assert isinstance(outcomes[1], IdempotencyMismatch)
    assert len(await store.list_tasks(TaskFilter(queue="q"))) == 3


async def test_stale_lease_token_is_refused_after_reclaim(store: Store) -> None:
    task = (await submit_one(store, new())).task
    (first,) = await store.claim("q", "w1", 1, 1, None, NOW)
    expired = await store.expire_leases(NOW + 1000, 100)
    assert [t.state for t in expired] == [TaskState.queued]
    later = expired[0].run_at_ms
    (second,) = await store.claim("q", "w2", 1, None, None, later)
    assert second.id == task.id and second.attempts == 2
    assert first.lease_token is not None and second.lease_token is not None
    for call in (
        store.heartbeat(task.id, first.lease_token, None, later),
        store.complete(task.id, first.lease_token, "1", later),
        store.fail(task.id, first.lease_token, BOOM, True, None, later),
    ):
        with pytest.raises(LeaseLost):
            await call
    done = await store.complete(task.id, second.lease_token, '{"ok": true}', later)
    assert done.state is TaskState.succeeded and done.result_json == '{"ok": true}'
    with pytest.raises(LeaseLost):
        await store.complete(task.id, second.lease_token, "2", later)
    with pytest.raises(NotFound):
        await store.heartbeat("nope", "lt_x", None, later)


async def test_heartbeat_extends_the_lease(store: Store) -> None:
    await submit_one(store, new())
    (claimed,) = await store.claim("q", "w", 1, 10, None, NOW)
    assert claimed.lease_token is not None
    beat = await store.heartbeat(claimed.id, claimed.lease_token, 60, NOW + 5000)
    assert beat.lease_expires_at_ms == NOW + 65_000
    assert await store.expire_leases(NOW + 20_000, 100) == []


async def test_fail_retries_with_backoff_then_goes_dead(store: Store) -> None:
    task = (await submit_one(store, new(max_attempts=2))).task
    (claimed,) = await store.claim("q", "w", 1, None, None, NOW)
    assert claimed.lease_token is not None
    retried = await store.fail(task.id, claimed.lease_token, BOOM, True, None, NOW)
    assert retried.state is TaskState.queued
    assert retried.run_at_ms == NOW + 1000  # no jitter: initial delay
    (again,) = await store.claim("q", "w", 1, None, None, NOW + 1000)
    assert again.lease_token is not None
    dead = await store.fail(task.id, again.lease_token, BOOM, True, None, NOW + 1000)
    assert dead.state is TaskState.dead and dead.attempts == 2
    assert dead.finished_at_ms == NOW + 1000
    assert '"boom"' in dead.errors_json


async def test_fail_without_retry_or_with_retry_after(store: Store) -> None:
    a = (await submit_one(store, new(retry=RetryPatch(10, 2, 100, False)))).task
    b = (await submit_one(store, new())).task
    claimed = {t.id: t for t in await store.claim("q", "w", 2, None, None, NOW)}
    token_a, token_b = claimed[a.id].lease_token, claimed[b.id].lease_token
    assert token_a and token_b
    later = await store.fail(a.id, token_a, BOOM, True, 7000, NOW)
    assert later.state is TaskState.queued and later.run_at_ms == NOW + 7000
    dead = await store.fail(b.id, token_b, BOOM, False, None, NOW)
    assert dead.state is TaskState.dead


async def test_expired_lease_counts_the_attempt_and_can_go_dead(store: Store) -> None:
    task = (await submit_one(store, new(max_attempts=1))).task
    await store.claim("q", "w", 1, 1, None, NOW)
    (expired,) = await store.expire_leases(NOW + 1000, 100)
    assert expired.id == task.id and expired.state is TaskState.dead
    assert "LeaseExpired" in expired.errors_json


async def test_cancel_queued_running_and_finished(store: Store) -> None:
    queued = (await submit_one(store, new())).task
    cancelled = await store.cancel(queued.id, NOW)
    assert cancelled.state is TaskState.cancelled
    with pytest.raises(Conflict):
        await store.cancel(queued.id, NOW)
    running = (await submit_one(store, new())).task
    (claimed,) = await store.claim("q", "w", 1, None, None, NOW)
    requested = await store.cancel(running.id, NOW)
    assert requested.state is TaskState.running and requested.cancel_requested
    assert await store.cancel(running.id, NOW + 1000) == requested
    assert claimed.lease_token is not None
    beat = await store.heartbeat(running.id, claimed.lease_token, None, NOW)
    assert beat.cancel_requested
    ended = await store.fail(running.id, claimed.lease_token, BOOM, True, None, NOW)
    assert ended.state is TaskState.cancelled
    with pytest.raises(NotFound):
        await store.cancel("missing", NOW)


async def test_dead_letters_list_redrive_and_purge(store: Store) -> None:
    ids = []
    for _ in range(3):
        task = (await submit_one(store, new(max_attempts=1))).task
        (claimed,) = await store.claim("q", "w", 1, None, None, NOW)
        assert claimed.lease_token is not None
        await store.fail(task.id, claimed.lease_token, BOOM, False, None, NOW)
        ids.append(task.id)
    dead = await store.list_dead("q", None, 10)
    assert sorted(t.id for t in dead) == sorted(ids)
    assert await store.redrive("q", [ids[0]], NOW) == 1
    redriven = await store.get_task(ids[0])
    assert redriven is not None and redriven.state is TaskState.queued and redriven.attempts == 0
    assert await store.purge_dead("q") == 2
    assert await store.list_dead("q", None, 10) == []
    assert await store.redrive("q", None, NOW) == 0


async def test_queue_stats_and_configuration(store: Store) -> None:
    await submit_one(store, new(run_at_ms=NOW - 5000))
    await submit_one(store, new(run_at_ms=NOW + 5000))
    info = await store.get_queue("q", NOW)
    assert info is not None
    assert (info.counts.due, info.counts.scheduled, info.counts.queued) == (1, 1, 2)
    assert info.oldest_due_age_ms == 5000
    configured = await store.configure_queue(
        "q", QueueOverrides(max_attempts=9), frozenset({"max_attempts"}), NOW
    )
    assert configured.config.max_attempts == 9 and configured.config.lease_seconds == 30
    reset = await store.configure_queue("q", QueueOverrides(), frozenset({"max_attempts"}), NOW)
    assert reset.config.max_attempts == 3
    assert (await submit_one(store, new())).task.max_attempts == 3
    assert [q.name for q in await store.list_queues(NOW)] == ["q"]
    assert await store.get_queue("unknown", NOW) is None


async def test_partial_retry_policies_fill_in_from_the_queue(store: Store) -> None:
    await store.configure_queue(
        "q", QueueOverrides(retry=RetryPatch(factor=3)), frozenset({"retry"}), NOW
    )
    info = await store.get_queue("q", NOW)
    assert info is not None and info.config.retry == RetryPolicy(1, 3, 60, False)
    task = (await submit_one(store, new(retry=RetryPatch(initial_delay_seconds=5)))).task
    assert task.retry == RetryPolicy(5, 3, 60, False)


async def test_list_filters_and_pages_newest_first(store: Store) -> None:
    ids = [(await submit_one(store, new(tags=("x",) if i % 2 else ()))).task.id for i in range(5)]
    page = await store.list_tasks(TaskFilter(limit=2))
    assert [t.id for t in page] == ids[::-1][:2]
    rest = await store.list_tasks(TaskFilter(before_id=page[-1].id, limit=10))
    assert [t.id for t in rest] == ids[::-1][2:]
    tagged = await store.list_tasks(TaskFilter(tag="x"))
    assert sorted(t.id for t in tagged) == sorted([ids[1], ids[3]])
    assert await store.list_tasks(TaskFilter(state=TaskState.dead)) == []
    by_queue_state = await store.list_tasks(TaskFilter(queue="q", state=TaskState.queued, limit=2))
    assert [t.id for t in by_queue_state] == ids[::-1][:2]
    assert await store.list_tasks(TaskFilter(queue="other", state=TaskState.queued)) == []


async def test_workers_are_registered_with_their_leases(store: Store) -> None:
    await submit_one(store, new())
    (claimed,) = await store.claim("q", "w1", 1, None, None, NOW)
    await store.claim("other", "w1", 1, None, None, NOW + 10)
    (worker,) = await store.list_workers(10)
    assert worker.id == "w1" and set(worker.queues) == {"q", "other"}
    assert [lease.task_id for lease in worker.leases] == [claimed.id]
    assert worker.last_seen_at_ms == NOW + 10


async def test_retention_deletes_only_old_finished_tasks(store: Store) -> None:
    old = (await submit_one(store, new())).task
    await store.cancel(old.id, NOW)
    fresh = (await submit_one(store, new())).task
    await store.cancel(fresh.id, NOW + 3_500_000)
    waiting = (await submit_one(store, new())).task
    deleted = await store.delete_expired(NOW + 3_600_001, 86_400_000, 100)
    assert deleted == 1
    assert await store.get_task(old.id) is None
    assert await store.get_task(fresh.id) is not None
    assert await store.get_task(waiting.id) is not None


async def test_concurrent_writes_share_commits_and_fail_alone(store: Store) -> None:
    await submit_one(store, new(idempotency_key="k", request_hash="h1"))
    batches = [
        [new(idempotency_key="k", request_hash="bad")] if i == 5 else [new()] for i in range(50)
    ]
    outcomes = await asyncio.gather(*(store.submit(batch, NOW) for batch in batches))
    failed = [i for i, (o,) in enumerate(outcomes) if not isinstance(o, SubmitOutcome)]
    assert failed == [5]
    assert len(await store.list_tasks(TaskFilter(limit=1000))) == 50


async def test_change_marker_moves_on_commit(store: Store) -> None:
    before = store.change_marker()
    await submit_one(store, new())
    # It may move a moment after the commit (PostgreSQL: when the notification arrives).
    async with asyncio.timeout(10):
        while store.change_marker() == before:
            await asyncio.sleep(0.01)


async def test_complete_many_and_fail_many_decide_each_item_alone(store: Store) -> None:
    for _ in range(4):
        await submit_one(store, new())
    a, b, c, d = await store.claim("q", "w", 4, None, None, NOW)
    assert a.lease_token and b.lease_token and c.lease_token and d.lease_token
    done = await store.complete_many(
        [(a.id, a.lease_token, '{"ok": 1}'), (b.id, "lt_stale", "null"), ("nope", "x", "null")],
        NOW + 1,
    )
    assert isinstance(done[0], Task) and done[0].state is TaskState.succeeded
    assert isinstance(done[1], LeaseLost) and isinstance(done[2], NotFound)
    failed = await store.fail_many(
        [FailOrder(c.id, c.lease_token, BOOM), FailOrder(d.id, d.lease_token, BOOM, retry=False)],
        NOW + 2,
    )
    assert [t.state for t in failed if isinstance(t, Task)] == [TaskState.queued, TaskState.dead]
    still = await store.get_task(b.id)
    assert still is not None and still.state is TaskState.running


async def test_complete_many_takes_a_task_once_and_in_item_order(store: Store) -> None:
    for _ in range(2):
        await submit_one(store, new())
    a, b = await store.claim("q", "w", 2, None, None, NOW)
    assert a.lease_token and b.lease_token

    done = await store.complete_many(
        [
            (a.id, a.lease_token, '{"first": true}'),
            (a.id, a.lease_token, '{"second": true}'),
            (b.id, "lt_stale", "null"),
            (b.id, b.lease_token, "[1, 2]"),
        ],
        NOW + 1,
    )

    assert isinstance(done[0], Task) and done[0].result_json == '{"first": true}'
    assert isinstance(done[1], Conflict | LeaseLost)
    assert isinstance(done[2], LeaseLost)
    assert isinstance(done[3], Task) and done[3].result_json == "[1, 2]"
    for task in (done[0], done[3]):
        assert task == await store.get_task(task.id)


# SQLite only: the order of operations in one group commit. PostgreSQL runs the three
# side by side on pooled connections, in no set order, and remembers nothing between them.
@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
async def test_queue_settings_changed_between_submits_apply_to_the_next(store: Store) -> None:
    """The writer remembers queue settings within a transaction only: a configure queued
    between two submits (one group commit for all three) is seen by the second submit."""
    before, _, after = await asyncio.gather(
        store.submit([new(queue="cfg")], NOW),
        store.configure_queue(
            "cfg", QueueOverrides(max_attempts=9), frozenset({"max_attempts"}), NOW
        ),
        store.submit([new(queue="cfg")], NOW),
    )
    assert isinstance(before[0], SubmitOutcome) and isinstance(after[0], SubmitOutcome)
    assert (before[0].task.max_attempts, after[0].task.max_attempts) == (3, 9)
