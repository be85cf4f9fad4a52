"""RFC 9457 problem+json responses; the one table from error class to HTTP status."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.responses import Response

from app.core import errors

# Most specific class first: the first match wins.
STATUS_BY_ERROR: tuple[tuple[type[errors.TaskgateError], int, str, str], ...] = (
    (errors.MalformedBody, 400, "malformed-body", "Malformed request body"),
    (errors.UnsupportedMediaType, 415, "unsupported-media-type", "Unsupported media type"),
    (errors.InvalidInput, 422, "invalid-input", "Invalid request"),
    (errors.Unauthenticated, 401, "unauthenticated", "Authentication required"),
    (errors.Forbidden, 403, "forbidden", "Forbidden"),
    (errors.NotFound, 404, "not-found", "Not found"),
    (errors.LeaseLost, 409, "lease-lost", "Lease lost"),
    (errors.IdempotencyMismatch, 409, "idempotency-mismatch", "Idempotency key reused"),
    (errors.Conflict, 409, "conflict", "Conflict"),
    (errors.BodyTooLarge, 413, "body-too-large", "Request body too large"),
    (errors.RateLimited, 429, "rate-limited", "Too many requests"),
    (errors.QuotaExceeded, 429, "quota-exceeded", "Quota exceeded"),
    (errors.StoreError, 503, "store-unavailable", "Database unavailable"),
)

PROBLEM_MEDIA_TYPE = "application/problem+json"


def problem_type(slug: str) -> str:
    return f"urn:taskgate:problem:{slug}"


def problem_body(
    status: int,
    slug: str,
    title: str,
    detail: str,
    request_id: str | None = None,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "type": problem_type(slug),
        "title": title,
        "status": status,
        "detail": detail,
    }
    if request_id:
        body["request_id"] = request_id
    if extra:
        body.update(extra)
    return body


def problem_response(
    status: int,
    slug: str,
    title: str,
    detail: str,
    request_id: str | None = None,
    headers: dict[str, str] | None = None,
    extra: dict[str, Any] | None = None,
) -> Response:
    return Response(
        orjson.dumps(problem_body(status, slug, title, detail, request_id, extra)),
        status_code=status,
        media_type=PROBLEM_MEDIA_TYPE,
        headers=headers,
    )


def describe_error(error: errors.TaskgateError) -> tuple[int, str, str]:
    """(status, slug, title) for a taskgate error."""
    for cls, status, slug, title in STATUS_BY_ERROR:
        if isinstance(error, cls):
            return status, slug, title
    return 500, "internal-error", "Internal server error"


def error_extra(error: errors.TaskgateError) -> dict[str, Any] | None:
    if isinstance(error, errors.InvalidInput) and error.errors:
        return {"errors": [{"field": e.field, "message": e.message} for e in error.errors]}
    return None


def error_response(error: errors.TaskgateError, request_id: str | None) -> Response:
    """The problem+json response for a taskgate error."""
    status, slug, title = describe_error(error)
    headers = {"Retry-After": "1"} if status in (429, 503) else None
    if error.headers:
        headers = {**(headers or {}), **error.headers}
    return problem_response(
        status, slug, title, error.detail, request_id, headers, error_extra(error)
    )
