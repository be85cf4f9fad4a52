"""The SQLite backend (apsw, WAL): group-committed writes, reads on their own connections."""

from __future__ import annotations

import asyncio
import random
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import apsw
import orjson

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
from app.store.queries import load_queries
from app.store.rows import (
    event_from_row,
    push_queue_from_row,
    queue_depth_from_row,
    queue_info_from_rows,
    task_from_row,
    workers_from_rows,
)
from app.store.sqlite_ops import SqliteWriteOps
from app.store.sqlite_schedules import SqliteSchedules
from app.store.writer import GroupCommitWriter

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class SqliteOptions:
    """How to open the database file."""

    path: Path
    durability: str = "full"  # "full" (survives power loss) or "normal" (survives a crash)
    busy_timeout_ms: int = 10_000
    readers: int = 4


def connect(options: SqliteOptions) -> apsw.Connection:
    """An apsw connection with taskgate's pragmas (WAL, synchronous, busy timeout).

    Raises:
        StoreError: the file cannot be opened.
    """
    try:
        connection = apsw.Connection(str(options.path))
        connection.set_busy_timeout(options.busy_timeout_ms)
        connection.execute("PRAGMA journal_mode = WAL")
        synchronous = "FULL" if options.durability == "full" else "NORMAL"
        connection.execute(f"PRAGMA synchronous = {synchronous}")
        connection.execute("PRAGMA foreign_keys = ON")
    except apsw.Error as exc:
        raise StoreError(f"cannot open the database {options.path}: {exc}") from exc
    return connection


