"""Cron schedules as the API returns them (`/v1/schedules`): a typed, frozen view."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from .models import JSON, parse_time


def _optional_time(text: str | None) -> datetime | None:
    return None if text is None else parse_time(text)


@dataclass(frozen=True, slots=True)
class Schedule:
    """A cron expression in a time zone that submits `task` to `queue` at each fire time."""

    id: str
    cron: str
    timezone: str
    queue: str
    task: Mapping[str, JSON]
    missed: str
    max_catch_up: int
    paused: bool
    next_run_at: datetime | None
    last_run_at: datetime | None
    last_task_id: str | None
    created_at: datetime
    updated_at: datetime

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Schedule:
        return cls(
            id=data["id"],
            cron=data["cron"],
            timezone=data["timezone"],
            queue=data["queue"],
            task=data["task"],
            missed=data["missed"],
            max_catch_up=data["max_catch_up"],
            paused=data["paused"],
            next_run_at=_optional_time(data.get("next_run_at")),
            last_run_at=_optional_time(data.get("last_run_at")),
            last_task_id=data.get("last_task_id"),
            created_at=parse_time(data["created_at"]),
            updated_at=parse_time(data["updated_at"]),
        )
