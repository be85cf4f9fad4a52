"""Domain records as the JSON shapes of the spec (Task, Queue, Worker, Schedule)."""

from __future__ import annotations

from typing import Any

import orjson

from app.core.clock import format_ms
from app.core.models import QueueInfo, RetryPolicy, Schedule, Task, Webhook, WorkerInfo
from app.dispatch.signing import SECRET_PREFIX


def _ts(ms: int | None) -> str | None:
    return None if ms is None else format_ms(ms)


def _retry(policy: RetryPolicy) -> dict[str, Any]:
    return {
        "initial_delay_seconds": policy.initial_delay_seconds,
        "factor": policy.factor,
        "max_delay_seconds": policy.max_delay_seconds,
        "jitter": policy.jitter,
    }


def _errors(errors_json: str) -> list[dict[str, Any]]:
    rendered = []
    for entry in orjson.loads(errors_json):
        at_ms = entry.pop("at_ms", None)
        if at_ms is not None:
            entry["at"] = format_ms(at_ms)
        rendered.append(entry)
    return rendered


def task_json(task: Task, with_lease: bool = False) -> dict[str, Any]:
    errors = _errors(task.errors_json)
    body: dict[str, Any] = {
        "id": task.id,
        "queue": task.queue,
        "type": task.type,
        "payload": orjson.Fragment(task.payload_json),
        "priority": task.priority.name,
        "state": task.state.value,
        "attempts": task.attempts,
        "max_attempts": task.max_attempts,
        "run_at": format_ms(task.run_at_ms),
        "created_at": format_ms(task.created_at_ms),
        "updated_at": format_ms(task.updated_at_ms),
        "started_at": _ts(task.started_at_ms),
        "finished_at": _ts(task.finished_at_ms),
        "lease_seconds": task.lease_seconds,
        "lease_expires_at": _ts(task.lease_expires_at_ms),
        "worker_id": task.worker_id,
        "cancel_requested": task.cancel_requested,
        "result": None if task.result_json is None else orjson.Fragment(task.result_json),
        "last_error": errors[-1] if errors else None,
        "errors": errors,
        "idempotency_key": task.idempotency_key,
        "tags": list(task.tags),
    }
    if task.retry is not None:
        body["retry"] = _retry(task.retry)
    if with_lease and task.lease_token is not None and task.lease_expires_at_ms is not None:
        body["lease"] = {
            "token": task.lease_token,
            "expires_at": format_ms(task.lease_expires_at_ms),
        }
    return body


def _mask_secret(secret: str) -> str:
    return f"{SECRET_PREFIX}…{secret[-4:]}"


def webhook_json(webhook: Webhook, reveal_secrets: bool) -> dict[str, Any]:
    """A webhook; its signing secrets in full only when `reveal_secrets`."""
    return {
        "url": webhook.url,
        "signing_secrets": [
            secret if reveal_secrets else _mask_secret(secret) for secret in webhook.signing_secrets
        ],
        "timeout_seconds": webhook.timeout_seconds,
        "max_concurrency": webhook.max_concurrency,
        "max_dispatches_per_second": webhook.max_dispatches_per_second,
        "retry_client_errors": webhook.retry_client_errors,
    }


def queue_json(info: QueueInfo, reveal_secrets: bool = False) -> dict[str, Any]:
    counts = info.counts
    webhook = info.delivery.webhook
    return {
        "name": info.name,
        "delivery": info.delivery.mode.value,
        "webhook": None if webhook is None else webhook_json(webhook, reveal_secrets),
        "paused": info.paused,
        "pause_reason": info.pause_reason,
        "counts": {
            "queued": counts.queued,
            "due": counts.due,
            "scheduled": counts.scheduled,
            "running": counts.running,
            "succeeded": counts.succeeded,
            "dead": counts.dead,
            "cancelled": counts.cancelled,
        },
        "oldest_due_age_seconds": None
        if info.oldest_due_age_ms is None
        else info.oldest_due_age_ms / 1000,
        "config": {
            "max_attempts": info.config.max_attempts,
            "retry": _retry(info.config.retry),
            "lease_seconds": info.config.lease_seconds,
            "retention_seconds": info.config.retention_seconds,
        },
    }


def worker_json(worker: WorkerInfo, now_ms: int, alive_window_ms: int) -> dict[str, Any]:
    return {
        "id": worker.id,
        "first_seen_at": format_ms(worker.first_seen_at_ms),
        "last_seen_at": format_ms(worker.last_seen_at_ms),
        "alive": now_ms - worker.last_seen_at_ms <= alive_window_ms,
        "queues": list(worker.queues),
        "info": worker.info,
        "in_flight": len(worker.leases),
        "leases": [
            {
                "task_id": lease.task_id,
                "queue": lease.queue,
                "expires_at": format_ms(lease.expires_at_ms),
            }
            for lease in worker.leases
        ],
    }


def schedule_json(schedule: Schedule) -> dict[str, Any]:
    return {
        "id": schedule.id,
        "cron": schedule.cron,
        "timezone": schedule.timezone,
        "queue": schedule.queue,
        "task": orjson.Fragment(schedule.task_json),
        "missed": schedule.missed.value,
        "max_catch_up": schedule.max_catch_up,
        "paused": schedule.paused,
        "next_run_at": _ts(schedule.next_run_at_ms),
        "last_run_at": _ts(schedule.last_run_at_ms),
        "last_task_id": schedule.last_task_id,
        "created_at": format_ms(schedule.created_at_ms),
        "updated_at": format_ms(schedule.updated_at_ms),
    }
