"""The main operations through `AsyncClient` (the one implementation the sync face runs)."""

from __future__ import annotations

import asyncio

import pytest

from runners import AsyncClient, LeaseLost, NotFound, TaskSpec, TaskState
from tests.e2e.harness import ServerProcess

from .scripted import FAST_RETRIES

pytestmark = pytest.mark.anyio


async def test_submit_claim_complete_while_a_waiter_long_polls(
    server: ServerProcess, queue: str
) -> None:
    async with AsyncClient(server.base_url, token=server.token, retries=FAST_RETRIES) as sdk:
        task = await sdk.submit(queue, "email.send", {"to": "ada@example.com"})

        async def work() -> None:
            (leased,) = await sdk.claim(queue, "async-worker", wait_seconds=1.0)
            assert leased.lease is not None
            await sdk.heartbeat(leased.id, leased.lease.token)
            await sdk.complete(leased.id, leased.lease.token, {"sent": True})

        finished, _ = await asyncio.gather(sdk.wait(task.id, timeout=10), work())
        assert finished.state is TaskState.SUCCEEDED and finished.result == {"sent": True}


async def test_claim_long_polls_until_a_submit_arrives(server: ServerProcess, queue: str) -> None:
    async with AsyncClient(server.base_url, token=server.token, retries=FAST_RETRIES) as sdk:
        claiming = asyncio.create_task(sdk.claim(queue, "async-worker", wait_seconds=1.5))
        await asyncio.sleep(0.1)
        task = await sdk.submit(queue, "t")
        assert [t.id for t in await claiming] == [task.id]


async def test_batch_list_iterate_and_fail(server: ServerProcess, queue: str) -> None:
    async with AsyncClient(server.base_url, token=server.token, retries=FAST_RETRIES) as sdk:
        batch = await sdk.submit_batch(queue, [TaskSpec("t", n) for n in range(3)])
        assert batch.created == 3
        page = await sdk.list_tasks(queue=queue)
        assert len(page.tasks) == 3
        assert [t.payload async for t in sdk.iter_tasks(queue=queue, limit=1)] == [2, 1, 0]

        (leased,) = await sdk.claim(queue, "async-worker")
        assert leased.lease is not None
        dead = await sdk.fail(leased.id, leased.lease.token, message="boom", retry=False)
        assert dead.state is TaskState.DEAD
        assert [t.id for t in (await sdk.list_dead(queue)).tasks] == [leased.id]
        assert (await sdk.get_queue(queue)).counts.dead == 1


async def test_typed_errors(server: ServerProcess, queue: str) -> None:
    async with AsyncClient(server.base_url, token=server.token, retries=FAST_RETRIES) as sdk:
        with pytest.raises(NotFound) as missing:
            await sdk.get("01NOSUCHTASK0000000000000")
        assert missing.value.status == 404
        await sdk.submit(queue, "t")
        (leased,) = await sdk.claim(queue, "async-worker")
        assert leased.lease is not None
        await sdk.complete(leased.id, leased.lease.token)
        with pytest.raises(LeaseLost):
            await sdk.heartbeat(leased.id, leased.lease.token)
