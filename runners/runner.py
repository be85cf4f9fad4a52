"""`Runner`: claims tasks from queues over HTTP and runs them through registered handlers.

A handler is called with the task's payload; its return value becomes the result, an
exception becomes a failure (see `Retry` and `Permanent` to steer what happens next).
"""

from __future__ import annotations

import asyncio
import dataclasses
import importlib.metadata
import logging
import os
import signal
import socket
import uuid
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from .batching import CompletionBatcher
from .client import AsyncClient
from .errors import ClientError
from .execution import Execution, Handler
from .models import Task, WorkerInfo

H = TypeVar("H", bound=Handler)

log = logging.getLogger(__name__)

# The claim endpoint's `types` filter takes at most this many names (openapi.yaml).
MAX_CLAIM_TYPES = 32
# After a failed claim (server down), wait this long before claiming again.
CLAIM_ERROR_PAUSE_SECONDS = 1.0
# What the runner says about itself in `worker_info`, within the spec's length limits.
SDK_NAME = "taskgate-python"
DISTRIBUTION_NAME = "taskgate"
UNKNOWN_VERSION = "0+unknown"
MAX_HOST_CHARS = 255
MAX_VERSION_CHARS = 64


def default_worker_id() -> str:
    """`{hostname}:{pid}:{random}`: stable for the life of the process, unique across restarts."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def installed_version() -> str:
    """The version of the installed `taskgate` distribution, or "0+unknown" without one."""
    try:
        return importlib.metadata.version(DISTRIBUTION_NAME)[:MAX_VERSION_CHARS]
    except importlib.metadata.PackageNotFoundError:
        return UNKNOWN_VERSION


def default_worker_info(overrides: WorkerInfo | None = None) -> WorkerInfo:
    """This process's host name, pid, taskgate version and SDK; fields set in `overrides` win."""
    info = WorkerInfo(
        host=socket.gethostname()[:MAX_HOST_CHARS] or None,
        pid=os.getpid(),
        version=installed_version(),
        sdk=SDK_NAME,
    )
    if overrides is None:
        return info
    chosen = {
        name: value
        for name in (f.name for f in dataclasses.fields(overrides))
        if (value := getattr(overrides, name)) is not None
    }
    return dataclasses.replace(info, **chosen)


