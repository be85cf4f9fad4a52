"""The HTTP client of taskgate: `AsyncClient` does every v1 operation, `Client` is its sync face.

Retries. A request is tried up to `Retries.attempts` times, with exponential backoff
between tries (see `Retries`), when one of these happens:

* the connection could not be made (refused, connect timeout, no free pooled
  connection): nothing was sent, so any request is retried, claim and submit included;
* the server answered 503 (database busy) or 429 (rate limited): taskgate sends a 2xx
  only after its commit and rolls the whole write back otherwise, so nothing happened and
  any request is retried. `Retry-After` replaces the computed backoff (capped at
  `max_backoff_seconds`, so a bad proxy cannot park the client);
* the request may have reached the server but no answer came back (read timeout,
  connection reset, or a proxy's 502/504 — say nginx in front of several nodes, one of
  which died mid-request): retried only when repeating it cannot do a second, different
  thing.
  That holds for every GET and DELETE, for heartbeat/complete/fail (the lease token
  fences them: a repeat either does the same thing again or is refused with 409), for
  cancel, pause, resume, configure and redrive, and for submit only with an idempotency
  key (a batch only when every item has one). A submit without a key is not retried:
  the first try may have created the task. **Claim is never retried** after an
  ambiguous failure: if the first try leased tasks, a second would lease others and the
  first ones would sit unseen until their leases expire; the caller's claim loop simply
  claims again. Note that a complete/fail/cancel whose first try did land answers its
  repeat with 409 (`LeaseLost`/`Conflict`); read the task to learn what happened.

Timeouts: `timeout` applies to connect, write, pool and read; a long-poll (claim with
`wait_seconds`, get with `wait`) gets a read timeout of its wait plus `timeout`.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Collection, Iterable, Mapping, Sequence
from datetime import datetime
from types import TracebackType
from typing import Any, Self

import httpx

from ._http import Retries, Session, segment
from ._sync import LoopThread, blocking, blocking_iterator
from .errors import WaitTimeout
from .events import EventsMissed, TaskEvent, follow_events
from .models import (
    JSON,
    BatchResult,
    HeartbeatResult,
    Priority,
    RetryPolicy,
    Task,
    TaskPage,
    TaskSpec,
    TaskState,
    Worker,
    WorkerInfo,
    WorkItemResult,
)
from .queues import Delivery, Queue, WebhookPatch
from .schedules import Schedule

# The server caps a long-poll at 25 s by default; asking for more only wastes a round trip.
DEFAULT_POLL_SECONDS = 25.0


class AsyncClient:
    """Every taskgate v1 operation over `httpx.AsyncClient`; use with `async with`.

    `token`, if given, goes with every request as `Authorization: Bearer <token>`.
    """

    def __init__(
        self,
        base_url: str,
        *,
        token: str | None = None,
        timeout: float = 10.0,
        retries: Retries | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._session = Session(
            base_url, token=token, timeout=timeout, retries=retries, transport=transport
        )

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._session.aclose()

    # -- tasks ----------------------------------------------------------------------

    async def submit(
        self,
        queue: str,
        type: str,
        payload: JSON = None,
        *,
        priority: Priority | str | None = None,
        delay_seconds: float | None = None,
        run_at: datetime | None = None,
        max_attempts: int | None = None,
        retry: RetryPolicy | None = None,
        lease_seconds: int | None = None,
        idempotency_key: str | None = None,
        tags: Sequence[str] | None = None,
    ) -> Task:
        """Submit one task; with `idempotency_key` a repeat returns the first task.

        Raises:
            BadRequest, Conflict (key reused with another body), ServerUnavailable,
            TransportError; ValueError for a naive `run_at`.
        """
        spec = TaskSpec(
            type=type,
            payload=payload,
            priority=priority,
            delay_seconds=delay_seconds,
            run_at=run_at,
            max_attempts=max_attempts,
            retry=retry,
            lease_seconds=lease_seconds,
            idempotency_key=idempotency_key,
            tags=tags,
        )
        data = await self._session.request(
            "POST",
            f"/v1/queues/{segment(queue)}/tasks",
            body=spec.to_json(),
            repeatable=idempotency_key is not None,
        )
        return Task.from_json(data)

    async def submit_batch(
        self, queue: str, tasks: Iterable[TaskSpec | Mapping[str, JSON]]
    ) -> BatchResult:
        """Submit up to 1,000 tasks; each is accepted or rejected on its own.

        An item is a `TaskSpec`, or a `TaskSubmit` JSON object sent exactly as it is (the
        server validates it; a bulk import passes its input through unchanged).

        Raises:
            BadRequest (the batch as a whole), ServerUnavailable, TransportError.
        """
        bodies = [task.to_json() if isinstance(task, TaskSpec) else dict(task) for task in tasks]
        data = await self._session.request(
            "POST",
            f"/v1/queues/{segment(queue)}/tasks/batch",
            body={"tasks": bodies},
            repeatable=all(body.get("idempotency_key") is not None for body in bodies),
        )
        return BatchResult.from_json(data)

    async def get(self, task_id: str, *, wait: float | None = None) -> Task:
        """The task; with `wait`, long-poll up to that many seconds for it to finish.

        Raises:
            NotFound, ServerUnavailable, TransportError.
        """
        params = None if wait is None else {"wait": wait}
        data = await self._session.request(
            "GET", f"/v1/tasks/{segment(task_id)}", params=params, long_poll_seconds=wait or 0.0
        )
        return Task.from_json(data)

    async def wait(
        self,
        task_id: str,
        *,
        timeout: float | None = None,
        poll_seconds: float = DEFAULT_POLL_SECONDS,
    ) -> Task:
        """The task once it is finished (succeeded, dead or cancelled), long-polling for it.

        Raises:
            WaitTimeout: `timeout` seconds passed first (it carries the last task seen).
            NotFound, ServerUnavailable, TransportError.
        """
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        while True:
            remaining = poll_seconds if deadline is None else deadline - loop.time()
            task = await self.get(task_id, wait=max(0.0, min(poll_seconds, remaining)))
            if task.finished:
                return task
            if deadline is not None and loop.time() >= deadline:
                raise WaitTimeout(task)

    async def list_tasks(
        self,
        *,
        queue: str | None = None,
        state: TaskState | str | None = None,
        type: str | None = None,
        tag: str | None = None,
        limit: int | None = None,
        cursor: str | None = None,
    ) -> TaskPage:
        """One page of tasks, newest first.

        Raises:
            BadRequest, ServerUnavailable, TransportError.
        """
        filters = {"queue": queue, "state": state, "type": type, "tag": tag, "limit": limit}
        params = {name: str(value) for name, value in filters.items() if value is not None}
        if cursor is not None:
            params["cursor"] = cursor
        return TaskPage.from_json(await self._session.request("GET", "/v1/tasks", params=params))

    async def iter_tasks(
        self,
        *,
        queue: str | None = None,
        state: TaskState | str | None = None,
        type: str | None = None,
        tag: str | None = None,
        limit: int | None = None,
    ) -> AsyncIterator[Task]:
        """Every matching task, newest first, fetching pages of `limit` as needed.

        Raises:
            BadRequest, ServerUnavailable, TransportError.
        """
        cursor: str | None = None
        while True:
            page = await self.list_tasks(
                queue=queue, state=state, type=type, tag=tag, limit=limit, cursor=cursor
            )
            for task in page.tasks:
                yield task
            if page.next_cursor is None or not page.tasks:
                return
            cursor = page.next_cursor

    async def events(
        self, queue: str | None = None, *, after: int | None = None, follow: bool = True
    ) -> AsyncIterator[TaskEvent | EventsMissed]:
        """Task state changes as they are committed (`GET /v1/events`), oldest first.

        Starts after event id `after` (from now when None); while `follow`, reconnects
        when the server ends a stream and resumes where it left off, so this runs until
        the caller stops iterating. `EventsMissed` says events were dropped in between.

        Raises:
            ApiError (401/403/422), TransportError.
        """
        async for item in follow_events(
            self._session.http,
            queue=queue,
            after=after,
            follow=follow,
            read_timeout=self._session.timeout,
        ):
            yield item

    # -- schedules ------------------------------------------------------------------

    async def create_schedule(
        self,
        schedule_id: str,
        *,
        cron: str,
        queue: str,
        task: Mapping[str, JSON],
        timezone: str | None = None,
        missed: str | None = None,
        max_catch_up: int | None = None,
        paused: bool | None = None,
    ) -> Schedule:
        """Create a schedule (`task` is the task template: type, payload, priority, …).

        Raises:
            Conflict (the id is taken), BadRequest (e.g. an unreadable cron or time zone).
        """
        body: dict[str, JSON] = {
            "id": schedule_id,
            "cron": cron,
            "queue": queue,
            "task": dict(task),
        }
        optional = {"timezone": timezone, "missed": missed, "max_catch_up": max_catch_up}
        body.update({key: value for key, value in optional.items() if value is not None})
        if paused is not None:
            body["paused"] = paused
        data = await self._session.request("POST", "/v1/schedules", body=body, repeatable=False)
        return Schedule.from_json(data)

    async def iter_schedules(self) -> AsyncIterator[Schedule]:
        """Every schedule the token may see, by id (pages fetched as needed)."""
        cursor: str | None = None
        while True:
            params = {} if cursor is None else {"cursor": cursor}
            data = await self._session.request("GET", "/v1/schedules", params=params)
            for item in data["schedules"]:
                yield Schedule.from_json(item)
            cursor = data["next_cursor"]
            if cursor is None or not data["schedules"]:
                return

    async def get_schedule(self, schedule_id: str) -> Schedule:
        """The schedule. Raises: NotFound."""
        data = await self._session.request("GET", f"/v1/schedules/{segment(schedule_id)}")
        return Schedule.from_json(data)

    async def update_schedule(
        self,
        schedule_id: str,
        *,
        cron: str | None = None,
        timezone: str | None = None,
        queue: str | None = None,
        task: Mapping[str, JSON] | None = None,
        missed: str | None = None,
        max_catch_up: int | None = None,
        paused: bool | None = None,
    ) -> Schedule:
        """Change the fields given (the others stay). Raises: NotFound, BadRequest."""
        changes = {
            "cron": cron,
            "timezone": timezone,
            "queue": queue,
            "task": None if task is None else dict(task),
            "missed": missed,
            "max_catch_up": max_catch_up,
            "paused": paused,
        }
        data = await self._session.request(
            "PATCH",
            f"/v1/schedules/{segment(schedule_id)}",
            body={key: value for key, value in changes.items() if value is not None},
        )
        return Schedule.from_json(data)

    async def delete_schedule(self, schedule_id: str) -> None:
        """Delete the schedule (tasks it already submitted stay). Raises: NotFound."""
        await self._session.request("DELETE", f"/v1/schedules/{segment(schedule_id)}")

    async def cancel(self, task_id: str) -> Task:
        """Cancel a queued task, or ask the worker of a running one to stop.

        Raises:
            NotFound, Conflict (already finished), ServerUnavailable, TransportError.
        """
        return Task.from_json(
            await self._session.request("POST", f"/v1/tasks/{segment(task_id)}/cancel")
        )

    # -- work -----------------------------------------------------------------------

    async def claim(
        self,
        queue: str,
        worker_id: str,
        *,
        max_tasks: int = 1,
        wait_seconds: float = 0.0,
        lease_seconds: int | None = None,
        types: Sequence[str] | None = None,
        worker_info: WorkerInfo | None = None,
    ) -> list[Task]:
        """Lease up to `max_tasks` due tasks (each with `.lease`), long-polling `wait_seconds`.

        `worker_info` (host, pid, versions) is what `list_workers` shows for `worker_id`.

        Raises:
            BadRequest, Conflict (the queue delivers by push), ServerUnavailable,
            TransportError (not retried once possibly sent).
        """
        body: dict[str, Any] = {
            "worker_id": worker_id,
            "max_tasks": max_tasks,
            "wait_seconds": wait_seconds,
        }
        if lease_seconds is not None:
            body["lease_seconds"] = lease_seconds
        if types is not None:
            body["types"] = list(types)
        if worker_info is not None and (info := worker_info.to_json()):
            body["worker_info"] = info
        data = await self._session.request(
            "POST",
            f"/v1/queues/{segment(queue)}/claim",
            body=body,
            repeatable=False,
            long_poll_seconds=wait_seconds,
        )
        return [Task.from_json(task) for task in data["tasks"]]

    async def heartbeat(
        self, task_id: str, lease_token: str, *, lease_seconds: int | None = None
    ) -> HeartbeatResult:
        """Extend the lease (by `lease_seconds` from now, or the task's lease length).

        Raises:
            LeaseLost, NotFound, BadRequest, ServerUnavailable, TransportError.
        """
        body: dict[str, Any] = {"lease_token": lease_token}
        if lease_seconds is not None:
            body["lease_seconds"] = lease_seconds
        data = await self._session.request(
            "POST", f"/v1/tasks/{segment(task_id)}/heartbeat", body=body
        )
        return HeartbeatResult.from_json(data)

    async def complete(self, task_id: str, lease_token: str, result: JSON = None) -> Task:
        """Record `result` and mark the task succeeded.

        Raises:
            LeaseLost, NotFound, BadRequest, ServerUnavailable, TransportError.
        """
        body = {"lease_token": lease_token, "result": result}
        return Task.from_json(
            await self._session.request("POST", f"/v1/tasks/{segment(task_id)}/complete", body=body)
        )

    async def complete_many(self, items: Iterable[tuple[str, str, JSON]]) -> list[WorkItemResult]:
        """Complete up to 100 (task_id, lease_token, result) items in one request.

        Each item is recorded or refused on its own (a refused one has `problem`).

        Raises:
            BadRequest, ServerUnavailable, TransportError (for the request as a whole).
        """
        body = {
            "items": [
                {"task_id": task_id, "lease_token": token, "result": result}
                for task_id, token, result in items
            ]
        }
        data = await self._session.request("POST", "/v1/tasks/complete", body=body)
        return [WorkItemResult.from_json(item) for item in data["results"]]

    async def fail(
        self,
        task_id: str,
        lease_token: str,
        *,
        message: str | None = None,
        error_type: str | None = None,
        traceback: str | None = None,
        retry: bool = True,
        retry_after_seconds: float | None = None,
    ) -> Task:
        """End the attempt as failed: queued again after a backoff, or dead.

        Raises:
            LeaseLost, NotFound, BadRequest, ServerUnavailable, TransportError.
        """
        body: dict[str, Any] = {"lease_token": lease_token, "retry": retry}
        if message is not None or error_type is not None or traceback is not None:
            report = {"message": message or "", "type": error_type, "traceback": traceback}
            body["error"] = {key: value for key, value in report.items() if value is not None}
        if retry_after_seconds is not None:
            body["retry_after_seconds"] = retry_after_seconds
        return Task.from_json(
            await self._session.request("POST", f"/v1/tasks/{segment(task_id)}/fail", body=body)
        )

    async def list_workers(self) -> list[Worker]:
        """Workers seen through their claims and heartbeats, most recent first.

        Raises:
            ServerUnavailable, TransportError.
        """
        data = await self._session.request("GET", "/v1/workers")
        return [Worker.from_json(worker) for worker in data["workers"]]

    # -- queues ---------------------------------------------------------------------

    async def list_queues(self) -> list[Queue]:
        """Every known queue with live stats.

        Raises:
            ServerUnavailable, TransportError.
        """
        data = await self._session.request("GET", "/v1/queues")
        return [Queue.from_json(queue) for queue in data["queues"]]

    async def get_queue(self, queue: str) -> Queue:
        """One queue with live stats.

        Raises:
            NotFound, ServerUnavailable, TransportError.
        """
        return Queue.from_json(await self._session.request("GET", f"/v1/queues/{segment(queue)}"))

    async def configure_queue(
        self,
        queue: str,
        *,
        max_attempts: int | None = None,
        retry: RetryPolicy | None = None,
        lease_seconds: int | None = None,
        retention_seconds: int | None = None,
        delivery: Delivery | str | None = None,
        webhook: WebhookPatch | None = None,
        reset: Collection[str] = (),
    ) -> Queue:
        """Change the queue's defaults; None keeps a field, `reset` names fields to default.

        `delivery=Delivery.PUSH` with a `webhook` makes the server POST each task to it;
        `reset=["webhook"]` removes the webhook (only while delivery is pull). The answer
        shows the webhook's signing secrets in full, `get_queue` only masked.

        Raises:
            BadRequest (also a webhook URL the server refuses, push without a webhook),
            ServerUnavailable, TransportError.
        """
        changes: dict[str, Any] = {
            "max_attempts": max_attempts,
            "retry": None if retry is None else retry.to_json(),
            "lease_seconds": lease_seconds,
            "retention_seconds": retention_seconds,
            "delivery": None if delivery is None else str(delivery),
            "webhook": None if webhook is None else webhook.to_json(),
        }
        body = {name: value for name, value in changes.items() if value is not None}
        body.update(dict.fromkeys(reset))
        return Queue.from_json(
            await self._session.request("PATCH", f"/v1/queues/{segment(queue)}", body=body)
        )

    async def pause(self, queue: str, *, reason: str | None = None) -> Queue:
        """Stop handing out claims from the queue (submits are still accepted).

        Raises:
            BadRequest, ServerUnavailable, TransportError.
        """
        body = {} if reason is None else {"reason": reason}
        return Queue.from_json(
            await self._session.request("POST", f"/v1/queues/{segment(queue)}/pause", body=body)
        )

    async def resume(self, queue: str) -> Queue:
        """Hand out claims from the queue again.

        Raises:
            BadRequest, ServerUnavailable, TransportError.
        """
        return Queue.from_json(
            await self._session.request("POST", f"/v1/queues/{segment(queue)}/resume")
        )

    async def list_dead(
        self, queue: str, *, limit: int | None = None, cursor: str | None = None
    ) -> TaskPage:
        """One page of the queue's dead letters, newest first.

        Raises:
            BadRequest, ServerUnavailable, TransportError.
        """
        params = {"limit": str(limit)} if limit is not None else {}
        if cursor is not None:
            params["cursor"] = cursor
        data = await self._session.request(
            "GET", f"/v1/queues/{segment(queue)}/dead", params=params
        )
        return TaskPage.from_json(data)

    async def redrive(self, queue: str, task_ids: Sequence[str] | None = None) -> int:
        """Queue dead tasks again (those of `task_ids`, or all); returns how many.

        Raises:
            BadRequest, ServerUnavailable, TransportError.
        """
        body = {} if task_ids is None else {"task_ids": list(task_ids)}
        data = await self._session.request(
            "POST", f"/v1/queues/{segment(queue)}/dead/redrive", body=body
        )
        return int(data["redriven"])

    async def purge_dead(self, queue: str) -> int:
        """Delete every dead task of the queue; returns how many.

        Raises:
            BadRequest, ServerUnavailable, TransportError.
        """
        return int(
            (await self._session.request("DELETE", f"/v1/queues/{segment(queue)}/dead"))["purged"]
        )

    # -- system ---------------------------------------------------------------------

    async def health(self) -> str:
        """The liveness status ("ok") of the server process.

        Raises:
            ApiError, TransportError.
        """
        return str((await self._session.request("GET", "/healthz"))["status"])

    async def ready(self) -> str:
        """The readiness status ("ok": the database answers).

        Raises:
            ServerUnavailable, TransportError.
        """
        return str((await self._session.request("GET", "/readyz"))["status"])


class Client:
    """The blocking face of `AsyncClient`: same methods, run on a private event loop thread.

    Thread-safe: calls from several threads share the loop and its connection pool.
    """

    def __init__(
        self,
        base_url: str,
        *,
        token: str | None = None,
        timeout: float = 10.0,
        retries: Retries | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._async_client = AsyncClient(
            base_url, token=token, timeout=timeout, retries=retries, transport=transport
        )
        self._loop_thread = LoopThread("taskgate-client")

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the connection pool and stop the loop thread (idempotent)."""
        if not self._loop_thread.closed:
            self._loop_thread.run(self._async_client.aclose())
            self._loop_thread.stop()

    submit = blocking(AsyncClient.submit)
    submit_batch = blocking(AsyncClient.submit_batch)
    get = blocking(AsyncClient.get)
    wait = blocking(AsyncClient.wait)
    list_tasks = blocking(AsyncClient.list_tasks)
    iter_tasks = blocking_iterator(AsyncClient.iter_tasks)
    events = blocking_iterator(AsyncClient.events)
    create_schedule = blocking(AsyncClient.create_schedule)
    iter_schedules = blocking_iterator(AsyncClient.iter_schedules)
    get_schedule = blocking(AsyncClient.get_schedule)
    update_schedule = blocking(AsyncClient.update_schedule)
    delete_schedule = blocking(AsyncClient.delete_schedule)
    cancel = blocking(AsyncClient.cancel)
    claim = blocking(AsyncClient.claim)
    heartbeat = blocking(AsyncClient.heartbeat)
    complete = blocking(AsyncClient.complete)
    complete_many = blocking(AsyncClient.complete_many)
    fail = blocking(AsyncClient.fail)
    list_workers = blocking(AsyncClient.list_workers)
    list_queues = blocking(AsyncClient.list_queues)
    get_queue = blocking(AsyncClient.get_queue)
    configure_queue = blocking(AsyncClient.configure_queue)
    pause = blocking(AsyncClient.pause)
    resume = blocking(AsyncClient.resume)
    list_dead = blocking(AsyncClient.list_dead)
    redrive = blocking(AsyncClient.redrive)
    purge_dead = blocking(AsyncClient.purge_dead)
    health = blocking(AsyncClient.health)
    ready = blocking(AsyncClient.ready)
