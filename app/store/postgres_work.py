"""The PostgreSQL claim and lease operations, each inside its caller's transaction.

Claims skip the rows other transactions hold (`SKIP LOCKED`): claims of any number of
processes run side by side and never lease a task twice. Ending an attempt first locks
the task's row, so a failure, an expiry and a completion of one lease cannot interleave.
"""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable, Sequence

import orjson

from app.core.errors import Conflict, NotFound, TaskgateError
from app.core.models import ErrorReport, PushClaim, Task
from app.store.outcomes import end_attempt_params, lease_problem
from app.store.postgres_ops import (
    Connection,
    PostgresWriteOps,
    Queries,
    fetch_all,
    fetch_one,
)
from app.store.rows import task_from_row, webhook_from_json


class PostgresWorkOps:
    """Claims, heartbeats, completions, failures, cancels and lease expiry."""

    def __init__(self, queries: Queries, write_ops: PostgresWriteOps, rng: random.Random) -> None:
        self._q = queries
        self._write_ops = write_ops
        self._rng = rng

    async def claim(
        self,
        conn: Connection,
        queue: str,
        worker_id: str,
        max_tasks: int,
        lease_seconds: int | None,
        types: Sequence[str] | None,
        now_ms: int,
        worker_info: dict[str, object] | None = None,
    ) -> list[Task]:
        queue_row = await fetch_one(conn, self._q["queue_get"], {"name": queue})
        if queue_row is not None and queue_row[4] == "push":
            raise Conflict(
                f"queue {queue!r} delivers its tasks by push to its webhook; pull claims are "
                "refused (PATCH the queue with delivery: pull to claim from it)"
            )
        await conn.execute(
            self._q["worker_seen"], {"worker_id": worker_id, "queue": queue, "now": now_ms}
        )
        if worker_info is not None:
            await conn.execute(
                self._q["worker_describe"],
                {"worker_id": worker_id, "info": orjson.dumps(worker_info).decode()},
            )
        if queue_row is None or queue_row[1]:
            return []
        return await self._claim_rows(
            conn, queue, worker_id, max_tasks, lease_seconds, types, now_ms
        )

    async def _claim_rows(
        self,
        conn: Connection,
        queue: str,
        worker_id: str,
        max_tasks: int,
        lease_seconds: int | None,
        types: Sequence[str] | None,
        now_ms: int,
    ) -> list[Task]:
        rows = await fetch_all(
            conn,
            self._q["claim_due"],
            {
                "queue": queue,
                "worker_id": worker_id,
                "lease_seconds": lease_seconds,
                "types": list(types) if types else None,
                "limit": max_tasks,
                "now": now_ms,
            },
        )
        tasks = [task_from_row(row) for row in rows]
        tasks.sort(key=lambda task: (task.priority, task.run_at_ms, task.id))
        return tasks

    async def claim_push(
        self,
        conn: Connection,
        queue: str,
        worker_id: str,
        max_tasks: int,
        lease_seconds: int,
        now_ms: int,
    ) -> PushClaim:
        """Claim for delivery within the webhook's limits, counted across all processes.

        `push_queue_get` locks the queue's row to the end of the transaction: push claims
        on the queue take turns, so the running count and the token bucket read here
        cannot change under this claim.
        """
        row = await fetch_one(conn, self._q["push_queue_get"], {"name": queue})
        if row is None:
            return PushClaim([], limited=False)
        paused, delivery, webhook_json, tokens, tokens_at = row
        webhook = webhook_from_json(webhook_json)
        if paused or delivery != "push" or webhook is None:
            return PushClaim([], limited=False)
        (running,) = await fetch_one(conn, self._q["queue_running"], {"queue": queue})
        allowed = min(max_tasks, webhook.max_concurrency - running)
        rate = webhook.max_dispatches_per_second
        if rate is not None:
            burst = max(1.0, rate)
            if tokens is None or tokens_at is None:
                tokens = burst
            else:
                tokens = min(burst, tokens + max(now_ms - tokens_at, 0) / 1000 * rate)
            allowed = min(allowed, int(tokens))
        if allowed <= 0:
            return PushClaim([], limited=True)
        tasks = await self._claim_rows(conn, queue, worker_id, allowed, lease_seconds, None, now_ms)
        if tasks:
            await conn.execute(
                self._q["worker_seen"], {"worker_id": worker_id, "queue": queue, "now": now_ms}
            )
            if rate is not None:
                await conn.execute(
                    self._q["push_queue_spend"],
                    {"name": queue, "tokens": tokens - len(tasks), "now": now_ms},
                )
        return PushClaim(tasks, limited=len(tasks) == allowed and allowed < max_tasks)

    async def release(self, conn: Connection, task_id: str, lease_token: str, now_ms: int) -> Task:
        row = await fetch_one(
            conn,
            self._q["task_release"],
            {"id": task_id, "lease_token": lease_token, "now": now_ms},
        )
        if row is None:
            raise await self._lease_problem(conn, task_id)
        return task_from_row(row)

    async def heartbeat(
        self,
        conn: Connection,
        task_id: str,
        lease_token: str,
        lease_seconds: int | None,
        now_ms: int,
    ) -> Task:
        row = await fetch_one(
            conn,
            self._q["task_heartbeat"],
            {
                "id": task_id,
                "lease_token": lease_token,
                "lease_seconds": lease_seconds,
                "now": now_ms,
            },
        )
        if row is None:
            raise await self._lease_problem(conn, task_id)
        task = task_from_row(row)
        await self._touch_worker(conn, task.worker_id, now_ms)
        return task

    async def complete(
        self, conn: Connection, task_id: str, lease_token: str, result_json: str, now_ms: int
    ) -> Task:
        row = await fetch_one(
            conn,
            self._q["task_complete"],
            {"id": task_id, "lease_token": lease_token, "result": result_json, "now": now_ms},
        )  # the statement touches the worker too
        if row is None:
            raise await self._lease_problem(conn, task_id)
        return task_from_row(row)

    async def complete_many(
        self, conn: Connection, items: Sequence[tuple[str, str, str]], now_ms: int
    ) -> list[Task | TaskgateError]:
        """Complete (task_id, lease_token, result JSON) items, each on its own.

        The first item of each task id goes into one UPDATE; an item it did not match,
        and any later item of the same task, is then answered one by one, as `complete`
        would.
        """
        firsts: dict[str, int] = {}
        for index, (task_id, _, _) in enumerate(items):
            firsts.setdefault(task_id, index)
        batch = [items[index] for index in firsts.values()]
        rows = await fetch_all(
            conn,
            self._q["task_complete_many"],
            {
                "ids": [task_id for task_id, _, _ in batch],
                "tokens": [token for _, token, _ in batch],
                "results": [result for _, _, result in batch],
                "now": now_ms,
            },
        )
        done = {row[0]: task_from_row(row) for row in rows}
        # In id order: two batches touching the same workers lock them in the same order.
        for worker_id in sorted({t.worker_id for t in done.values() if t.worker_id}):
            await self._touch_worker(conn, worker_id, now_ms)
        outcomes: list[Task | TaskgateError] = []
        for index, (task_id, lease_token, result_json) in enumerate(items):
            task = done.get(task_id)
            if task is not None and firsts[task_id] == index:
                outcomes.append(task)
                continue
            try:
                outcomes.append(
                    await self.complete(conn, task_id, lease_token, result_json, now_ms)
                )
            except TaskgateError as exc:
                outcomes.append(exc)
        return outcomes

    async def each(
        self, conn: Connection, calls: Sequence[Callable[[], Awaitable[Task]]]
    ) -> list[Task | TaskgateError]:
        """Run write calls each in its own savepoint: a failing one changes nothing."""
        outcomes: list[Task | TaskgateError] = []
        for call in calls:
            try:
                async with conn.transaction():
                    outcomes.append(await call())
            except TaskgateError as exc:
                outcomes.append(exc)
        return outcomes

    async def _touch_worker(self, conn: Connection, worker_id: str | None, now_ms: int) -> None:
        if worker_id is not None:
            await conn.execute(self._q["worker_touch"], {"worker_id": worker_id, "now": now_ms})

    async def fail(
        self,
        conn: Connection,
        task_id: str,
        lease_token: str,
        error: ErrorReport,
        retry: bool,
        retry_after_ms: int | None,
        now_ms: int,
    ) -> Task:
        row = await fetch_one(
            conn, self._q["task_leased"], {"id": task_id, "lease_token": lease_token}
        )
        if row is None:
            raise await self._lease_problem(conn, task_id)
        task = task_from_row(row)
        await self._touch_worker(conn, task.worker_id, now_ms)
        return await self._end_attempt(conn, task, error, retry, retry_after_ms, now_ms)

    async def _end_attempt(
        self,
        conn: Connection,
        task: Task,
        error: ErrorReport,
        retry: bool,
        retry_after_ms: int | None,
        now_ms: int,
    ) -> Task:
        """End the attempt of a task whose row this transaction has locked."""
        config = await self._write_ops.queue_config(conn, task.queue, now_ms)
        params = end_attempt_params(task, config, error, retry, retry_after_ms, now_ms, self._rng)
        row = await fetch_one(conn, self._q["task_end_attempt"], params)
        return task_from_row(row)

    async def _lease_problem(self, conn: Connection, task_id: str) -> TaskgateError:
        return lease_problem(task_id, await fetch_one(conn, self._q["task_get"], {"id": task_id}))

    async def cancel(self, conn: Connection, task_id: str, now_ms: int) -> Task:
        params = {"id": task_id, "now": now_ms}
        row = await fetch_one(conn, self._q["task_cancel_queued"], params)
        if row is None:
            row = await fetch_one(conn, self._q["task_request_cancel"], params)
        if row is not None:
            return task_from_row(row)
        existing = await fetch_one(conn, self._q["task_get"], {"id": task_id})
        if existing is None:
            raise NotFound(f"task {task_id!r} does not exist")
        state = task_from_row(existing).state.value
        raise Conflict(f"task {task_id} has already finished ({state}); it cannot be cancelled")

    async def expire_leases(self, conn: Connection, now_ms: int, limit: int) -> list[Task]:
        rows = await fetch_all(conn, self._q["leases_expired"], {"now": now_ms, "limit": limit})
        lapse = ErrorReport(
            type="LeaseExpired", message="the lease expired before the task finished"
        )
        return [
            await self._end_attempt(conn, task_from_row(row), lapse, True, None, now_ms)
            for row in rows
        ]
