"""The one error tree of taskgate; HTTP statuses for it live in app/api/problems.py.

TaskgateError
 ├── InvalidInput           the request breaks a rule (carries per-field errors)
 │    └── MalformedBody     the body is not JSON / not the right media type
 ├── Unauthenticated        no valid bearer token (401)
 ├── Forbidden              the token lacks the scope or the queue (403)
 ├── NotFound               no such task or queue
 ├── Conflict               the request conflicts with current state
 │    ├── LeaseLost         the lease token is stale or the task is not running
 │    └── IdempotencyMismatch  a key reused with a different request
 ├── QuotaExceeded          a size or count limit was exceeded
 │    ├── BodyTooLarge      the body exceeds the configured size limit
 │    └── RateLimited       the caller's request rate limit is used up
 └── StoreError             the database failed or is busy
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class FieldError:
    """One invalid field: where it is (e.g. `body.tasks[3].type`) and what is wrong."""

    field: str
    message: str


class TaskgateError(Exception):
    """Something went wrong in taskgate."""

    # Extra response headers (WWW-Authenticate, Retry-After, RateLimit-*).
    headers: dict[str, str] | None = None

    def __init__(self, detail: str | None = None) -> None:
        self.detail = detail or (self.__doc__ or "").strip()
        super().__init__(self.detail)


class Unauthenticated(TaskgateError):
    """A valid bearer token is required."""

    def __init__(self, detail: str | None = None, token_given: bool = False) -> None:
        super().__init__(detail)
        challenge = 'Bearer realm="taskgate"'
        if token_given:
            challenge += ', error="invalid_token"'
        self.headers = {"WWW-Authenticate": challenge}


class Forbidden(TaskgateError):
    """The token does not allow this operation."""

    def __init__(self, detail: str | None = None, scopes: tuple[str, ...] = ()) -> None:
        super().__init__(detail)
        challenge = 'Bearer realm="taskgate", error="insufficient_scope"'
        if scopes:
            challenge += f', scope="{" ".join(scopes)}"'
        self.headers = {"WWW-Authenticate": challenge}


class InvalidInput(TaskgateError):
    """The request is invalid."""

    def __init__(self, detail: str | None = None, errors: list[FieldError] | None = None) -> None:
        super().__init__(detail)
        self.errors = errors or []


class MalformedBody(InvalidInput):
    """The request body is not valid JSON."""


class UnsupportedMediaType(InvalidInput):
    """The request body must be sent as application/json."""


class NotFound(TaskgateError):
    """No such resource."""


class Conflict(TaskgateError):
    """The request conflicts with the current state."""


class LeaseLost(Conflict):
    """The lease token does not match the task's current lease."""


class IdempotencyMismatch(Conflict):
    """The idempotency key was already used with a different request."""


class QuotaExceeded(TaskgateError):
    """A size or count limit was exceeded."""


class BodyTooLarge(QuotaExceeded):
    """The request body is larger than the configured limit."""


class RateLimited(QuotaExceeded):
    """Too many requests; retry after the time given in Retry-After."""

    def __init__(self, detail: str, headers: dict[str, str]) -> None:
        super().__init__(detail)
        self.headers = headers


class StoreError(TaskgateError):
    """The database could not complete the operation; retry later."""
