"""Rate limits per caller and endpoint group, counted in process memory or in Redis.

The HTTP layer asks `RateLimiter.hit(group, key, cost)` and renders the `RateDecision` with
`rate_limit_headers`. Counting is done by `limits` (the engine under slowapi):

- Strategy: sliding-window-counter. It is O(1) per check in memory and in Redis (one Lua
  script), smooths the 2x bursts of fixed windows at boundaries, and refuses a hit that does
  not fit without consuming anything (fixed-window counts refused hits; moving-window keeps
  one entry per unit, 20,000 per key at "20000/second").
- slowapi's `Limiter` is not used to hold the strategy: its strategies are synchronous (it
  asserts a sync storage, so a `limits.aio` storage cannot be configured), and building one
  reads `.env` and `RATELIMIT_*` variables behind `Settings`' back. The HTTP layer calls
  `hit` itself, so slowapi's decorators and middleware have no part to play.
- redis:// goes through `limits.aio` over redis-py's asyncio client, on the event loop.
  Measured (2 cores, local redis-server, one check = read + hit, 64 concurrent): sync client
  via `asyncio.to_thread` 2.4-2.9k checks/s at ~450 us CPU per check; asyncio client
  7-7.5k checks/s at ~130 us CPU per check.
- memory:// counts with the same algorithm in `memory_windows.MemoryWindows`, a dict on the
  event loop: limits' synchronous `MemoryStorage` locks each key and restarts an expiry
  thread every 10 ms (24 us per submit, measured), and its asyncio `MemoryStorage` rescans
  every key on each loop iteration (0.8 ms per check with 10,000 live keys).

Failure policy: an unusable URI or limit string is a `ValueError` at construction;
`check_storage` fails start-up when Redis does not answer. Once running, a Redis error lets
requests through (fail open: availability of the API over exactness of a limit), skips Redis
for `STORAGE_RETRY_SECONDS`, and logs a warning at most once per `WARNING_INTERVAL_SECONDS`.
Keys are never logged.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import urlsplit, urlunsplit

import redis
import redis.asyncio
from limits import RateLimitItem, parse_many
from limits.aio.storage import RedisStorage as AsyncRedisStorage
from limits.aio.strategies import SlidingWindowCounterRateLimiter as AsyncSlidingWindow
from limits.errors import StorageError
from limits.util import WindowStats
from redis.asyncio.retry import Retry as AsyncRetry
from redis.backoff import NoBackoff
from redis.retry import Retry

from app.api.memory_windows import MemoryWindows

__all__ = [
    "RateDecision",
    "RateLimitStorageError",
    "RateLimiter",
    "rate_limit_headers",
]

log = logging.getLogger("taskgate.ratelimit")

# A request must not wait on a sick Redis: it is answered (fail open) after this long.
REDIS_TIMEOUT_SECONDS = 0.5
# After a storage error, requests skip the storage (fail open) this long before trying again,
# so a dead Redis costs one failed round trip per period, not one per request.
STORAGE_RETRY_SECONDS = 1.0
WARNING_INTERVAL_SECONDS = 60.0
# Namespace of the counters in a Redis that other applications may share.
REDIS_KEY_PREFIX = "taskgate:ratelimit"
# storage URI scheme -> the scheme redis-py understands
_REDIS_SCHEMES = {"redis": "redis", "rediss": "rediss", "redis+unix": "unix"}
_STORAGE_ERRORS = (StorageError, redis.RedisError, OSError)


class RateLimitStorageError(RuntimeError):
    """The rate-limit storage does not answer."""


@dataclass(frozen=True, slots=True)
class RateDecision:
    allowed: bool
    limit: int  # the limit of the window that decided
    remaining: int
    reset_seconds: float  # until the window resets
    retry_after_seconds: float  # 0 when allowed


def rate_limit_headers(decision: RateDecision) -> dict[str, str]:
    """RateLimit-Limit/-Remaining/-Reset (draft-ietf-httpapi-ratelimit-headers), and
    Retry-After when refused; all in whole seconds, rounded up."""
    headers = {
        "RateLimit-Limit": str(decision.limit),
        "RateLimit-Remaining": str(decision.remaining),
        "RateLimit-Reset": str(max(0, math.ceil(decision.reset_seconds))),
    }
    if not decision.allowed:
        headers["Retry-After"] = str(max(1, math.ceil(decision.retry_after_seconds)))
    return headers


class RateLimiter:
    """Counts hits per (group, key) against each group's limits; one per process."""

    def __init__(self, limits: Mapping[str, str], storage_uri: str = "memory://") -> None:
        """limits: group name -> limit string like "20000/second" or "100/second;5000/minute"
        (groups used: submit, work, read, admin, anonymous).

        Raises:
            ValueError: a limit string (the message names the group) or the storage URI is
                unusable.
        """
        self._limits = {group: _parse_limits(group, spec) for group, spec in limits.items()}
        self._windows = _open_windows(storage_uri)
        self._storage_skipped_until = 0.0
        self._storage_failing = False
        self._next_warning_at = 0.0

    async def hit(self, group: str, key: str, cost: int = 1) -> RateDecision:
        """Count `cost` against every window of `group` for `key`, all or nothing.

        Raises:
            KeyError: no limits configured for `group`.
            ValueError: `cost` is below 1.
        """
        items = self._limits.get(group)
        if items is None:
            raise KeyError(f"no rate limit configured for group {group!r}")
        if cost < 1:
            raise ValueError(f"rate-limit cost must be at least 1, got {cost}")
        if time.monotonic() < self._storage_skipped_until:
            return _unenforced(items, cost)
        try:
            decision = await self._decide(items, (group, key), cost)
        except _STORAGE_ERRORS as exc:
            self._storage_failed(exc)
            return _unenforced(items, cost)
        if self._storage_failing:
            self._storage_failing = False
            log.warning("rate-limit storage %s answers again; limits enforced", self._windows.name)
        return decision

    async def refusal(self, group: str, key: str, cost: int = 1) -> RateDecision | None:
        """Count like `hit`; None when allowed, else the refusing decision.

        The request path needs the window figures only to refuse: a group of one window is
        then counted with one storage operation instead of two (read, then hit).

        Raises:
            KeyError, ValueError: as `hit`.
        """
        items = self._limits.get(group)
        if items is None or len(items) != 1 or cost < 1:
            decision = await self.hit(group, key, cost)
            return None if decision.allowed else decision
        if time.monotonic() < self._storage_skipped_until:
            return None
        try:
            allowed = await self._windows.hit(items[0], group, key, cost=cost)
        except _STORAGE_ERRORS as exc:
            self._storage_failed(exc)
            return None
        if allowed:
            if self._storage_failing:
                self._storage_failing = False
                log.warning(
                    "rate-limit storage %s answers again; limits enforced", self._windows.name
                )
            return None
        decision = await self.hit(group, key, cost)
        return None if decision.allowed else decision

    def check_storage(self) -> None:
        """Verify that the storage answers; blocks up to REDIS_TIMEOUT_SECONDS (start-up only).

        Raises:
            RateLimitStorageError: Redis is down or unreachable. A deployment configured to
                share limits through Redis fails start-up rather than run unlimited unnoticed.
        """
        self._windows.check()

    async def close(self) -> None:
        """Release the storage's connections (and the memory storage's expiry timer)."""
        await self._windows.close()

    async def _decide(
        self, items: tuple[RateLimitItem, ...], identifiers: tuple[str, str], cost: int
    ) -> RateDecision:
        # Read every window first so that a hit refused by one window consumes nothing from
        # the others. Between the read and the hits another process may take the room; then
        # the hit is refused and the windows hit before it keep the cost (rare, conservative).
        stats = [await self._windows.get_window_stats(item, *identifiers) for item in items]
        now = time.time()
        windows = list(zip(items, stats, strict=True))
        short = [(item, window) for item, window in windows if window.remaining < cost]
        if short:
            # The window the caller has to wait longest for decides.
            item, window = max(short, key=lambda pair: _seconds_until_reset(pair[0], pair[1], now))
            wait = _seconds_until_reset(item, window, now)
            return RateDecision(False, item.amount, window.remaining, wait, wait)
        for item, window in windows:
            if not await self._windows.hit(item, *identifiers, cost=cost):
                wait = _seconds_until_reset(item, window, now)
                return RateDecision(False, item.amount, 0, wait, wait)
        item, window = min(windows, key=lambda pair: pair[1].remaining)
        reset = _seconds_until_reset(item, window, now)
        return RateDecision(True, item.amount, window.remaining - cost, reset, 0.0)

    def _storage_failed(self, exc: BaseException) -> None:
        now = time.monotonic()
        self._storage_skipped_until = now + STORAGE_RETRY_SECONDS
        self._storage_failing = True
        if now < self._next_warning_at:
            return
        self._next_warning_at = now + WARNING_INTERVAL_SECONDS
        cause = exc.storage_error if isinstance(exc, StorageError) else exc
        log.warning(
            "rate-limit storage %s failed (%s: %s); requests are let through unlimited "
            "(retrying every %.0f s, this warning repeats at most every %.0f s)",
            self._windows.name,
            type(cause).__name__,
            cause,
            STORAGE_RETRY_SECONDS,
            WARNING_INTERVAL_SECONDS,
        )


