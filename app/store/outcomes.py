"""What both backends decide from the rows they read: which error a refused lease call
gets, when an idempotency key was reused for another request, and how a failed attempt
ends. Only the reading and writing differ between SQLite and PostgreSQL."""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any

import orjson

from app.core.errors import IdempotencyMismatch, LeaseLost, NotFound, TaskgateError
from app.core.lifecycle import decide_failure
from app.core.models import ErrorReport, NewTask, QueueConfig, Task, TaskState
from app.store.rows import task_from_row

# Keep the newest errors only: a task may have up to 1,000 attempts.
MAX_ERRORS_KEPT = 20


def lease_problem(task_id: str, row: Sequence[Any] | None) -> TaskgateError:
    """The error of a lease call its UPDATE did not match, given the task's row."""
    if row is None:
        return NotFound(f"task {task_id!r} does not exist")
    task = task_from_row(row)
    if task.state is not TaskState.running:
        return LeaseLost(
            f"task {task_id} is {task.state.value}, not running: this lease is no longer valid"
        )
    return LeaseLost(
        f"the lease token is not task {task_id}'s current lease (the lease expired and the "
        "task was claimed again, or the token is wrong); this call changed nothing"
    )


def check_same_request(new: NewTask, task_id: str, request_hash: str) -> None:
    """Raises IdempotencyMismatch when a live key was taken by a different request."""
    if request_hash != new.request_hash:
        raise IdempotencyMismatch(
            f"idempotency key {new.idempotency_key!r} was already used on queue "
            f"{new.queue!r} with a different request (task {task_id})"
        )


def end_attempt_params(
    task: Task,
    config: QueueConfig,
    error: ErrorReport,
    retry: bool,
    retry_after_ms: int | None,
    now_ms: int,
    rng: random.Random,
) -> dict[str, Any]:
    """The parameters of `task_end_attempt` for a running task whose attempt failed:
    its next state and due time, and its error list with this error appended."""
    outcome = decide_failure(
        attempts=task.attempts,
        max_attempts=task.max_attempts,
        retry_requested=retry,
        retry_after_ms=retry_after_ms,
        cancel_requested=task.cancel_requested,
        policy=task.retry or config.retry,
        now_ms=now_ms,
        rng=rng,
    )
    errors: list[Any] = orjson.loads(task.errors_json)
    errors.append(
        {
            "type": error.type,
            "message": error.message,
            "traceback": error.traceback,
            "attempt": task.attempts,
            "at_ms": now_ms,
        }
    )
    return {
        "id": task.id,
        "lease_token": task.lease_token,
        "state": outcome.state.value,
        "run_at": outcome.run_at_ms,
        "errors": orjson.dumps(errors[-MAX_ERRORS_KEPT:]).decode(),
        "now": now_ms,
    }
