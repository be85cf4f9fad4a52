"""Request plumbing shared by handlers: bounded body reading, JSON in and out."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from app.auth.principal import UNAUTHENTICATED_ADMIN, Principal
from app.core.errors import BodyTooLarge, Forbidden, MalformedBody, NotFound, UnsupportedMediaType
from app.core.jsontext import dump_json


@dataclass(slots=True)
class RequestContext:
    """What a handler gets: the validated parameters and body, and the services."""

    request: Request
    params: dict[str, Any]
    body: Any
    request_id: str
    principal: Principal = UNAUTHENTICATED_ADMIN
    rate_group: str = "read"

    @property
    def services(self) -> Any:
        return self.request.app.state.services

    def require_queue(self, queue: str) -> None:
        """Refuse (403) a queue the token is not allowed on."""
        if not self.principal.allows_queue(queue):
            raise Forbidden(
                f"the token of {self.principal.subject!r} is not allowed on queue {queue!r}"
            )

    def visible(self, queue: str, task_id: str) -> None:
        """Hide (404) a task of a queue the token is not allowed on."""
        if not self.principal.allows_queue(queue):
            raise NotFound(f"task {task_id!r} does not exist")

    async def require_task(self, task_id: str) -> None:
        """For a token limited to some queues: 404 unless the task is on one of them."""
        if self.principal.restricted:
            task = await self.services.tasks.get(task_id)
            self.visible(task.queue, task.id)

    async def charge(self, cost: int) -> None:
        """Count `cost` more requests against the caller's rate limit (a batch's items)."""
        await self.request.app.state.guard.charge(
            self.rate_group, f"sub:{self.principal.subject}", cost
        )


async def read_body(request: Request, limit: int) -> bytes:
    """The whole body, refusing (413) as soon as it is known to exceed `limit`.

    Raises:
        BodyTooLarge: Content-Length or the bytes received exceed the limit.
    """
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise BodyTooLarge(f"the body is {declared} bytes; the limit is {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge(f"the body exceeds the limit of {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


# orjson turns integers beyond 64 bits into floats (silently losing digits); bodies that
# may hold one go through the stdlib parser, which keeps them exact.
_LONG_DIGIT_RUN = re.compile(rb"\d{19,}")


MAX_JSON_DEPTH = 64


def parse_json(raw: bytes, content_type: str | None) -> Any:
    """The JSON document in `raw`, nested at most MAX_JSON_DEPTH levels.

    Raises:
        UnsupportedMediaType: the content type is not JSON.
        MalformedBody: the bytes are not one valid JSON document, or nest too deep.
    """
    document = _parse(raw, content_type)
    # Fewer brackets than the limit cannot nest deeper than it: only then walk the tree.
    if raw.count(b"[") + raw.count(b"{") > MAX_JSON_DEPTH and _depth(document) > MAX_JSON_DEPTH:
        raise MalformedBody(f"the body nests deeper than {MAX_JSON_DEPTH} levels")
    return document


def _depth(document: Any) -> int:
    """How deeply arrays and objects nest (iteratively: no recursion limit to hit)."""
    deepest = 0
    stack = [(document, 1)]
    while stack:
        node, level = stack.pop()
        children = (
            node.values() if isinstance(node, dict) else node if isinstance(node, list) else None
        )
        if children is None:
            continue
        deepest = max(deepest, level)
        if deepest > MAX_JSON_DEPTH:
            return deepest
        stack.extend((child, level + 1) for child in children)
    return deepest


def _parse(raw: bytes, content_type: str | None) -> Any:
    media_type = (content_type or "").split(";", 1)[0].strip().lower()
    if media_type and media_type != "application/json" and not media_type.endswith("+json"):
        raise UnsupportedMediaType(
            f"send the body as application/json (got {media_type or 'no content type'})"
        )
    if _LONG_DIGIT_RUN.search(raw) is None:
        try:
            return orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise MalformedBody(f"the body is not valid JSON: {exc}") from None
    try:
        return json.loads(raw, parse_constant=_reject_constant)
    except (ValueError, UnicodeDecodeError) as exc:
        raise MalformedBody(f"the body is not valid JSON: {exc}") from None
    except RecursionError:
        raise MalformedBody(f"the body nests deeper than {MAX_JSON_DEPTH} levels") from None


class JSONResponse(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return dump_json(content)
