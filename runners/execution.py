"""One claimed task run through its handler: heartbeats, timeout, interrupts, and the report.

`Retry` and `Permanent` are the exceptions a handler raises to steer what happens next.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import traceback
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import Executor
from datetime import UTC, datetime
from typing import Any, Literal

from .batching import CompletionBatcher
from .client import AsyncClient
from .errors import ClientError, LeaseLost, NotFound
from .models import JSON, Lease, Task

Handler = Callable[[JSON], Any] | Callable[[JSON], Awaitable[Any]]
"""A function of the payload, sync or async; what it returns must be JSON-serialisable."""

Interrupt = Literal["cancel", "lease-lost", "timeout", "shutdown"]
"""Why a handler was stopped before it returned."""

log = logging.getLogger(__name__)

# The server's limits on an error report (ErrorReport in the spec).
MAX_TYPE_CHARS = 256
MAX_MESSAGE_CHARS = 65_536
MAX_TRACEBACK_CHARS = 262_144
MIN_HEARTBEAT_SECONDS = 0.05


class Retry(Exception):
    """Fail this attempt and retry it after `after` seconds (None: the retry policy's backoff).

    The task still goes dead once it has used its `max_attempts`.
    """

    def __init__(self, message: str = "retry requested", *, after: float | None = None) -> None:
        if after is not None and after < 0:
            raise ValueError("after must be >= 0 seconds")
        self.after = after
        super().__init__(message)


class Permanent(Exception):
    """Fail this task for good: no retry, it goes dead whatever attempts are left."""


def is_async_handler(handler: Handler) -> bool:
    """Whether `handler` is awaited on the loop (else it runs on a pool thread)."""
    return inspect.iscoroutinefunction(handler) or inspect.iscoroutinefunction(
        getattr(handler, "__call__", None)  # noqa: B004 (an object with an async __call__)
    )


def error_type_name(exc: BaseException) -> str:
    """`ValueError` for builtins, `module.Qualname` for everything else."""
    kind = type(exc)
    name = (
        kind.__qualname__
        if kind.__module__ == "builtins"
        else f"{kind.__module__}.{kind.__qualname__}"
    )
    return name[:MAX_TYPE_CHARS]


class Execution:
    """Runs one leased task: calls the handler, heartbeats, then completes or fails it."""

    def __init__(
        self,
        client: AsyncClient,
        task: Task,
        handler: Handler | None,
        *,
        executor: Executor,
        known_types: Sequence[str],
        lease_seconds: int | None,
        heartbeat_fraction: float,
        timeout_seconds: float | None,
        completions: CompletionBatcher | None = None,
    ) -> None:
        if task.lease is None:
            raise ValueError(f"task {task.id} was not claimed (it has no lease)")
        self.task = task
        self._lease: Lease = task.lease
        self._client = client
        self._handler = handler
        self._executor = executor
        self._known_types = known_types
        self._lease_seconds = lease_seconds
        self._heartbeat_fraction = heartbeat_fraction
        self._timeout_seconds = timeout_seconds
        self._completions = completions
        self._work: asyncio.Future[Any] | None = None
        self._interrupted: Interrupt | None = None

    def interrupt(self, reason: Interrupt) -> None:
        """Stop the handler if it is still running; the first reason given wins."""
        if self._work is None or self._work.done() or self._interrupted is not None:
            return
        self._interrupted = reason
        self._work.cancel()

    async def run(self) -> None:
        """Run the handler to its end (or interrupt) and report the outcome to the server."""
        if self._handler is None:
            known = ", ".join(sorted(self._known_types)) or "none"
            await self._fail(
                f"no handler for task type {self.task.type!r} (this runner handles: {known})",
                error_type="UnknownTaskType",
                retry=False,
            )
            return
        work = self._work = self._begin(self._handler)
        heartbeats = asyncio.create_task(self._heartbeat_until_done())
        try:
            done, _ = await asyncio.wait({work}, timeout=self._timeout_seconds)
            if not done:
                self.interrupt("timeout")
                await asyncio.wait({work})
        except BaseException:
            work.cancel()
            raise
        finally:
            heartbeats.cancel()
            await asyncio.gather(heartbeats, return_exceptions=True)
        await self._report(work)

    def _begin(self, handler: Handler) -> asyncio.Future[Any]:
        if is_async_handler(handler):
            return asyncio.ensure_future(handler(self.task.payload))
        loop = asyncio.get_running_loop()
        return loop.run_in_executor(self._executor, handler, self.task.payload)

    def _heartbeat_interval(self) -> float:
        lease_length = self._lease_seconds or self.task.lease_seconds
        if lease_length is None:
            lease_length = int((self._lease.expires_at - datetime.now(UTC)).total_seconds())
        return max(MIN_HEARTBEAT_SECONDS, lease_length * self._heartbeat_fraction)

    async def _heartbeat_until_done(self) -> None:
        interval = self._heartbeat_interval()
        while True:
            await asyncio.sleep(interval)
            try:
                beat = await self._client.heartbeat(
                    self.task.id, self._lease.token, lease_seconds=self._lease_seconds
                )
            except (LeaseLost, NotFound):
                self.interrupt("lease-lost")
                return
            except ClientError as exc:
                log.warning("heartbeat of task %s failed (will try again): %s", self.task.id, exc)
                continue
            if beat.cancel_requested:
                self.interrupt("cancel")
                return

    async def _report(self, work: asyncio.Future[Any]) -> None:
        reason = self._interrupted
        if reason == "lease-lost":
            log.warning("task %s: lease lost while running; its outcome is dropped", self.task.id)
        elif reason == "cancel":
            await self._fail("cancelled on request while running", error_type="Cancelled")
        elif reason == "shutdown":
            await self._fail(
                "the runner shut down before the task finished",
                error_type="Shutdown",
                retry_after_seconds=0,
            )
        elif reason == "timeout":
            await self._fail(
                f"the handler ran longer than {self._timeout_seconds} s", error_type="TimeoutError"
            )
        elif work.cancelled():
            await self._fail("the handler was cancelled", error_type="CancelledError")
        elif (exc := work.exception()) is not None:
            await self._fail_with(exc)
        else:
            await self._complete(work.result())

    async def _fail_with(self, exc: BaseException) -> None:
        reported = exc.__cause__ if isinstance(exc, Retry | Permanent) and exc.__cause__ else exc
        trace = "".join(traceback.format_exception(exc))[-MAX_TRACEBACK_CHARS:]
        await self._fail(
            str(exc) or error_type_name(reported),
            error_type=error_type_name(reported),
            trace=trace,
            retry=not isinstance(exc, Permanent),
            retry_after_seconds=exc.after if isinstance(exc, Retry) else None,
        )

    async def _complete(self, result: JSON) -> None:
        try:
            if self._completions is not None:
                await self._completions.complete(self.task.id, self._lease.token, result)
            else:
                await self._client.complete(self.task.id, self._lease.token, result)
        except (TypeError, ValueError) as exc:
            await self._fail(
                f"the handler's result is not JSON: {exc}", error_type="InvalidResult", retry=False
            )
        except ClientError as exc:
            self._log_lost_report("complete", exc)

    async def _fail(
        self,
        message: str,
        *,
        error_type: str,
        trace: str | None = None,
        retry: bool = True,
        retry_after_seconds: float | None = None,
    ) -> None:
        try:
            await self._client.fail(
                self.task.id,
                self._lease.token,
                message=message[:MAX_MESSAGE_CHARS],
                error_type=error_type,
                traceback=trace,
                retry=retry,
                retry_after_seconds=retry_after_seconds,
            )
        except ClientError as exc:
            self._log_lost_report("fail", exc)

    def _log_lost_report(self, operation: str, exc: ClientError) -> None:
        # The lease decides: a lost one means someone else owns the task now; otherwise the
        # lease expires and the server retries the task.
        log.warning("task %s: %s was not recorded: %s", self.task.id, operation, exc)
