"""The push dispatcher: claims due tasks of push queues and delivers them to their webhooks.

One Dispatcher runs in every server process. It claims through the same leases as pull
workers (`Store.claim_push`), so any number of processes and hosts can run it side by
side; a process that dies mid-delivery leaves a lease that expires, and the task is
delivered again (same `webhook-id`). Per-queue limits are enforced inside the claim
transaction, so they hold across processes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import os
import socket

from app.core.clock import Clock
from app.core.errors import LeaseLost, NotFound, TaskgateError
from app.core.models import PushQueue, Task
from app.dispatch.delivery import Attempt, WebhookSender, new_client
from app.dispatch.outcome import Delivered, Failed, Refused, transport_failure
from app.dispatch.ssrf import AllowList, Resolver, system_resolver
from app.metrics.instruments import Metrics
from app.service.queues import PUSH_QUEUES_KEY, QueueService
from app.service.tasks import TaskService
from app.service.waiters import Subscription, Waiters, queue_key
from app.store.base import Store

log = logging.getLogger("taskgate.dispatch")

CLAIM_BATCH = 32
# A delivery's lease outlasts its timeout by this much before another process may retry it.
LEASE_MARGIN_S = 30
IDLE_POLL_S = 1.0
LIMITED_POLL_S = 0.25


def dispatcher_id() -> str:
    """How this process shows up in the worker list."""
    return f"dispatcher@{socket.gethostname()}:{os.getpid()}"


class QueueDispatch:
    """Claims and delivers the tasks of one push queue until stopped."""

    def __init__(
        self,
        queue: PushQueue,
        dispatcher: Dispatcher,
    ) -> None:
        self.queue = queue
        self._d = dispatcher
        self._in_flight: dict[asyncio.Task[None], Task] = {}
        self._slot_freed = asyncio.Event()
        self._stopping = asyncio.Event()
        self._lease_seconds = math.ceil(queue.webhook.timeout_seconds) + LEASE_MARGIN_S

    def stop(self) -> None:
        """Stop claiming; deliveries in flight go on until `drain`."""
        self._stopping.set()
        self._slot_freed.set()

    async def run(self) -> None:
        async with new_client(self.queue.webhook) as client:
            sender = WebhookSender(client, self.queue.webhook, self._d.allow, self._d.resolver)
            try:
                await self._claim_loop(sender)
            finally:
                await self._drain()

    async def _claim_loop(self, sender: WebhookSender) -> None:
        waiters = self._d.waiters
        name = self.queue.name
        while not self._stopping.is_set() and not waiters.closing:
            with waiters.subscribe(queue_key(name), every=True) as subscription:
                self._slot_freed.clear()
                room = self.queue.webhook.max_concurrency - len(self._in_flight)
                asked = min(room, CLAIM_BATCH)
                if asked > 0:
                    try:
                        claim = await self._d.store.claim_push(
                            name,
                            self._d.worker_id,
                            asked,
                            self._lease_seconds,
                            self._d.clock.now_ms(),
                        )
                    except TaskgateError:
                        log.exception("claiming for webhook delivery failed", extra={"queue": name})
                        await self._pause(subscription, IDLE_POLL_S)
                        continue
                    if claim.tasks:
                        self._d.metrics.tasks_claimed(name, len(claim.tasks))
                    for task in claim.tasks:
                        self._start(sender, task)
                    if len(claim.tasks) == asked:
                        continue
                    limited = claim.limited
                else:
                    limited = True
                if limited:
                    await self._pause(subscription, self._limited_wait())
                else:
                    await self._wait_for_work(subscription)

    def _limited_wait(self) -> float:
        rate = self.queue.webhook.max_dispatches_per_second
        return min(LIMITED_POLL_S, 1 / rate) if rate else LIMITED_POLL_S

    async def _pause(self, subscription: Subscription, timeout: float) -> None:
        """Sleep until a delivery ends, the queue is notified, or the timeout passes."""
        wakers = [
            asyncio.ensure_future(subscription.event.wait()),
            asyncio.ensure_future(self._slot_freed.wait()),
        ]
        try:
            await asyncio.wait(wakers, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waker in wakers:
                waker.cancel()

    async def _wait_for_work(self, subscription: Subscription) -> None:
        """Nothing is due: sleep until a task may be (notify, next due time, another
        process's commit that a read confirms, or the periodic poll)."""
        store, waiters, clock = self._d.store, self._d.waiters, self._d.clock
        name = self.queue.name
        while not self._stopping.is_set() and not waiters.closing:
            timeout = IDLE_POLL_S
            next_due_ms = await store.next_due_ms(name)
            if next_due_ms is not None:
                timeout = min(timeout, max(next_due_ms - clock.now_ms(), 0) / 1000)
            await self._pause(subscription, timeout)
            if self._slot_freed.is_set() or subscription.by_key:
                return
            if subscription.event.is_set():
                waiters.rearm(subscription)
            if await store.has_claimable(name, None, clock.now_ms()):
                return

    def _start(self, sender: WebhookSender, task: Task) -> None:
        delivery = asyncio.create_task(self._deliver(sender, task))
        self._in_flight[delivery] = task
        delivery.add_done_callback(self._finished)

    def _finished(self, delivery: asyncio.Task[None]) -> None:
        self._in_flight.pop(delivery, None)
        self._slot_freed.set()

    async def _deliver(self, sender: WebhookSender, task: Task) -> None:
        try:
            attempt = await sender.deliver(task)
        except Exception:  # a bug must not leave the task waiting for its lease to expire
            log.exception("webhook delivery failed", extra={"task_id": task.id})
            failure = transport_failure("internal", "the dispatcher failed; see the server log")
            attempt = Attempt(failure, None, 0.0)
        outcome_name = type(attempt.outcome).__name__.lower()  # delivered, failed, refused
        self._d.metrics.delivery_done(task.queue, outcome_name, attempt.seconds)
        log.log(
            logging.DEBUG if isinstance(attempt.outcome, Delivered) else logging.INFO,
            "webhook delivery",
            extra={
                "queue": task.queue,
                "task_id": task.id,
                "attempt": task.attempts,
                "status": attempt.status,
                "outcome": outcome_name,
                "seconds": round(attempt.seconds, 4),
            },
        )
        await self._apply(task, attempt)

    async def _apply(self, task: Task, attempt: Attempt) -> None:
        assert task.lease_token is not None
        outcome = attempt.outcome
        try:
            if isinstance(outcome, Delivered):
                await self._d.tasks.complete(task.id, task.lease_token, outcome.result_json)
            elif isinstance(outcome, Failed):
                await self._d.tasks.fail(
                    task.id, task.lease_token, outcome.error, outcome.retry, outcome.retry_after_s
                )
            elif isinstance(outcome, Refused):
                await self._d.store.release(task.id, task.lease_token, self._d.clock.now_ms())
                self.stop()
                await self._d.queues.pause(task.queue, outcome.reason[:1024])
                log.warning(
                    "push queue paused", extra={"queue": task.queue, "reason": outcome.reason}
                )
        except (LeaseLost, NotFound) as exc:
            log.warning(
                "delivery outcome not recorded: the lease was lost",
                extra={"queue": task.queue, "task_id": task.id, "detail": str(exc)},
            )

    async def _drain(self) -> None:
        """Let deliveries in flight finish; hand back those still running at the deadline.

        At shutdown the deadline is the grace period; when only this queue's settings
        changed, a delivery may run for its whole timeout.
        """
        if not self._in_flight:
            return
        if self._d.waiters.closing:
            deadline_s = self._d.grace_s
        else:
            deadline_s = self.queue.webhook.timeout_seconds + 1
        _, pending = await asyncio.wait(list(self._in_flight), timeout=deadline_s)
        stuck = [self._in_flight[delivery] for delivery in pending]
        for delivery in pending:
            delivery.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        for task in stuck:
            assert task.lease_token is not None
            with contextlib.suppress(TaskgateError):
                await self._d.store.release(task.id, task.lease_token, self._d.clock.now_ms())


class Dispatcher:
    """Runs one QueueDispatch per running push queue, following configuration changes."""

    def __init__(
        self,
        store: Store,
        tasks: TaskService,
        queues: QueueService,
        waiters: Waiters,
        clock: Clock,
        allow: AllowList,
        metrics: Metrics,
        *,
        resolver: Resolver = system_resolver,
        worker_id: str | None = None,
        refresh_s: float = 1.0,
        grace_s: float = 10.0,
    ) -> None:
        self.store = store
        self.tasks = tasks
        self.queues = queues
        self.waiters = waiters
        self.clock = clock
        self.allow = allow
        self.metrics = metrics
        self.resolver = resolver
        self.worker_id = worker_id or dispatcher_id()
        self.grace_s = grace_s
        self._refresh_s = refresh_s
        self._running: dict[str, tuple[QueueDispatch, asyncio.Task[None]]] = {}

    async def run(self) -> None:
        """Until the server shuts down: keep one delivery loop per running push queue."""
        try:
            while not self.waiters.closing:
                with self.waiters.subscribe(PUSH_QUEUES_KEY) as subscription:
                    await self._reconcile()
                    await self._sleep(subscription)
        finally:
            await self._stop_all()

    async def _reconcile(self) -> None:
        try:
            wanted = {queue.name: queue for queue in await self.store.list_push_queues()}
        except TaskgateError:
            log.exception("could not list push queues")
            return
        for name, (dispatch, runner) in list(self._running.items()):
            if wanted.get(name) != dispatch.queue or runner.done():
                dispatch.stop()
                del self._running[name]
                self._reap(runner)
        for name, queue in wanted.items():
            if name not in self._running:
                dispatch = QueueDispatch(queue, self)
                self._running[name] = (dispatch, asyncio.create_task(dispatch.run()))

    def _reap(self, runner: asyncio.Task[None]) -> None:
        def report(done: asyncio.Task[None]) -> None:
            if not done.cancelled() and done.exception() is not None:
                log.error("a push queue's delivery loop failed", exc_info=done.exception())

        runner.add_done_callback(report)

    async def _sleep(self, subscription: Subscription) -> None:
        """Until this process changes a queue's delivery, or the refresh interval passes
        (changes by other processes are picked up by the refresh)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._refresh_s
        while not self.waiters.closing:
            remaining = deadline - loop.time()
            if remaining <= 0 or not await self.waiters.wait(subscription, remaining):
                return
            if subscription.by_key:
                return
            self.waiters.rearm(subscription)

    async def _stop_all(self) -> None:
        runners = []
        for dispatch, runner in self._running.values():
            dispatch.stop()
            runners.append(runner)
        self._running.clear()
        await asyncio.gather(*runners, return_exceptions=True)
