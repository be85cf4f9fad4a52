"""One request to taskgate: timeouts, retries with backoff, and problem+json as typed errors.

Which requests may be repeated is the caller's decision (see `runners.client`); this
module only applies it.
"""

from __future__ import annotations

import asyncio
import dataclasses
import random
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx

from .errors import ApiError, TransportError
from .models import Problem

# Answers that mean "nothing was done, come back later".
RETRY_STATUSES = frozenset({429, 503})
# A proxy's "the app node did not answer" (bad gateway, gateway timeout): the request may
# have reached a node and done its work, so these are retried only when repeatable.
GATEWAY_STATUSES = frozenset({502, 504})
# Failures where the request certainly never reached the server.
NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)


@dataclass(frozen=True, slots=True)
class Retries:
    """How often and how patiently the client retries (`runners.client` says when)."""

    attempts: int = 4
    """Tries in all, the first included; 1 turns retries off."""
    backoff_seconds: float = 0.2
    factor: float = 2.0
    max_backoff_seconds: float = 10.0
    jitter: bool = True

    def delay(self, retry_number: int, retry_after: float | None = None) -> float:
        """Seconds to sleep before retry `retry_number` (1 for the first retry)."""
        if retry_after is not None:
            return max(0.0, min(retry_after, self.max_backoff_seconds))
        ceiling = min(
            self.max_backoff_seconds, self.backoff_seconds * self.factor ** (retry_number - 1)
        )
        # "Equal jitter": keeps at least half the backoff so retries never bunch up at zero.
        return random.uniform(ceiling / 2, ceiling) if self.jitter else ceiling


class Session:
    """An `httpx.AsyncClient` for one server, sending requests with the retry rules."""

    def __init__(
        self,
        base_url: str,
        *,
        token: str | None,
        timeout: float,
        retries: Retries | None,
        transport: httpx.AsyncBaseTransport | None,
    ) -> None:
        headers = {"Accept": "application/json", "User-Agent": "taskgate-runners"}
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        self._timeout = timeout
        self._retries = retries or Retries()
        self._http = httpx.AsyncClient(
            base_url=base_url,
            headers=headers,
            timeout=timeout,
            transport=transport,
            follow_redirects=False,
        )

    @property
    def http(self) -> httpx.AsyncClient:
        """The underlying client (for streaming reads, which bypass the retry rules)."""
        return self._http

    @property
    def timeout(self) -> float:
        return self._timeout

    async def aclose(self) -> None:
        await self._http.aclose()

    async def request(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        params: Mapping[str, Any] | None = None,
        repeatable: bool = True,
        long_poll_seconds: float = 0.0,
    ) -> Any:
        """The decoded JSON of a 2xx answer.

        A failure to connect, a 429 and a 503 are retried for any request; a failure
        after the request may have been sent (a lost answer, a proxy's 502 or 504) only
        when `repeatable`.

        Raises:
            ApiError (its most specific subclass), TransportError.
        """
        timeout = httpx.Timeout(self._timeout, read=self._timeout + long_poll_seconds)
        retry_number = 0
        while True:
            retry_number += 1
            last_try = retry_number >= self._retries.attempts
            retry_after: float | None = None
            try:
                response = await self._http.request(
                    method, path, json=body, params=params, timeout=timeout
                )
            except NOT_SENT as exc:
                if last_try:
                    raise TransportError(f"{method} {path}: {exc!r}") from exc
            except httpx.RequestError as exc:
                if last_try or not repeatable:
                    raise TransportError(f"{method} {path}: {exc!r}") from exc
            else:
                if response.is_success:
                    return _json_of(response)
                error = api_error(response)
                status = response.status_code
                retried = status in RETRY_STATUSES or (repeatable and status in GATEWAY_STATUSES)
                if last_try or not retried:
                    raise error
                retry_after = _retry_after(response)
            await asyncio.sleep(self._retries.delay(retry_number, retry_after))


def _json_of(response: httpx.Response) -> Any:
    """The JSON body of a 2xx answer (None for 204 No Content).

    Raises:
        ApiError: the body is not JSON (say, a captive portal or a misrouted proxy).
    """
    if response.status_code == 204:
        return None
    try:
        return response.json()
    except ValueError as exc:
        detail = f"expected JSON, got {response.headers.get('content-type', 'no content type')}"
        raise ApiError(response.status_code, "about:blank", "Not JSON", detail) from exc


def segment(name: str) -> str:
    """`name` as one path segment (a `/` or `?` in an id must not change the route)."""
    return quote(name, safe="")


def api_error(response: httpx.Response) -> ApiError:
    """The typed error for a non-2xx answer (problem+json, or whatever a proxy sent)."""
    try:
        problem = Problem.from_json(response.json())
    except (ValueError, KeyError, TypeError):
        problem = Problem(
            status=response.status_code,
            type="about:blank",
            title=response.reason_phrase,
            detail=response.text[:500] or None,
        )
    if problem.request_id is None and "x-request-id" in response.headers:
        problem = dataclasses.replace(problem, request_id=response.headers["x-request-id"])
    return ApiError.from_problem(problem)


def _retry_after(response: httpx.Response) -> float | None:
    """`Retry-After` in seconds when it is a number (an HTTP date is left to the backoff)."""
    try:
        return float(response.headers["retry-after"])
    except (KeyError, ValueError):
        return None