class Runner:
    """Claims tasks from `queues` and runs up to `concurrency` of them at once.

    * Async handlers run on the event loop; sync handlers on a thread pool of
      `concurrency` threads.
    * Each running task is heartbeaten every `heartbeat_fraction` of its lease. When the
      server reports a cancel request the handler is stopped and the task failed (the
      server then marks it cancelled); when the lease was lost the handler is stopped and
      its outcome dropped. A sync handler cannot be interrupted: its thread runs on and
      its outcome is ignored (and it holds its pool thread until it returns).
    * `task_timeout_seconds` (default: none) bounds one attempt; heartbeats keep the lease
      alive, so the lease alone never stops a long task. A timed-out attempt is failed
      as retryable with type `TimeoutError`.
    * Tasks of a type without a handler are failed with `retry=False` (they go dead).
    * `stop()` ends `run()`: no more claims, in-flight tasks get `shutdown_grace_seconds`
      to finish, the rest are failed back at once (`retry_after_seconds=0`).
    * Every claim carries `worker_info` (shown by `GET /v1/workers`): host name, pid,
      taskgate version and `taskgate-python`, read when `run()` starts. Fields set in the
      `worker_info` given here replace those defaults.

    With several queues, each queue's long-poll holds the slots it asked for until it
    returns, so queues share `concurrency` between their pending claims.
    """

    def __init__(
        self,
        base_url: str | None = None,
        *,
        queues: Iterable[str] = (),
        concurrency: int = 4,
        worker_id: str | None = None,
        token: str | None = None,
        lease_seconds: int | None = None,
        claim_batch: int = 10,
        poll_seconds: float = 20.0,
        task_timeout_seconds: float | None = None,
        heartbeat_fraction: float = 1 / 3,
        shutdown_grace_seconds: float = 30.0,
        worker_info: WorkerInfo | None = None,
        client: AsyncClient | None = None,
        batch_completions: bool = True,
    ) -> None:
        if concurrency < 1 or claim_batch < 1:
            raise ValueError("concurrency and claim_batch must be at least 1")
        if not 0 < heartbeat_fraction < 1:
            raise ValueError("heartbeat_fraction must be between 0 and 1")
        self.base_url = base_url
        self.queues: tuple[str, ...] = tuple(queues)
        self.concurrency = concurrency
        self.worker_id = worker_id or default_worker_id()
        self.token = token
        self.lease_seconds = lease_seconds
        self.claim_batch = claim_batch
        self.poll_seconds = poll_seconds
        self.task_timeout_seconds = task_timeout_seconds
        self.heartbeat_fraction = heartbeat_fraction
        self.shutdown_grace_seconds = shutdown_grace_seconds
        self.worker_info = worker_info
        self._client = client
        self.batch_completions = batch_completions
        self._completions: CompletionBatcher | None = None
        self._claim_info: WorkerInfo | None = None
        self._handlers: dict[str, Handler] = {}
        self._stopping = False
        self._stop_requested: asyncio.Event | None = None
        self._free_slots = 0
        self._slot_freed: asyncio.Event | None = None
        self._executions: dict[asyncio.Task[None], Execution] = {}

    @property
    def task_types(self) -> tuple[str, ...]:
        """The task types that have a handler."""
        return tuple(self._handlers)

    def _claim_types(self) -> list[str] | None:
        """Claim only the types this runner handles, so other workers get the rest.

        The API filters on up to 32 types; a runner with more handlers claims every type
        and fails the ones it cannot handle as permanent (`UnknownTaskType`).
        """
        types = list(self._handlers)
        return types if 0 < len(types) <= MAX_CLAIM_TYPES else None

    def handler(self, task_type: str) -> Callable[[H], H]:
        """Decorator registering a sync or async function of the payload for `task_type`.

        Raises:
            ValueError: `task_type` already has a handler.
        """

        def register(function: H) -> H:
            if task_type in self._handlers:
                raise ValueError(f"task type {task_type!r} already has a handler")
            self._handlers[task_type] = function
            return function

        return register

    def stop(self) -> None:
        """Ask `run()` to stop claiming and shut down gracefully (call it on the loop)."""
        self._stopping = True
        if self._stop_requested is not None:
            self._stop_requested.set()

    def run_forever(self) -> None:
        """Run until SIGTERM or SIGINT, then shut down gracefully (blocking)."""
        asyncio.run(self._run_until_signalled())

    async def _run_until_signalled(self) -> None:
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, self.stop)
        try:
            await self.run()
        finally:
            for signum in (signal.SIGTERM, signal.SIGINT):
                loop.remove_signal_handler(signum)

    async def run(self) -> None:
        """Claim and run tasks until `stop()`, then finish or hand back what is in flight.

        Raises:
            ValueError: no queue, no handler, or neither `base_url` nor `client` was given.
        """
        if not self.queues:
            raise ValueError("the runner has no queue to consume")
        if not self._handlers:
            raise ValueError("the runner has no handler; register one with @runner.handler(...)")
        if self._client is None and self.base_url is None:
            raise ValueError("the runner needs a base_url or a client")
        self._stop_requested = asyncio.Event()
        if self._stopping:
            self._stop_requested.set()
        self._free_slots = self.concurrency
        self._slot_freed = asyncio.Event()
        # Read at run time, not in __init__: a runner built before a fork reports the child's pid.
        self._claim_info = default_worker_info(self.worker_info)
        client = self._client or AsyncClient(self.base_url or "", token=self.token)
        self._completions = CompletionBatcher(client) if self.batch_completions else None
        executor = ThreadPoolExecutor(self.concurrency, thread_name_prefix="taskgate-runner")
        log.info("runner %s consuming %s", self.worker_id, ", ".join(self.queues))
        try:
            await self._claim_until_stopped(client, executor)
            log.info(
                "runner %s stopping: %d task(s) in flight get up to %g s to finish",
                self.worker_id,
                len(self._executions),
                self.shutdown_grace_seconds,
            )
            await self._drain(self.shutdown_grace_seconds)
        finally:
            executor.shutdown(wait=False, cancel_futures=True)
            if self._client is None:
                await client.aclose()
            self._stopping = False
            log.info("runner %s stopped", self.worker_id)

    async def _claim_until_stopped(self, client: AsyncClient, executor: ThreadPoolExecutor) -> None:
        assert self._stop_requested is not None
        claimers = [
            asyncio.create_task(self._claim_loop(client, executor, queue)) for queue in self.queues
        ]
        stop_wait = asyncio.create_task(self._stop_requested.wait())
        try:
            await asyncio.wait([stop_wait, *claimers], return_when=asyncio.FIRST_COMPLETED)
        finally:
            # Cancelling a claim mid-poll may strand tasks it leased in that very instant;
            # they return to the queue when their lease expires.
            for pending in (stop_wait, *claimers):
                pending.cancel()
            outcomes = await asyncio.gather(stop_wait, *claimers, return_exceptions=True)
        for outcome in outcomes:
            if isinstance(outcome, Exception):
                await self._drain(0.0)
                raise outcome

    async def _claim_loop(
        self, client: AsyncClient, executor: ThreadPoolExecutor, queue: str
    ) -> None:
        assert self._slot_freed is not None
        while not self._stopping:
            while self._free_slots == 0:
                self._slot_freed.clear()
                await self._slot_freed.wait()
            wanted = min(self._free_slots, self.claim_batch)
            self._free_slots -= wanted
            claimed: list[Task] = []
            try:
                claimed = await client.claim(
                    queue,
                    self.worker_id,
                    max_tasks=wanted,
                    wait_seconds=self.poll_seconds,
                    lease_seconds=self.lease_seconds,
                    types=self._claim_types(),
                    worker_info=self._claim_info,
                )
            except ClientError as exc:
                log.warning("claim from %r failed: %s", queue, exc)
                await asyncio.sleep(CLAIM_ERROR_PAUSE_SECONDS)
            finally:
                self._release_slots(wanted - len(claimed))
            for task in claimed:
                self._start(client, executor, task)

    def _start(self, client: AsyncClient, executor: ThreadPoolExecutor, task: Task) -> None:
        execution = Execution(
            client,
            task,
            self._handlers.get(task.type),
            executor=executor,
            known_types=self.task_types,
            lease_seconds=self.lease_seconds,
            heartbeat_fraction=self.heartbeat_fraction,
            timeout_seconds=self.task_timeout_seconds,
            completions=self._completions,
        )
        runner_task = asyncio.create_task(execution.run(), name=f"taskgate-task-{task.id}")
        self._executions[runner_task] = execution
        runner_task.add_done_callback(self._finished)

    def _finished(self, runner_task: asyncio.Task[None]) -> None:
        self._executions.pop(runner_task, None)
        self._release_slots(1)
        if not runner_task.cancelled() and (exc := runner_task.exception()) is not None:
            log.error("task execution crashed", exc_info=exc)

    def _release_slots(self, count: int) -> None:
        assert self._slot_freed is not None
        if count > 0:
            self._free_slots += count
            self._slot_freed.set()

    async def _drain(self, grace_seconds: float) -> None:
        """Let in-flight tasks finish within `grace_seconds`, then hand the rest back."""
        in_flight = set(self._executions)
        if not in_flight:
            return
        late = in_flight
        if grace_seconds > 0:
            _, late = await asyncio.wait(in_flight, timeout=grace_seconds)
        for runner_task in late:
            if (execution := self._executions.get(runner_task)) is not None:
                execution.interrupt("shutdown")
        if late:
            await asyncio.wait(late)
