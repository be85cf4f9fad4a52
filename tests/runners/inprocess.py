"""Helpers to run a `Runner` in the test's own event loop against the real server."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from runners import AsyncClient, RetryPolicy, Runner, Task
from tests.e2e.harness import ServerProcess

# A retry far in the future: a failed task stays queued (not claimed again) while we look.
SLOW_RETRY = RetryPolicy(initial_delay_seconds=3600, jitter=False)
# No backoff: a task whose lease expired is due again at once.
IMMEDIATE_RETRY = RetryPolicy(initial_delay_seconds=0, jitter=False)
# Generous bound on any wait for the server or a runner; never a timing assertion.
DEADLINE_S = 15.0


def make_runner(server: ServerProcess, queue: str, **options: Any) -> Runner:
    options.setdefault("poll_seconds", 1.0)
    return Runner(server.base_url, queues=[queue], token=server.token, **options)


@asynccontextmanager
async def running(runner: Runner) -> AsyncIterator[asyncio.Task[None]]:
    """Run `runner` in the background; stop it (gracefully) on exit."""
    run = asyncio.create_task(runner.run())
    try:
        yield run
    finally:
        runner.stop()
        await asyncio.wait_for(run, DEADLINE_S)


async def eventually(sdk: AsyncClient, task_id: str, condition: Callable[[Task], bool]) -> Task:
    """The task once `condition` holds (polled; fails after a generous deadline)."""
    async with asyncio.timeout(DEADLINE_S):
        while not condition(task := await sdk.get(task_id)):
            await asyncio.sleep(0.02)
    return task


async def claim_when_due(sdk: AsyncClient, queue: str, worker_id: str) -> Task:
    """The next task of `queue` leased to `worker_id`, long-polling until one is due."""
    async with asyncio.timeout(DEADLINE_S):
        while not (claimed := await sdk.claim(queue, worker_id, wait_seconds=1.0)):
            pass
    (task,) = claimed
    return task
