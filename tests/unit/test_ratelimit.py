"""The rate-limit engine over process memory: limits, costs, isolation, headers, bad config.

Windows are hours and days so that no window boundary passes during a test.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping

import pytest

from app.api.ratelimit import RateDecision, RateLimiter, rate_limit_headers

pytestmark = pytest.mark.anyio

GROUPS = {
    "submit": "3/hour",
    "work": "3/hour",
    "read": "10/hour",
    "admin": "3/hour;10/day",
    "anonymous": "5/hour;6/day",
}

LimiterFactory = Callable[[Mapping[str, str]], RateLimiter]


@pytest.fixture
async def make_limiter() -> AsyncIterator[LimiterFactory]:
    """`make_limiter(limits)` -> a memory-backed RateLimiter, closed at teardown."""
    made: list[RateLimiter] = []

    def make(limits: Mapping[str, str] = GROUPS) -> RateLimiter:
        limiter = RateLimiter(limits)
        made.append(limiter)
        return limiter

    yield make
    for limiter in made:
        await limiter.close()


async def test_allows_up_to_the_limit_then_refuses(make_limiter: LimiterFactory) -> None:
    limiter = make_limiter(GROUPS)

    decisions = [await limiter.hit("submit", "sub:alice") for _ in range(4)]

    assert [d.allowed for d in decisions] == [True, True, True, False]
    assert [d.remaining for d in decisions] == [2, 1, 0, 0]
    assert all(d.limit == 3 for d in decisions)
    assert all(d.retry_after_seconds == 0 for d in decisions[:3])
    refused = decisions[3]
    assert 0 < refused.retry_after_seconds <= 3600
    assert 0 < refused.reset_seconds <= 3600


async def test_cost_counts_each_unit(make_limiter: LimiterFactory) -> None:
    limiter = make_limiter({"submit": "10/hour"})

    first = await limiter.hit("submit", "sub:alice", cost=4)

    assert first.allowed
    assert first.remaining == 6


async def test_a_cost_that_does_not_fit_is_refused_whole(make_limiter: LimiterFactory) -> None:
    limiter = make_limiter({"submit": "10/hour"})
    await limiter.hit("submit", "sub:alice", cost=4)

    too_big = await limiter.hit("submit", "sub:alice", cost=7)
    fits = await limiter.hit("submit", "sub:alice", cost=6)

    assert not too_big.allowed
    assert too_big.remaining == 6  # nothing was consumed by the refused hit
    assert fits.allowed
    assert fits.remaining == 0


async def test_a_cost_above_the_limit_is_never_allowed(make_limiter: LimiterFactory) -> None:
    limiter = make_limiter({"submit": "10/hour"})

    decision = await limiter.hit("submit", "sub:alice", cost=11)

    assert not decision.allowed
    assert decision.retry_after_seconds > 0
    assert (await limiter.hit("submit", "sub:alice", cost=10)).allowed


async def test_keys_are_counted_apart(make_limiter: LimiterFactory) -> None:
    limiter = make_limiter(GROUPS)
    for _ in range(3):
        await limiter.hit("submit", "sub:alice")

    assert not (await limiter.hit("submit", "sub:alice")).allowed
    bob = await limiter.hit("submit", "sub:bob")
    assert bob.allowed
    assert bob.remaining == 2


async def test_groups_are_counted_apart_even_with_equal_limits(
    make_limiter: LimiterFactory,
) -> None:
    limiter = make_limiter(GROUPS)  # submit and work are both "3/hour"
    for _ in range(3):
        await limiter.hit("submit", "sub:alice")

    assert not (await limiter.hit("submit", "sub:alice")).allowed
    work = await limiter.hit("work", "sub:alice")
    assert work.allowed
    assert work.remaining == 2


async def test_limiters_do_not_share_memory(make_limiter: LimiterFactory) -> None:
    first, second = make_limiter(GROUPS), make_limiter(GROUPS)
    for _ in range(3):
        await first.hit("submit", "sub:alice")

    assert (await second.hit("submit", "sub:alice")).allowed


async def test_the_tightest_window_decides(make_limiter: LimiterFactory) -> None:
    limiter = make_limiter(GROUPS)  # admin: "3/hour;10/day"

    decision = await limiter.hit("admin", "sub:root", cost=2)

    assert decision.allowed
    assert (decision.limit, decision.remaining) == (3, 1)
    refused = await limiter.hit("admin", "sub:root", cost=2)
    assert not refused.allowed
    assert (refused.limit, refused.remaining) == (3, 1)


async def test_a_window_that_refuses_keeps_the_others_untouched(
    make_limiter: LimiterFactory,
) -> None:
    limiter = make_limiter(GROUPS)  # anonymous: "5/hour;6/day"
    assert (await limiter.hit("anonymous", "ip:192.0.2.7", cost=4)).allowed  # hour 1, day 2

    refused = await limiter.hit("anonymous", "ip:192.0.2.7", cost=2)  # the hour has 1 left

    assert not refused.allowed
    assert (refused.limit, refused.remaining) == (5, 1)
    # Had the day window counted the refused 2, it would have 0 left and refuse this one.
    last = await limiter.hit("anonymous", "ip:192.0.2.7")
    assert last.allowed
    assert last.remaining == 0


@pytest.mark.parametrize(
    "spec",
    ["", "lots", "10/fortnight", "0/second", "10/second;0/minute", "10/second;junk"],
)
def test_an_invalid_limit_names_its_group(spec: str) -> None:
    with pytest.raises(ValueError, match="'read'"):
        RateLimiter({"submit": "10/second", "read": spec})


async def test_limit_strings_in_words_and_with_several_windows_are_accepted(
    make_limiter: LimiterFactory,
) -> None:
    limiter = make_limiter({"read": "2 per hour", "work": "100/second; 5000/minute"})

    assert (await limiter.hit("read", "k")).remaining == 1
    assert (await limiter.hit("work", "k")).limit == 100


def test_an_unsupported_storage_is_refused_without_its_credentials() -> None:
    with pytest.raises(ValueError, match="unsupported scheme 'memcached'") as raised:
        RateLimiter(GROUPS, "memcached://user:s3cret@cache:11211?password=s3cret")

    assert "s3cret" not in str(raised.value)


def test_a_malformed_redis_uri_is_refused() -> None:
    with pytest.raises(ValueError, match="rate-limit storage"):
        RateLimiter(GROUPS, "redis://localhost:notaport/0")


async def test_memory_storage_always_passes_its_check(make_limiter: LimiterFactory) -> None:
    make_limiter(GROUPS).check_storage()


async def test_an_unknown_group_or_a_cost_below_one_is_a_programming_error(
    make_limiter: LimiterFactory,
) -> None:
    limiter = make_limiter(GROUPS)

    with pytest.raises(KeyError, match="'uploads'"):
        await limiter.hit("uploads", "sub:alice")
    with pytest.raises(ValueError, match="at least 1"):
        await limiter.hit("submit", "sub:alice", cost=0)


def test_headers_of_an_allowed_request() -> None:
    decision = RateDecision(
        allowed=True, limit=100, remaining=41, reset_seconds=12.2, retry_after_seconds=0.0
    )

    assert rate_limit_headers(decision) == {
        "RateLimit-Limit": "100",
        "RateLimit-Remaining": "41",
        "RateLimit-Reset": "13",
    }


def test_headers_of_a_refused_request_carry_retry_after() -> None:
    decision = RateDecision(
        allowed=False, limit=100, remaining=0, reset_seconds=30.5, retry_after_seconds=30.5
    )

    headers = rate_limit_headers(decision)

    assert headers["Retry-After"] == "31"
    assert headers["RateLimit-Reset"] == "31"
    assert headers["RateLimit-Remaining"] == "0"


def test_retry_after_is_at_least_one_second() -> None:
    decision = RateDecision(
        allowed=False, limit=5, remaining=0, reset_seconds=0.0, retry_after_seconds=0.0
    )

    assert rate_limit_headers(decision)["Retry-After"] == "1"
    assert rate_limit_headers(decision)["RateLimit-Reset"] == "0"


async def test_headers_follow_real_decisions(make_limiter: LimiterFactory) -> None:
    limiter = make_limiter({"read": "2/hour"})

    allowed = rate_limit_headers(await limiter.hit("read", "k"))
    await limiter.hit("read", "k")
    refused = rate_limit_headers(await limiter.hit("read", "k"))

    assert allowed["RateLimit-Remaining"] == "1"
    assert "Retry-After" not in allowed
    assert refused["RateLimit-Remaining"] == "0"
    assert 1 <= int(refused["Retry-After"]) <= 3600


async def test_refusal_counts_like_hit_and_explains_only_a_refusal(
    make_limiter: LimiterFactory,
) -> None:
    limiter = make_limiter(GROUPS)
    # One window (submit: 3/hour) takes the one-operation path; admin has two windows.
    for group in ("submit", "admin"):
        assert [await limiter.refusal(group, "sub:alice") for _ in range(3)] == [None] * 3
        refused = await limiter.refusal(group, "sub:alice")
        assert refused is not None and not refused.allowed
        assert (refused.limit, refused.remaining) == (3, 0)
        assert refused.retry_after_seconds > 0
        assert (await limiter.hit(group, "sub:alice")).allowed is False
    assert await limiter.refusal("submit", "sub:bob", cost=3) is None
    assert await limiter.refusal("submit", "sub:carol", cost=4) is not None
    assert (await limiter.hit("submit", "sub:carol", cost=3)).allowed
