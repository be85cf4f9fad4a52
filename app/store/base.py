"""The Store protocol: everything the services need from a database backend.

Backends: app/store/sqlite.py (default), app/store/postgres.py (several hosts).
Every write method returns only after its commit: what it returns is durable.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from app.core.errors import TaskgateError
from app.core.models import (
    DeliveryConfig,
    ErrorReport,
    EventPage,
    FailOrder,
    FireOrder,
    FireOutcome,
    NewTask,
    PushClaim,
    PushQueue,
    QueueDepth,
    QueueInfo,
    QueueOverrides,
    Schedule,
    SubmitOutcome,
    Task,
    TaskFilter,
    WorkerInfo,
)

# Sentinel-free patch: a field name maps to its new value (None = back to the default).
QueuePatch = dict[str, object]


class Store(Protocol):
    #: How many submit batches a process keeps in flight (None: no bound, the store
    #: groups concurrent writes itself). See `service/submit_batcher.py`.
    submit_writes_in_flight: int | None

    async def open(self) -> None:
        """Open connections and start background threads."""
        ...

    async def close(self) -> None:
        """Finish pending writes and release every connection."""
        ...

    async def ping(self) -> None:
        """Raises StoreError when the database does not answer."""
        ...

    def change_marker(self) -> int:
        """A number that changes whenever any process commits (cheap; for wake-ups)."""
        ...

    # Tasks
    async def submit(
        self, tasks: Sequence[NewTask], now_ms: int
    ) -> list[SubmitOutcome | TaskgateError]:
        """Create tasks, each on its own (per-item outcome); one commit for all."""
        ...

    async def get_task(self, task_id: str) -> Task | None:
        """The task, or None."""
        ...

    async def list_tasks(self, task_filter: TaskFilter) -> list[Task]:
        """Tasks matching the filter, newest first."""
        ...

    async def cancel(self, task_id: str, now_ms: int) -> Task:
        """Cancel a queued task, or request the cancel of a running one.

        Raises:
            NotFound: no such task.
            Conflict: the task has already finished.
        """
        ...

    async def claim(
        self,
        queue: str,
        worker_id: str,
        max_tasks: int,
        lease_seconds: int | None,
        types: Sequence[str] | None,
        now_ms: int,
        worker_info: dict[str, object] | None = None,
    ) -> list[Task]:
        """Lease up to `max_tasks` due tasks in priority order (none if paused).

        `worker_info` (what the worker says about itself) replaces the stored copy.

        Raises:
            Conflict: the queue delivers by push.
        """
        ...

    async def claim_push(
        self, queue: str, worker_id: str, max_tasks: int, lease_seconds: int, now_ms: int
    ) -> PushClaim:
        """Lease due tasks of a running push queue for delivery.

        Claims at most what the webhook's `max_concurrency` (tasks running in the queue,
        whoever holds them) and `max_dispatches_per_second` (a token bucket kept in the
        database) allow, so the limits hold across processes and hosts.
        """
        ...

    async def release(self, task_id: str, lease_token: str, now_ms: int) -> Task:
        """Hand a leased task back, due now, without using up its attempt.

        A task whose cancel was requested is cancelled instead.

        Raises:
            NotFound: no such task.
            LeaseLost: the token is not the task's current lease.
        """
        ...

    async def heartbeat(
        self, task_id: str, lease_token: str, lease_seconds: int | None, now_ms: int
    ) -> Task:
        """Extend a lease.

        Raises:
            NotFound: no such task.
            LeaseLost: the token is not the task's current lease.
        """
        ...

    async def complete(self, task_id: str, lease_token: str, result_json: str, now_ms: int) -> Task:
        """Record the result; the task succeeds.

        Raises:
            NotFound: no such task.
            LeaseLost: the token is not the task's current lease.
        """
        ...

    async def complete_many(
        self, items: Sequence[tuple[str, str, str]], now_ms: int
    ) -> list[Task | TaskgateError]:
        """Complete (task_id, lease_token, result_json) items each on its own; one commit."""
        ...

    async def fail_many(
        self, items: Sequence[FailOrder], now_ms: int
    ) -> list[Task | TaskgateError]:
        """Fail items each on its own (per-item outcome); one commit."""
        ...

    async def fail(
        self,
        task_id: str,
        lease_token: str,
        error: ErrorReport,
        retry: bool,
        retry_after_ms: int | None,
        now_ms: int,
    ) -> Task:
        """End the attempt: queued again with backoff, dead, or cancelled.

        Raises:
            NotFound: no such task.
            LeaseLost: the token is not the task's current lease.
        """
        ...

    async def next_due_ms(self, queue: str) -> int | None:
        """When the queue's earliest queued task is due (None when none is queued)."""
        ...

    async def has_claimable(self, queue: str, types: Sequence[str] | None, now_ms: int) -> bool:
        """Whether a claim with these types would get a task now (read only)."""
        ...

    # Queues
    async def get_queue(self, name: str, now_ms: int) -> QueueInfo | None:
        """A queue with live stats, or None."""
        ...

    async def list_queues(self, now_ms: int) -> list[QueueInfo]:
        """Every queue with live stats."""
        ...

    async def queue_depths(self, now_ms: int) -> list[QueueDepth]:
        """Every queue's waiting work (due, scheduled, running, dead; the earliest run_at),
        cheap enough to read on every metrics scrape."""
        ...

    async def list_push_queues(self) -> list[PushQueue]:
        """Push queues that are not paused, with their webhook and effective config."""
        ...

    async def configure_queue(
        self,
        name: str,
        overrides: QueueOverrides,
        fields: frozenset[str],
        now_ms: int,
        delivery: DeliveryConfig | None = None,
    ) -> QueueInfo:
        """Set the named `fields` of the queue's overrides (creating the queue), and its
        delivery when `delivery` is given (None keeps it)."""
        ...

    async def set_paused(
        self, name: str, paused: bool, reason: str | None, now_ms: int
    ) -> QueueInfo:
        """Pause or resume a queue (creating it)."""
        ...

    async def list_dead(self, queue: str, before_id: str | None, limit: int) -> list[Task]:
        """Dead tasks of a queue, newest first."""
        ...

    async def redrive(self, queue: str, task_ids: Sequence[str] | None, now_ms: int) -> int:
        """Queue dead tasks again (all when `task_ids` is None); how many moved."""
        ...

    async def purge_dead(self, queue: str) -> int:
        """Delete the queue's dead tasks; how many."""
        ...

    # Workers and upkeep
    async def list_workers(self, limit: int) -> list[WorkerInfo]:
        """Workers, most recently seen first, with their in-flight leases."""
        ...

    async def expire_leases(self, now_ms: int, limit: int) -> list[Task]:
        """End attempts whose lease ran out; returns the tasks as they now are."""
        ...

    async def delete_expired(self, now_ms: int, worker_retention_ms: int, limit: int) -> int:
        """Delete finished tasks past retention, stale idempotency keys and workers."""
        ...

    # Events
    async def events_after(self, after_id: int | None, queue: str | None, limit: int) -> EventPage:
        """Up to `limit` task events with ids above `after_id`, oldest first (on `queue`
        only, when given); with `after_id` None, none, and the newest id to start from."""
        ...

    async def delete_events_before(self, cutoff_ms: int, limit: int) -> int:
        """Delete up to `limit` events older than `cutoff_ms`; how many."""
        ...

    # Schedules
    async def create_schedule(self, schedule: Schedule, now_ms: int) -> Schedule:
        """Store a new schedule (revision 1, created and updated now).

        Raises:
            Conflict: a schedule with this id exists.
        """
        ...

    async def get_schedule(self, schedule_id: str) -> Schedule | None:
        """The schedule, or None."""
        ...

    async def list_schedules(self, after_id: str | None, limit: int) -> list[Schedule]:
        """Schedules by id, those after `after_id` (the cursor)."""
        ...

    async def update_schedule(self, schedule: Schedule, reschedule: bool, now_ms: int) -> Schedule:
        """Replace the settings of `schedule.id` if its revision is still `schedule.revision`;
        its `next_run_at` too when `reschedule` (else a concurrent fire's is kept).

        Raises:
            NotFound: no such schedule.
            Conflict: the schedule was changed since it was read.
        """
        ...

    async def delete_schedule(self, schedule_id: str, revision: int) -> None:
        """Delete the schedule if its revision is still `revision`.

        Raises:
            NotFound: no such schedule.
            Conflict: the schedule was changed since it was read.
        """
        ...

    async def due_schedules(self, now_ms: int, limit: int) -> list[Schedule]:
        """Schedules whose `next_run_at` is at or before now, earliest first (read only)."""
        ...

    async def fire_schedules(self, orders: Sequence[FireOrder], now_ms: int) -> list[FireOutcome]:
        """For each order, atomically: move the schedule's `next_run_at` on by a
        compare-and-set, and only if that wins, submit its tasks. One commit for all."""
        ...
