"""A runner whose lease is lost: another worker owns the task, the runner's outcome is dropped.

The runner's heartbeats are cut off (a `Partition` in front of the real server) until its
lease expires and another worker claims the task; nothing about the lease is faked.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from typing import Any

import pytest

from runners import AsyncClient, LeaseLost, Runner, Task, TaskState
from tests.e2e.harness import ServerProcess

from .inprocess import DEADLINE_S, IMMEDIATE_RETRY, claim_when_due, running
from .scripted import FAST_RETRIES, Partition, is_heartbeat

pytestmark = pytest.mark.anyio


def lease_token(task: Task) -> str:
    assert task.lease is not None
    return task.lease.token


def token_sent_in(partition: Partition) -> str:
    """The lease token the runner heartbeats with (its own claim's)."""
    tokens = {json.loads(r.content)["lease_token"] for r in partition.sent("heartbeat")}
    assert len(tokens) == 1, tokens
    return str(tokens.pop())


async def test_a_lease_lost_at_heartbeat_stops_the_handler_and_sends_no_outcome(
    server: ServerProcess, queue: str, sdk: AsyncClient
) -> None:
    partition = Partition(blocks=is_heartbeat)
    started, stopped = asyncio.Event(), asyncio.Event()
    async with AsyncClient(
        server.base_url, token=server.token, retries=FAST_RETRIES, transport=partition
    ) as http:
        # One slot: while the handler runs, the runner cannot claim the task back itself.
        runner = Runner(queues=[queue], concurrency=1, poll_seconds=1.0, client=http)

        @runner.handler("slow")
        async def slow(payload: Any) -> str:
            started.set()
            try:
                await asyncio.sleep(3600)
            except asyncio.CancelledError:
                stopped.set()
                raise
            return "never"

        async with running(runner):
            task = await sdk.submit(
                queue, "slow", lease_seconds=1, max_attempts=3, retry=IMMEDIATE_RETRY
            )
            await asyncio.wait_for(started.wait(), DEADLINE_S)
            # No heartbeat gets through: the lease runs out and another worker gets the task.
            stolen = await claim_when_due(sdk, queue, "other-worker")
            assert (stolen.id, stolen.attempts) == (task.id, 2)
            partition.active = False
            # The next heartbeat is answered 409 lease-lost: the handler is stopped.
            await asyncio.wait_for(stopped.wait(), DEADLINE_S)
            finished = await sdk.complete(stolen.id, lease_token(stolen), "other worker's")

    assert partition.sent("complete") == [] and partition.sent("fail") == []
    # The server fences both: the runner's stale token, and a second complete.
    with pytest.raises(LeaseLost):
        await sdk.complete(task.id, token_sent_in(partition), "stale")
    with pytest.raises(LeaseLost):
        await sdk.complete(stolen.id, lease_token(stolen), "twice")
    final = await sdk.get(task.id)
    assert final == finished
    assert (final.state, final.result, final.attempts) == (
        TaskState.SUCCEEDED,
        "other worker's",
        2,
    )
    assert final.worker_id == "other-worker"
    assert [error.type for error in final.errors] == ["LeaseExpired"]


async def test_a_result_that_arrives_after_the_lease_was_lost_is_refused_once(
    server: ServerProcess, queue: str, sdk: AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="runners.execution")
    partition = Partition(blocks=is_heartbeat)  # cut for the whole test
    started, release = threading.Event(), threading.Event()
    async with AsyncClient(
        server.base_url, token=server.token, retries=FAST_RETRIES, transport=partition
    ) as http:
        runner = Runner(queues=[queue], concurrency=1, poll_seconds=1.0, client=http)

        @runner.handler("late")
        def late(payload: Any) -> str:
            started.set()
            release.wait(DEADLINE_S)
            return "stale result"

        async with running(runner):
            task = await sdk.submit(
                queue, "late", lease_seconds=1, max_attempts=3, retry=IMMEDIATE_RETRY
            )
            assert await asyncio.to_thread(started.wait, DEADLINE_S)
            stolen = await claim_when_due(sdk, queue, "other-worker")
            await sdk.complete(stolen.id, lease_token(stolen), "fresh result")
            release.set()
            # Leaving `running` waits for the runner to report the handler's outcome.

    # A sync handler cannot be stopped: its result is sent once, refused, and not retried.
    assert len(partition.sent("complete")) == 1 and partition.sent("fail") == []
    # The runner batches completions: the result went as the one item of a batch.
    (item,) = json.loads(partition.sent("complete")[0].content)["items"]
    assert (item["task_id"], item["result"]) == (task.id, "stale result")
    assert any(
        task.id in record.getMessage() and "complete was not recorded" in record.getMessage()
        for record in caplog.records
    ), caplog.text
    final = await sdk.get(task.id)
    assert (final.state, final.result, final.attempts) == (
        TaskState.SUCCEEDED,
        "fresh result",
        2,
    )
