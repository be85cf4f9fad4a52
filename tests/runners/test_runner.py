"""`Runner` against the real server: outcomes, concurrency, heartbeats, cancel, shutdown."""

from __future__ import annotations

import asyncio
import threading
from datetime import timedelta
from typing import Any

import pytest

from runners import AsyncClient, Permanent, Retry, Runner, TaskState
from tests.e2e.harness import ServerProcess

from .inprocess import DEADLINE_S, SLOW_RETRY, eventually, make_runner, running

pytestmark = pytest.mark.anyio


async def test_sync_and_async_handlers_complete_with_their_results(
    server: ServerProcess, queue: str, sdk: AsyncClient
) -> None:
    runner = make_runner(server, queue)
    handler_threads: list[str] = []

    @runner.handler("sync.echo")
    def echo(payload: Any) -> Any:
        handler_threads.append(threading.current_thread().name)
        return {"echo": payload}

    @runner.handler("async.double")
    async def double(payload: int) -> int:
        await asyncio.sleep(0)
        return payload * 2

    async with running(runner):
        first = await sdk.submit(queue, "sync.echo", {"n": 1})
        second = await sdk.submit(queue, "async.double", 21)
        echoed = await sdk.wait(first.id, timeout=DEADLINE_S)
        doubled = await sdk.wait(second.id, timeout=DEADLINE_S)
    assert (echoed.state, echoed.result) == (TaskState.SUCCEEDED, {"echo": {"n": 1}})
    assert (doubled.state, doubled.result) == (TaskState.SUCCEEDED, 42)
    assert echoed.worker_id == runner.worker_id
    assert handler_threads[0].startswith("taskgate-runner")


async def test_an_exception_fails_the_attempt_with_type_message_and_traceback(
    server: ServerProcess, queue: str, sdk: AsyncClient
) -> None:
    runner = make_runner(server, queue)

    @runner.handler("boom")
    def boom(payload: Any) -> None:
        raise ValueError(f"bad input {payload}")

    async with running(runner):
        task = await sdk.submit(queue, "boom", 7, retry=SLOW_RETRY, max_attempts=3)
        failed = await eventually(sdk, task.id, lambda t: t.last_error is not None)
    assert (failed.state, failed.attempts) == (TaskState.QUEUED, 1)
    assert failed.last_error is not None
    assert (failed.last_error.type, failed.last_error.message) == ("ValueError", "bad input 7")
    assert failed.last_error.traceback is not None
    assert "in boom" in failed.last_error.traceback


async def test_retry_after_sets_when_the_task_runs_again(
    server: ServerProcess, queue: str, sdk: AsyncClient
) -> None:
    runner = make_runner(server, queue)

    @runner.handler("later")
    async def later(payload: Any) -> None:
        raise Retry("upstream busy", after=600)

    async with running(runner):
        task = await sdk.submit(queue, "later", max_attempts=3)
        retried = await eventually(sdk, task.id, lambda t: t.last_error is not None)
    assert retried.state is TaskState.QUEUED and retried.attempts == 1
    assert retried.last_error is not None and retried.last_error.message == "upstream busy"
    assert retried.last_error.at is not None
    # Server timestamps only: the next run is ~600 s after the failure, not the backoff.
    assert retried.run_at - retried.last_error.at > timedelta(seconds=500)


async def test_permanent_goes_dead_and_unknown_types_are_left_for_others(
    server: ServerProcess, queue: str, sdk: AsyncClient
) -> None:
    runner = make_runner(server, queue)

    @runner.handler("invalid")
    def invalid(payload: Any) -> None:
        raise Permanent("the address is malformed")

    async with running(runner):
        unknown = await sdk.submit(queue, "nobody.handles.this", max_attempts=5)
        permanent = await sdk.submit(queue, "invalid", max_attempts=5)
        permanent_dead = await sdk.wait(permanent.id, timeout=DEADLINE_S)
    assert (permanent_dead.state, permanent_dead.attempts) == (TaskState.DEAD, 1)
    assert permanent_dead.last_error is not None
    assert permanent_dead.last_error.message == "the address is malformed"
    # A runner claims only the types it handles: another worker may handle this one.
    untouched = await sdk.get(unknown.id)
    assert (untouched.state, untouched.attempts) == (TaskState.QUEUED, 0)


