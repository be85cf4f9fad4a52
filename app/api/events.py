"""Handler for GET /v1/events: task state changes as server-sent events."""

from __future__ import annotations

from collections.abc import AsyncIterator

import orjson
from starlette.responses import Response, StreamingResponse

from app.api.http import RequestContext
from app.core.clock import format_ms
from app.core.models import TaskEvent
from app.service.events import EventFeed, KeepAlive

# Reconnect after 1 s: the stream ends at the long-poll limit and is meant to be resumed.
# The opening's `id:` (with no data, so no event is dispatched) is where the stream
# starts: a client that reconnects before any event arrived resumes from there.
OPENING = b"retry: 1000\nid: %d\n\n"
RESET = b'event: reset\ndata: {"reason":"events after the given id were dropped"}\n\n'
KEEP_ALIVE = b": keep-alive\n\n"


def event_frame(event: TaskEvent) -> bytes:
    """One `task` event in the text/event-stream format."""
    data = orjson.dumps(
        {
            "event_id": event.id,
            "task_id": event.task_id,
            "queue": event.queue,
            "state": event.state.value,
            "attempts": event.attempts,
            "at": format_ms(event.at_ms),
        }
    )
    return b"id: %d\nevent: task\ndata: %s\n\n" % (event.id, data)


async def stream_events(ctx: RequestContext) -> Response:
    queue: str | None = ctx.params.get("queue")
    if queue is not None:
        ctx.require_queue(queue)
    header_id = ctx.params.get("Last-Event-ID")
    after: int | None = int(header_id) if header_id is not None else ctx.params.get("after")
    feed: EventFeed = ctx.services.events
    # Read where to start before answering, so that a database failure is a 503 problem
    # rather than a stream cut short after its 200.
    start = await feed.start(after)
    principal = ctx.principal
    wait_s = float(ctx.params.get("wait_seconds", 25))

    async def frames() -> AsyncIterator[bytes]:
        yield OPENING % start.cursor + (RESET if start.reset else b"")
        async for item in feed.follow(start.cursor, queue, wait_s):
            if isinstance(item, KeepAlive):
                yield KEEP_ALIVE
                continue
            visible = [
                e for e in item if not principal.restricted or principal.allows_queue(e.queue)
            ]
            if visible:
                yield b"".join(event_frame(event) for event in visible)

    return StreamingResponse(
        frames(),
        media_type="text/event-stream",
        # nginx must not buffer the stream (it honours X-Accel-Buffering per response).
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
