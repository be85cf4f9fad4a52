"""Maps database rows to domain records and domain values to column values.

Both backends store the same columns with the same meaning (times in ms, JSON as text),
so rows from SQLite and PostgreSQL convert alike.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson

from app.core.models import (
    Delivery,
    DeliveryConfig,
    MissedPolicy,
    NewTask,
    Priority,
    PushQueue,
    QueueConfig,
    QueueCounts,
    QueueDepth,
    QueueInfo,
    QueueOverrides,
    RetryPatch,
    RetryPolicy,
    Schedule,
    Task,
    TaskEvent,
    TaskState,
    Webhook,
    WorkerInfo,
    WorkerLease,
)

# Column order of `tasks` as created by the migrations; rows come from SELECT * / RETURNING *.
TASK_COLUMNS = (
    "id",
    "queue",
    "type",
    "payload",
    "priority",
    "state",
    "attempts",
    "max_attempts",
    "retry",
    "lease_seconds",
    "run_at",
    "created_at",
    "updated_at",
    "started_at",
    "finished_at",
    "lease_token",
    "lease_expires_at",
    "worker_id",
    "cancel_requested",
    "result",
    "errors",
    "idempotency_key",
    "tags",
)


def task_from_row(row: Sequence[Any]) -> Task:
    """A Task from a `tasks` row in TASK_COLUMNS order."""
    (
        task_id,
        queue,
        task_type,
        payload,
        priority,
        state,
        attempts,
        max_attempts,
        retry,
        lease_seconds,
        run_at,
        created_at,
        updated_at,
        started_at,
        finished_at,
        lease_token,
        lease_expires_at,
        worker_id,
        cancel_requested,
        result,
        errors,
        idempotency_key,
        tags,
    ) = row
    return Task(
        id=task_id,
        queue=queue,
        type=task_type,
        payload_json=payload,
        priority=Priority(priority),
        state=TaskState(state),
        attempts=attempts,
        max_attempts=max_attempts,
        retry=retry_from_json(retry),
        lease_seconds=lease_seconds,
        run_at_ms=run_at,
        created_at_ms=created_at,
        updated_at_ms=updated_at,
        started_at_ms=started_at,
        finished_at_ms=finished_at,
        lease_token=lease_token,
        lease_expires_at_ms=lease_expires_at,
        worker_id=worker_id,
        cancel_requested=bool(cancel_requested),
        result_json=result,
        errors_json=errors,
        idempotency_key=idempotency_key,
        tags=tuple(orjson.loads(tags)),
    )


def retry_to_json(policy: RetryPolicy | None) -> str | None:
    if policy is None:
        return None
    return orjson.dumps(
        {
            "initial_delay_seconds": policy.initial_delay_seconds,
            "factor": policy.factor,
            "max_delay_seconds": policy.max_delay_seconds,
            "jitter": policy.jitter,
        }
    ).decode()


def retry_from_json(text: str | None) -> RetryPolicy | None:
    if text is None:
        return None
    return retry_from_dict(orjson.loads(text))


def retry_from_dict(data: dict[str, Any]) -> RetryPolicy:
    return RetryPolicy(
        initial_delay_seconds=float(data["initial_delay_seconds"]),
        factor=float(data["factor"]),
        max_delay_seconds=float(data["max_delay_seconds"]),
        jitter=bool(data["jitter"]),
    )


def overrides_to_json(overrides: QueueOverrides) -> str:
    data: dict[str, Any] = {}
    if overrides.max_attempts is not None:
        data["max_attempts"] = overrides.max_attempts
    if overrides.retry is not None:
        patch = {
            name: getattr(overrides.retry, name)
            for name in ("initial_delay_seconds", "factor", "max_delay_seconds", "jitter")
            if getattr(overrides.retry, name) is not None
        }
        data["retry"] = patch
    if overrides.lease_seconds is not None:
        data["lease_seconds"] = overrides.lease_seconds
    if overrides.retention_seconds is not None:
        data["retention_seconds"] = overrides.retention_seconds
    return orjson.dumps(data).decode()


def overrides_from_json(text: str) -> QueueOverrides:
    data = orjson.loads(text)
    retry = data.get("retry")
    return QueueOverrides(
        max_attempts=data.get("max_attempts"),
        retry=RetryPatch(**retry) if retry is not None else None,
        lease_seconds=data.get("lease_seconds"),
        retention_seconds=data.get("retention_seconds"),
    )


def webhook_to_json(webhook: Webhook | None) -> str | None:
    if webhook is None:
        return None
    return orjson.dumps(
        {
            "url": webhook.url,
            "signing_secrets": list(webhook.signing_secrets),
            "timeout_seconds": webhook.timeout_seconds,
            "max_concurrency": webhook.max_concurrency,
            "max_dispatches_per_second": webhook.max_dispatches_per_second,
            "retry_client_errors": webhook.retry_client_errors,
        }
    ).decode()


def webhook_from_json(text: str | None) -> Webhook | None:
    if text is None:
        return None
    data = orjson.loads(text)
    return Webhook(
        url=data["url"],
        signing_secrets=tuple(data["signing_secrets"]),
        timeout_seconds=float(data["timeout_seconds"]),
        max_concurrency=int(data["max_concurrency"]),
        max_dispatches_per_second=data["max_dispatches_per_second"],
        retry_client_errors=bool(data["retry_client_errors"]),
    )


def delivery_from_row(mode: str, webhook_json: str | None) -> DeliveryConfig:
    return DeliveryConfig(mode=Delivery(mode), webhook=webhook_from_json(webhook_json))


def event_from_row(row: Any) -> TaskEvent:
    event_id, at, queue, task_id, state, attempts = row
    return TaskEvent(
        id=event_id,
        at_ms=at,
        queue=queue,
        task_id=task_id,
        state=TaskState(state),
        attempts=attempts,
    )


# The columns of one row of `task_insert_many`, in order, and their names.
InsertValues = tuple[str, str, str, str, int, int, str | None, int, int, str]
INSERT_COLUMNS = (
    "id",
    "queue",
    "type",
    "payload",
    "priority",
    "max_attempts",
    "retry",
    "lease_seconds",
    "run_at",
    "tags",
)


def insert_values(new: NewTask, config: QueueConfig) -> InsertValues:
    """One row of `task_insert_many`: the task with the queue's defaults filled in."""
    return (
        new.id,
        new.queue,
        new.type,
        new.payload_json,
        int(new.priority),
        new.max_attempts or config.max_attempts,
        retry_to_json(new.retry.apply_to(config.retry) if new.retry else None),
        new.lease_seconds or config.lease_seconds,
        new.run_at_ms,
        orjson.dumps(list(new.tags)).decode(),
    )


