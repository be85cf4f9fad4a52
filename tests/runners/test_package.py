"""The public surface of `runners`, and its independence from the server package."""

from __future__ import annotations

import subprocess
import sys

import runners
from tests.e2e.harness import REPO_ROOT


def test_public_names() -> None:
    assert runners.__all__ == [
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
    assert all(hasattr(runners, name) for name in runners.__all__)


def test_runners_does_not_import_the_server() -> None:
    check = (
        "import runners, sys; "
        "assert not any(m == 'app' or m.startswith('app.') for m in sys.modules), "
        "sorted(m for m in sys.modules if m.startswith('app'))"
    )
    subprocess.run([sys.executable, "-c", check], cwd=REPO_ROOT, check=True)
