"""`backup_sqlite`: one consistent snapshot of a database that keeps being written, checked."""

from __future__ import annotations

import asyncio
import random
import sqlite3
from pathlib import Path

import pytest

from app.core.errors import StoreError
from app.core.models import NewTask, Priority
from app.service.submission import new_task_id
from app.store.backup import backup_sqlite
from app.store.sqlite import SqliteOptions, SqliteStore

from .conftest import DEFAULTS

pytestmark = pytest.mark.anyio

NOW = 1_800_000_000_000


def new_tasks(count: int) -> list[NewTask]:
    return [
        NewTask(
            id=new_task_id(),
            queue="q",
            type="t",
            payload_json='"' + "x" * 500 + '"',
            priority=Priority.normal,
            run_at_ms=NOW,
            max_attempts=None,
            retry=None,
            lease_seconds=None,
            idempotency_key=None,
            request_hash="h",
        )
        for _ in range(count)
    ]


def count_tasks(path: Path) -> int:
    with sqlite3.connect(path) as connection:
        count: int = connection.execute("SELECT count(*) FROM tasks").fetchone()[0]
    connection.close()
    return count


async def test_a_backup_under_writes_is_one_checked_snapshot(db_path: Path, tmp_path: Path) -> None:
    store = SqliteStore(SqliteOptions(path=db_path), DEFAULTS, 60_000, random.Random(7))
    await store.open()
    try:
        await store.submit(new_tasks(2000), NOW)
        steps: list[tuple[int, int]] = []
        stop = asyncio.Event()

        async def keep_writing() -> int:
            written = 0
            while not stop.is_set():
                await store.submit(new_tasks(20), NOW)
                written += 20
            return written

        writer = asyncio.create_task(keep_writing())
        destination = tmp_path / "copy.db"
        # Two pages a step: hundreds of steps, with commits landing between them. Without
        # the held snapshot SQLite would restart the copy after each commit.
        report = await asyncio.to_thread(
            backup_sqlite,
            db_path,
            destination,
            pages_per_step=2,
            on_progress=lambda copied, total: steps.append((copied, total)),
        )
        stop.set()
        written_meanwhile = await writer
    finally:
        await store.close()

    assert len(steps) > 100 and written_meanwhile > 0
    assert [copied for copied, _ in steps] == sorted(copied for copied, _ in steps)
    assert steps[-1] == (report.pages, report.pages), "one pass, never restarted"
    assert 2000 <= report.tasks <= 2000 + written_meanwhile
    assert count_tasks(destination) == report.tasks
    with sqlite3.connect(destination) as connection:
        assert connection.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        assert connection.execute("PRAGMA journal_mode").fetchone() == ("delete",)
    connection.close()
    assert not [path for path in tmp_path.iterdir() if path.name.startswith((".copy", "copy.db-"))]
    assert destination.stat().st_mode & 0o077 == 0, "a backup holds secrets: owner only"


async def test_refusals_leave_nothing_behind(db_path: Path, tmp_path: Path) -> None:
    existing = tmp_path / "existing.db"
    existing.write_text("keep me")
    with pytest.raises(StoreError, match="already exists"):
        backup_sqlite(db_path, existing)
    assert existing.read_text() == "keep me"
    with pytest.raises(StoreError, match="is the database itself"):
        backup_sqlite(db_path, db_path, overwrite=True)
    with pytest.raises(StoreError, match="is a directory"):
        backup_sqlite(db_path, tmp_path, overwrite=True)
    with pytest.raises(StoreError, match="no database at"):
        backup_sqlite(tmp_path / "missing.db", tmp_path / "out.db")
    not_taskgate = tmp_path / "other.db"
    sqlite3.connect(not_taskgate).close()
    with pytest.raises(StoreError, match="no such table: tasks"):
        backup_sqlite(not_taskgate, tmp_path / "out.db")
    assert sorted(path.name for path in tmp_path.iterdir() if "out" in path.name) == []
    assert not [path for path in tmp_path.iterdir() if path.name.startswith(".")]

    report = backup_sqlite(db_path, existing, overwrite=True)
    assert report.tasks == 0 and count_tasks(existing) == 0
