"""Typed, frozen views of tasks and workers as the API returns them, and of what a submit sends.

Queues and their delivery are in `runners.queues`. Timestamps are timezone-aware
`datetime`s in UTC; payloads and results stay plain JSON.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

JSON = Any
"""Any JSON value (dict, list, str, int, float, bool or None)."""


class TaskState(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    DEAD = "dead"
    CANCELLED = "cancelled"


TERMINAL_STATES = frozenset({TaskState.SUCCEEDED, TaskState.DEAD, TaskState.CANCELLED})


class Priority(StrEnum):
    HIGH = "high"
    NORMAL = "normal"
    LOW = "low"


def parse_time(text: str) -> datetime:
    """An RFC 3339 timestamp as an aware datetime in UTC (a naive one is taken as UTC)."""
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def _optional_time(text: str | None) -> datetime | None:
    return None if text is None else parse_time(text)


def format_time(moment: datetime) -> str:
    """RFC 3339 for an aware datetime.

    Raises:
        ValueError: `moment` is naive (its offset would be a guess).
    """
    if moment.tzinfo is None:
        raise ValueError("run_at must be timezone-aware (e.g. datetime.now(UTC))")
    return moment.isoformat()


@dataclass(frozen=True, slots=True)
class FieldError:
    """One invalid field of a request: where it is (e.g. `body.tasks[3].type`) and why."""

    field: str
    message: str


@dataclass(frozen=True, slots=True)
class Problem:
    """An RFC 9457 problem detail as the server sent it."""

    status: int
    type: str
    title: str
    detail: str | None = None
    request_id: str | None = None
    errors: tuple[FieldError, ...] = ()

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Problem:
        return cls(
            status=int(data["status"]),
            type=str(data.get("type", "about:blank")),
            title=str(data.get("title", "")),
            detail=data.get("detail"),
            request_id=data.get("request_id"),
            errors=tuple(FieldError(e["field"], e["message"]) for e in data.get("errors", ())),
        )


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Backoff before a retry: min(max_delay, initial_delay * factor^(n-1)), maybe jittered.

    On submit and configure, fields left as None take the queue's or server's default.
    """

    initial_delay_seconds: float | None = None
    factor: float | None = None
    max_delay_seconds: float | None = None
    jitter: bool | None = None

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> RetryPolicy:
        return cls(
            initial_delay_seconds=data.get("initial_delay_seconds"),
            factor=data.get("factor"),
            max_delay_seconds=data.get("max_delay_seconds"),
            jitter=data.get("jitter"),
        )

    def to_json(self) -> dict[str, Any]:
        return {
            name: getattr(self, name)
            for name in ("initial_delay_seconds", "factor", "max_delay_seconds", "jitter")
            if getattr(self, name) is not None
        }


@dataclass(frozen=True, slots=True)
class TaskError:
    """The error one failed attempt reported."""

    message: str
    type: str | None = None
    traceback: str | None = None
    attempt: int | None = None
    at: datetime | None = None

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> TaskError:
        return cls(
            message=data["message"],
            type=data.get("type"),
            traceback=data.get("traceback"),
            attempt=data.get("attempt"),
            at=_optional_time(data.get("at")),
        )


@dataclass(frozen=True, slots=True)
class Lease:
    """A claim's lease: send `token` with heartbeat/complete/fail before `expires_at`."""

    token: str
    expires_at: datetime

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Lease:
        return cls(token=data["token"], expires_at=parse_time(data["expires_at"]))


@dataclass(frozen=True, slots=True)
class Task:
    """A task as the server reports it; `lease` is set only on tasks returned by a claim."""

    id: str
    queue: str
    type: str
    payload: JSON
    priority: Priority
    state: TaskState
    attempts: int
    max_attempts: int
    run_at: datetime
    created_at: datetime
    updated_at: datetime
    result: JSON
    last_error: TaskError | None
    idempotency_key: str | None
    tags: tuple[str, ...]
    started_at: datetime | None = None
    finished_at: datetime | None = None
    lease_seconds: int | None = None
    lease_expires_at: datetime | None = None
    worker_id: str | None = None
    cancel_requested: bool = False
    errors: tuple[TaskError, ...] = ()
    retry: RetryPolicy | None = None
    lease: Lease | None = None

    @property
    def finished(self) -> bool:
        """Whether the task is in a terminal state (succeeded, dead or cancelled)."""
        return self.state in TERMINAL_STATES

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Task:
        last_error = data.get("last_error")
        retry = data.get("retry")
        lease = data.get("lease")
        return cls(
            id=data["id"],
            queue=data["queue"],
            type=data["type"],
            payload=data.get("payload"),
            priority=Priority(data["priority"]),
            state=TaskState(data["state"]),
            attempts=data["attempts"],
            max_attempts=data["max_attempts"],
            run_at=parse_time(data["run_at"]),
            created_at=parse_time(data["created_at"]),
            updated_at=parse_time(data["updated_at"]),
            result=data.get("result"),
            last_error=None if last_error is None else TaskError.from_json(last_error),
            idempotency_key=data.get("idempotency_key"),
            tags=tuple(data.get("tags", ())),
            started_at=_optional_time(data.get("started_at")),
            finished_at=_optional_time(data.get("finished_at")),
            lease_seconds=data.get("lease_seconds"),
            lease_expires_at=_optional_time(data.get("lease_expires_at")),
            worker_id=data.get("worker_id"),
            cancel_requested=bool(data.get("cancel_requested", False)),
            errors=tuple(TaskError.from_json(e) for e in data.get("errors", ())),
            retry=None if retry is None else RetryPolicy.from_json(retry),
            lease=None if lease is None else Lease.from_json(lease),
        )


