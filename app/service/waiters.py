"""Long-poll wake-ups: claims wait on their queue, gets wait on their task.

A waiter subscribes *before* it looks at the database and waits on that subscription
afterwards, so a notification that lands in between is never lost. In-process commits
notify their key at once; commits by other processes are seen by polling the store's
change marker (SQLite `data_version`) and wake every subscription, which re-checks.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import defaultdict
from collections.abc import Callable, Iterator

log = logging.getLogger("taskgate.waiters")


class Subscription:
    """One waiter's interest in a key; `by_key` tells a direct notify from a global one."""

    __slots__ = ("by_key", "event", "key")

    def __init__(self, key: str) -> None:
        self.key = key
        self.event = asyncio.Event()
        self.by_key = False


class Waiters:
    """Per-process registry of long-poll subscriptions."""

    def __init__(self) -> None:
        self._by_key: defaultdict[str, set[Subscription]] = defaultdict(set)
        self._closing = False

    @property
    def closing(self) -> bool:
        return self._closing

    def notify(self, key: str) -> None:
        """Wake the subscriptions on `key` (e.g. `queue:emails`, `task:01J…`)."""
        for subscription in self._by_key.pop(key, ()):
            subscription.by_key = True
            subscription.event.set()

    def notify_all(self) -> None:
        """Wake every subscription (another process committed something)."""
        for subscriptions in self._by_key.values():
            for subscription in subscriptions:
                subscription.event.set()
        self._by_key.clear()

    def close(self) -> None:
        """Shutting down: wake everyone now and make later waits return at once."""
        self._closing = True
        self.notify_all()

    @contextlib.contextmanager
    def subscribe(self, key: str) -> Iterator[Subscription]:
        """Register interest in `key` for the duration of the block."""
        subscription = Subscription(key)
        self._by_key[subscription.key].add(subscription)
        try:
            yield subscription
        finally:
            self._forget(subscription)

    def rearm(self, subscription: Subscription) -> None:
        """Make a woken subscription wait again (re-check the database afterwards)."""
        subscription.event.clear()
        subscription.by_key = False
        self._by_key[subscription.key].add(subscription)

    async def wait(self, subscription: Subscription, timeout_s: float) -> bool:
        """Sleep until the subscription is woken (True) or the timeout passes (False)."""
        if subscription.event.is_set():
            return True
        if self._closing or timeout_s <= 0:
            return False
        try:
            await asyncio.wait_for(subscription.event.wait(), timeout_s)
        except TimeoutError:
            return False
        return True

    def _forget(self, subscription: Subscription) -> None:
        waiting = self._by_key.get(subscription.key)
        if waiting is not None:
            waiting.discard(subscription)
            if not waiting:
                del self._by_key[subscription.key]

    async def watch_changes(self, read_marker: Callable[[], int], interval_s: float) -> None:
        """Poll for other processes' commits and wake all subscriptions when one is seen."""
        last = read_marker()
        while not self._closing:
            await asyncio.sleep(interval_s)
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
