"""Fills a fresh database with queued and finished tasks, straight into the SQLite file.

Going through HTTP would take minutes for 10⁶ + 10⁶ tasks (every finished one needs a
claim and a complete); writing rows takes seconds. The file is migrated with the real
migrations first and the rows are written with sqlite-utils (the project's tool for
fixtures, on a stdlib `sqlite3` connection, before any server opens the file), one
transaction per 50,000 rows. The rows look like tasks the API made: ULID ids (time part
from `created_at`, a counter in the random part), the benchmark's payload, integer
millisecond times; finished tasks have a start, a finish, one attempt and a result.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import orjson
import sqlite_utils
from ulid import ULID

from app.bench.api import PAYLOAD, TASK_TYPE, Meter
from app.store.migrate import migrate_sqlite

ROWS_PER_TRANSACTION = 50_000
NORMAL_PRIORITY = 1
LEASE_SECONDS = 60
MAX_ATTEMPTS = 5
SPREAD_MS = 3_600_000
QUEUED_COLUMNS = (
    "id",
    "queue",
    "type",
    "payload",
    "priority",
    "state",
    "attempts",
    "max_attempts",
    "lease_seconds",
    "run_at",
    "created_at",
    "updated_at",
)
FINISHED_COLUMNS = (*QUEUED_COLUMNS, "started_at", "finished_at", "worker_id", "result")


def fill(
    database: Path,
    *,
    queued: int,
    finished: int,
    queued_queue: str,
    finished_queue: str,
    meter: Meter,
) -> float:
    """Migrate `database` and add `queued` due tasks and `finished` succeeded ones.

    Returns the seconds it took. The tasks were created over the last hour; the queued
    ones are all due now, oldest first.
    """
    started = time.monotonic()
    migrate_sqlite(database)
    connection = sqlite3.connect(database)
    try:
        # Only this process has the file open, and a crash here just means filling again.
        connection.execute("PRAGMA synchronous = OFF")
        db = sqlite_utils.Database(connection)
        now_ms = int(time.time() * 1000)
        with db.atomic():
            db.table("queues").insert_all(
                [
                    {"name": name, "created_at": now_ms, "updated_at": now_ms}
                    for name in (queued_queue, finished_queue)
                ]
            )
        meter.begin("filling the database", queued + finished)
        written = 0
        for state, queue, count, columns in (
            ("queued", queued_queue, queued, QUEUED_COLUMNS),
            ("succeeded", finished_queue, finished, FINISHED_COLUMNS),
        ):
            for first in range(0, count, ROWS_PER_TRANSACTION):
                size = min(ROWS_PER_TRANSACTION, count - first)
                rows = _rows(state, queue, first, size, count, now_ms, serial_base=written)
                with db.atomic():
                    db.table("tasks").insert_all([list(columns), *rows], batch_size=1000)
                written += size
                meter.advance_to(written)
        meter.end()
        connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        connection.close()
    return time.monotonic() - started


def _rows(
    state: str, queue: str, first: int, size: int, count: int, now_ms: int, serial_base: int
) -> Iterator[tuple[object, ...]]:
    payload = orjson.dumps(PAYLOAD).decode()
    result = orjson.dumps({"ok": True}).decode()
    worker = f"{queue}-worker"
    step = max(1, SPREAD_MS // max(count, 1))
    prefix_ms, prefix = -1, ""
    for index in range(first, first + size):
        created = min(now_ms - SPREAD_MS + index * step, now_ms - 1)
        if created != prefix_ms:
            prefix_ms, prefix = created, str(ULID.from_timestamp(created / 1000))[:10]
        # Ten characters of time, sixteen of counter: unique, sortable, valid Crockford.
        task_id = f"{prefix}{serial_base + index - first:016d}"
        common = (task_id, queue, TASK_TYPE, payload, NORMAL_PRIORITY)
        if state == "queued":
            yield (*common, "queued", 0, MAX_ATTEMPTS, LEASE_SECONDS, created, created, created)
        else:
            done = created + 5
            yield (
                *common,
                "succeeded",
                1,
                MAX_ATTEMPTS,
                LEASE_SECONDS,
                created,
                created,
                done,
                created + 1,
                done,
                worker,
                result,
            )
