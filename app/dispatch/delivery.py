"""One webhook delivery: check the target, sign the body, POST it to the checked address.

The connection goes to an address the SSRF guard accepted (never to a fresh resolution of
the name): the URL is rewritten to that address, the `Host` header and the TLS server
name carry the original host, so certificates are still verified against it. Redirects
are not followed and proxies from the environment are ignored.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata
from urllib.parse import urlsplit, urlunsplit

import httpx
import orjson

from app.core.models import Task, Webhook
from app.dispatch.outcome import (
    Outcome,
    Refused,
    classify_response,
    transport_failure,
)
from app.dispatch.signing import signed_headers
from app.dispatch.ssrf import (
    DEFAULT_PORTS,
    AllowList,
    CheckedTarget,
    IPAddress,
    Resolver,
    TargetRejected,
    check_target,
)

log = logging.getLogger("taskgate.dispatch")

MAX_RESPONSE_BYTES = 1024 * 1024
# An idle pooled connection is dropped before the receiver would close it: servers close
# idle keep-alive connections after 2 s (gunicorn) to 5 s (uvicorn, Node.js), and a
# delivery sent on a connection the receiver is closing at that moment fails with a
# connection error and uses up an attempt. (httpx's own default is 5 s.)
KEEPALIVE_EXPIRY_S = 1.5


def user_agent() -> str:
    try:
        version = metadata.version("taskgate")
    except metadata.PackageNotFoundError:
        version = "0+unknown"
    return f"taskgate/{version}"


def delivery_body(task: Task) -> bytes:
    """The JSON body POSTed for a task."""
    return orjson.dumps(
        {
            "id": task.id,
            "queue": task.queue,
            "type": task.type,
            "payload": orjson.Fragment(task.payload_json),
            "attempt": task.attempts,
            "max_attempts": task.max_attempts,
            "tags": list(task.tags),
        }
    )


def _address_url(target: CheckedTarget, address: IPAddress) -> str:
    parts = urlsplit(target.url)
    host = f"[{address}]" if address.version == 6 else str(address)
    return urlunsplit((target.scheme, f"{host}:{target.port}", parts.path or "/", parts.query, ""))


def _host_header(target: CheckedTarget) -> str:
    host = f"[{target.host}]" if ":" in target.host else target.host
    if target.port == DEFAULT_PORTS[target.scheme]:
        return host
    return f"{host}:{target.port}"


@dataclass(frozen=True, slots=True)
class Attempt:
    """What one delivery did, for logs (and metrics)."""

    outcome: Outcome
    status: int | None
    seconds: float


class WebhookSender:
    """Delivers tasks of one push queue to its webhook over one connection pool."""

    def __init__(
        self, client: httpx.AsyncClient, webhook: Webhook, allow: AllowList, resolver: Resolver
    ) -> None:
        self._client = client
        self._webhook = webhook
        self._allow = allow
        self._resolver = resolver
        self._user_agent = user_agent()

    async def deliver(self, task: Task) -> Attempt:
        """POST the task once and classify the answer (never raises for HTTP trouble)."""
        started = time.monotonic()
        status: int | None = None
        try:
            target = await check_target(self._webhook.url, self._allow, self._resolver)
        except TargetRejected as exc:
            if exc.transient:
                outcome: Outcome = transport_failure("unresolvable", str(exc))
            else:
                outcome = Refused(f"{exc}; the queue was paused — fix the webhook and resume it")
            return Attempt(outcome, None, time.monotonic() - started)
        body = delivery_body(task)
        headers = {
            "content-type": "application/json",
            "user-agent": self._user_agent,
            "host": _host_header(target),
            **signed_headers(self._webhook.signing_secrets, task.id, datetime.now(UTC), body),
        }
        extensions = {"sni_hostname": target.host} if target.scheme == "https" else {}
        try:
            async with asyncio.timeout(self._webhook.timeout_seconds):
                status, outcome = await self._post(target, headers, body, extensions)
        except (httpx.TimeoutException, TimeoutError):
            outcome = transport_failure(
                "timeout", f"no answer from the webhook within {self._webhook.timeout_seconds:g} s"
            )
        except httpx.HTTPError as exc:
            outcome = transport_failure(
                "connection", f"could not reach the webhook: {type(exc).__name__}: {exc}"
            )
        return Attempt(outcome, status, time.monotonic() - started)

    async def _post(
        self,
        target: CheckedTarget,
        headers: dict[str, str],
        body: bytes,
        extensions: dict[str, str],
    ) -> tuple[int, Outcome]:
        last_error: httpx.ConnectError | None = None
        for address in target.addresses:
            request = self._client.build_request(
                "POST",
                _address_url(target, address),
                headers=headers,
                content=body,
                extensions={**extensions, "timeout": self._timeouts()},
            )
            try:
                response = await self._client.send(request, stream=True)
            except httpx.ConnectError as exc:
                last_error = exc
                continue
            try:
                payload = await _read_capped(response)
            finally:
                await response.aclose()
            outcome = classify_response(
                response.status_code,
                {name.lower(): value for name, value in response.headers.items()},
                payload,
                retry_client_errors=self._webhook.retry_client_errors,
                now_s=time.time(),
            )
            return response.status_code, outcome
        assert last_error is not None
        raise last_error

    def _timeouts(self) -> dict[str, float]:
        seconds = self._webhook.timeout_seconds
        return {"connect": seconds, "read": seconds, "write": seconds, "pool": seconds}


async def _read_capped(response: httpx.Response) -> bytes | None:
    """The body, or None when it is larger than MAX_RESPONSE_BYTES."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_bytes():
        size += len(chunk)
        if size > MAX_RESPONSE_BYTES:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def new_client(webhook: Webhook) -> httpx.AsyncClient:
    """A connection pool for one webhook: no redirects, no proxies from the environment."""
    return httpx.AsyncClient(
        follow_redirects=False,
        trust_env=False,
        timeout=webhook.timeout_seconds,
        limits=httpx.Limits(
            max_connections=webhook.max_concurrency,
            max_keepalive_connections=min(webhook.max_concurrency, 20),
            keepalive_expiry=KEEPALIVE_EXPIRY_S,
        ),
    )
