"""Limits on request headers: what makes a request's headers too large (answered 431).

uvicorn's default HTTP parser buffers headers of any size before the app sees them, so
this does not protect the process's memory (nginx's `large_client_header_buffers` does,
see deploy/nginx/taskgate.conf); it keeps oversized headers out of the app, its logs and
its database whatever sits in front.
"""

from __future__ import annotations

from collections.abc import Iterable

MAX_HEADER_BYTES = 8 * 1024  # one header's name and value
MAX_HEADERS_BYTES = 32 * 1024  # all of them
MAX_HEADER_COUNT = 100


def oversized_headers(headers: Iterable[tuple[bytes, bytes]]) -> str | None:
    """Why the headers are too large, or None when they are fine."""
    total = 0
    count = 0
    for name, value in headers:
        count += 1
        size = len(name) + len(value)
        if size > MAX_HEADER_BYTES:
            shown = name.decode("latin-1")[:64]
            return f"the {shown!r} header is larger than {MAX_HEADER_BYTES} bytes"
        total += size
    if count > MAX_HEADER_COUNT:
        return f"more than {MAX_HEADER_COUNT} header fields"
    if total > MAX_HEADERS_BYTES:
        return f"the headers are larger than {MAX_HEADERS_BYTES} bytes in all"
    return None
