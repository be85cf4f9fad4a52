"""The PostgreSQL backend (psycopg 3): for several hosts sharing one database.

Every operation runs on a connection from an async pool, writes in a transaction of
their own (PostgreSQL groups concurrent commits in its WAL), reads on their own or, when
they read several times, in one REPEATABLE READ snapshot. A batch of submits is one
statement in one transaction. Wake-ups come from LISTEN (postgres_wakeups.py); the
write operations are in postgres_ops.py and postgres_work.py, the schedules in
postgres_schedules.py.
"""

from __future__ import annotations

import contextlib
import logging
import random
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any, LiteralString, cast

import psycopg
from psycopg_pool import AsyncConnectionPool

from app.core.errors import StoreError, TaskgateError
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
    QueueConfig,
    QueueDepth,
    QueueInfo,
    QueueOverrides,
    Schedule,
    SubmitOutcome,
    Task,
    TaskFilter,
    WorkerInfo,
)
from app.settings import redact_url
from app.store.postgres_ops import Connection, PostgresWriteOps, changed, fetch_all, fetch_one
from app.store.postgres_schedules import PostgresSchedules
from app.store.postgres_wakeups import ChangeListener
from app.store.postgres_work import PostgresWorkOps
from app.store.queries import load_queries
from app.store.rows import (
    event_from_row,
    push_queue_from_row,
    queue_depth_from_row,
    queue_info_from_rows,
    task_from_row,
    workers_from_rows,
)

log = logging.getLogger("taskgate.store.postgres")

# Pending events numbered per call of taskgate_publish_events (one short transaction).
PUBLISH_BATCH = 5_000
SUBMIT_WRITES_IN_FLIGHT = 2

# A snapshot for reads of several statements that must agree with each other.
SNAPSHOT = "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY"


@dataclass(frozen=True, slots=True)
class PostgresOptions:
    """How to reach the database."""

    url: str
    pool_size: int = 10
    connect_timeout_s: float = 10.0
    # How long an operation waits for a free pooled connection before it fails (503).
    acquire_timeout_s: float = 10.0
    wake_fallback_s: float = 1.0


def database_error(exc: psycopg.Error) -> StoreError:
    """The StoreError for a driver error; the details go to the log, not to clients."""
    if isinstance(exc, psycopg.OperationalError):
        log.warning("database unavailable: %s", exc)
        return StoreError("the database is unavailable or busy; retry later")
    log.error("database operation failed: %s", exc)
    return StoreError()


