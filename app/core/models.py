"""Domain records: tasks, queues, policies, workers and schedules, as the store hands them back."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum, StrEnum

from app.core.errors import TaskgateError


class Priority(IntEnum):
    """Claim order: lower value is claimed first."""

    high = 0
    normal = 1
    low = 2


class TaskState(StrEnum):
    queued = "queued"
    running = "running"
    succeeded = "succeeded"
    dead = "dead"
    cancelled = "cancelled"


class Delivery(StrEnum):
    """How a queue's tasks reach their handlers."""

    pull = "pull"  # workers claim them
    push = "push"  # the server POSTs each one to the queue's webhook


TERMINAL_STATES = frozenset({TaskState.succeeded, TaskState.dead, TaskState.cancelled})


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Exponential backoff: initial · factor^(n-1), capped, optionally with full jitter."""

    initial_delay_seconds: float = 1.0
    factor: float = 2.0
    max_delay_seconds: float = 300.0
    jitter: bool = True


@dataclass(frozen=True, slots=True)
class RetryPatch:
    """Some fields of a retry policy; the rest come from the policy it is applied to."""

    initial_delay_seconds: float | None = None
    factor: float | None = None
    max_delay_seconds: float | None = None
    jitter: bool | None = None

    def apply_to(self, base: RetryPolicy) -> RetryPolicy:
        """`base` with this patch's fields replaced."""
        return RetryPolicy(
            initial_delay_seconds=_first(self.initial_delay_seconds, base.initial_delay_seconds),
            factor=_first(self.factor, base.factor),
            max_delay_seconds=_first(self.max_delay_seconds, base.max_delay_seconds),
            jitter=base.jitter if self.jitter is None else self.jitter,
        )


def _first(value: float | None, fallback: float) -> float:
    return fallback if value is None else value


@dataclass(frozen=True, slots=True)
class QueueConfig:
    """A queue's effective defaults for its tasks."""

    max_attempts: int
    retry: RetryPolicy
    lease_seconds: int
    retention_seconds: int


@dataclass(frozen=True, slots=True)
class QueueOverrides:
    """What a queue sets itself; None means the server default."""

    max_attempts: int | None = None
    retry: RetryPatch | None = None
    lease_seconds: int | None = None
    retention_seconds: int | None = None

    def apply_to(self, defaults: QueueConfig) -> QueueConfig:
        """The effective configuration over the server defaults."""
        return QueueConfig(
            max_attempts=self.max_attempts or defaults.max_attempts,
            retry=self.retry.apply_to(defaults.retry) if self.retry else defaults.retry,
            lease_seconds=self.lease_seconds or defaults.lease_seconds,
            retention_seconds=(
                defaults.retention_seconds
                if self.retention_seconds is None
                else self.retention_seconds
            ),
        )


@dataclass(frozen=True, slots=True)
class Webhook:
    """A push queue's target and how hard to drive it."""

    url: str
    signing_secrets: tuple[str, ...]
    timeout_seconds: float = 30.0
    max_concurrency: int = 10
    max_dispatches_per_second: float | None = None
    retry_client_errors: bool = False


@dataclass(frozen=True, slots=True)
class DeliveryConfig:
    """A queue's delivery mode and its webhook (kept while the queue is back on pull)."""

    mode: Delivery = Delivery.pull
    webhook: Webhook | None = None


@dataclass(frozen=True, slots=True)
class PushQueue:
    """A running push queue, as the dispatcher needs it."""

    name: str
    webhook: Webhook
    config: QueueConfig


@dataclass(frozen=True, slots=True)
class PushClaim:
    """Tasks claimed for delivery; `limited`: the queue's limits held back due tasks."""

    tasks: list[Task]
    limited: bool


@dataclass(frozen=True, slots=True)
class ErrorReport:
    """A failure reported for one attempt."""

    type: str
    message: str
    traceback: str | None = None


@dataclass(frozen=True, slots=True)
class FailOrder:
    """One attempt to end with an error (an item of a batch fail)."""

    task_id: str
    lease_token: str
    error: ErrorReport
    retry: bool = True
    retry_after_ms: int | None = None


@dataclass(frozen=True, slots=True)
class NewTask:
    """A validated submission, before the store fills in queue defaults."""

    id: str
    queue: str
    type: str
    payload_json: str
    priority: Priority
    run_at_ms: int
    max_attempts: int | None
    retry: RetryPatch | None
    lease_seconds: int | None
    idempotency_key: str | None
    request_hash: str
    tags: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Task:
    """A task as stored. JSON fields stay JSON text until rendered."""

    id: str
    queue: str
    type: str
    payload_json: str
    priority: Priority
    state: TaskState
    attempts: int
    max_attempts: int
    retry: RetryPolicy | None
    lease_seconds: int
    run_at_ms: int
    created_at_ms: int
    updated_at_ms: int
    started_at_ms: int | None
    finished_at_ms: int | None
    lease_token: str | None
    lease_expires_at_ms: int | None
    worker_id: str | None
    cancel_requested: bool
    result_json: str | None
    errors_json: str
    idempotency_key: str | None
    tags: tuple[str, ...]

    @property
    def is_terminal(self) -> bool:
        return self.state in TERMINAL_STATES


