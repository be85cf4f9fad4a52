"""MemoryWindows decides and reports exactly as limits' own sliding window counter does,
and forgets the counters of windows that have passed.

Both run on the same made-up clock (time.time patched), so window boundaries are chosen
by the test rather than by when it happens to run.
"""

from __future__ import annotations

import random
import time

import pytest
from limits import parse
from limits.storage import MemoryStorage
from limits.strategies import SlidingWindowCounterRateLimiter

from app.api import memory_windows
from app.api.memory_windows import MemoryWindows

pytestmark = pytest.mark.anyio


class FakeClock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    fake = FakeClock(1_000_000.25)
    monkeypatch.setattr(time, "time", fake)
    return fake


async def test_same_decisions_and_stats_as_limits(clock: FakeClock) -> None:
    reference_storage = MemoryStorage()
    reference = SlidingWindowCounterRateLimiter(reference_storage)
    ours = MemoryWindows()
    rng = random.Random(7)
    items = [parse("10/second"), parse("25/minute")]
    try:
        for _ in range(2_000):
            clock.now += rng.choice([0.0, 0.01, 0.07, 0.3, 1.1])
            item = rng.choice(items)
            key = rng.choice(["sub:alice", "sub:bob"])
            cost = rng.choice([1, 1, 1, 3])
            expected = reference.hit(item, "submit", key, cost=cost)
            assert await ours.hit(item, "submit", key, cost=cost) == expected
            expected_stats = reference.get_window_stats(item, "submit", key)
            stats = await ours.get_window_stats(item, "submit", key)
            assert stats.remaining == expected_stats.remaining
            assert stats.reset_time == pytest.approx(expected_stats.reset_time)
    finally:
        reference_storage.timer.cancel()


async def test_a_cost_above_the_amount_is_refused_without_counting(clock: FakeClock) -> None:
    ours = MemoryWindows()
    item = parse("3/hour")

    assert not await ours.hit(item, "k", cost=4)
    assert (await ours.get_window_stats(item, "k")).remaining == 3


async def test_counters_of_past_windows_are_swept(
    clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    ours = MemoryWindows()
    item = parse("5/second")
    for caller in range(100):
        assert await ours.hit(item, f"sub:{caller}")

    clock.now += 3  # two windows later: nothing left to weigh
    monkeypatch.setattr(ours, "_next_sweep", 0.0)
    assert await ours.hit(item, "sub:late")

    assert len(ours._counts) == 1
    assert memory_windows.SWEEP_INTERVAL_SECONDS > 0