async def test_concurrency_is_never_exceeded_across_queues_and_handler_kinds(
    server: ServerProcess, queue: str, sdk: AsyncClient
) -> None:
    other_queue = f"{queue}-b"
    runner = Runner(
        server.base_url,
        queues=[queue, other_queue],
        concurrency=3,
        claim_batch=2,
        poll_seconds=0.5,
        token=server.token,
    )
    lock = threading.Lock()
    running_now = 0
    peak = 0

    def enter() -> None:
        nonlocal running_now, peak
        with lock:
            running_now += 1
            peak = max(peak, running_now)

    def leave() -> None:
        nonlocal running_now
        with lock:
            running_now -= 1

    @runner.handler("sync.work")
    def sync_work(payload: Any) -> None:
        enter()
        threading.Event().wait(0.05)
        leave()

    @runner.handler("async.work")
    async def async_work(payload: Any) -> None:
        enter()
        await asyncio.sleep(0.05)
        leave()

    submitted = [
        await sdk.submit(name, kind, n)
        for n in range(8)
        for name in (queue, other_queue)
        for kind in ("sync.work", "async.work")
    ]
    async with running(runner):
        finished = [await sdk.wait(task.id, timeout=DEADLINE_S) for task in submitted]
    assert all(task.state is TaskState.SUCCEEDED for task in finished)
    assert 1 <= peak <= 3


async def test_heartbeats_keep_a_task_longer_than_its_lease_alive(
    server: ServerProcess, queue: str, sdk: AsyncClient
) -> None:
    runner = make_runner(server, queue)

    @runner.handler("long")
    async def long(payload: Any) -> str:
        await asyncio.sleep(2.5)
        return "done"

    async with running(runner):
        task = await sdk.submit(queue, "long", lease_seconds=1, max_attempts=3)
        finished = await sdk.wait(task.id, timeout=DEADLINE_S)
    assert (finished.state, finished.result, finished.attempts) == (TaskState.SUCCEEDED, "done", 1)


async def test_a_cancel_seen_at_heartbeat_stops_the_handler(
    server: ServerProcess, queue: str, sdk: AsyncClient
) -> None:
    runner = make_runner(server, queue)
    started = asyncio.Event()
    stopped = asyncio.Event()

    @runner.handler("forever")
    async def forever(payload: Any) -> None:
        started.set()
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            stopped.set()
            raise

    async with running(runner):
        task = await sdk.submit(queue, "forever", lease_seconds=1)
        await asyncio.wait_for(started.wait(), DEADLINE_S)
        await sdk.cancel(task.id)
        cancelled = await sdk.wait(task.id, timeout=DEADLINE_S)
    assert cancelled.state is TaskState.CANCELLED
    assert stopped.is_set()


async def test_stop_lets_quick_tasks_finish_and_hands_the_rest_back(
    server: ServerProcess, queue: str, sdk: AsyncClient
) -> None:
    runner = make_runner(server, queue, concurrency=2, shutdown_grace_seconds=0.5)
    started = {"quick": asyncio.Event(), "stuck": asyncio.Event()}
    stop_called = asyncio.Event()

    @runner.handler("quick")
    async def quick(payload: Any) -> str:
        started["quick"].set()
        await stop_called.wait()
        return "finished in grace"

    @runner.handler("stuck")
    async def stuck(payload: Any) -> None:
        started["stuck"].set()
        await asyncio.sleep(3600)

    quick_task = await sdk.submit(queue, "quick")
    stuck_task = await sdk.submit(queue, "stuck", retry=SLOW_RETRY)
    run = asyncio.create_task(runner.run())
    await asyncio.wait_for(asyncio.gather(*(e.wait() for e in started.values())), DEADLINE_S)
    runner.stop()
    stop_called.set()
    await asyncio.wait_for(run, DEADLINE_S)

    finished = await sdk.get(quick_task.id)
    handed_back = await sdk.get(stuck_task.id)
    assert (finished.state, finished.result) == (TaskState.SUCCEEDED, "finished in grace")
    assert (handed_back.state, handed_back.attempts) == (TaskState.QUEUED, 1)
    assert handed_back.last_error is not None and handed_back.last_error.type == "Shutdown"
    # Handed back for an immediate retry, not after the queue's backoff.
    assert handed_back.last_error.at is not None
    assert handed_back.run_at - handed_back.last_error.at < timedelta(seconds=60)
    assert (await sdk.get_queue(queue)).counts.running == 0
