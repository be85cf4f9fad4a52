"""Long-poll wake-ups: claims wait on their queue, gets wait on their task.

In-process commits notify at once; commits by other processes are seen by polling the
store's change marker (SQLite `data_version`) and wake every waiter, which then re-checks.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import Callable

log = logging.getLogger("taskgate.waiters")


class Waiters:
    """Per-process registry of long-poll waiters."""

    def __init__(self) -> None:
        self._by_key: defaultdict[str, set[asyncio.Event]] = defaultdict(set)
        self._closing = False

    @property
    def closing(self) -> bool:
        return self._closing

    def notify(self, key: str) -> None:
        """Wake the waiters on `key` (e.g. `queue:emails`, `task:01J…`)."""
        for event in self._by_key.pop(key, ()):
            event.set()

    def notify_all(self) -> None:
        """Wake every waiter (another process committed, or we are shutting down)."""
        keys = list(self._by_key)
        for key in keys:
            self.notify(key)

    def close(self) -> None:
        """Shutting down: wake everyone now and make later waits return at once."""
        self._closing = True
        self.notify_all()

    async def wait(self, key: str, timeout_s: float) -> None:
        """Sleep until `key` is notified, any change is seen, or the timeout passes."""
        if self._closing or timeout_s <= 0:
            return
        event = asyncio.Event()
        self._by_key[key].add(event)
        try:
            await asyncio.wait_for(event.wait(), timeout_s)
        except TimeoutError:
            pass
        finally:
            waiting = self._by_key.get(key)
            if waiting is not None:
                waiting.discard(event)
                if not waiting:
                    del self._by_key[key]

    async def watch_changes(self, read_marker: Callable[[], int], interval_s: float) -> None:
        """Poll another process's commits and wake all waiters when one is seen."""
        last = read_marker()
        while not self._closing:
            await asyncio.sleep(interval_s)
            if not self._by_key:
                last = read_marker()
                continue
            try:
                current = read_marker()
            except Exception:
                log.exception("could not read the change marker")
                continue
            if current != last:
                last = current
                self.notify_all()


def queue_key(queue: str) -> str:
    return f"queue:{queue}"


def task_key(task_id: str) -> str:
    return f"task:{task_id}"
