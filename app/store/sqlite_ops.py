"""The SQLite write operations; each runs inside the group-commit transaction."""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from typing import Any

import apsw
import orjson

from app.core.errors import Conflict, NotFound, TaskgateError
from app.core.models import (
    DeliveryConfig,
    ErrorReport,
    NewTask,
    Priority,
    PushClaim,
    QueueConfig,
    QueueOverrides,
    SubmitOutcome,
    Task,
)
from app.store.outcomes import check_same_request, end_attempt_params, lease_problem
from app.store.rows import (
    insert_params,
    insert_values,
    inserted_task,
    overrides_from_json,
    overrides_to_json,
    task_from_row,
    webhook_from_json,
    webhook_to_json,
)

# Up to this many picked tasks are leased by one UPDATE each; more by one UPDATE over
# json_each (cheaper from about 8 on; measured 41 us for 1, 775 us for 100).
CLAIM_ONE_BY_ONE = 8


class SqliteWriteOps:
    """Write operations over one connection (the writer thread's)."""

    def __init__(
        self,
        queries: dict[str, str],
        defaults: QueueConfig,
        idempotency_window_ms: int,
        rng: random.Random,
    ) -> None:
        self._q = queries
        self._defaults = defaults
        self._idempotency_window_ms = idempotency_window_ms
        self._rng = rng
        # Queues ensured and read in the current write transaction (the write lock keeps
        # everyone else's changes out until it ends).
        self._queue_configs: dict[str, QueueConfig] = {}

    def forget_transaction(self) -> None:
        """Drop what was remembered: a transaction began, or a rollback undid writes."""
        self._queue_configs.clear()

    # -- queues ---------------------------------------------------------------------

    def queue_config(self, conn: apsw.Connection, queue: str, now_ms: int) -> QueueConfig:
        """Ensure the queue exists and return its effective configuration."""
        config = self._queue_configs.get(queue)
        if config is not None:
            return config
        conn.execute(self._q["queue_ensure"], {"name": queue, "now": now_ms})
        row: Any = conn.execute(self._q["queue_get"], {"name": queue}).fetchone()
        assert row is not None
        config = self._queue_configs[queue] = overrides_from_json(row[3]).apply_to(self._defaults)
        return config

    def configure_queue(
        self,
        conn: apsw.Connection,
        name: str,
        patch: QueueOverrides,
        fields: frozenset[str],
        now_ms: int,
        delivery: DeliveryConfig | None = None,
    ) -> None:
        self._queue_configs.pop(name, None)
        conn.execute(self._q["queue_ensure"], {"name": name, "now": now_ms})
        row: Any = conn.execute(self._q["queue_get"], {"name": name}).fetchone()
        current = overrides_from_json(row[3])
        merged = QueueOverrides(
            **{
                field: getattr(patch if field in fields else current, field)
                for field in ("max_attempts", "retry", "lease_seconds", "retention_seconds")
            }
        )
        conn.execute(
            self._q["queue_set_overrides"],
            {"name": name, "overrides": overrides_to_json(merged), "now": now_ms},
        )
        if delivery is not None:
            conn.execute(
                self._q["queue_set_delivery"],
                {
                    "name": name,
                    "delivery": delivery.mode.value,
                    "webhook": webhook_to_json(delivery.webhook),
                    "now": now_ms,
                },
            )

    def set_paused(
        self, conn: apsw.Connection, name: str, paused: bool, reason: str | None, now_ms: int
    ) -> None:
        conn.execute(self._q["queue_ensure"], {"name": name, "now": now_ms})
        conn.execute(
            self._q["queue_set_paused"],
            {
                "name": name,
                "paused": int(paused),
                "reason": reason if paused else None,
                "now": now_ms,
            },
        )

    # -- submit ---------------------------------------------------------------------

    def submit(
        self, conn: apsw.Connection, tasks: Sequence[NewTask], now_ms: int
    ) -> list[SubmitOutcome | TaskgateError]:
        outcomes: list[SubmitOutcome | TaskgateError | None] = [None] * len(tasks)
        fresh: list[tuple[int, NewTask, QueueConfig]] = []
        for index, new in enumerate(tasks):
            config = self.queue_config(conn, new.queue, now_ms)
            if new.idempotency_key is None:
                fresh.append((index, new, config))
                continue
            conn.execute("SAVEPOINT item")
            try:
                outcome: SubmitOutcome | TaskgateError = self._submit_keyed(
                    conn, new, config, now_ms
                )
            except TaskgateError as exc:
                outcome = exc
            if isinstance(outcome, TaskgateError):
                conn.execute("ROLLBACK TO item")
            conn.execute("RELEASE item")
            outcomes[index] = outcome
        if fresh:
            # Tasks without a key cannot meet an earlier one: all of them in one statement
            # (a statement per task costs the writer a GIL hand-over each, under the lock).
            rows = [insert_values(new, config) for _, new, config in fresh]
            conn.execute(self._q["task_insert_many"], {"rows": orjson.dumps(rows), "now": now_ms})
            for index, new, config in fresh:
                outcomes[index] = SubmitOutcome(inserted_task(new, config, now_ms), created=True)
        return [outcome for outcome in outcomes if outcome is not None]

    def _submit_keyed(
        self, conn: apsw.Connection, new: NewTask, config: QueueConfig, now_ms: int
    ) -> SubmitOutcome:
        existing = self._idempotent_replay(conn, new, now_ms)
        if existing is not None:
            return SubmitOutcome(existing, created=False)
        conn.execute(
            self._q["idempotency_put"],
            {
                "queue": new.queue,
                "key": new.idempotency_key,
                "task_id": new.id,
                "request_hash": new.request_hash,
                "expires_at": now_ms + self._idempotency_window_ms,
            },
        )
        return self._insert(conn, new, config, now_ms)

    def _insert(
        self, conn: apsw.Connection, new: NewTask, config: QueueConfig, now_ms: int
    ) -> SubmitOutcome:
        row: Any = conn.execute(
            self._q["task_insert"], insert_params(new, config, now_ms)
        ).fetchone()
        return SubmitOutcome(task_from_row(row), created=True)

    def _idempotent_replay(self, conn: apsw.Connection, new: NewTask, now_ms: int) -> Task | None:
        row: Any = conn.execute(
            self._q["idempotency_get"], {"queue": new.queue, "key": new.idempotency_key}
        ).fetchone()
        if row is None:
            return None
        task_id, request_hash, expires_at = row
        if expires_at < now_ms:
            return None
        task_row: Any = conn.execute(self._q["task_get"], {"id": task_id}).fetchone()
        if task_row is None:
            return None
        check_same_request(new, task_id, request_hash)
        return task_from_row(task_row)

    # -- work -----------------------------------------------------------------------

    def claim(
        self,
        conn: apsw.Connection,
        queue: str,
        worker_id: str,
        max_tasks: int,
        lease_seconds: int | None,
        types: Sequence[str] | None,
        now_ms: int,
        worker_info: dict[str, object] | None = None,
    ) -> list[Task]:
        queue_row: Any = conn.execute(self._q["queue_get"], {"name": queue}).fetchone()
        if queue_row is not None and queue_row[4] == "push":
            raise Conflict(
                f"queue {queue!r} delivers its tasks by push to its webhook; pull claims are "
                "refused (PATCH the queue with delivery: pull to claim from it)"
            )
        conn.execute(
            self._q["worker_seen"], {"worker_id": worker_id, "queue": queue, "now": now_ms}
        )
        if worker_info is not None:
            conn.execute(
                self._q["worker_describe"],
                {"worker_id": worker_id, "info": orjson.dumps(worker_info).decode()},
            )
        if queue_row is None or queue_row[1]:
            return []
        return self._claim_rows(conn, queue, worker_id, max_tasks, lease_seconds, types, now_ms)

    def _claim_rows(
        self,
        conn: apsw.Connection,
        queue: str,
        worker_id: str,
        max_tasks: int,
        lease_seconds: int | None,
        types: Sequence[str] | None,
        now_ms: int,
    ) -> list[Task]:
        base: dict[str, Any] = {
            "queue": queue,
            "worker_id": worker_id,
            "lease_seconds": lease_seconds,
            "types": orjson.dumps(list(types)).decode() if types else None,
            "now": now_ms,
        }
        # The write lock is held: nobody can take the picked tasks before they are leased.
        ids: list[str] = []
        for priority in Priority:
            wanted = max_tasks - len(ids)
            if wanted <= 0:
                break
            pick = {**base, "priority": int(priority), "limit": wanted}
            ids += [row[0] for row in conn.execute(self._q["claim_pick"], pick)]
        rows: list[Any]
        if len(ids) <= CLAIM_ONE_BY_ONE:
            rows = [
                row
                for task_id in ids
                for row in conn.execute(self._q["claim_one"], {**base, "id": task_id})
            ]
        else:
            rows = conn.execute(
                self._q["claim_many"], {**base, "ids": orjson.dumps(ids).decode()}
            ).fetchall()
        tasks = [task_from_row(row) for row in rows]
        tasks.sort(key=lambda task: (task.priority, task.run_at_ms, task.id))
        return tasks

    def claim_push(
        self,
        conn: apsw.Connection,
        queue: str,
        worker_id: str,
        max_tasks: int,
        lease_seconds: int,
        now_ms: int,
    ) -> PushClaim:
        """Claim for delivery within the webhook's limits, counted across all processes.

        The writer holds the database's write lock, so the running count and the token
        bucket read here cannot change under this transaction.
        """
        row: Any = conn.execute(self._q["push_queue_get"], {"name": queue}).fetchone()
        if row is None:
            return PushClaim([], limited=False)
        paused, delivery, webhook_json, tokens, tokens_at = row
        webhook = webhook_from_json(webhook_json)
        if paused or delivery != "push" or webhook is None:
            return PushClaim([], limited=False)
        (running,) = conn.execute(self._q["queue_running"], {"queue": queue}).fetchone()  # type: ignore[misc]
        allowed = min(max_tasks, webhook.max_concurrency - running)
        rate = webhook.max_dispatches_per_second
        if rate is not None:
            burst = max(1.0, rate)
            if tokens is None or tokens_at is None:
                tokens = burst
            else:
                tokens = min(burst, tokens + max(now_ms - tokens_at, 0) / 1000 * rate)
            allowed = min(allowed, int(tokens))
        if allowed <= 0:
            return PushClaim([], limited=True)
        tasks = self._claim_rows(conn, queue, worker_id, allowed, lease_seconds, None, now_ms)
        if tasks:
            conn.execute(
                self._q["worker_seen"], {"worker_id": worker_id, "queue": queue, "now": now_ms}
            )
            if rate is not None:
                conn.execute(
                    self._q["push_queue_spend"],
                    {"name": queue, "tokens": tokens - len(tasks), "now": now_ms},
                )
        return PushClaim(tasks, limited=len(tasks) == allowed and allowed < max_tasks)

    def release(self, conn: apsw.Connection, task_id: str, lease_token: str, now_ms: int) -> Task:
        row: Any = conn.execute(
            self._q["task_release"], {"id": task_id, "lease_token": lease_token, "now": now_ms}
        ).fetchone()
        if row is None:
            raise self._lease_problem(conn, task_id)
        return task_from_row(row)

    def heartbeat(
        self,
        conn: apsw.Connection,
        task_id: str,
        lease_token: str,
        lease_seconds: int | None,
        now_ms: int,
    ) -> Task:
        row: Any = conn.execute(
            self._q["task_heartbeat"],
            {
                "id": task_id,
                "lease_token": lease_token,
                "lease_seconds": lease_seconds,
                "now": now_ms,
            },
        ).fetchone()
        if row is None:
            raise self._lease_problem(conn, task_id)
        task = task_from_row(row)
        self._touch_worker(conn, task.worker_id, now_ms)
        return task

    def complete(
        self, conn: apsw.Connection, task_id: str, lease_token: str, result_json: str, now_ms: int
    ) -> Task:
        row: Any = conn.execute(
            self._q["task_complete"],
            {"id": task_id, "lease_token": lease_token, "result": result_json, "now": now_ms},
        ).fetchone()
        if row is None:
            raise self._lease_problem(conn, task_id)
        task = task_from_row(row)
        self._touch_worker(conn, task.worker_id, now_ms)
        return task

    def complete_many(
        self, conn: apsw.Connection, items: Sequence[tuple[str, str, str]], now_ms: int
    ) -> list[Task | TaskgateError]:
        """Complete (task_id, lease_token, result JSON) items, each on its own.

        The first item of each task id goes into one UPDATE (a statement per item costs the
        writer a GIL hand-over each, under the lock); an item it did not match, and any
        later item of the same task, is then answered one by one, as `complete` would.
        """
        firsts: dict[str, int] = {}
        for index, (task_id, _, _) in enumerate(items):
            firsts.setdefault(task_id, index)
        batch = [items[index] for index in firsts.values()]
        done = {
            row[0]: task_from_row(row)
            for row in conn.execute(
                self._q["task_complete_many"], {"items": orjson.dumps(batch), "now": now_ms}
            )
        }
        for worker_id in {task.worker_id for task in done.values()}:
            self._touch_worker(conn, worker_id, now_ms)
        outcomes: list[Task | TaskgateError] = []
        for index, (task_id, lease_token, result_json) in enumerate(items):
            task = done.get(task_id)
            if task is not None and firsts[task_id] == index:
                outcomes.append(task)
                continue
            try:
                outcomes.append(self.complete(conn, task_id, lease_token, result_json, now_ms))
            except TaskgateError as exc:
                outcomes.append(exc)
        return outcomes

    def each(
        self, conn: apsw.Connection, calls: Sequence[Callable[[], Task]]
    ) -> list[Task | TaskgateError]:
        """Run write calls each in its own savepoint: a failing one changes nothing."""
        outcomes: list[Task | TaskgateError] = []
        for call in calls:
            conn.execute("SAVEPOINT item")
            try:
                outcomes.append(call())
            except TaskgateError as exc:
                conn.execute("ROLLBACK TO item")
                outcomes.append(exc)
            conn.execute("RELEASE item")
        return outcomes

    def _touch_worker(self, conn: apsw.Connection, worker_id: str | None, now_ms: int) -> None:
        if worker_id is not None:
            conn.execute(self._q["worker_touch"], {"worker_id": worker_id, "now": now_ms})

    def fail(
        self,
        conn: apsw.Connection,
        task_id: str,
        lease_token: str,
        error: ErrorReport,
        retry: bool,
        retry_after_ms: int | None,
        now_ms: int,
    ) -> Task:
        row: Any = conn.execute(
            self._q["task_leased"], {"id": task_id, "lease_token": lease_token}
        ).fetchone()
        if row is None:
            raise self._lease_problem(conn, task_id)
        task = task_from_row(row)
        self._touch_worker(conn, task.worker_id, now_ms)
        return self._end_attempt(conn, task, error, retry, retry_after_ms, now_ms)

    def _end_attempt(
        self,
        conn: apsw.Connection,
        task: Task,
        error: ErrorReport,
        retry: bool,
        retry_after_ms: int | None,
        now_ms: int,
    ) -> Task:
        config = self.queue_config(conn, task.queue, now_ms)
        params = end_attempt_params(task, config, error, retry, retry_after_ms, now_ms, self._rng)
        row: Any = conn.execute(self._q["task_end_attempt"], params).fetchone()
        return task_from_row(row)

    def _lease_problem(self, conn: apsw.Connection, task_id: str) -> TaskgateError:
        return lease_problem(task_id, conn.execute(self._q["task_get"], {"id": task_id}).fetchone())

    def cancel(self, conn: apsw.Connection, task_id: str, now_ms: int) -> Task:
        row: Any = conn.execute(
            self._q["task_cancel_queued"], {"id": task_id, "now": now_ms}
        ).fetchone()
        if row is None:
            row = conn.execute(
                self._q["task_request_cancel"], {"id": task_id, "now": now_ms}
            ).fetchone()
        if row is not None:
            return task_from_row(row)
        existing: Any = conn.execute(self._q["task_get"], {"id": task_id}).fetchone()
        if existing is None:
            raise NotFound(f"task {task_id!r} does not exist")
        state = task_from_row(existing).state.value
        raise Conflict(f"task {task_id} has already finished ({state}); it cannot be cancelled")

    # -- dead letters and upkeep ---------------------------------------------------

    def redrive(
        self, conn: apsw.Connection, queue: str, task_ids: Sequence[str] | None, now_ms: int
    ) -> int:
        conn.execute(
            self._q["dead_redrive"],
            {
                "queue": queue,
                "task_ids": orjson.dumps(list(task_ids)).decode() if task_ids is not None else None,
                "now": now_ms,
            },
        )
        return conn.changes()

    def purge_dead(self, conn: apsw.Connection, queue: str) -> int:
        conn.execute(self._q["dead_purge"], {"queue": queue})
        return conn.changes()

    def expire_leases(self, conn: apsw.Connection, now_ms: int, limit: int) -> list[Task]:
        rows: Any = conn.execute(
            self._q["leases_expired"], {"now": now_ms, "limit": limit}
        ).fetchall()
        lapse = ErrorReport(
            type="LeaseExpired", message="the lease expired before the task finished"
        )
        return [
            self._end_attempt(conn, task_from_row(row), lapse, True, None, now_ms) for row in rows
        ]

    def delete_expired(
        self, conn: apsw.Connection, now_ms: int, worker_retention_ms: int, limit: int
    ) -> int:
        deleted = 0
        queue_rows: Any = conn.execute(self._q["queue_list"]).fetchall()
        for name, _paused, _reason, overrides, *_delivery in queue_rows:
            retention_ms = (
                overrides_from_json(overrides).apply_to(self._defaults).retention_seconds * 1000
            )
            conn.execute(
                self._q["retention_delete"],
                {"queue": name, "cutoff": now_ms - retention_ms, "limit": limit},
            )
            deleted += conn.changes()
        conn.execute(self._q["idempotency_expire"], {"now": now_ms})
        conn.execute(self._q["workers_expire"], {"cutoff": now_ms - worker_retention_ms})
        return deleted
