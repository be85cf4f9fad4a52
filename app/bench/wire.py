"""A minimal HTTP/1.1 keep-alive client on asyncio protocols: the load generator's wire.

It does only what the benchmark needs, at about 10 µs of CPU per request (the module
docstring of `app.bench` has the measurements against httpx and aiohttp): one request at
a time per connection, pre-encoded header blocks, bodies framed by `Content-Length` or
chunked, `Connection: close` honoured by reconnecting before the next request, TLS for
`https://` URLs.
"""

from __future__ import annotations

import asyncio
import ssl
from dataclasses import dataclass
from typing import Any, cast
from urllib.parse import urlsplit

import orjson

MAX_HEADER_BYTES = 64 * 1024
USER_AGENT = "taskgate-bench"


class WireError(Exception):
    """The connection broke or the server's answer was not HTTP/1.1 the client can read."""


@dataclass(frozen=True, slots=True)
class Response:
    status: int
    body: bytes
    keep_alive: bool

    def json(self) -> Any:
        return orjson.loads(self.body)


@dataclass(frozen=True, slots=True)
class Endpoint:
    """Where a server is and how to speak to it: host, port, TLS, path prefix, token."""

    host: str
    port: int
    tls: bool
    prefix: str
    token: str | None

    @classmethod
    def from_url(cls, url: str, token: str | None) -> Endpoint:
        """Raises: ValueError: not an http(s) URL."""
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"{url!r} is not an http:// or https:// URL")
        tls = parts.scheme == "https"
        return cls(
            host=parts.hostname,
            port=parts.port or (443 if tls else 80),
            tls=tls,
            prefix=parts.path.rstrip("/"),
            token=token,
        )

    def header_block(self) -> bytes:
        """The headers every request carries (after the request line, before the length)."""
        default_port = 443 if self.tls else 80
        host = self.host if self.port == default_port else f"{self.host}:{self.port}"
        lines = [f"Host: {host}", f"User-Agent: {USER_AGENT}", "Accept: application/json"]
        if self.token:
            lines.append(f"Authorization: Bearer {self.token}")
        return ("\r\n".join(lines) + "\r\n").encode("latin-1")


class _Protocol(asyncio.Protocol):
    """Reads one response at a time into the future of the request waiting for it."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self._buffer = bytearray()
        self._waiter: asyncio.Future[Response] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement asyncio.Transport without subclassing it.
        self.transport = cast(asyncio.Transport, transport)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_exception(WireError(f"connection lost: {exc or 'closed by peer'}"))

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        if self._waiter is None or self._waiter.done():
            return
        try:
            response = parse_response(self._buffer)
        except WireError as exc:
            self._waiter.set_exception(exc)
            return
        if response is not None:
            self._waiter.set_result(response)

    def send(self, data: bytes) -> asyncio.Future[Response]:
        assert self.transport is not None
        self._waiter = asyncio.get_running_loop().create_future()
        self.transport.write(data)
        return self._waiter


def parse_response(buffer: bytearray) -> Response | None:
    """A complete response taken off the front of `buffer`, or None while it is partial."""
    head_end = buffer.find(b"\r\n\r\n")
    if head_end < 0:
        if len(buffer) > MAX_HEADER_BYTES:
            raise WireError("response headers too large")
        return None
    lines = bytes(buffer[:head_end]).split(b"\r\n")
    status_line = lines[0].split(b" ", 2)
    if len(status_line) < 2 or not status_line[0].startswith(b"HTTP/1."):
        raise WireError(f"not an HTTP/1.x response: {lines[0][:80]!r}")
    length: int | None = None
    chunked = False
    keep_alive = status_line[0] == b"HTTP/1.1"
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"content-length":
            length = int(value)
        elif name == b"transfer-encoding":
            chunked = b"chunked" in value.lower()
        elif name == b"connection":
            keep_alive = b"close" not in value.lower()
    body_start = head_end + 4
    status = int(status_line[1])
    if chunked:
        decoded = _decode_chunked(buffer, body_start)
        if decoded is None:
            return None
        body, end = decoded
    elif length is not None:
        end = body_start + length
        if len(buffer) < end:
            return None
        body = bytes(buffer[body_start:end])
    elif status in (204, 304) or 100 <= status < 200:
        body, end = b"", body_start
    else:
        raise WireError("a response without Content-Length or chunked framing")
    del buffer[:end]
    return Response(status=status, body=body, keep_alive=keep_alive)


def _decode_chunked(buffer: bytearray, start: int) -> tuple[bytes, int] | None:
    """The body of a complete chunked message and where it ends, or None while partial."""
    chunks: list[bytes] = []
    position = start
    while True:
        line_end = buffer.find(b"\r\n", position)
        if line_end < 0:
            return None
        size = int(bytes(buffer[position:line_end]).split(b";")[0], 16)
        position = line_end + 2
        if size == 0:
            trailer_end = buffer.find(b"\r\n\r\n", position - 2)
            return (b"".join(chunks), trailer_end + 4) if trailer_end >= 0 else None
        if len(buffer) < position + size + 2:
            return None
        chunks.append(bytes(buffer[position : position + size]))
        position += size + 2


class Connection:
    """One keep-alive connection to `endpoint`, reopened when the server closed it."""

    def __init__(self, endpoint: Endpoint, timeout_s: float = 60.0) -> None:
        self.endpoint = endpoint
        self.timeout_s = timeout_s
        self._headers = endpoint.header_block()
        self._protocol: _Protocol | None = None

    async def open(self) -> None:
        """Connect now (connections are otherwise opened by the first request)."""
        if self._protocol is not None and not self._protocol.closed:
            return
        context = ssl.create_default_context() if self.endpoint.tls else None
        loop = asyncio.get_running_loop()
        _, protocol = await loop.create_connection(
            _Protocol, self.endpoint.host, self.endpoint.port, ssl=context
        )
        self._protocol = protocol

    @property
    def local_port(self) -> int | None:
        """This end's TCP port (to find which server process accepted the connection)."""
        if self._protocol is None or self._protocol.transport is None:
            return None
        sockname = self._protocol.transport.get_extra_info("sockname")
        return int(sockname[1]) if sockname else None

    def encode(self, method: str, path: str, body: bytes | None = None) -> bytes:
        """The bytes of a request, for callers that send the same one many times."""
        head = f"{method} {self.endpoint.prefix}{path} HTTP/1.1\r\n".encode("latin-1")
        if body is None:
            return head + self._headers + b"\r\n"
        length = f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
        return head + self._headers + length.encode("latin-1") + body

    async def send(self, request: bytes) -> Response:
        """Send pre-encoded `request` and read its response.

        Raises:
            WireError: the connection broke, timed out or the answer was unreadable.
        """
        await self.open()
        assert self._protocol is not None
        try:
            response = await asyncio.wait_for(self._protocol.send(request), self.timeout_s)
        except TimeoutError as exc:
            self.close()
            raise WireError(f"no response within {self.timeout_s} s") from exc
        except WireError:
            self.close()
            raise
        if not response.keep_alive:
            self.close()
        return response

    async def request(self, method: str, path: str, payload: Any = None) -> Response:
        """Send one request with `payload` as JSON (None: no body). Raises: WireError."""
        body = None if payload is None else orjson.dumps(payload)
        return await self.send(self.encode(method, path, body))

    def close(self) -> None:
        if self._protocol is not None and self._protocol.transport is not None:
            self._protocol.transport.close()
        self._protocol = None
