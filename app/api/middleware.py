"""The one pure ASGI middleware at the edge: request ids, access log, request metrics,
header limits and security headers, in a single layer (each extra layer costs every
request a coroutine and a `send` wrapper: ~10% of a submit's throughput for two more
layers). It also calls the API's operations directly, found in the OperationTable,
rather than through Starlette's router and its exception layers; everything else goes
on to the router.
"""

from __future__ import annotations

import logging
import os
import re
import time

import orjson
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.api.header_limits import oversized_headers
from app.api.headers import with_security_headers
from app.api.operation_table import OperationTable
from app.api.problems import PROBLEM_MEDIA_TYPE, problem_body
from app.metrics.instruments import UNMATCHED_ROUTE, Metrics

log = logging.getLogger("taskgate.access")

REQUEST_ID_HEADER = b"x-request-id"
_ACCEPTABLE_ID = re.compile(rb"^[A-Za-z0-9._:-]{1,128}$")


def new_request_id() -> str:
    """32 random hex digits, the form of nginx's `$request_id` (a ULID took 4 us)."""
    return os.urandom(16).hex()


class RequestIdMiddleware:
    """Takes a sane incoming X-Request-ID or makes one; returns it; logs and counts the
    request; refuses oversized headers (431); adds the security headers to every answer;
    serves the operations of `operations` itself."""

    def __init__(self, app: ASGIApp, operations: OperationTable, metrics: Metrics) -> None:
        self.app = app
        self.operations = operations
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = next(
            (value for name, value in scope["headers"] if name == REQUEST_ID_HEADER), None
        )
        request_id = (
            incoming.decode() if incoming and _ACCEPTABLE_ID.match(incoming) else new_request_id()
        )
        scope["taskgate.request_id"] = request_id
        started = time.perf_counter()
        status = 0

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = with_security_headers(
                    [*message.get("headers", []), (REQUEST_ID_HEADER, request_id.encode())]
                )
            await send(message)

        try:
            problem = oversized_headers(scope["headers"])
            if problem is not None:
                await _refuse_headers(problem, request_id, send_with_id)
                return
            # With a root_path Starlette strips it before matching: leave that to the router.
            found = (
                None
                if scope.get("root_path")
                else self.operations.find(scope["method"], scope["path"])
            )
            if found is None:
                await self.app(scope, receive, send_with_id)
                return
            scope["path_params"] = found.path_params
            scope["taskgate.route"] = found.template
            response = await found.endpoint(Request(scope, receive, send_with_id))
            await response(scope, receive, send_with_id)
        finally:
            elapsed_s = time.perf_counter() - started
            self.metrics.request_done(_route_of(scope), scope["method"], status, elapsed_s)
            if log.isEnabledFor(logging.INFO):
                _log_request(scope, status, request_id, elapsed_s)


def _route_of(scope: Scope) -> str:
    """The path template the request matched, as a metrics label (never the raw path)."""
    template: str | None = scope.get("taskgate.route")
    if template is not None:
        return template
    # Not an operation of the table: Starlette's router notes the route it chose, if any
    # (the docs' assets, a 405, every route when a root_path is set).
    path = getattr(scope.get("route"), "path", None)
    return path if isinstance(path, str) else UNMATCHED_ROUTE


def _log_request(scope: Scope, status: int, request_id: str, elapsed_s: float) -> None:
    log.info(
        "%s %s %s",
        scope["method"],
        scope["path"],
        status,
        extra={
            "request_id": request_id,
            "method": scope["method"],
            "path": scope["path"],
            "status": status,
            "duration_ms": round(elapsed_s * 1000, 2),
            "client": (scope.get("client") or ("", 0))[0],
        },
    )


async def _refuse_headers(problem: str, request_id: str, send: Send) -> None:
    body = orjson.dumps(
        problem_body(
            431, "header-fields-too-large", "Request header fields too large", problem, request_id
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