def _parse_limits(group: str, spec: str) -> tuple[RateLimitItem, ...]:
    try:
        items = parse_many(spec)
    except ValueError:
        raise ValueError(
            f"rate limit for {group!r}: cannot parse {spec!r} "
            "(expected e.g. '100/second' or '100/second;5000/minute')"
        ) from None
    for item in items:
        if item.amount < 1:
            raise ValueError(f"rate limit for {group!r}: {spec!r} must allow at least 1")
    return tuple(items)


def _seconds_until_reset(item: RateLimitItem, window: WindowStats, now: float) -> float:
    # An empty window reports "now": the hit about to be counted starts a whole window.
    if window.reset_time > now:
        return window.reset_time - now
    return float(item.get_expiry())


def _unenforced(items: tuple[RateLimitItem, ...], cost: int) -> RateDecision:
    """The decision while the storage fails: allowed, as if the window were fresh."""
    item = items[0]
    return RateDecision(
        True, item.amount, max(0, item.amount - cost), float(item.get_expiry()), 0.0
    )


class _Windows(Protocol):
    """The window operations of a `limits` strategy, awaited on the event loop."""

    name: str

    async def get_window_stats(self, item: RateLimitItem, *identifiers: str) -> WindowStats: ...

    async def hit(self, item: RateLimitItem, *identifiers: str, cost: int = 1) -> bool: ...

    def check(self) -> None: ...

    async def close(self) -> None: ...


