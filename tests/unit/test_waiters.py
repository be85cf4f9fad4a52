"""Waiters: a counted notify wakes the longest waiting subscriptions first, plus every
subscription made with `every`; an uncounted one wakes all."""

from __future__ import annotations

import contextlib

import pytest

from app.service.waiters import Subscription, Waiters

pytestmark = pytest.mark.anyio


def woken(subscriptions: list[Subscription]) -> list[int]:
    return [i for i, s in enumerate(subscriptions) if s.event.is_set()]


async def test_a_counted_notify_wakes_the_longest_waiting_first() -> None:
    waiters = Waiters()
    with contextlib.ExitStack() as stack:
        subs = [stack.enter_context(waiters.subscribe("queue:q")) for _ in range(5)]

        waiters.notify("queue:q", count=2)
        assert woken(subs) == [0, 1]
        assert all(s.by_key for s in subs[:2])

        waiters.rearm(subs[0])  # back in line, behind the others
        waiters.notify("queue:q", count=2)
        assert woken(subs) == [1, 2, 3]
        assert subs[0].event.is_set() is False

        waiters.notify("queue:q")
        assert woken(subs) == [0, 1, 2, 3, 4]


async def test_every_subscriptions_are_woken_and_not_counted() -> None:
    waiters = Waiters()
    with contextlib.ExitStack() as stack:
        typed = stack.enter_context(waiters.subscribe("queue:q", every=True))
        plain = [stack.enter_context(waiters.subscribe("queue:q")) for _ in range(3)]
        other = stack.enter_context(waiters.subscribe("queue:r"))

        waiters.notify("queue:q", count=1)

        assert typed.event.is_set()
        assert woken(plain) == [0]
        assert not other.event.is_set()


async def test_a_count_beyond_the_waiters_wakes_them_all_and_forgets_the_key() -> None:
    waiters = Waiters()
    with waiters.subscribe("queue:q") as first, waiters.subscribe("queue:q") as second:
        waiters.notify("queue:q", count=10)
        assert first.event.is_set() and second.event.is_set()
        waiters.notify("queue:q", count=1)  # nobody left: a no-op
