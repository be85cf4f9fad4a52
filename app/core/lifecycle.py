"""The task state machine: which transitions exist and what a failure leads to."""

from __future__ import annotations

import random
from dataclasses import dataclass

from app.core.models import RetryPolicy, TaskState
from app.core.retry import backoff_ms

# (from, to) pairs that the store may perform; anything else is a bug.
TRANSITIONS: frozenset[tuple[TaskState, TaskState]] = frozenset(
    {
        (TaskState.queued, TaskState.running),  # claim
        (TaskState.queued, TaskState.cancelled),  # cancel while queued
        (TaskState.running, TaskState.succeeded),  # complete
        (TaskState.running, TaskState.queued),  # fail with retry, or lease expired
        (TaskState.running, TaskState.dead),  # fail without retry / attempts used up
        (TaskState.running, TaskState.cancelled),  # fail or expiry after a cancel request
        (TaskState.dead, TaskState.queued),  # redrive
    }
)


def can_transition(source: TaskState, target: TaskState) -> bool:
    """Whether the state machine allows `source → target`."""
    return (source, target) in TRANSITIONS


@dataclass(frozen=True, slots=True)
class FailureOutcome:
    """Where a failed attempt leads: the next state and, if queued, when it is due."""

    state: TaskState
    run_at_ms: int | None


def decide_failure(
    *,
    attempts: int,
    max_attempts: int,
    retry_requested: bool,
    retry_after_ms: int | None,
    cancel_requested: bool,
    policy: RetryPolicy,
    now_ms: int,
    rng: random.Random,
) -> FailureOutcome:
    """What happens to a running task whose attempt failed (or whose lease expired)."""
    if cancel_requested:
        return FailureOutcome(TaskState.cancelled, None)
    if not retry_requested or attempts >= max_attempts:
        return FailureOutcome(TaskState.dead, None)
    delay_ms = retry_after_ms if retry_after_ms is not None else backoff_ms(policy, attempts, rng)
    return FailureOutcome(TaskState.queued, now_ms + delay_ms)
