"""Task use-cases: submit, read, cancel, claim (long-poll), heartbeat, complete, fail."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from app.core.clock import Clock
from app.core.errors import NotFound, TaskgateError
from app.core.models import ErrorReport, FailOrder, SubmitOutcome, Task, TaskFilter
from app.metrics.instruments import Metrics
from app.service.submission import build_new_task
from app.service.submit_batcher import SubmitBatcher
from app.service.waiters import Subscription, Waiters, queue_key, task_key
from app.store.base import Store


@dataclass(frozen=True, slots=True)
class TaskLimits:
    """Bounds the service enforces whatever the request asks for."""

    long_poll_max_s: float = 25.0


class TaskService:
    """The task lifecycle over a Store, with in-process wake-ups; counts what happens."""

    def __init__(
        self, store: Store, waiters: Waiters, clock: Clock, limits: TaskLimits, metrics: Metrics
    ) -> None:
        self._store = store
        self._waiters = waiters
        self._clock = clock
        self._limits = limits
        self._metrics = metrics
        self._batcher = SubmitBatcher(store, metrics)

    # -- producers ------------------------------------------------------------------

    async def submit(
        self, queue: str, body: Mapping[str, Any], header_key: str | None
    ) -> SubmitOutcome:
        """Create one task (or return the original on an idempotent replay).

        Raises:
            InvalidInput, IdempotencyMismatch, StoreError.
        """
        now_ms = self._clock.now_ms()
        outcome = await self._batcher.submit(
            build_new_task(queue, body, header_key, now_ms), now_ms
        )
        if isinstance(outcome, TaskgateError):
            raise outcome
        if outcome.created:
            self._waiters.notify(queue_key(queue), count=1)  # counted by the batcher
        return outcome

    async def submit_many(
        self,
        queue: str,
        bodies: Sequence[Mapping[str, Any]],
        header_key: str | None = None,
        *,
        field_prefixes: Sequence[str] | None = None,
    ) -> list[SubmitOutcome | TaskgateError]:
        """Create tasks each on its own; one outcome per body, one commit for all.

        `field_prefixes` names each body in error messages (default `body.tasks[i]`).
        """
        now_ms = self._clock.now_ms()
        prepared: list[Any] = []
        for index, body in enumerate(bodies):
            prefix = field_prefixes[index] if field_prefixes else f"body.tasks[{index}]"
            try:
                prepared.append(build_new_task(queue, body, header_key, now_ms, prefix))
            except TaskgateError as exc:
                prepared.append(exc)
        new_tasks = [item for item in prepared if not isinstance(item, TaskgateError)]
        stored = iter(await self._store.submit(new_tasks, now_ms) if new_tasks else [])
        outcomes = [item if isinstance(item, TaskgateError) else next(stored) for item in prepared]
        created = sum(1 for o in outcomes if isinstance(o, SubmitOutcome) and o.created)
        if created:
            self._waiters.notify(queue_key(queue), count=created)
            self._metrics.tasks_submitted(queue, created)
        return outcomes

    async def get(self, task_id: str, wait_s: float = 0.0) -> Task:
        """The task; with `wait_s`, waits until it finishes or the wait runs out.

        Raises:
            NotFound: no such task.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + min(wait_s, self._limits.long_poll_max_s)
        while True:
            with self._waiters.subscribe(task_key(task_id)) as subscription:
                task = await self._store.get_task(task_id)
                if task is None:
                    raise NotFound(f"task {task_id!r} does not exist")
                remaining = deadline - loop.time()
                if task.is_terminal or remaining <= 0 or self._waiters.closing:
                    return task
                await self._waiters.wait(subscription, remaining)

    async def list_page(self, task_filter: TaskFilter) -> tuple[list[Task], str | None]:
        """A page of tasks and the cursor of the next page (None on the last)."""
        page = await self._store.list_tasks(
            TaskFilter(
                queue=task_filter.queue,
                state=task_filter.state,
                type=task_filter.type,
                tag=task_filter.tag,
                before_id=task_filter.before_id,
                limit=task_filter.limit + 1,
            )
        )
        if len(page) > task_filter.limit:
            page = page[: task_filter.limit]
            return page, page[-1].id
        return page, None

    async def cancel(self, task_id: str) -> Task:
        """Cancel a queued task at once; ask a running task's worker to stop.

        Raises:
            NotFound, Conflict (already finished).
        """
        task = await self._store.cancel(task_id, self._clock.now_ms())
        self._waiters.notify(task_key(task_id))
        self._metrics.task_cancel_requested(task)
        return task

    # -- workers --------------------------------------------------------------------

    async def claim(
        self,
        queue: str,
        worker_id: str,
        max_tasks: int,
        wait_s: float,
        lease_seconds: int | None,
        types: Sequence[str] | None,
        worker_info: dict[str, object] | None = None,
        client_gone: Callable[[], Awaitable[bool]] | None = None,
    ) -> list[Task]:
        """Lease due tasks, long-polling up to `wait_s` (capped) when none is due.

        `client_gone` is asked after every wait: a claimer that hung up (a worker that
        stopped) must not be handed tasks it will never see, which would then wait for
        their lease to expire.

        Raises:
            Conflict: the queue delivers by push.
        """
        loop = asyncio.get_running_loop()
        started = loop.time()
        deadline = started + min(wait_s, self._limits.long_poll_max_s)
        tasks = await self._claim_until(
            queue, worker_id, max_tasks, lease_seconds, types, worker_info, client_gone, deadline
        )
        self._metrics.claim_returned(queue, len(tasks), loop.time() - started)
        return tasks

    async def _claim_until(
        self,
        queue: str,
        worker_id: str,
        max_tasks: int,
        lease_seconds: int | None,
        types: Sequence[str] | None,
        worker_info: dict[str, object] | None,
        client_gone: Callable[[], Awaitable[bool]] | None,
        deadline: float,
    ) -> list[Task]:
        """Claim, and sleep while nothing is claimable, until tasks come or the deadline."""
        while True:
            # A claim for some types only cannot tell whether a new task is one of them,
            # so it is woken by every submit rather than counted as a taker.
            with self._waiters.subscribe(queue_key(queue), every=bool(types)) as subscription:
                tasks = await self._store.claim(
                    queue,
                    worker_id,
                    max_tasks,
                    lease_seconds,
                    types,
                    self._clock.now_ms(),
                    worker_info,
                )
                worker_info = None  # stored once per request
                if tasks or self._waiters.closing:
                    return tasks
                try:
                    if not await self._sleep_until_claimable(queue, types, deadline, subscription):
                        return []
                    gone = client_gone is not None and await client_gone()
                except asyncio.CancelledError:
                    self._pass_on(subscription)
                    raise
                if gone:
                    self._pass_on(subscription)
                    return []

    def _pass_on(self, subscription: Subscription) -> None:
        """A claim woken to take a new task leaves without claiming: wake another."""
        if subscription.by_key:
            self._waiters.notify(subscription.key, count=1)

    async def _sleep_until_claimable(
        self,
        queue: str,
        types: Sequence[str] | None,
        deadline: float,
        subscription: Subscription,
    ) -> bool:
        """Sleep until a task may be claimable; False once the deadline has passed.

        Wakes on a notify of the queue (claim again), at the next due time, or when another
        process committed something — then only if a read shows a claimable task, so idle
        waiters (and waiters on a paused queue, or for other types) cost a read, not a write.
        """
        loop = asyncio.get_running_loop()
        while True:
            remaining = deadline - loop.time()
            if remaining <= 0 or self._waiters.closing:
                return False
            next_due_ms = await self._store.next_due_ms(queue)
            now_ms = self._clock.now_ms()
            timeout = remaining
            if next_due_ms is not None and next_due_ms > now_ms:
                timeout = min(timeout, (next_due_ms - now_ms) / 1000)
            woken = await self._waiters.wait(subscription, timeout)
            if not woken or subscription.by_key or self._waiters.closing:
                return True
            self._waiters.rearm(subscription)
            if await self._store.has_claimable(queue, types, self._clock.now_ms()):
                return True

    async def heartbeat(self, task_id: str, lease_token: str, lease_seconds: int | None) -> Task:
        """Extend the lease.

        Raises:
            NotFound, LeaseLost.
        """
        return await self._store.heartbeat(
            task_id, lease_token, lease_seconds, self._clock.now_ms()
        )

    async def complete(self, task_id: str, lease_token: str, result_json: str) -> Task:
        """Record the result.

        Raises:
            NotFound, LeaseLost.
        """
        task = await self._store.complete(task_id, lease_token, result_json, self._clock.now_ms())
        self._waiters.notify(task_key(task_id))
        self._metrics.task_completed(task)
        return task

    async def complete_many(
        self, items: Sequence[tuple[str, str, str]]
    ) -> list[Task | TaskgateError]:
        """Complete (task_id, lease_token, result_json) items each on its own; one commit."""
        outcomes = await self._store.complete_many(items, self._clock.now_ms())
        for outcome in outcomes:
            if isinstance(outcome, Task):
                self._waiters.notify(task_key(outcome.id))
                self._metrics.task_completed(outcome)
        return outcomes

    async def fail_many(self, items: Sequence[FailOrder]) -> list[Task | TaskgateError]:
        """Fail items each on its own (per-item outcome); one commit."""
        outcomes = await self._store.fail_many(items, self._clock.now_ms())
        queues = set()
        for outcome in outcomes:
            if isinstance(outcome, Task):
                self._waiters.notify(task_key(outcome.id))
                self._metrics.task_failed(outcome)
                queues.add(outcome.queue)
        for queue in queues:
            self._waiters.notify(queue_key(queue))
        return outcomes

    async def fail(
        self,
        task_id: str,
        lease_token: str,
        error: ErrorReport,
        retry: bool,
        retry_after_s: float | None,
    ) -> Task:
        """End the attempt with an error; retried with backoff or dead.

        Raises:
            NotFound, LeaseLost.
        """
        retry_after_ms = None if retry_after_s is None else round(retry_after_s * 1000)
        task = await self._store.fail(
            task_id, lease_token, error, retry, retry_after_ms, self._clock.now_ms()
        )
        self._waiters.notify(task_key(task_id))
        self._waiters.notify(queue_key(task.queue))
        self._metrics.task_failed(task)
        return task