class SqliteStore:
    """Store backed by one SQLite file in WAL mode."""

    submit_writes_in_flight: int | None = None  # the writer thread merges them

    def __init__(
        self,
        options: SqliteOptions,
        defaults: QueueConfig,
        idempotency_window_ms: int,
        rng: random.Random | None = None,
    ) -> None:
        self._options = options
        self._defaults = defaults
        self._queries = load_queries("sqlite")
        self._ops = SqliteWriteOps(
            self._queries, defaults, idempotency_window_ms, rng or random.Random()
        )
        self._schedules = SqliteSchedules(self._queries, self._ops)
        self._writer: GroupCommitWriter | None = None
        self._writer_connection: apsw.Connection | None = None
        self._watch_connection: apsw.Connection | None = None
        self._readers: ThreadPoolExecutor | None = None
        self._reader_local = threading.local()
        self._reader_connections: list[apsw.Connection] = []
        self._reader_lock = threading.Lock()

    # -- lifecycle ------------------------------------------------------------------

    async def open(self) -> None:
        self._writer_connection = connect(self._options)
        lock_path = self._options.path.with_name(self._options.path.name + ".writelock")
        self._writer = GroupCommitWriter(
            self._writer_connection, lock_path, forget=self._ops.forget_transaction
        )
        self._writer.start()
        self._watch_connection = connect(self._options)
        self._readers = ThreadPoolExecutor(
            max_workers=self._options.readers, thread_name_prefix="taskgate-reader"
        )

    async def close(self) -> None:
        if self._writer is not None:
            await asyncio.to_thread(self._writer.stop)
            self._writer = None
        if self._readers is not None:
            self._readers.shutdown(wait=True)
            self._readers = None
        for connection in [
            *self._reader_connections,
            self._watch_connection,
            self._writer_connection,
        ]:
            if connection is not None:
                connection.close()
        self._reader_connections.clear()
        self._watch_connection = self._writer_connection = None

    async def ping(self) -> None:
        await self._read(lambda conn: conn.execute(self._queries["ping"]).fetchone())

    def change_marker(self) -> int:
        if self._watch_connection is None:
            return 0
        row = self._watch_connection.execute("PRAGMA data_version").fetchone()
        return int(row[0]) if row is not None else 0

    # -- plumbing -------------------------------------------------------------------

    async def _write(self, op: Callable[[apsw.Connection], T]) -> T:
        if self._writer is None:
            raise StoreError("the store is not open")
        return await self._writer.run(op)

    async def _read(self, query: Callable[[apsw.Connection], T]) -> T:
        if self._readers is None:
            raise StoreError("the store is not open")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._readers, self._run_read, query)

    def _run_read(self, query: Callable[[apsw.Connection], T]) -> T:
        connection: apsw.Connection | None = getattr(self._reader_local, "connection", None)
        if connection is None:
            connection = connect(self._options)
            self._reader_local.connection = connection
            with self._reader_lock:
                self._reader_connections.append(connection)
        try:
            return query(connection)
        except TaskgateError:
            raise
        except apsw.Error as exc:
            raise StoreError(f"database read failed: {exc}") from exc

    def _fetch_tasks(
        self, name: str, params: dict[str, Any]
    ) -> Callable[[apsw.Connection], list[Task]]:
        sql = self._queries[name]
        return lambda conn: [task_from_row(row) for row in conn.execute(sql, params)]

    # -- tasks ----------------------------------------------------------------------

    async def submit(
        self, tasks: Sequence[NewTask], now_ms: int
    ) -> list[SubmitOutcome | TaskgateError]:
        return await self._write(partial(self._ops.submit, tasks=tasks, now_ms=now_ms))

    async def get_task(self, task_id: str) -> Task | None:
        tasks = await self._read(self._fetch_tasks("task_get", {"id": task_id}))
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
        query = "task_list_queue_state" if by_queue_state else "task_list"
        return await self._read(self._fetch_tasks(query, params))

    async def cancel(self, task_id: str, now_ms: int) -> Task:
        return await self._write(partial(self._ops.cancel, task_id=task_id, now_ms=now_ms))

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
        op = partial(
            self._ops.claim,
            queue=queue,
            worker_id=worker_id,
            max_tasks=max_tasks,
            lease_seconds=lease_seconds,
            types=types,
            now_ms=now_ms,
            worker_info=worker_info,
        )
        return await self._write(op)

    async def claim_push(
        self, queue: str, worker_id: str, max_tasks: int, lease_seconds: int, now_ms: int
    ) -> PushClaim:
        op = partial(
            self._ops.claim_push,
            queue=queue,
            worker_id=worker_id,
            max_tasks=max_tasks,
            lease_seconds=lease_seconds,
            now_ms=now_ms,
        )
        return await self._write(op)

    async def release(self, task_id: str, lease_token: str, now_ms: int) -> Task:
        return await self._write(
            partial(self._ops.release, task_id=task_id, lease_token=lease_token, now_ms=now_ms)
        )

    async def heartbeat(
        self, task_id: str, lease_token: str, lease_seconds: int | None, now_ms: int
    ) -> Task:
        op = partial(
            self._ops.heartbeat,
            task_id=task_id,
            lease_token=lease_token,
            lease_seconds=lease_seconds,
            now_ms=now_ms,
        )
        return await self._write(op)

    async def complete(self, task_id: str, lease_token: str, result_json: str, now_ms: int) -> Task:
        op = partial(
            self._ops.complete,
            task_id=task_id,
            lease_token=lease_token,
            result_json=result_json,
            now_ms=now_ms,
        )
        return await self._write(op)

    async def complete_many(
        self, items: Sequence[tuple[str, str, str]], now_ms: int
    ) -> list[Task | TaskgateError]:
        return await self._write(partial(self._ops.complete_many, items=items, now_ms=now_ms))

    async def fail_many(
        self, items: Sequence[FailOrder], now_ms: int
    ) -> list[Task | TaskgateError]:
        def op(conn: apsw.Connection) -> list[Task | TaskgateError]:
            calls = [
                partial(
                    self._ops.fail,
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
            return self._ops.each(conn, calls)

        return await self._write(op)

    async def fail(
        self,
        task_id: str,
        lease_token: str,
        error: ErrorReport,
        retry: bool,
        retry_after_ms: int | None,
        now_ms: int,
    ) -> Task:
        op = partial(
            self._ops.fail,
            task_id=task_id,
            lease_token=lease_token,
            error=error,
            retry=retry,
            retry_after_ms=retry_after_ms,
            now_ms=now_ms,
        )
        return await self._write(op)

    async def next_due_ms(self, queue: str) -> int | None:
        sql = self._queries["queue_next_due"]

        def query(conn: apsw.Connection) -> int | None:
            row: Any = conn.execute(sql, {"queue": queue}).fetchone()
            return None if row is None else row[0]

        return await self._read(query)

    async def has_claimable(self, queue: str, types: Sequence[str] | None, now_ms: int) -> bool:
        sql = self._queries["queue_claimable"]
        params = {
            "queue": queue,
            "types": orjson.dumps(list(types)).decode() if types else None,
            "now": now_ms,
        }

        def query(conn: apsw.Connection) -> bool:
            row = conn.execute(sql, params).fetchone()
            return bool(row and row[0])

        return await self._read(query)

    # -- queues ---------------------------------------------------------------------

    async def get_queue(self, name: str, now_ms: int) -> QueueInfo | None:
        return await self._read(partial(self._queue_info, name=name, now_ms=now_ms))

    def _queue_info(self, conn: apsw.Connection, name: str, now_ms: int) -> QueueInfo | None:
        row: Any = conn.execute(self._queries["queue_get"], {"name": name}).fetchone()
        if row is None:
            return None
        counts: dict[str, int] = dict(
            conn.execute(self._queries["queue_counts"], {"queue": name}).fetchall()  # type: ignore[arg-type]
        )
        due, oldest = conn.execute(  # type: ignore[misc]
            self._queries["queue_due_stats"], {"queue": name, "now": now_ms}
        ).fetchone()
        return queue_info_from_rows(row, counts, due, oldest, self._defaults, now_ms)

    async def list_queues(self, now_ms: int) -> list[QueueInfo]:
        def query(conn: apsw.Connection) -> list[QueueInfo]:
            conn.execute("BEGIN")
            try:
                rows: Any = conn.execute(self._queries["queue_list"]).fetchall()
                counts: dict[str, dict[str, int]] = {}
                for queue, state, count in conn.execute(self._queries["all_queue_counts"]):
                    counts.setdefault(queue, {})[state] = count
                due_stats = {
                    queue: (due, oldest)
                    for queue, due, oldest in conn.execute(
                        self._queries["all_queue_due_stats"], {"now": now_ms}
                    )
                }
            finally:
                conn.execute("COMMIT")
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

        return await self._read(query)

    async def queue_depths(self, now_ms: int) -> list[QueueDepth]:
        sql = self._queries["queue_depths"]

        def query(conn: apsw.Connection) -> list[QueueDepth]:
            return [queue_depth_from_row(row) for row in conn.execute(sql, {"now": now_ms})]

        return await self._read(query)

    async def list_push_queues(self) -> list[PushQueue]:
        sql = self._queries["push_queues"]

        def query(conn: apsw.Connection) -> list[PushQueue]:
            return [push_queue_from_row(row, self._defaults) for row in conn.execute(sql)]

        return await self._read(query)

    async def configure_queue(
        self,
        name: str,
        overrides: QueueOverrides,
        fields: frozenset[str],
        now_ms: int,
        delivery: DeliveryConfig | None = None,
    ) -> QueueInfo:
        def op(conn: apsw.Connection) -> QueueInfo:
            self._ops.configure_queue(conn, name, overrides, fields, now_ms, delivery)
            info = self._queue_info(conn, name, now_ms)
            assert info is not None
            return info

        return await self._write(op)

    async def set_paused(
        self, name: str, paused: bool, reason: str | None, now_ms: int
    ) -> QueueInfo:
        def op(conn: apsw.Connection) -> QueueInfo:
            self._ops.set_paused(conn, name, paused, reason, now_ms)
            info = self._queue_info(conn, name, now_ms)
            assert info is not None
            return info

        return await self._write(op)

    async def list_dead(self, queue: str, before_id: str | None, limit: int) -> list[Task]:
        params = {"queue": queue, "before_id": before_id, "limit": limit}
        return await self._read(self._fetch_tasks("dead_list", params))

    async def redrive(self, queue: str, task_ids: Sequence[str] | None, now_ms: int) -> int:
        return await self._write(
            partial(self._ops.redrive, queue=queue, task_ids=task_ids, now_ms=now_ms)
        )

    async def purge_dead(self, queue: str) -> int:
        return await self._write(partial(self._ops.purge_dead, queue=queue))

    # -- workers and upkeep -----------------------------------------------------------

    async def list_workers(self, limit: int) -> list[WorkerInfo]:
        def query(conn: apsw.Connection) -> list[WorkerInfo]:
            conn.execute("BEGIN")
            try:
                rows: Any = conn.execute(self._queries["worker_list"], {"limit": limit}).fetchall()
                leases: Any = conn.execute(self._queries["worker_leases"]).fetchall()
            finally:
                conn.execute("COMMIT")
            return workers_from_rows(rows, leases)

        return await self._read(query)

    async def expire_leases(self, now_ms: int, limit: int) -> list[Task]:
        return await self._write(partial(self._ops.expire_leases, now_ms=now_ms, limit=limit))

    async def events_after(self, after_id: int | None, queue: str | None, limit: int) -> EventPage:
        bounds_sql = self._queries["events_bounds"]
        name = "events_after" if queue is None else "events_after_on_queue"
        events_sql = self._queries[name]

        def query(conn: apsw.Connection) -> EventPage:
            # One read transaction: the bounds and the page see the same snapshot.
            with conn:
                row: Any = conn.execute(bounds_sql).fetchone()
                oldest, newest = row
                if after_id is None:
                    return EventPage([], newest, gap=False)
                # Ids are given without holes (AUTOINCREMENT, rolled back with the change),
                # so a first kept id beyond after + 1 means retention dropped some.
                gap = after_id < newest and (oldest is None or oldest > after_id + 1)
                params = {"after": after_id, "queue": queue, "limit": limit}
                events = [event_from_row(r) for r in conn.execute(events_sql, params)]
            return EventPage(events, newest, gap)

        return await self._read(query)

    async def delete_events_before(self, cutoff_ms: int, limit: int) -> int:
        sql = self._queries["events_delete_before"]

        def op(conn: apsw.Connection) -> int:
            conn.execute(sql, {"cutoff": cutoff_ms, "limit": limit})
            return conn.changes()

        return await self._write(op)

    async def delete_expired(self, now_ms: int, worker_retention_ms: int, limit: int) -> int:
        return await self._write(
            partial(
                self._ops.delete_expired,
                now_ms=now_ms,
                worker_retention_ms=worker_retention_ms,
                limit=limit,
            )
        )

    # -- schedules (the queries are in sqlite_schedules.py) -------------------------

    async def create_schedule(self, schedule: Schedule, now_ms: int) -> Schedule:
        return await self._write(partial(self._schedules.create, schedule=schedule, now_ms=now_ms))

    async def get_schedule(self, schedule_id: str) -> Schedule | None:
        return await self._read(partial(self._schedules.get, schedule_id=schedule_id))

    async def list_schedules(self, after_id: str | None, limit: int) -> list[Schedule]:
        return await self._read(partial(self._schedules.page, after_id=after_id, limit=limit))

    async def update_schedule(self, schedule: Schedule, reschedule: bool, now_ms: int) -> Schedule:
        op = partial(
            self._schedules.update, schedule=schedule, reschedule=reschedule, now_ms=now_ms
        )
        return await self._write(op)

    async def delete_schedule(self, schedule_id: str, revision: int) -> None:
        op = partial(self._schedules.delete, schedule_id=schedule_id, revision=revision)
        await self._write(op)

    async def due_schedules(self, now_ms: int, limit: int) -> list[Schedule]:
        return await self._read(partial(self._schedules.due, now_ms=now_ms, limit=limit))

    async def fire_schedules(self, orders: Sequence[FireOrder], now_ms: int) -> list[FireOutcome]:
        return await self._write(partial(self._schedules.fire, orders=orders, now_ms=now_ms))
