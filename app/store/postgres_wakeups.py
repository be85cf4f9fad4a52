"""Cross-process wake-ups for the PostgreSQL store: a change counter fed by LISTEN.

Commits that may let a long-poll go on notify `taskgate_changes` (triggers of
migrations/postgres/0001_initial.sql). Each store keeps one session of its own, outside
the pool, that LISTENs and counts notifications; `marker` is that count. It is a hint,
so the counter also moves every `fallback_interval_s` (a second) by the clock, whatever
the session's state: while the session is down (the server restarted, the connection
was killed), and when it looks up but hears nothing (a transaction-mode pooler between
us and PostgreSQL drops LISTEN), waiters re-check at that pace instead of sleeping
through commits nobody told them about. A lost notification delays a wake-up by a
second at most; the price is one re-check per waiting claim per second, which a busy
queue pays anyway (every commit wakes its waiters).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import psycopg
from psycopg.conninfo import conninfo_to_dict

from app.settings import redact_url

log = logging.getLogger("taskgate.store.postgres")

LISTEN = "LISTEN taskgate_changes"

# A session that silently lost its peer (no FIN: a network split, a failed-over host)
# is noticed by TCP keepalives after about 10 + 3 x 5 s, unless the URL says otherwise.
KEEPALIVE_DEFAULTS: dict[str, Any] = {
    "keepalives": 1,
    "keepalives_idle": 10,
    "keepalives_interval": 5,
    "keepalives_count": 3,
}


class ChangeListener:
    """Counts the notifications of commits, and moves on every second by the clock."""

    def __init__(
        self, url: str, fallback_interval_s: float = 1.0, reconnect_interval_s: float = 1.0
    ) -> None:
        self._url = url
        self._fallback_interval_s = fallback_interval_s
        self._reconnect_interval_s = reconnect_interval_s
        self._marker = 0
        self._session: psycopg.AsyncConnection[Any] | None = None
        self._tasks: list[asyncio.Task[None]] = []

    @property
    def marker(self) -> int:
        """A number that changes whenever a notification arrives (or may have been missed)."""
        return self._marker

    @property
    def listening(self) -> bool:
        """Whether the LISTEN session is up (the marker moves by the clock either way)."""
        return self._session is not None

    def bump(self) -> None:
        """Move the marker on: something may have changed."""
        self._marker += 1

    def start(self) -> None:
        """Start listening (connecting in the background) and the fallback clock."""
        self._tasks = [
            asyncio.create_task(self._listen_forever(), name="taskgate-listen"),
            asyncio.create_task(self._tick(), name="taskgate-listen-fallback"),
        ]

    async def stop(self) -> None:
        """Stop both loops and close the session."""
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []

    async def _listen_forever(self) -> None:
        params = {**KEEPALIVE_DEFAULTS, **conninfo_to_dict(self._url)}
        was_down = False
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(
                    autocommit=True, **params
                ) as session:
                    await session.execute(LISTEN)
                    self._session = session
                    if was_down:
                        log.info("listening for changes again on %s", redact_url(self._url))
                    # Whatever was committed while nobody listened: have waiters look.
                    self.bump()
                    async for _ in session.notifies():
                        self.bump()
            except psycopg.Error as exc:
                if not was_down:
                    log.warning(
                        "not listening for changes on %s (%s); waiters re-check every "
                        "%.1f s until the connection is back",
                        redact_url(self._url),
                        exc,
                        self._fallback_interval_s,
                    )
                was_down = True
            finally:
                self._session = None
            await asyncio.sleep(self._reconnect_interval_s)

    async def _tick(self) -> None:
        while True:
            await asyncio.sleep(self._fallback_interval_s)
            self.bump()