class PostgresStore:
    """Store backed by a PostgreSQL database, shared by any number of processes."""

    # Submits arriving while these are on their way join the next transaction.
    submit_writes_in_flight: int | None = SUBMIT_WRITES_IN_FLIGHT

    def __init__(
        self,
        options: PostgresOptions,
        defaults: QueueConfig,
        idempotency_window_ms: int,
        rng: random.Random | None = None,
    ) -> None:
        self._options = options
        self._defaults = defaults
        # Our own files, loaded once: trusted text, as literal as a string in the code.
        self._q: dict[str, LiteralString] = load_queries("postgres")
        rng = rng or random.Random()
        self._ops = PostgresWriteOps(self._q, defaults, idempotency_window_ms)
        self._work = PostgresWorkOps(self._q, self._ops, rng)
        self._schedules = PostgresSchedules(self._q, self._ops)
        self._pool: AsyncConnectionPool[Connection] | None = None
        self._changes = ChangeListener(options.url, fallback_interval_s=options.wake_fallback_s)

    # -- lifecycle ------------------------------------------------------------------

    async def open(self) -> None:
        pool: AsyncConnectionPool[Connection] = AsyncConnectionPool(
            self._options.url,
            min_size=self._options.pool_size,
            max_size=self._options.pool_size,
            kwargs={"autocommit": True},
            timeout=self._options.acquire_timeout_s,
            name="taskgate",
            open=False,
        )
        try:
            await pool.open(wait=True, timeout=self._options.connect_timeout_s)
        except psycopg.Error as exc:
            await pool.close()
            raise StoreError(
                f"cannot connect to the database {redact_url(self._options.url)}: {exc}"
            ) from exc
        self._pool = pool
        self._changes.start()

    async def close(self) -> None:
        await self._changes.stop()
        if self._pool is not None:
            await self._pool.close()
            self._pool = None

    async def ping(self) -> None:
        async with self._connection() as conn:
            await conn.execute(self._q["ping"])

    def change_marker(self) -> int:
        return self._changes.marker

    @property
    def listening_for_changes(self) -> bool:
        """Whether the LISTEN session is up (when not, the marker moves every second)."""
        return self._changes.listening

    # -- plumbing -------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def _connection(self) -> AsyncIterator[Connection]:
        """A pooled connection (autocommit); driver errors become StoreError."""
        if self._pool is None:
            raise StoreError("the store is not open")
        try:
            async with self._pool.connection() as conn:
                yield conn
        except psycopg.Error as exc:
            raise database_error(exc) from exc

    @contextlib.asynccontextmanager
    async def _transaction(self) -> AsyncIterator[Connection]:
        """A write transaction; committed when the block ends without an error.

        The marker is not moved here: a commit that changed something notifies, and this
        store's LISTEN session hears its own commits too (as SQLite's data_version moves
        for the process's own writer). A commit that changed nothing, like an empty
        claim, must wake nobody, or the waiters it woke would wake each other forever.
        """
        async with self._connection() as conn, conn.transaction():
            yield conn

    @contextlib.asynccontextmanager
    async def _snapshot(self) -> AsyncIterator[Connection]:
        """A read-only transaction whose statements all see one snapshot."""
        async with self._connection() as conn, conn.transaction():
            await conn.execute(SNAPSHOT)
            yield conn

    async def _tasks(self, name: str, params: dict[str, Any]) -> list[Task]:
        async with self._connection() as conn:
            return [task_from_row(row) for row in await fetch_all(conn, self._q[name], params)]

    # -- tasks ----------------------------------------------------------------------

    async def submit(
        self, tasks: Sequence[NewTask], now_ms: int
    ) -> list[SubmitOutcome | TaskgateError]:
        async with self._transaction() as conn:
            return await self._ops.submit(conn, tasks, now_ms)

    async def get_task(self, task_id: str) -> Task | None:
        tasks = await self._tasks("task_get", {"id": task_id})
        return tasks[0] if tasks else None

    async def list_tasks(self, task_filter: TaskFilter) -> list[Task]:
        params = {
            "queue": task_filter.queue,
            "state": task_filter.state.value if task_filter.state else None,
            "type": task_filter.type,
            "tag": task_filter.tag,
            "before_id": task_filter.before_id,
            "limit": task_filter.limit,
        }
        by_queue_state = task_filter.queue is not None and task_filter.state is not None
        return await self._tasks("task_list_queue_state" if by_queue_state else "task_list", params)

    async def cancel(self, task_id: str, now_ms: int) -> Task:
        async with self._transaction() as conn:
            return await self._work.cancel(conn, task_id, now_ms)

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
        async with self._transaction() as conn:
            return await self._work.claim(
                conn, queue, worker_id, max_tasks, lease_seconds, types, now_ms, worker_info
            )

    async def claim_push(
        self, queue: str, worker_id: str, max_tasks: int, lease_seconds: int, now_ms: int
    ) -> PushClaim:
        async with self._transaction() as conn:
            return await self._work.claim_push(
                conn, queue, worker_id, max_tasks, lease_seconds, now_ms
            )

    async def release(self, task_id: str, lease_token: str, now_ms: int) -> Task:
        async with self._transaction() as conn:
            return await self._work.release(conn, task_id, lease_token, now_ms)

    async def heartbeat(
        self, task_id: str, lease_token: str, lease_seconds: int | None, now_ms: int
    ) -> Task:
        async with self._transaction() as conn:
            return await self._work.heartbeat(conn, task_id, lease_token, lease_seconds, now_ms)

    async def complete(self, task_id: str, lease_token: str, result_json: str, now_ms: int) -> Task:
        # One statement (autocommit): one round trip instead of BEGIN, two, COMMIT.
        async with self._connection() as conn:
            return await self._work.complete(conn, task_id, lease_token, result_json, now_ms)

    async def complete_many(
        self, items: Sequence[tuple[str, str, str]], now_ms: int
    ) -> list[Task | TaskgateError]:
        async with self._transaction() as conn:
            return await self._work.complete_many(conn, items, now_ms)

    async def fail_many(
        self, items: Sequence[FailOrder], now_ms: int
    ) -> list[Task | TaskgateError]:
        async with self._transaction() as conn:
            calls = [
                partial(
                    self._work.fail,
                    conn,
                    item.task_id,
                    item.lease_token,
                    item.error,
                    item.retry,
                    item.retry_after_ms,
                    now_ms,
                )
                for item in items
            ]
            return await self._work.each(conn, calls)

    async def fail(
        self,
        task_id: str,
        lease_token: str,
        error: ErrorReport,
        retry: bool,
        retry_after_ms: int | None,
        now_ms: int,
    ) -> Task:
        async with self._transaction() as conn:
            return await self._work.fail(
                conn, task_id, lease_token, error, retry, retry_after_ms, now_ms
            )

    async def next_due_ms(self, queue: str) -> int | None:
        async with self._connection() as conn:
            (due,) = await fetch_one(conn, self._q["queue_next_due"], {"queue": queue})
        return cast(int | None, due)

    async def has_claimable(self, queue: str, types: Sequence[str] | None, now_ms: int) -> bool:
        params = {"queue": queue, "types": list(types) if types else None, "now": now_ms}
        async with self._connection() as conn:
            (claimable,) = await fetch_one(conn, self._q["queue_claimable"], params)
        return bool(claimable)

    # -- queues ---------------------------------------------------------------------

    async def get_queue(self, name: str, now_ms: int) -> QueueInfo | None:
        async with self._snapshot() as conn:
            return await self._queue_info(conn, name, now_ms)

    async def _queue_info(self, conn: Connection, name: str, now_ms: int) -> QueueInfo | None:
        row = await fetch_one(conn, self._q["queue_get"], {"name": name})
        if row is None:
            return None
        counts = dict(await fetch_all(conn, self._q["queue_counts"], {"queue": name}))
        due, oldest = await fetch_one(
            conn, self._q["queue_due_stats"], {"queue": name, "now": now_ms}
        )
        return queue_info_from_rows(row, counts, due, oldest, self._defaults, now_ms)

    async def list_queues(self, now_ms: int) -> list[QueueInfo]:
        async with self._snapshot() as conn:
            rows = await fetch_all(conn, self._q["queue_list"], {})
            counts: dict[str, dict[str, int]] = {}
            for queue, state, count in await fetch_all(conn, self._q["all_queue_counts"], {}):
                counts.setdefault(queue, {})[state] = count
            due_stats = {
                queue: (due, oldest)
                for queue, due, oldest in await fetch_all(
                    conn, self._q["all_queue_due_stats"], {"now": now_ms}
                )
            }
        return [
            queue_info_from_rows(
                row,
                counts.get(row[0], {}),
                *due_stats.get(row[0], (0, None)),
                self._defaults,
                now_ms,
            )
            for row in rows
        ]

    async def queue_depths(self, now_ms: int) -> list[QueueDepth]:
        async with self._connection() as conn:
            rows = await fetch_all(conn, self._q["queue_depths"], {"now": now_ms})
        return [queue_depth_from_row(row) for row in rows]

    async def list_push_queues(self) -> list[PushQueue]:
        async with self._connection() as conn:
            rows = await fetch_all(conn, self._q["push_queues"], {})
        return [push_queue_from_row(row, self._defaults) for row in rows]

    async def configure_queue(
        self,
        name: str,
        overrides: QueueOverrides,
        fields: frozenset[str],
        now_ms: int,
        delivery: DeliveryConfig | None = None,
    ) -> QueueInfo:
        async with self._transaction() as conn:
            await self._ops.configure_queue(conn, name, overrides, fields, now_ms, delivery)
            info = await self._queue_info(conn, name, now_ms)
        assert info is not None
        return info

    async def set_paused(
        self, name: str, paused: bool, reason: str | None, now_ms: int
    ) -> QueueInfo:
        async with self._transaction() as conn:
            await self._ops.set_paused(conn, name, paused, reason, now_ms)
            info = await self._queue_info(conn, name, now_ms)
        assert info is not None
        return info

    async def list_dead(self, queue: str, before_id: str | None, limit: int) -> list[Task]:
        params = {"queue": queue, "before_id": before_id, "limit": limit}
        return await self._tasks("dead_list", params)

    async def redrive(self, queue: str, task_ids: Sequence[str] | None, now_ms: int) -> int:
        async with self._transaction() as conn:
            return await self._ops.redrive(conn, queue, task_ids, now_ms)

    async def purge_dead(self, queue: str) -> int:
        async with self._transaction() as conn:
            return await self._ops.purge_dead(conn, queue)

    # -- workers and upkeep -----------------------------------------------------------

    async def list_workers(self, limit: int) -> list[WorkerInfo]:
        async with self._snapshot() as conn:
            rows = await fetch_all(conn, self._q["worker_list"], {"limit": limit})
            leases = await fetch_all(conn, self._q["worker_leases"], {})
        return workers_from_rows(rows, leases)

    async def expire_leases(self, now_ms: int, limit: int) -> list[Task]:
        async with self._transaction() as conn:
            return await self._work.expire_leases(conn, now_ms, limit)

    async def delete_expired(self, now_ms: int, worker_retention_ms: int, limit: int) -> int:
        async with self._transaction() as conn:
            return await self._ops.delete_expired(conn, now_ms, worker_retention_ms, limit)

    # -- events (the numbering scheme is in migrations/postgres/0003_events.sql) ------

    async def _publish_events(self, conn: Connection) -> None:
        """Number every pending event that can be (see 0003_events.sql)."""
        moved = PUBLISH_BATCH
        while moved == PUBLISH_BATCH:
            (moved,) = await fetch_one(conn, self._q["events_publish"], {"limit": PUBLISH_BATCH})

    async def events_after(self, after_id: int | None, queue: str | None, limit: int) -> EventPage:
        name = "events_after" if queue is None else "events_after_on_queue"
        async with self._connection() as conn:
            await self._publish_events(conn)
        async with self._snapshot() as conn:
            oldest, newest = await fetch_one(conn, self._q["events_bounds"], {})
            if after_id is None:
                return EventPage([], newest, gap=False)
            # Published ids have no holes, so a first kept id beyond after + 1 means
            # retention dropped some.
            gap = after_id < newest and (oldest is None or oldest > after_id + 1)
            params = {"after": after_id, "queue": queue, "limit": limit}
            rows = await fetch_all(conn, self._q[name], params)
        return EventPage([event_from_row(row) for row in rows], newest, gap)

    async def delete_events_before(self, cutoff_ms: int, limit: int) -> int:
        async with self._connection() as conn:
            # Number what is pending first: an event is never dropped before it has an
            # id, so a reader resuming from before it is told of the gap.
            await self._publish_events(conn)
            return await changed(
                conn, self._q["events_delete_before"], {"cutoff": cutoff_ms, "limit": limit}
            )

    # -- schedules (the queries are in postgres_schedules.py) -----------------------

    async def create_schedule(self, schedule: Schedule, now_ms: int) -> Schedule:
        async with self._transaction() as conn:
            return await self._schedules.create(conn, schedule, now_ms)

    async def get_schedule(self, schedule_id: str) -> Schedule | None:
        async with self._connection() as conn:
            return await self._schedules.get(conn, schedule_id)

    async def list_schedules(self, after_id: str | None, limit: int) -> list[Schedule]:
        async with self._connection() as conn:
            return await self._schedules.page(conn, after_id, limit)

    async def update_schedule(self, schedule: Schedule, reschedule: bool, now_ms: int) -> Schedule:
        async with self._transaction() as conn:
            return await self._schedules.update(conn, schedule, reschedule, now_ms)

    async def delete_schedule(self, schedule_id: str, revision: int) -> None:
        async with self._transaction() as conn:
            await self._schedules.delete(conn, schedule_id, revision)

    async def due_schedules(self, now_ms: int, limit: int) -> list[Schedule]:
        async with self._connection() as conn:
            return await self._schedules.due(conn, now_ms, limit)

    async def fire_schedules(self, orders: Sequence[FireOrder], now_ms: int) -> list[FireOutcome]:
        async with self._transaction() as conn:
            return await self._schedules.fire(conn, orders, now_ms)
