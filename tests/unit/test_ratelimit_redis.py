"""The rate-limit engine over a real redis-server: shared limits, start-up check, fail open.

Skipped when redis-server is not installed, except in CI (CI=true), where that fails.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable

import pytest

from app.api import ratelimit
from app.api.ratelimit import RateLimiter, RateLimitStorageError
from tests.redis_server import RedisServer, free_port

pytestmark = pytest.mark.anyio

GROUPS = {"submit": "3/minute", "anonymous": "5/hour;6/day"}
SECRET_KEY = "sub:alice-7f3a9c"  # stands for a key that must never reach the logs


LimiterFactory = Callable[[str], RateLimiter]


@pytest.fixture
async def make_limiter() -> AsyncIterator[LimiterFactory]:
    """`make_limiter(storage_uri)` -> a RateLimiter over GROUPS, closed at teardown."""
    made: list[RateLimiter] = []

    def make(storage_uri: str) -> RateLimiter:
        limiter = RateLimiter(GROUPS, storage_uri)
        made.append(limiter)
        return limiter

    yield make
    for limiter in made:
        await limiter.close()


async def test_two_limiters_share_the_limit_through_redis(
    redis_server: RedisServer, make_limiter: LimiterFactory
) -> None:
    # Two RateLimiters stand for two server processes (or hosts).
    first, second = make_limiter(redis_server.uri), make_limiter(redis_server.uri)

    assert (await first.hit("submit", "sub:alice")).remaining == 2
    assert (await second.hit("submit", "sub:alice")).remaining == 1
    assert (await first.hit("submit", "sub:alice")).remaining == 0
    refused = await second.hit("submit", "sub:alice")

    assert not refused.allowed
    assert 0 < refused.retry_after_seconds <= 60
    assert (await second.hit("submit", "sub:bob")).allowed


async def test_a_refused_cost_consumes_nothing_in_redis(
    redis_server: RedisServer, make_limiter: LimiterFactory
) -> None:
    first, second = make_limiter(redis_server.uri), make_limiter(redis_server.uri)
    assert (await first.hit("anonymous", "ip:192.0.2.7", cost=4)).allowed  # hour 1, day 2

    refused = await second.hit("anonymous", "ip:192.0.2.7", cost=2)

    assert not refused.allowed
    assert (refused.limit, refused.remaining) == (5, 1)
    # Had either window counted the refused 2, this hit would be refused too.
    assert (await first.hit("anonymous", "ip:192.0.2.7")).allowed


async def test_check_storage_passes_when_redis_answers(
    redis_server: RedisServer, make_limiter: LimiterFactory
) -> None:
    make_limiter(redis_server.uri).check_storage()


async def test_check_storage_fails_start_up_when_redis_is_down(
    make_limiter: LimiterFactory,
) -> None:
    limiter = make_limiter(f"redis://:hunter2@127.0.0.1:{free_port()}/0")

    with pytest.raises(RateLimitStorageError, match="does not answer") as raised:
        limiter.check_storage()

    assert "hunter2" not in str(raised.value)


async def test_fails_open_when_redis_is_unreachable(
    make_limiter: LimiterFactory, caplog: pytest.LogCaptureFixture
) -> None:
    limiter = make_limiter(f"redis://127.0.0.1:{free_port()}/0")

    with caplog.at_level(logging.WARNING, logger="taskgate.ratelimit"):
        decisions = [await limiter.hit("submit", SECRET_KEY) for _ in range(5)]

    assert all(d.allowed for d in decisions)
    assert len(caplog.records) == 1


async def test_fails_open_when_redis_dies_and_enforces_again_when_it_returns(
    redis_server: RedisServer,
    make_limiter: LimiterFactory,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(ratelimit, "STORAGE_RETRY_SECONDS", 0.0)  # retry Redis at every hit
    limiter = make_limiter(redis_server.uri)
    for _ in range(3):
        assert (await limiter.hit("submit", SECRET_KEY)).allowed
    assert not (await limiter.hit("submit", SECRET_KEY)).allowed

    redis_server.stop()
    with caplog.at_level(logging.WARNING, logger="taskgate.ratelimit"):
        while_down = [await limiter.hit("submit", SECRET_KEY) for _ in range(5)]

        assert all(d.allowed for d in while_down)  # over the limit, but Redis is gone
        assert len(caplog.records) == 1  # one warning, not one per request
        assert "let through" in caplog.records[0].getMessage()

        redis_server.start()  # same port, empty: counting starts again
        after = [await limiter.hit("submit", SECRET_KEY) for _ in range(4)]

    assert [d.allowed for d in after] == [True, True, True, False]
    assert "answers again" in caplog.records[-1].getMessage()
    assert SECRET_KEY not in caplog.text
