"""The task event feed: where a stream starts, then the changes as they are committed.

Events are rows the database writes with every task state change (triggers), so every
server process sees every process's changes. A follower reads after its last id, then
sleeps until a commit is seen (the waiters' change poll wakes every subscription) or a
keep-alive is due, until its deadline.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass

from app.core.models import TaskEvent
from app.service.waiters import Waiters
from app.store.base import Store

EVENTS_KEY = "events"
PAGE = 500
KEEP_ALIVE_S = 10.0


@dataclass(frozen=True, slots=True)
class EventStart:
    """Where a stream begins: after `cursor`; `reset` when events after the asked id were
    dropped by retention (or the id is unknown here), so the client missed some."""

    cursor: int
    reset: bool


class KeepAlive:
    """Nothing happened for a while: say so, so that proxies keep the stream open."""


class EventFeed:
    """Reads the event stream for subscribers (GET /v1/events)."""

    def __init__(self, store: Store, waiters: Waiters, long_poll_max_s: float) -> None:
        self._store = store
        self._waiters = waiters
        self._long_poll_max_s = long_poll_max_s

    async def start(self, after_id: int | None) -> EventStart:
        """Where to read from: after `after_id`, or after the newest event when None.

        Raises:
            StoreError: the database could not be read.
        """
        page = await self._store.events_after(after_id, None, 0)
        if after_id is None:
            return EventStart(page.last_id, reset=False)
        if after_id > page.last_id:
            # An id this database never gave (another database, a restored backup).
            return EventStart(page.last_id, reset=True)
        return EventStart(after_id, reset=page.gap)

    async def follow(
        self, cursor: int, queue: str | None, wait_s: float
    ) -> AsyncIterator[list[TaskEvent] | KeepAlive]:
        """Batches of events after `cursor` as they come, for up to `wait_s` (capped)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + min(wait_s, self._long_poll_max_s)
        quiet_since = loop.time()
        while not self._waiters.closing:
            with self._waiters.subscribe(EVENTS_KEY) as subscription:
                page = await self._store.events_after(cursor, queue, PAGE)
                if page.events:
                    cursor = page.events[-1].id
                    quiet_since = loop.time()
                    yield page.events
                    continue
                remaining = deadline - loop.time()
                if remaining <= 0:
                    return
                until_keep_alive = quiet_since + KEEP_ALIVE_S - loop.time()
                woken = await self._waiters.wait(subscription, min(remaining, until_keep_alive))
                if not woken and loop.time() - quiet_since >= KEEP_ALIVE_S:
                    quiet_since = loop.time()
                    yield KeepAlive()
