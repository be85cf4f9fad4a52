"""Task state changes from `GET /v1/events`: the event types and the stream reader.

The server ends each stream after its long-poll limit; `follow_events` reconnects with
`Last-Event-ID` (the opening block's id before any event), so a caller sees one unbroken
sequence, and an `EventsMissed` where the server says events were dropped.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx
import orjson

from ._http import NOT_SENT, api_error
from .errors import TransportError
from .models import TaskState, parse_time

RECONNECT_SECONDS = 1.0


@dataclass(frozen=True, slots=True)
class TaskEvent:
    """One change of a task's state (`id` orders the stream)."""

    id: int
    task_id: str
    queue: str
    state: TaskState
    attempts: int
    at: datetime

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> TaskEvent:
        return cls(
            id=data["event_id"],
            task_id=data["task_id"],
            queue=data["queue"],
            state=TaskState(data["state"]),
            attempts=data["attempts"],
            at=parse_time(data["at"]),
        )


@dataclass(frozen=True, slots=True)
class EventsMissed:
    """Events after the point asked for were dropped (retention): re-read what matters."""

    reason: str


async def follow_events(
    http: httpx.AsyncClient,
    *,
    queue: str | None,
    after: int | None,
    follow: bool,
    read_timeout: float,
) -> AsyncIterator[TaskEvent | EventsMissed]:
    """The events after `after` (from now when None), across reconnects while `follow`.

    Raises:
        ApiError (refused, e.g. 401/403), TransportError (the server cannot be reached).
    """
    last = after
    params = {} if queue is None else {"queue": queue}
    while True:
        headers = {} if last is None else {"Last-Event-ID": str(last)}
        try:
            async with http.stream(
                "GET",
                "/v1/events",
                params=params,
                headers={**headers, "Accept": "text/event-stream"},
                timeout=httpx.Timeout(read_timeout, read=read_timeout + 30),
            ) as response:
                if not response.is_success:
                    await response.aread()
                    raise api_error(response)
                async for fields in _event_fields(response.aiter_lines()):
                    if "id" in fields:
                        last = int(fields["id"])
                    if fields.get("event") == "task":
                        yield TaskEvent.from_json(orjson.loads(fields["data"]))
                    elif fields.get("event") == "reset":
                        yield EventsMissed(orjson.loads(fields["data"])["reason"])
        except NOT_SENT as exc:
            raise TransportError(f"GET /v1/events: {exc!r}") from exc
        except httpx.RequestError:
            if not follow:
                raise
            # The stream broke off mid-way: resume after the last id seen.
        if not follow:
            return
        await asyncio.sleep(RECONNECT_SECONDS)


async def _event_fields(lines: AsyncIterator[str]) -> AsyncIterator[dict[str, str]]:
    """Each block of a text/event-stream as its fields (comments dropped)."""
    fields: dict[str, str] = {}
    async for line in lines:
        if line == "":
            if fields:
                yield fields
            fields = {}
        elif not line.startswith(":"):
            name, _, value = line.partition(":")
            fields[name] = value.removeprefix(" ")
    if fields:
        yield fields