def insert_params(new: NewTask, config: QueueConfig, now_ms: int) -> dict[str, Any]:
    """The parameters of `task_insert` (one task, with its idempotency key)."""
    return {
        **dict(zip(INSERT_COLUMNS, insert_values(new, config), strict=True)),
        "now": now_ms,
        "idempotency_key": new.idempotency_key,
    }


def inserted_task(new: NewTask, config: QueueConfig, now_ms: int) -> Task:
    """The task as `task_insert_many` stored it (what RETURNING would have read back)."""
    return Task(
        id=new.id,
        queue=new.queue,
        type=new.type,
        payload_json=new.payload_json,
        priority=new.priority,
        state=TaskState.queued,
        attempts=0,
        max_attempts=new.max_attempts or config.max_attempts,
        retry=new.retry.apply_to(config.retry) if new.retry else None,
        lease_seconds=new.lease_seconds or config.lease_seconds,
        run_at_ms=new.run_at_ms,
        created_at_ms=now_ms,
        updated_at_ms=now_ms,
        started_at_ms=None,
        finished_at_ms=None,
        lease_token=None,
        lease_expires_at_ms=None,
        worker_id=None,
        cancel_requested=False,
        result_json=None,
        errors_json="[]",
        idempotency_key=None,
        tags=new.tags,
    )


