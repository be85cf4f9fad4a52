"""Cron expressions read in an IANA time zone: validation, and fire times as epoch ms.

Fire times are whole seconds. The calendar arithmetic, including daylight saving time,
is cronsim's; this module converts between its datetimes and integer milliseconds.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo, available_timezones

# cronsim rather than croniter: cronsim is one typed module without dependencies, built
# on zoneinfo, tested against Debian cron's behaviour at DST changes, reads an optional
# seconds field first (since 2.7), and is kept by Healthchecks.io, which runs on it.
# croniter's maintainer declared it abandoned in early 2025 (pallets-eco has kept it
# since); it ships no type hints and depends on python-dateutil.
from cronsim import CronSim, CronSimError

from app.core.errors import FieldError, InvalidInput

# `localtime` is whatever the host is set to, and a schedule must mean the same instants
# on every host; `Factory` is the tz database's placeholder for "no zone chosen".
_REFUSED_ZONES = frozenset({"localtime", "Factory"})

CRON_FIELDS = "5 fields `minute hour day-of-month month day-of-week`, or 6 with seconds first"


@functools.cache
def _known_zones() -> frozenset[str]:
    # available_timezones() walks the tz database (~15 ms); once per process is enough.
    return frozenset(available_timezones()) - _REFUSED_ZONES


def _seconds_floor(ms: int) -> int:
    return ms // 1000


@dataclass(frozen=True, slots=True)
class CronTimes:
    """One cron expression in one time zone."""

    expression: str
    zone: ZoneInfo

    def _iterate(self, from_second: int, reverse: bool = False) -> Iterator[int]:
        """Fire times (epoch seconds) strictly after `from_second` (before, in reverse).

        cronsim works on local wall-clock time for fixed-time expressions; starting inside
        a repeated hour (DST end) it can answer an instant on the wrong side of the start,
        so results that do not move in the asked direction are dropped.
        """
        start = datetime.fromtimestamp(from_second, tz=self.zone)
        last = from_second
        for moment in CronSim(self.expression, start, reverse=reverse):
            second = int(moment.timestamp())
            if (second < last) if reverse else (second > last):
                last = second
                yield second

    def next_after(self, ms: int) -> int | None:
        """The first fire time strictly after `ms`; None if none comes within 50 years."""
        for second in self._iterate(_seconds_floor(ms)):
            return second * 1000
        return None

    def latest_between(self, start_ms: int, end_ms: int, limit: int) -> list[int]:
        """The latest `limit` fire times in [start_ms, end_ms] (both included), oldest first."""
        first_second = -(-start_ms // 1000)  # a fire time at or after start_ms
        last_second = _seconds_floor(end_ms)
        if limit <= 0 or first_second > last_second:
            return []
        kept: list[int] = []
        for second in self._iterate(first_second - 1):
            if second > last_second:
                break
            if len(kept) == limit:
                # More than `limit` in the range (a long outage of a frequent schedule):
                # walk back from the end rather than forward through all of them.
                return self._latest_backwards(first_second, last_second, limit)
            kept.append(second)
        return [second * 1000 for second in kept]

    def _latest_backwards(self, first_second: int, last_second: int, limit: int) -> list[int]:
        newest_first: list[int] = []
        for second in self._iterate(last_second + 1, reverse=True):
            if second < first_second or len(newest_first) == limit:
                break
            newest_first.append(second)
        return [second * 1000 for second in reversed(newest_first)]


def parse_zone(name: str, field: str = "body.timezone") -> ZoneInfo:
    """The IANA time zone `name`.

    Raises:
        InvalidInput: not a zone of the tz database (or a host-specific one).
    """
    if name not in _known_zones():
        raise InvalidInput(
            f"{name!r} is not an IANA time zone name (such as UTC or Europe/Berlin)",
            [FieldError(field, "unknown time zone")],
        )
    return ZoneInfo(name)


def parse_cron(
    expression: str,
    zone: ZoneInfo,
    now_ms: int,
    field: str = "body.cron",
) -> tuple[CronTimes, int]:
    """The expression in `zone` and its first fire time after `now_ms`.

    Raises:
        InvalidInput: the expression cannot be read, or it never fires (within 50 years).
    """
    try:
        times = CronTimes(expression, zone)
        first = times.next_after(now_ms)
    except CronSimError as exc:
        raise InvalidInput(
            f"cron {expression!r}: {exc} (expected {CRON_FIELDS})",
            [FieldError(field, f"{exc}; expected {CRON_FIELDS}")],
        ) from None
    except (ValueError, ArithmeticError) as exc:
        # cronsim reports what it recognises as CronSimError; anything else it raises on
        # odd input (a digit it cannot convert) is still the expression's fault.
        raise InvalidInput(
            f"cron {expression!r} cannot be read: {exc}",
            [FieldError(field, f"cannot be read; expected {CRON_FIELDS}")],
        ) from None
    if first is None:
        raise InvalidInput(
            f"cron {expression!r} matches no time in the next 50 years",
            [FieldError(field, "never fires")],
        )
    return times, first