class _RedisWindows:
    """limits' asyncio Redis strategy over a connection pool this object owns."""

    def __init__(self, storage_uri: str, redis_url: str) -> None:
        self.name = _redacted(storage_uri)
        self._redis_url = redis_url
        try:
            self._pool = redis.asyncio.ConnectionPool.from_url(
                redis_url,
                socket_connect_timeout=REDIS_TIMEOUT_SECONDS,
                socket_timeout=REDIS_TIMEOUT_SECONDS,
                # One immediate retry replaces a pooled connection Redis closed; no backoff
                # sleeps on the request path (redis-py's default sleeps up to seconds).
                retry=AsyncRetry(NoBackoff(), 1),
            )
        except ValueError as exc:
            raise ValueError(f"rate-limit storage {self.name}: {exc}") from None
        storage = AsyncRedisStorage(
            f"async+{storage_uri}",
            implementation="redispy",
            wrap_exceptions=True,
            key_prefix=REDIS_KEY_PREFIX,
            connection_pool=self._pool,  # type: ignore[arg-type]  # options are typed as scalars
        )
        self._strategy = AsyncSlidingWindow(storage)

    async def get_window_stats(self, item: RateLimitItem, *identifiers: str) -> WindowStats:
        return await self._strategy.get_window_stats(item, *identifiers)

    async def hit(self, item: RateLimitItem, *identifiers: str, cost: int = 1) -> bool:
        return await self._strategy.hit(item, *identifiers, cost=cost)

    def check(self) -> None:
        # A synchronous client of its own: the pool above belongs to the serving event loop.
        client = redis.Redis.from_url(
            self._redis_url,
            socket_connect_timeout=REDIS_TIMEOUT_SECONDS,
            socket_timeout=REDIS_TIMEOUT_SECONDS,
            retry=Retry(NoBackoff(), 0),
        )
        try:
            client.ping()
        except redis.RedisError as exc:
            raise RateLimitStorageError(
                f"rate-limit storage {self.name} does not answer: {exc}"
            ) from exc
        finally:
            client.close()

    async def close(self) -> None:
        await self._pool.aclose()


def _open_windows(storage_uri: str) -> _Windows:
    scheme = urlsplit(storage_uri).scheme
    if scheme == "memory":
        return MemoryWindows()
    if scheme in _REDIS_SCHEMES:
        redis_url = _REDIS_SCHEMES[scheme] + storage_uri.removeprefix(scheme)
        return _RedisWindows(storage_uri, redis_url)
    raise ValueError(
        f"rate-limit storage {_redacted(storage_uri)}: unsupported scheme {scheme!r} "
        "(use memory:// or redis://host:port/db, rediss://, redis+unix://)"
    )


def _redacted(uri: str) -> str:
    """The URI without credentials or query (which may carry a password)."""
    parts = urlsplit(uri)
    try:
        port = parts.port
    except ValueError:
        port = None
    host = parts.hostname or ""
    netloc = f"{host}:{port}" if port else host
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))
