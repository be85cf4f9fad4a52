"""Transports that record requests and inject faults before or after the real server."""

from __future__ import annotations

from collections.abc import Callable

import httpx

from runners import Retries

Fault = Callable[[httpx.Request], httpx.Response | None]
"""Returns a response to send instead of the server's, None to pass, or raises."""

# Tiny, jitter-free backoff: retry tests count attempts, never time.
FAST_RETRIES = Retries(attempts=3, backoff_seconds=0.0, jitter=False)


class ScriptedTransport(httpx.AsyncBaseTransport):
    """Records every request; runs `before` faults (in order) ahead of the real transport,
    and `after` faults once the real server has answered (to fake a lost response)."""

    def __init__(self, before: list[Fault] | None = None, after: list[Fault] | None = None) -> None:
        self.requests: list[httpx.Request] = []
        self._before = list(before or [])
        self._after = list(after or [])
        self._inner = httpx.AsyncHTTPTransport()

    def fail_next_requests(self, *faults: Fault) -> None:
        """Run `faults` on the next requests, before they reach the real server."""
        self._before.extend(faults)

    def fail_next_answers(self, *faults: Fault) -> None:
        """Run `faults` on the next answers of the real server."""
        self._after.extend(faults)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if self._before and (fake := self._before.pop(0)(request)) is not None:
            return fake
        response = await self._inner.handle_async_request(request)
        if self._after:
            await response.aread()
            fault = self._after.pop(0)
            if (fake := fault(request)) is not None:
                return fake
        return response

    async def aclose(self) -> None:
        await self._inner.aclose()


def unavailable(retry_after: str = "0") -> Fault:
    """A 503 problem as taskgate sends it when its database is busy."""

    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            503,
            headers={"Retry-After": retry_after, "Content-Type": "application/problem+json"},
            json={
                "type": "urn:taskgate:problem:store-unavailable",
                "title": "Database unavailable",
                "status": 503,
                "detail": "the database is busy",
            },
        )

    return answer


def bad_gateway(request: httpx.Request) -> httpx.Response:
    """nginx's answer when the app node it passed the request to died before answering."""
    return httpx.Response(502, headers={"Content-Type": "text/html"}, text="<h1>502</h1>")


def connection_reset(request: httpx.Request) -> httpx.Response:
    """The connection broke before an answer arrived."""
    raise httpx.ReadError("connection reset by peer", request=request)


class Partition(httpx.AsyncBaseTransport):
    """Passes requests to the real server, except those `blocks` matches while `active`:
    those fail to connect, as if the network between runner and server were cut."""

    def __init__(self, blocks: Callable[[httpx.Request], bool]) -> None:
        self.active = True
        self.requests: list[httpx.Request] = []
        self._blocks = blocks
        self._inner = httpx.AsyncHTTPTransport()

    def sent(self, operation: str) -> list[httpx.Request]:
        """The requests whose path ends with `/{operation}` (e.g. "complete")."""
        return [r for r in self.requests if r.url.path.endswith(f"/{operation}")]

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if self.active and self._blocks(request):
            raise httpx.ConnectError("partitioned from the server", request=request)
        return await self._inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self._inner.aclose()


def is_heartbeat(request: httpx.Request) -> bool:
    return request.url.path.endswith("/heartbeat")
