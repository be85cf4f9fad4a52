"""Python SDK for taskgate (clients and the runner harness); it talks to the HTTP API only.

`Client` (blocking) and `AsyncClient` cover every v1 operation; errors are in `errors`;
`Runner` runs handlers for claimed tasks (`Retry` and `Permanent` steer a failure).
"""

from ._http import Retries
from .client import AsyncClient, Client
from .errors import (
    ApiError,
    BadRequest,
    ClientError,
    Conflict,
    LeaseLost,
    NotFound,
    RateLimited,
    ServerUnavailable,
    TransportError,
    WaitTimeout,
)
from .events import EventsMissed, TaskEvent
from .execution import Permanent, Retry
from .models import (
    BatchItem,
    BatchResult,
    FieldError,
    HeartbeatResult,
    Lease,
    Priority,
    Problem,
    RetryPolicy,
    Task,
    TaskError,
    TaskPage,
    TaskSpec,
    TaskState,
    Worker,
    WorkerInfo,
    WorkerLease,
)
from .queues import Delivery, Queue, QueueConfig, QueueCounts, Webhook, WebhookPatch
from .runner import Runner

__all__ = [
    "ApiError",
    "AsyncClient",
    "BadRequest",
    "BatchItem",
    "BatchResult",
    "Client",
    "ClientError",
    "Conflict",
    "Delivery",
    "EventsMissed",
    "FieldError",
    "HeartbeatResult",
    "Lease",
    "LeaseLost",
    "NotFound",
    "Permanent",
    "Priority",
    "Problem",
    "Queue",
    "QueueConfig",
    "QueueCounts",
    "RateLimited",
    "Retries",
    "Retry",
    "RetryPolicy",
    "Runner",
    "ServerUnavailable",
    "Task",
    "TaskError",
    "TaskEvent",
    "TaskPage",
    "TaskSpec",
    "TaskState",
    "TransportError",
    "WaitTimeout",
    "Webhook",
    "WebhookPatch",
    "Worker",
    "WorkerInfo",
    "WorkerLease",
]