def schedule_from_row(row: Sequence[Any]) -> Schedule:
    """A Schedule from a `schedules` row (SELECT * / RETURNING *, column order of 0004)."""
    (
        schedule_id,
        cron,
        timezone,
        queue,
        task_json,
        missed,
        max_catch_up,
        paused,
        next_run_at,
        last_run_at,
        last_task_id,
        revision,
        created_at,
        updated_at,
    ) = row
    return Schedule(
        id=schedule_id,
        cron=cron,
        timezone=timezone,
        queue=queue,
        task_json=task_json,
        missed=MissedPolicy(missed),
        max_catch_up=max_catch_up,
        paused=bool(paused),
        next_run_at_ms=next_run_at,
        last_run_at_ms=last_run_at,
        last_task_id=last_task_id,
        revision=revision,
        created_at_ms=created_at,
        updated_at_ms=updated_at,
    )


def queue_info_from_rows(
    row: Sequence[Any],
    counts: dict[str, int],
    due: int,
    oldest_due_ms: int | None,
    defaults: QueueConfig,
    now_ms: int,
) -> QueueInfo:
    """A QueueInfo from a `queue_get` row, its tasks per state and its due-task stats."""
    name, paused, pause_reason, overrides_json, delivery, webhook_json = row
    overrides = overrides_from_json(overrides_json)
    return QueueInfo(
        name=name,
        paused=bool(paused),
        pause_reason=pause_reason,
        overrides=overrides,
        config=overrides.apply_to(defaults),
        counts=QueueCounts(
            due=due,
            scheduled=counts.get("queued", 0) - due,
            running=counts.get("running", 0),
            succeeded=counts.get("succeeded", 0),
            dead=counts.get("dead", 0),
            cancelled=counts.get("cancelled", 0),
        ),
        oldest_due_age_ms=None if oldest_due_ms is None else max(now_ms - oldest_due_ms, 0),
        delivery=delivery_from_row(delivery, webhook_json),
    )


def queue_depth_from_row(row: Sequence[Any]) -> QueueDepth:
    """A QueueDepth from a `queue_depths` row."""
    name, paused, queued, due, running, dead, earliest = row
    return QueueDepth(
        queue=name,
        paused=bool(paused),
        due=due,
        scheduled=queued - due,
        running=running,
        dead=dead,
        earliest_run_at_ms=earliest,
    )


def push_queue_from_row(row: Sequence[Any], defaults: QueueConfig) -> PushQueue:
    """A PushQueue from a `push_queues` row (which has a webhook)."""
    name, overrides_json, webhook_json = row
    webhook = webhook_from_json(webhook_json)
    assert webhook is not None
    return PushQueue(
        name=name, webhook=webhook, config=overrides_from_json(overrides_json).apply_to(defaults)
    )


def workers_from_rows(
    worker_rows: Sequence[Sequence[Any]], lease_rows: Sequence[Sequence[Any]]
) -> list[WorkerInfo]:
    """WorkerInfos from `worker_list` rows and the `worker_leases` rows of their leases."""
    leases: dict[str, list[WorkerLease]] = {}
    for worker_id, task_id, queue, expires_at in lease_rows:
        leases.setdefault(worker_id, []).append(WorkerLease(task_id, queue, expires_at))
    return [
        WorkerInfo(
            id=worker_id,
            first_seen_at_ms=first_seen,
            last_seen_at_ms=last_seen,
            queues=tuple(orjson.loads(queues)),
            leases=tuple(leases.get(worker_id, ())),
            info=None if info is None else orjson.loads(info),
        )
        for worker_id, first_seen, last_seen, queues, info in worker_rows
    ]
