"""The PostgreSQL write operations on queues, submits and upkeep, each inside its
caller's transaction; the SQL helpers shared by the other postgres_* modules.

Unlike SQLite's writer, transactions here run side by side: where an operation reads a
row and then decides what to write, the read locks the row (`FOR UPDATE`). The claim
and lease operations are in postgres_work.py.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, LiteralString

import psycopg

from app.core.errors import TaskgateError
from app.core.models import (
    DeliveryConfig,
    NewTask,
    QueueConfig,
    QueueOverrides,
    SubmitOutcome,
    Task,
)
from app.store.outcomes import check_same_request
from app.store.rows import (
    INSERT_COLUMNS,
    insert_params,
    insert_values,
    inserted_task,
    overrides_from_json,
    overrides_to_json,
    task_from_row,
    webhook_to_json,
)

Connection = psycopg.AsyncConnection[tuple[Any, ...]]
Queries = Mapping[str, LiteralString]


async def fetch_one(conn: Connection, sql: LiteralString, params: Mapping[str, Any]) -> Any:
    """The first row of a statement, or None."""
    cursor = await conn.execute(sql, params)
    return await cursor.fetchone()


async def fetch_all(conn: Connection, sql: LiteralString, params: Mapping[str, Any]) -> list[Any]:
    """Every row of a statement."""
    cursor = await conn.execute(sql, params)
    return await cursor.fetchall()


async def changed(conn: Connection, sql: LiteralString, params: Mapping[str, Any]) -> int:
    """How many rows a statement changed."""
    cursor = await conn.execute(sql, params)
    return cursor.rowcount


class PostgresWriteOps:
    """Queue, submit and upkeep writes over a connection that is inside a transaction."""

    def __init__(
        self,
        queries: Queries,
        defaults: QueueConfig,
        idempotency_window_ms: int,
    ) -> None:
        self._q = queries
        self._defaults = defaults
        self._idempotency_window_ms = idempotency_window_ms

    # -- queues ---------------------------------------------------------------------

    async def queue_config(self, conn: Connection, queue: str, now_ms: int) -> QueueConfig:
        """Ensure the queue exists and return its effective configuration."""
        await conn.execute(self._q["queue_ensure"], {"name": queue, "now": now_ms})
        row = await fetch_one(conn, self._q["queue_get"], {"name": queue})
        return overrides_from_json(row[3]).apply_to(self._defaults)

    async def configure_queue(
        self,
        conn: Connection,
        name: str,
        patch: QueueOverrides,
        fields: frozenset[str],
        now_ms: int,
        delivery: DeliveryConfig | None = None,
    ) -> None:
        await conn.execute(self._q["queue_ensure"], {"name": name, "now": now_ms})
        await conn.execute(self._q["queue_lock"], {"name": name})
        row = await fetch_one(conn, self._q["queue_get"], {"name": name})
        current = overrides_from_json(row[3])
        merged = QueueOverrides(
            **{
                field: getattr(patch if field in fields else current, field)
                for field in ("max_attempts", "retry", "lease_seconds", "retention_seconds")
            }
        )
        await conn.execute(
            self._q["queue_set_overrides"],
            {"name": name, "overrides": overrides_to_json(merged), "now": now_ms},
        )
        if delivery is not None:
            await conn.execute(
                self._q["queue_set_delivery"],
                {
                    "name": name,
                    "delivery": delivery.mode.value,
                    "webhook": webhook_to_json(delivery.webhook),
                    "now": now_ms,
                },
            )

    async def set_paused(
        self, conn: Connection, name: str, paused: bool, reason: str | None, now_ms: int
    ) -> None:
        await conn.execute(self._q["queue_ensure"], {"name": name, "now": now_ms})
        await conn.execute(
            self._q["queue_set_paused"],
            {"name": name, "paused": paused, "reason": reason if paused else None, "now": now_ms},
        )

    # -- submit ---------------------------------------------------------------------

    async def submit(
        self, conn: Connection, tasks: Sequence[NewTask], now_ms: int
    ) -> list[SubmitOutcome | TaskgateError]:
        configs = {
            queue: await self.queue_config(conn, queue, now_ms)
            for queue in dict.fromkeys(new.queue for new in tasks)
        }
        outcomes: list[SubmitOutcome | TaskgateError | None] = [None] * len(tasks)
        fresh: list[tuple[int, NewTask, QueueConfig]] = []
        for index, new in enumerate(tasks):
            config = configs[new.queue]
            if new.idempotency_key is None:
                fresh.append((index, new, config))
                continue
            try:
                outcomes[index] = await self._submit_keyed(conn, new, config, now_ms)
            except TaskgateError as exc:
                outcomes[index] = exc
        if fresh:
            # Tasks without a key cannot meet an earlier one: all of them in one statement.
            await conn.execute(self._q["task_insert_many"], _insert_columns(fresh, now_ms))
            for index, new, config in fresh:
                outcomes[index] = SubmitOutcome(inserted_task(new, config, now_ms), created=True)
        return [outcome for outcome in outcomes if outcome is not None]

    async def _submit_keyed(
        self, conn: Connection, new: NewTask, config: QueueConfig, now_ms: int
    ) -> SubmitOutcome:
        key = {
            "queue": new.queue,
            "key": new.idempotency_key,
            "task_id": new.id,
            "request_hash": new.request_hash,
            "expires_at": now_ms + self._idempotency_window_ms,
            "now": now_ms,
        }
        taken = await fetch_one(conn, self._q["idempotency_put"], {**key, "take_over": False})
        if taken is None:
            existing = await self._idempotent_replay(conn, new)
            if existing is not None:
                return SubmitOutcome(existing, created=False)
            # The key outlived its task (retention, a purge): it is free again.
            await conn.execute(self._q["idempotency_put"], {**key, "take_over": True})
        row = await fetch_one(conn, self._q["task_insert"], insert_params(new, config, now_ms))
        return SubmitOutcome(task_from_row(row), created=True)

    async def _idempotent_replay(self, conn: Connection, new: NewTask) -> Task | None:
        """The task a live key names (None if it is gone).

        Raises:
            IdempotencyMismatch: the key was used for a different request.
        """
        key_row = await fetch_one(
            conn, self._q["idempotency_get"], {"queue": new.queue, "key": new.idempotency_key}
        )
        task_id, request_hash, _expires_at = key_row
        task_row = await fetch_one(conn, self._q["task_get"], {"id": task_id})
        if task_row is None:
            return None
        check_same_request(new, task_id, request_hash)
        return task_from_row(task_row)

    # -- dead letters and upkeep ---------------------------------------------------

    async def redrive(
        self, conn: Connection, queue: str, task_ids: Sequence[str] | None, now_ms: int
    ) -> int:
        return await changed(
            conn,
            self._q["dead_redrive"],
            {
                "queue": queue,
                "task_ids": list(task_ids) if task_ids is not None else None,
                "now": now_ms,
            },
        )

    async def purge_dead(self, conn: Connection, queue: str) -> int:
        return await changed(conn, self._q["dead_purge"], {"queue": queue})

    async def delete_expired(
        self, conn: Connection, now_ms: int, worker_retention_ms: int, limit: int
    ) -> int:
        deleted = 0
        for name, _paused, _reason, overrides, *_delivery in await fetch_all(
            conn, self._q["queue_list"], {}
        ):
            retention_ms = (
                overrides_from_json(overrides).apply_to(self._defaults).retention_seconds * 1000
            )
            deleted += await changed(
                conn,
                self._q["retention_delete"],
                {"queue": name, "cutoff": now_ms - retention_ms, "limit": limit},
            )
        await conn.execute(self._q["idempotency_expire"], {"now": now_ms})
        await conn.execute(self._q["workers_expire"], {"cutoff": now_ms - worker_retention_ms})
        return deleted


def _insert_columns(
    fresh: Sequence[tuple[int, NewTask, QueueConfig]], now_ms: int
) -> dict[str, Any]:
    """The parameters of `task_insert_many`: one array per column, named as the column."""
    rows = [insert_values(new, config) for _, new, config in fresh]
    return {
        **{
            name: list(column)
            for name, column in zip(INSERT_COLUMNS, zip(*rows, strict=True), strict=True)
        },
        "now": now_ms,
    }