@dataclass(frozen=True, slots=True)
class SubmitOutcome:
    """A submitted task and whether it was created now (False: idempotent replay)."""

    task: Task
    created: bool


@dataclass(frozen=True, slots=True)
class QueueCounts:
    due: int = 0
    scheduled: int = 0
    running: int = 0
    succeeded: int = 0
    dead: int = 0
    cancelled: int = 0

    @property
    def queued(self) -> int:
        return self.due + self.scheduled


@dataclass(frozen=True, slots=True)
class QueueInfo:
    """A queue with its live stats."""

    name: str
    paused: bool
    pause_reason: str | None
    overrides: QueueOverrides
    config: QueueConfig
    counts: QueueCounts
    oldest_due_age_ms: int | None
    delivery: DeliveryConfig = field(default_factory=DeliveryConfig)


@dataclass(frozen=True, slots=True)
class TaskEvent:
    """One task state change, in the order of `id` (see GET /v1/events)."""

    id: int
    at_ms: int
    queue: str
    task_id: str
    state: TaskState
    attempts: int


@dataclass(frozen=True, slots=True)
class EventPage:
    """Events after a point of the stream, and whether events right after it were dropped."""

    events: list[TaskEvent]
    # The newest event id (0 before any): where a stream asked to start "now" begins.
    last_id: int
    # Events after the asked id were deleted by retention: the client missed some.
    gap: bool


@dataclass(frozen=True, slots=True)
class QueueDepth:
    """What waits in a queue, as /metrics reports it: counts of the states that hold work
    (finished tasks are left out: their number grows with retention, counters cover them)."""

    queue: str
    paused: bool
    due: int
    scheduled: int
    running: int
    dead: int
    earliest_run_at_ms: int | None  # of any queued task, due or not

    def oldest_due_age_ms(self, now_ms: int) -> int:
        """How long the longest-waiting due task has been due (0 when none is due)."""
        if self.earliest_run_at_ms is None or self.earliest_run_at_ms > now_ms:
            return 0
        return now_ms - self.earliest_run_at_ms


@dataclass(frozen=True, slots=True)
class WorkerLease:
    task_id: str
    queue: str
    expires_at_ms: int


@dataclass(frozen=True, slots=True)
class WorkerInfo:
    """A worker as seen through its claims and heartbeats."""

    id: str
    first_seen_at_ms: int
    last_seen_at_ms: int
    queues: tuple[str, ...]
    leases: tuple[WorkerLease, ...] = field(default=())
    info: dict[str, object] | None = None


@dataclass(frozen=True, slots=True)
class TaskFilter:
    """Filters for listing tasks; `before_id` is the cursor (newest first)."""

    queue: str | None = None
    state: TaskState | None = None
    type: str | None = None
    tag: str | None = None
    before_id: str | None = None
    limit: int = 100


class MissedPolicy(StrEnum):
    """What a schedule does with fire times that passed unseen for longer than the grace."""

    skip = "skip"  # submit none of them
    run_once = "run_once"  # one task, for the latest of them
    run_all = "run_all"  # one task each, for at most the latest `max_catch_up`


@dataclass(frozen=True, slots=True)
class Schedule:
    """A cron schedule as stored. `task_json` is the task template (ScheduleTask) as JSON.

    `next_run_at_ms` is None while paused (or when the expression matches no later time);
    `revision` counts changes of the settings, not firings.
    """

    id: str
    cron: str
    timezone: str
    queue: str
    task_json: str
    missed: MissedPolicy
    max_catch_up: int
    paused: bool
    next_run_at_ms: int | None
    last_run_at_ms: int | None
    last_task_id: str | None
    revision: int
    created_at_ms: int
    updated_at_ms: int


@dataclass(frozen=True, slots=True)
class FireOrder:
    """Submit `tasks` (one per fire time, oldest first) and move the schedule's
    `next_run_at` on, only if the schedule still has `revision` and
    `expected_next_run_at_ms` (the row the plan was made from)."""

    schedule_id: str
    revision: int
    expected_next_run_at_ms: int
    next_run_at_ms: int | None
    fire_times_ms: tuple[int, ...]
    tasks: tuple[NewTask, ...]


@dataclass(frozen=True, slots=True)
class FireOutcome:
    """`fired` False: the compare-and-set lost (another process fired, or the schedule
    changed or went away); nothing was written. Else one outcome per task."""

    fired: bool
    outcomes: tuple[SubmitOutcome | TaskgateError, ...] = ()
