"""Gathers single submits that arrive together into one store call.

Requests whose bodies are read in the same event-loop iteration reach `submit` one after
the other; the batcher hands them to the store as one list at the end of that iteration
(`call_soon`: nothing waits for a later request). The store then writes them as one
operation of the group commit: for SQLite, one INSERT for all the tasks without an
idempotency key instead of one operation with its own savepoint and statements each.
Each caller still gets its own outcome, or its own error.

A store without a group commit of its own (PostgreSQL: a transaction per call, several
round trips each) names a bound, `Store.submit_writes_in_flight`: while that many
writes are on their way, new submits wait and join the next one, so under load a
process sends few large transactions instead of one per loop iteration. SQLite's writer
thread already merges concurrent operations into one transaction: no bound there.

The created tasks are counted here too, once per queue and batch rather than once per
request (an increment in multiprocess mode is a locked mmap write).
"""

from __future__ import annotations

import asyncio

from app.core.errors import TaskgateError
from app.core.models import NewTask, SubmitOutcome
from app.metrics.instruments import Metrics
from app.store.base import Store

_Pending = list[tuple[NewTask, "asyncio.Future[SubmitOutcome | TaskgateError]"]]


class SubmitBatcher:
    """One per process; used from the event loop only."""

    def __init__(self, store: Store, metrics: Metrics) -> None:
        self._store = store
        self._metrics = metrics
        # Grouped by the submit time the tasks were built with (it becomes created_at).
        self._pending: dict[int, _Pending] = {}
        self._scheduled = False
        self._writing: set[asyncio.Task[None]] = set()
        self._max_writing = store.submit_writes_in_flight

    async def submit(self, task: NewTask, now_ms: int) -> SubmitOutcome | TaskgateError:
        """Store `task` with whatever else is submitted in this loop iteration.

        Raises:
            StoreError: the store failed the whole write.
        """
        loop = asyncio.get_running_loop()
        future: asyncio.Future[SubmitOutcome | TaskgateError] = loop.create_future()
        self._pending.setdefault(now_ms, []).append((task, future))
        if not self._scheduled:
            self._scheduled = True
            loop.call_soon(self._flush)
        return await future

    def _flush(self) -> None:
        self._scheduled = False
        if not self._pending or self._busy():
            return  # a write that ends flushes what gathered meanwhile
        pending, self._pending = self._pending, {}
        for now_ms, items in pending.items():
            writing = asyncio.ensure_future(self._write(now_ms, items))
            self._writing.add(writing)
            writing.add_done_callback(self._written)

    def _busy(self) -> bool:
        return self._max_writing is not None and len(self._writing) >= self._max_writing

    def _written(self, writing: asyncio.Task[None]) -> None:
        self._writing.discard(writing)
        if self._pending and not self._scheduled:
            self._scheduled = True
            asyncio.get_running_loop().call_soon(self._flush)

    async def _write(self, now_ms: int, items: _Pending) -> None:
        try:
            outcomes = await self._store.submit([task for task, _ in items], now_ms)
        except Exception as exc:
            for _, future in items:
                if not future.done():
                    future.set_exception(exc)
            return
        created: dict[str, int] = {}
        for (_, future), outcome in zip(items, outcomes, strict=True):
            if isinstance(outcome, SubmitOutcome) and outcome.created:
                queue = outcome.task.queue
                created[queue] = created.get(queue, 0) + 1
            if not future.done():
                future.set_result(outcome)
        for queue, count in created.items():
            self._metrics.tasks_submitted(queue, count)
