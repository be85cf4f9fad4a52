"""Online backup of the SQLite file: a consistent snapshot copied page by page while servers write.

The source connection holds one read transaction for the whole copy. In WAL mode that
blocks no writer, and it pins the snapshot: without it, SQLite restarts a stepped backup
each time another connection commits, which under steady load never finishes.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import apsw

from app.core.errors import StoreError
from app.store.queries import load_queries

# 256 pages of 4 KiB: 1 MiB per step, so progress moves and no step holds the GIL for long.
PAGES_PER_STEP = 256
BUSY_TIMEOUT_MS = 10_000


@dataclass(frozen=True, slots=True)
class BackupReport:
    """What a backup wrote: where, how big, and how many tasks the snapshot holds."""

    source: Path
    destination: Path
    pages: int
    page_size: int
    tasks: int

    @property
    def size_bytes(self) -> int:
        return self.pages * self.page_size


ProgressCallback = Callable[[int, int], None]
"""Called after each step with (pages copied, pages in all)."""


def backup_sqlite(
    source: Path,
    destination: Path,
    *,
    overwrite: bool = False,
    pages_per_step: int = PAGES_PER_STEP,
    on_progress: ProgressCallback | None = None,
) -> BackupReport:
    """Copy the database at `source` to `destination`, checked, then renamed into place.

    The copy is written to a temporary file beside `destination` (mode 0600: it holds
    webhook secrets), switched to a rollback journal so it is one self-contained file,
    checked with `PRAGMA integrity_check` and a task count against the snapshot, and only
    then renamed over `destination`.

    Raises:
        StoreError: no database at `source`, `destination` exists (without `overwrite`)
            or is the source itself, or the copy failed or did not check out.
    """
    if not source.is_file():
        raise StoreError(f"no database at {source}")
    if destination.exists():
        if destination.resolve() == source.resolve():
            raise StoreError(f"{destination} is the database itself")
        if destination.is_dir():
            raise StoreError(f"{destination} is a directory; name the backup file")
        if not overwrite:
            raise StoreError(f"{destination} already exists")
    queries = load_queries("sqlite")
    try:
        destination.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary_name = tempfile.mkstemp(
            prefix=f".{destination.name}.", suffix=".partial", dir=destination.parent
        )
    except OSError as exc:
        raise StoreError(f"cannot write in {destination.parent}: {exc.strerror}") from exc
    os.close(handle)
    temporary = Path(temporary_name)
    try:
        pages, page_size, snapshot_tasks = _copy_snapshot(
            source, temporary, queries, pages_per_step, on_progress
        )
        _check_copy(temporary, queries, snapshot_tasks)
        _fsync(temporary)
        os.replace(temporary, destination)
        _fsync(destination.parent)
    except apsw.Error as exc:
        raise StoreError(f"cannot back up {source}: {exc}") from exc
    except OSError as exc:
        raise StoreError(f"cannot write {destination}: {exc.strerror or exc}") from exc
    finally:
        for leftover in (temporary, *_sidecars(temporary)):
            with contextlib.suppress(FileNotFoundError):
                leftover.unlink()
    return BackupReport(source, destination, pages, page_size, snapshot_tasks)


def _copy_snapshot(
    source: Path,
    target: Path,
    queries: dict[str, str],
    pages_per_step: int,
    on_progress: ProgressCallback | None,
) -> tuple[int, int, int]:
    """Copy one snapshot of `source` into `target`; (pages, page size, tasks in the snapshot)."""
    reader = apsw.Connection(str(source), flags=apsw.SQLITE_OPEN_READONLY)
    try:
        reader.set_busy_timeout(BUSY_TIMEOUT_MS)
        reader.execute("BEGIN")
        # The first read starts the snapshot; the backup steps below all see this one.
        snapshot_tasks = _single_value(reader, queries["backup_task_count"])
        page_size = _single_value(reader, "PRAGMA page_size")
        writer = apsw.Connection(str(target))
        try:
            with writer.backup("main", reader, "main") as backup:
                while not backup.done:
                    backup.step(pages_per_step)
                    if on_progress is not None:
                        on_progress(backup.pagecount - backup.remaining, backup.pagecount)
                pages = backup.pagecount
        finally:
            writer.close()
        reader.execute("COMMIT")
    finally:
        reader.close()
    return pages, page_size, snapshot_tasks


def _check_copy(copy: Path, queries: dict[str, str], snapshot_tasks: int) -> None:
    """Make the copy a single file (rollback journal) and check it.

    Raises:
        StoreError: the integrity check fails or the copy lost tasks.
    """
    connection = apsw.Connection(str(copy))
    try:
        # The copied header says WAL; a backup is one file, WAL is set again on restore.
        connection.execute("PRAGMA journal_mode = DELETE")
        verdict = [str(row[0]) for row in connection.execute(queries["backup_integrity_check"])]
        if verdict != ["ok"]:
            raise StoreError(f"the copy failed its integrity check: {'; '.join(verdict[:5])}")
        copied_tasks = _single_value(connection, queries["backup_task_count"])
        if copied_tasks != snapshot_tasks:
            raise StoreError(f"the copy holds {copied_tasks} tasks, the snapshot {snapshot_tasks}")
    finally:
        connection.close()


def _single_value(connection: apsw.Connection, sql: str) -> int:
    row = connection.execute(sql).fetchone()
    assert row is not None
    return int(row[0])


def _fsync(path: Path) -> None:
    """Flush a file, or a directory (after a rename: the entry is data too), to disk."""
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _sidecars(database: Path) -> tuple[Path, ...]:
    suffixes = ("-journal", "-wal", "-shm")
    return tuple(database.with_name(database.name + suffix) for suffix in suffixes)
