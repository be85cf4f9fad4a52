"""The SDK's error tree: every failure of a client call is a `ClientError`.

ClientError
 ├── TransportError        no HTTP answer: connection refused or reset, timed out
 ├── WaitTimeout           `wait()` ran out of time before the task finished
 └── ApiError              the server answered with an RFC 9457 problem (4xx/5xx)
      ├── BadRequest       400 malformed body, 413 too large, 415 media type, 422 invalid
      ├── NotFound         404 no such task or queue
      ├── Conflict         409 conflicts with the task's state, or a claim on a push queue
      │    └── LeaseLost   409 `urn:taskgate:problem:lease-lost`: a stale lease token
      ├── RateLimited      429 too many requests (retried, honouring Retry-After)
      └── ServerUnavailable  503 the database is busy or down (retried, honouring Retry-After)
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .models import FieldError, Problem

if TYPE_CHECKING:
    from .models import Task

LEASE_LOST_TYPE = "urn:taskgate:problem:lease-lost"


class ClientError(Exception):
    """A taskgate client call failed."""


class TransportError(ClientError):
    """The server could not be reached or did not answer."""


class WaitTimeout(ClientError):
    """The task did not reach a terminal state in time; `task` is its last known state."""

    def __init__(self, task: Task) -> None:
        self.task = task
        super().__init__(f"task {task.id} is still {task.state} after the wait")


class ApiError(ClientError):
    """The server refused the request with a problem+json answer."""

    def __init__(
        self,
        status: int,
        type: str,
        title: str,
        detail: str | None = None,
        request_id: str | None = None,
        errors: tuple[FieldError, ...] = (),
    ) -> None:
        self.status = status
        self.type = type
        self.title = title
        self.detail = detail
        self.request_id = request_id
        self.errors = errors
        super().__init__(f"{status} {title}: {detail}" if detail else f"{status} {title}")

    @classmethod
    def from_problem(cls, problem: Problem) -> ApiError:
        """The most specific error class for `problem`, built from it."""
        error_class = _class_for(problem.status, problem.type)
        return error_class(
            problem.status,
            problem.type,
            problem.title,
            problem.detail,
            problem.request_id,
            problem.errors,
        )


class BadRequest(ApiError):
    """The request is malformed, too large or invalid (`errors` names each bad field)."""


class NotFound(ApiError):
    """No such task or queue."""


class Conflict(ApiError):
    """The request conflicts with the current state (finished task, reused key, push queue)."""


class LeaseLost(Conflict):
    """The lease token is stale: the task was claimed again or is no longer running."""


class RateLimited(ApiError):
    """Too many requests; retry after the server's Retry-After."""


class ServerUnavailable(ApiError):
    """The server's database is busy or unreachable; retry later."""


_CLASS_BY_STATUS: dict[int, type[ApiError]] = {
    400: BadRequest,
    404: NotFound,
    409: Conflict,
    413: BadRequest,
    415: BadRequest,
    422: BadRequest,
    429: RateLimited,
    503: ServerUnavailable,
}


def _class_for(status: int, problem_type: str) -> type[ApiError]:
    if status == 409 and problem_type == LEASE_LOST_TYPE:
        return LeaseLost
    return _CLASS_BY_STATUS.get(status, ApiError)
