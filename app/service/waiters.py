"""Long-poll wake-ups: claims wait on their queue, gets wait on their task.

A waiter subscribes *before* it looks at the database and waits on that subscription
afterwards, so a notification that lands in between is never lost. In-process commits
notify their key at once; commits by other processes are seen by polling the store's
change marker (SQLite `data_version`) and wake every subscription, which re-checks.
A notify may be counted (`count` new tasks wake the `count` longest waiting claims, not
a herd that would all try to claim them); a subscription made with `every` (a claim
for some task types only, the push dispatcher) is woken by every notify of its key.
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

    __slots__ = ("by_key", "event", "every", "key")

    def __init__(self, key: str, every: bool = False) -> None:
        self.key = key
        self.every = every
        self.event = asyncio.Event()
        self.by_key = False


class Waiters:
    """Per-process registry of long-poll subscriptions."""

    def __init__(self) -> None:
        # Per key, the subscriptions in the order they started waiting (dict keys).
        self._by_key: defaultdict[str, dict[Subscription, None]] = defaultdict(dict)
        self._closing = False

    @property
    def closing(self) -> bool:
        return self._closing

    def notify(self, key: str, count: int | None = None) -> None:
        """Wake the subscriptions on `key` (e.g. `queue:emails`, `task:01J…`): all of them,
        or the `count` that have waited longest plus those made with `every`."""
        waiting = self._by_key.get(key)
        if not waiting:
            return
        if count is None or count >= len(waiting):
            woken = list(waiting)
            del self._by_key[key]
        else:
            woken = []
            for subscription in list(waiting):
                if subscription.every or count > 0:
                    count -= 0 if subscription.every else 1
                    woken.append(subscription)
                    del waiting[subscription]
            if not waiting:
                del self._by_key[key]
        for subscription in woken:
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
    def subscribe(self, key: str, every: bool = False) -> Iterator[Subscription]:
        """Register interest in `key` for the duration of the block (`every`: woken by
        every notify of the key, never left out of a counted one)."""
        subscription = Subscription(key, every)
        self._by_key[subscription.key][subscription] = None
        try:
            yield subscription
        finally:
            self._forget(subscription)

    def rearm(self, subscription: Subscription) -> None:
        """Make a woken subscription wait again (re-check the database afterwards)."""
        subscription.event.clear()
        subscription.by_key = False
        self._by_key[subscription.key][subscription] = None

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
            waiting.pop(subscription, None)
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
