"""Group commit: one writer thread per process runs many operations in one transaction.

Concurrent requests queue their operations; the thread takes every queued operation,
runs each inside its own SAVEPOINT within one `BEGIN IMMEDIATE` transaction, commits
once (one fsync) and only then hands each caller its own result or error. A failing
operation is rolled back to its savepoint and does not fail the others. `forget` is
called whenever what an operation read may have been undone (a new transaction, a
rollback), so that operations may remember reads for the rest of a transaction. Processes that
share the file serialise their write transactions on an OS lock (`flock` on a side
file), which queues them fairly instead of SQLite's sleeping busy handler.
"""

from __future__ import annotations

import asyncio
import fcntl
import logging
import os
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import apsw

from app.core.errors import StoreError, TaskgateError

T = TypeVar("T")
WriteOp = Callable[[apsw.Connection], T]

log = logging.getLogger("taskgate.store.writer")


@dataclass(slots=True)
class _Job:
    op: WriteOp[Any]
    future: asyncio.Future[Any]
    loop: asyncio.AbstractEventLoop


_STOP = object()


class GroupCommitWriter:
    """Runs write operations on one connection, many per transaction."""

    def __init__(
        self,
        connection: apsw.Connection,
        lock_path: Path,
        max_batch: int = 2000,
        forget: Callable[[], None] = lambda: None,
    ) -> None:
        self._connection = connection
        self._forget = forget
        self._lock_path = lock_path
        self._max_batch = max_batch
        self._jobs: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock_fd: int | None = None

    def start(self) -> None:
        """Start the writer thread."""
        self._lock_fd = os.open(self._lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        self._thread = threading.Thread(target=self._run, name="taskgate-writer", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Finish the queued operations, then stop the thread."""
        if self._thread is not None:
            self._jobs.put(_STOP)
            self._thread.join()
            self._thread = None
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    async def run(self, op: WriteOp[T]) -> T:
        """Run `op(connection)` in the next group transaction; return after the commit.

        Raises:
            TaskgateError: what `op` raised, or StoreError if the commit failed.
        """
        if self._thread is None:
            raise StoreError("the store is not open")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._jobs.put(_Job(op, future, loop))
        return await future

    def _run(self) -> None:
        stopping = False
        while not stopping:
            job = self._jobs.get()
            if job is _STOP:
                break
            batch = [job]
            while len(batch) < self._max_batch:
                try:
                    more = self._jobs.get_nowait()
                except queue.Empty:
                    break
                if more is _STOP:
                    stopping = True
                    break
                batch.append(more)
            outcomes = self._run_batch(batch)
            self._deliver(batch, outcomes)

    def _run_batch(self, batch: list[_Job]) -> list[tuple[bool, Any]]:
        connection = self._connection
        assert self._lock_fd is not None
        fcntl.flock(self._lock_fd, fcntl.LOCK_EX)
        try:
            try:
                connection.execute("BEGIN IMMEDIATE")
            except apsw.Error as exc:
                log.error("could not begin a write transaction: %s", exc)
                return [(False, StoreError()) for _ in batch]
            self._forget()
            outcomes: list[tuple[bool, Any]] = []
            for job in batch:
                outcomes.append(self._run_one(connection, job))
            try:
                connection.execute("COMMIT")
            except apsw.Error as exc:
                log.error("group commit failed: %s", exc)
                self._rollback(connection)
                return [(False, StoreError()) for _ in batch]
            return outcomes
        finally:
            fcntl.flock(self._lock_fd, fcntl.LOCK_UN)

    def _run_one(self, connection: apsw.Connection, job: _Job) -> tuple[bool, Any]:
        connection.execute("SAVEPOINT op")
        try:
            value = job.op(connection)
        except Exception as exc:
            connection.execute("ROLLBACK TO op")
            connection.execute("RELEASE op")
            self._forget()
            if isinstance(exc, TaskgateError):
                return (False, exc)
            log.exception("write operation failed")
            return (False, StoreError())
        connection.execute("RELEASE op")
        return (True, value)

    @staticmethod
    def _rollback(connection: apsw.Connection) -> None:
        try:
            connection.execute("ROLLBACK")
        except apsw.Error:
            log.exception("rollback after a failed commit failed too")

    @staticmethod
    def _deliver(batch: list[_Job], outcomes: list[tuple[bool, Any]]) -> None:
        by_loop: dict[asyncio.AbstractEventLoop, list[tuple[_Job, tuple[bool, Any]]]] = {}
        for job, outcome in zip(batch, outcomes, strict=True):
            by_loop.setdefault(job.loop, []).append((job, outcome))
        for loop, settled in by_loop.items():
            try:
                loop.call_soon_threadsafe(_settle, settled)
            except RuntimeError:
                log.warning("a caller's event loop closed before its write finished")


def _settle(settled: list[tuple[_Job, tuple[bool, Any]]]) -> None:
    for job, (ok, value) in settled:
        if job.future.done():
            continue
        if ok:
            job.future.set_result(value)
        else:
            job.future.set_exception(value)
