"""Pure ASGI middleware: requests with oversized headers are refused with 431 problem+json.

uvicorn's default HTTP parser buffers headers of any size before the app sees them, so
this does not protect the process's memory (nginx's `large_client_header_buffers` does,
see deploy/nginx/taskgate.conf); it keeps oversized headers out of the app, its logs and
its database whatever sits in front.
"""

from __future__ import annotations

import orjson
from starlette.types import ASGIApp, Receive, Scope, Send

from app.api.problems import PROBLEM_MEDIA_TYPE, problem_body

MAX_HEADER_BYTES = 8 * 1024  # one header's name and value
MAX_HEADERS_BYTES = 32 * 1024  # all of them
MAX_HEADER_COUNT = 100


def _too_large(headers: list[tuple[bytes, bytes]]) -> str | None:
    if len(headers) > MAX_HEADER_COUNT:
        return f"more than {MAX_HEADER_COUNT} header fields"
    total = 0
    for name, value in headers:
        size = len(name) + len(value)
        if size > MAX_HEADER_BYTES:
            shown = name.decode("latin-1")[:64]
            return f"the {shown!r} header is larger than {MAX_HEADER_BYTES} bytes"
        total += size
    if total > MAX_HEADERS_BYTES:
        return f"the headers are larger than {MAX_HEADERS_BYTES} bytes in all"
    return None


class HeaderLimitMiddleware:
    """Answers 431 before the app runs when the request's headers are too large."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        problem = _too_large(scope["headers"]) if scope["type"] == "http" else None
        if problem is None:
            await self.app(scope, receive, send)
            return
        body = orjson.dumps(
            problem_body(
                431,
                "header-fields-too-large",
                "Request header fields too large",
                problem,
                str(scope.get("taskgate.request_id", "")),
            )
        )
        await send(
            {
                "type": "http.response.start",
                "status": 431,
                "headers": [
                    (b"content-type", PROBLEM_MEDIA_TYPE.encode()),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})
