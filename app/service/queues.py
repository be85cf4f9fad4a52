"""Queue use-cases: stats, configuration, pause/resume, dead letters, the worker registry."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from app.core.clock import Clock
from app.core.errors import NotFound
from app.core.models import QueueInfo, QueueOverrides, RetryPatch, Task, WorkerInfo
from app.service.waiters import Waiters, queue_key
from app.store.base import Store

CONFIG_FIELDS = ("max_attempts", "retry", "lease_seconds", "retention_seconds")


class QueueService:
    """Operations on queues as a whole."""

    def __init__(self, store: Store, waiters: Waiters, clock: Clock) -> None:
        self._store = store
        self._waiters = waiters
        self._clock = clock

    async def list_all(self) -> list[QueueInfo]:
        """Every known queue with live stats."""
        return await self._store.list_queues(self._clock.now_ms())

    async def get(self, name: str) -> QueueInfo:
        """One queue with live stats.

        Raises:
            NotFound: the queue has never been used or configured.
        """
        info = await self._store.get_queue(name, self._clock.now_ms())
        if info is None:
            raise NotFound(f"queue {name!r} does not exist (it is created by its first submit)")
        return info

    async def configure(self, name: str, patch: Mapping[str, Any]) -> QueueInfo:
        """Set the fields present in `patch` (None resets one to the server default)."""
        retry = patch.get("retry")
        overrides = QueueOverrides(
            max_attempts=patch.get("max_attempts"),
            retry=None if retry is None else RetryPatch(**retry),
            lease_seconds=patch.get("lease_seconds"),
            retention_seconds=patch.get("retention_seconds"),
        )
        fields = frozenset(key for key in CONFIG_FIELDS if key in patch)
        return await self._store.configure_queue(name, overrides, fields, self._clock.now_ms())

    async def pause(self, name: str, reason: str | None) -> QueueInfo:
        """Stop handing out claims from the queue (submits are still accepted)."""
        return await self._store.set_paused(name, True, reason, self._clock.now_ms())

    async def resume(self, name: str) -> QueueInfo:
        """Hand out claims again."""
        info = await self._store.set_paused(name, False, None, self._clock.now_ms())
        self._waiters.notify(queue_key(name))
        return info

    async def list_dead(
        self, queue: str, before_id: str | None, limit: int
    ) -> tuple[list[Task], str | None]:
        """A page of the queue's dead tasks and the next cursor."""
        page = await self._store.list_dead(queue, before_id, limit + 1)
        if len(page) > limit:
            page = page[:limit]
            return page, page[-1].id
        return page, None

    async def redrive(self, queue: str, task_ids: Sequence[str] | None) -> int:
        """Queue dead tasks again, due now with fresh attempts."""
        moved = await self._store.redrive(queue, task_ids, self._clock.now_ms())
        if moved:
            self._waiters.notify(queue_key(queue))
        return moved

    async def purge_dead(self, queue: str) -> int:
        """Delete the queue's dead tasks."""
        return await self._store.purge_dead(queue)

    async def workers(self, limit: int = 1000) -> list[WorkerInfo]:
        """Workers seen through claims and heartbeats, most recent first."""
        return await self._store.list_workers(limit)
