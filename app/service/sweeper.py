"""Background upkeep: return expired leases to their queues, delete what retention allows."""

from __future__ import annotations

import asyncio
import logging

from app.core.clock import Clock
from app.metrics.instruments import Metrics
from app.service.waiters import Waiters, queue_key, task_key
from app.store.base import Store

log = logging.getLogger("taskgate.sweeper")

BATCH = 500


class Sweeper:
    """Lease expiry and retention; safe to run in every process at once."""

    def __init__(
        self,
        store: Store,
        waiters: Waiters,
        clock: Clock,
        worker_retention_s: int,
        metrics: Metrics,
        event_retention_s: int = 3_600,
    ) -> None:
        self._store = store
        self._waiters = waiters
        self._clock = clock
        self._metrics = metrics
        self._worker_retention_ms = worker_retention_s * 1000
        self._event_retention_ms = event_retention_s * 1000

    async def expire_leases_once(self) -> int:
        """End every attempt whose lease has run out; how many."""
        total = 0
        while True:
            tasks = await self._store.expire_leases(self._clock.now_ms(), BATCH)
            for task in tasks:
                self._waiters.notify(queue_key(task.queue))
                self._waiters.notify(task_key(task.id))
                self._metrics.lease_expired(task)
            total += len(tasks)
            if len(tasks) < BATCH:
                return total

    async def delete_expired_once(self) -> int:
        """Delete finished tasks past retention (and stale keys, workers and task events);
        how many tasks.

        Works in bounded batches (one short write transaction each) until a batch comes
        back short, so retention keeps up with any finishing rate.
        """
        total = 0
        while True:
            deleted = await self._store.delete_expired(
                self._clock.now_ms(), self._worker_retention_ms, BATCH
            )
            total += deleted
            if deleted < BATCH:
                break
        cutoff_ms = self._clock.now_ms() - self._event_retention_ms
        while await self._store.delete_events_before(cutoff_ms, BATCH) == BATCH:
            pass
        return total

    async def run(self, lease_interval_s: float, retention_interval_s: float) -> None:
        """Loop forever (until cancelled)."""
        loop = asyncio.get_running_loop()
        next_retention = loop.time()
        while True:
            try:
                await self.expire_leases_once()
                if loop.time() >= next_retention:
                    next_retention = loop.time() + retention_interval_s
                    await self.delete_expired_once()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("sweep failed; trying again next interval")
            await asyncio.sleep(lease_interval_s)
