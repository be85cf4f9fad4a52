"""Time as integer milliseconds since the epoch, behind a swappable clock for tests."""

from __future__ import annotations

import functools
import time
from datetime import UTC, datetime, timedelta
from typing import Protocol

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class Clock(Protocol):
    def now_ms(self) -> int:
        """Current time in milliseconds since the epoch."""
        ...


class SystemClock:
    """The wall clock."""

    def now_ms(self) -> int:
        """Current wall-clock time in milliseconds since the epoch."""
        return time.time_ns() // 1_000_000


class FixedClock:
    """A clock that moves only when told to (tests, simulations)."""

    def __init__(self, start_ms: int = 1_767_225_600_000) -> None:
        self.current_ms = start_ms

    def now_ms(self) -> int:
        """The clock's current reading."""
        return self.current_ms

    def advance(self, seconds: float) -> None:
        """Move the clock forward."""
        self.current_ms += round(seconds * 1000)


@functools.lru_cache(maxsize=4096)
def format_ms(ms: int) -> str:
    """RFC 3339 UTC with milliseconds, e.g. `2026-12-04T20:30:00.123Z`."""
    moment = datetime.fromtimestamp(ms // 1000, tz=UTC)
    # strftime's %Y does not zero-pad years before 1000; RFC 3339 needs four digits.
    return (
        f"{moment.year:04d}-{moment.month:02d}-{moment.day:02d}T"
        f"{moment.hour:02d}:{moment.minute:02d}:{moment.second:02d}.{ms % 1000:03d}Z"
    )


def parse_rfc3339_ms(text: str) -> int:
    """Milliseconds since the epoch for an RFC 3339 timestamp with an offset.

    Raises:
        ValueError: not a timestamp, or one without an offset.
    """
    moment = datetime.fromisoformat(text.replace("z", "Z").replace("Z", "+00:00"))
    if moment.tzinfo is None:
        raise ValueError("timestamp needs a UTC offset, e.g. 2026-12-04T20:30:00Z")
    return (moment - _EPOCH) // timedelta(milliseconds=1)