@dataclass(frozen=True, slots=True)
class TaskSpec:
    """One task to submit (the `TaskSubmit` schema); None fields take the queue defaults."""

    type: str
    payload: JSON = None
    priority: Priority | str | None = None
    delay_seconds: float | None = None
    run_at: datetime | None = None
    max_attempts: int | None = None
    retry: RetryPolicy | None = None
    lease_seconds: int | None = None
    idempotency_key: str | None = None
    tags: Sequence[str] | None = None

    def to_json(self) -> dict[str, Any]:
        """The request body.

        Raises:
            ValueError: `run_at` is a naive datetime.
        """
        body: dict[str, Any] = {"type": self.type, "payload": self.payload}
        optional: dict[str, Any] = {
            "priority": None if self.priority is None else str(self.priority),
            "delay_seconds": self.delay_seconds,
            "run_at": None if self.run_at is None else format_time(self.run_at),
            "max_attempts": self.max_attempts,
            "retry": None if self.retry is None else self.retry.to_json(),
            "lease_seconds": self.lease_seconds,
            "idempotency_key": self.idempotency_key,
            "tags": None if self.tags is None else list(self.tags),
        }
        body.update((name, value) for name, value in optional.items() if value is not None)
        return body


@dataclass(frozen=True, slots=True)
class TaskPage:
    """One page of a task listing; pass `next_cursor` back as `cursor` for the next one."""

    tasks: tuple[Task, ...]
    next_cursor: str | None

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> TaskPage:
        return cls(tuple(Task.from_json(t) for t in data["tasks"]), data.get("next_cursor"))


@dataclass(frozen=True, slots=True)
class BatchItem:
    """The outcome of one batch item: 201 created, 200 replayed, or an error status."""

    index: int
    status: int
    task: Task | None = None
    error: Problem | None = None

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> BatchItem:
        task, error = data.get("task"), data.get("error")
        return cls(
            index=data["index"],
            status=data["status"],
            task=None if task is None else Task.from_json(task),
            error=None if error is None else Problem.from_json(error),
        )


@dataclass(frozen=True, slots=True)
class BatchResult:
    """One result per submitted item, in request order, and the totals."""

    results: tuple[BatchItem, ...]
    created: int
    existing: int
    rejected: int

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> BatchResult:
        return cls(
            results=tuple(BatchItem.from_json(item) for item in data["results"]),
            created=data["created"],
            existing=data["existing"],
            rejected=data["rejected"],
        )


@dataclass(frozen=True, slots=True)
class HeartbeatResult:
    """The extended lease, and whether someone asked to cancel the task."""

    task_id: str
    state: TaskState
    lease: Lease
    cancel_requested: bool

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> HeartbeatResult:
        return cls(
            task_id=data["task_id"],
            state=TaskState(data["state"]),
            lease=Lease.from_json(data["lease"]),
            cancel_requested=data["cancel_requested"],
        )


@dataclass(frozen=True, slots=True)
class WorkerLease:
    """A lease a worker holds right now."""

    task_id: str
    queue: str
    expires_at: datetime

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> WorkerLease:
        return cls(data["task_id"], data["queue"], parse_time(data["expires_at"]))


@dataclass(frozen=True, slots=True)
class WorkerInfo:
    """What a worker says about itself with each claim (`WorkerInfo` in the spec).

    Every field is optional; the server keeps the latest claim's copy and shows it in
    `GET /v1/workers`.
    """

    host: str | None = None
    pid: int | None = None
    version: str | None = None
    sdk: str | None = None

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> WorkerInfo:
        return cls(
            host=data.get("host"),
            pid=data.get("pid"),
            version=data.get("version"),
            sdk=data.get("sdk"),
        )

    def to_json(self) -> dict[str, Any]:
        """The fields that are set (an unset field is left out, not sent as null)."""
        fields = {"host": self.host, "pid": self.pid, "version": self.version, "sdk": self.sdk}
        return {name: value for name, value in fields.items() if value is not None}


@dataclass(frozen=True, slots=True)
class Worker:
    """A worker as seen through its claims and heartbeats.

    `info` is what its latest claim said about it (None if it never sent any, or if the
    server predates worker info).
    """

    id: str
    first_seen_at: datetime
    last_seen_at: datetime
    alive: bool
    queues: tuple[str, ...]
    in_flight: int
    leases: tuple[WorkerLease, ...] = field(default=())
    info: WorkerInfo | None = None

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Worker:
        info = data.get("info")
        return cls(
            id=data["id"],
            first_seen_at=parse_time(data["first_seen_at"]),
            last_seen_at=parse_time(data["last_seen_at"]),
            alive=data["alive"],
            queues=tuple(data["queues"]),
            in_flight=data["in_flight"],
            leases=tuple(WorkerLease.from_json(lease) for lease in data["leases"]),
            info=None if info is None else WorkerInfo.from_json(info),
        )


@dataclass(frozen=True, slots=True)
class WorkItemResult:
    """One item of a batch complete/fail: recorded (status 200, `state`) or refused (`problem`)."""

    index: int
    task_id: str
    status: int
    state: TaskState | None = None
    problem: Problem | None = None

    @property
    def ok(self) -> bool:
        return self.status == 200

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> WorkItemResult:
        state = data.get("state")
        error = data.get("error")
        return cls(
            index=int(data["index"]),
            task_id=str(data["task_id"]),
            status=int(data["status"]),
            state=TaskState(state) if state is not None else None,
            problem=Problem.from_json(error) if error is not None else None,
        )
