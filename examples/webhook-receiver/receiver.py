"""A receiver for taskgate push delivery: verify the signature, skip duplicates, run by type.

Run it from the repository root (see README.md next to this file):

    WEBHOOK_SECRET=whsec_... uvicorn --app-dir examples/webhook-receiver \\
        --factory receiver:create_app --port 9000
"""

from __future__ import annotations

import os
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Any

from standardwebhooks import Webhook, WebhookVerificationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

# How many delivered webhook-ids to remember. A sketch: a real receiver keeps them where
# every process and every restart can see them (a table with a unique key, Redis SETNX).
SEEN_LIMIT = 10_000


class InvalidPayload(Exception):
    """The task cannot succeed whatever we retry: answered 422, so taskgate marks it dead."""


def greet(payload: Any) -> dict[str, str]:
    """`greet`: {"name": "Ada"} -> {"greeting": "hello Ada"}."""
    name = payload.get("name", "world") if isinstance(payload, dict) else None
    if not isinstance(name, str):
        raise InvalidPayload("payload.name must be a string")
    return {"greeting": f"hello {name}"}


def add(payload: Any) -> dict[str, int | float]:
    """`sum`: {"numbers": [1, 2, 3]} -> {"sum": 6}."""
    numbers = payload.get("numbers") if isinstance(payload, dict) else None
    if not isinstance(numbers, list) or not all(
        isinstance(n, int | float) and not isinstance(n, bool) for n in numbers
    ):
        raise InvalidPayload("payload.numbers must be a list of numbers")
    return {"sum": sum(numbers)}


HANDLERS: dict[str, Callable[[Any], Any]] = {"greet": greet, "sum": add}


def problem(status: int, detail: str) -> JSONResponse:
    """An RFC 9457 problem response (taskgate keeps no result from a non-2xx answer)."""
    title = {401: "Unauthorized", 422: "Unprocessable Content"}[status]
    body = {"type": "about:blank", "title": title, "status": status, "detail": detail}
    return JSONResponse(body, status_code=status, media_type="application/problem+json")


def verify(verifiers: Sequence[Webhook], body: bytes, headers: dict[str, str]) -> Any:
    """The parsed body if any of our secrets signed it (several during a key rotation).

    Raises:
        WebhookVerificationError: headers missing, timestamp off by over 5 minutes, or no
            signature made with any of our secrets.
    """
    error = WebhookVerificationError("no signing secret configured")
    for verifier in verifiers:
        try:
            return verifier.verify(body, headers)
        except WebhookVerificationError as exc:
            error = exc
    raise error


def create_app(secrets: Sequence[str] | None = None) -> Starlette:
    """The receiver; secrets default to WEBHOOK_SECRET (comma-separated `whsec_...`).

    Raises:
        RuntimeError: no secret given and WEBHOOK_SECRET unset or empty.
    """
    if secrets is None:
        secrets = [s.strip() for s in os.environ.get("WEBHOOK_SECRET", "").split(",")]
    secrets = [s for s in secrets if s]
    if not secrets:
        raise RuntimeError("set WEBHOOK_SECRET to the queue's signing secret(s), comma-separated")
    verifiers = [Webhook(secret) for secret in secrets]
    seen: OrderedDict[str, Any] = OrderedDict()  # webhook-id -> the result we answered

    async def receive(request: Request) -> JSONResponse:
        # Verify the raw bytes: re-serialised JSON would not match the signature.
        body = await request.body()
        try:
            task = verify(verifiers, body, dict(request.headers))
        except WebhookVerificationError:
            return problem(401, "missing or invalid webhook signature")

        # webhook-id is the task id, the same on every redelivery: at-least-once
        # delivery means a task can arrive again after we already ran it.
        task_id = request.headers["webhook-id"]
        if task_id in seen:
            return JSONResponse(seen[task_id])

        handler = HANDLERS.get(task["type"])
        if handler is None:
            return problem(422, f"no handler for type {task['type']!r}")
        try:
            result = handler(task["payload"])
        except InvalidPayload as exc:
            return problem(422, str(exc))
        # Any other exception is a 500: taskgate retries the task with its backoff.

        seen[task_id] = result
        if len(seen) > SEEN_LIMIT:
            seen.popitem(last=False)
        return JSONResponse(result)  # a JSON answer becomes the task's result

    return Starlette(routes=[Route("/taskgate", receive, methods=["POST"])])
