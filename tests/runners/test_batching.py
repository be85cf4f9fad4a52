"""Completions that finish together go in one request; each caller gets its own outcome."""

from __future__ import annotations

import asyncio

import pytest

from runners import AsyncClient
from runners.batching import CompletionBatcher
from runners.errors import LeaseLost, NotFound
from tests.e2e.harness import ServerProcess

from .scripted import FAST_RETRIES, Partition

pytestmark = pytest.mark.anyio


async def test_simultaneous_completions_share_a_request(
    server: ServerProcess, queue: str, sdk: AsyncClient
) -> None:
    for n in range(5):
        await sdk.submit(queue, "t", n)
    tasks = await sdk.claim(queue, "batcher", max_tasks=5)
    recording = Partition(blocks=lambda request: False)
    async with AsyncClient(
        server.base_url, token=server.token, retries=FAST_RETRIES, transport=recording
    ) as http:
        batcher = CompletionBatcher(http, max_delay_s=0.05)
        stale = tasks[4]
        outcomes = await asyncio.gather(
            *(
                batcher.complete(t.id, t.lease.token, {"n": t.payload})
                for t in tasks[:4]
                if t.lease
            ),
            batcher.complete(stale.id, "lt_not_mine", None),
            batcher.complete("t_nope", "lt_x", None),
            return_exceptions=True,
        )
    assert outcomes[:4] == [None] * 4
    assert isinstance(outcomes[4], LeaseLost) and isinstance(outcomes[5], NotFound)
    assert len(recording.sent("complete")) == 1
    for task in tasks[:4]:
        done = await sdk.get(task.id)
        assert done.result == {"n": task.payload}


async def test_a_result_that_is_not_json_fails_only_its_caller(sdk: AsyncClient) -> None:
    batcher = CompletionBatcher(sdk)
    with pytest.raises(TypeError):
        await batcher.complete("t_1", "lt_1", {1, 2})


async def test_a_full_batch_goes_at_once(
    server: ServerProcess, queue: str, sdk: AsyncClient
) -> None:
    for n in range(3):
        await sdk.submit(queue, "t", n)
    tasks = await sdk.claim(queue, "batcher", max_tasks=3)
    recording = Partition(blocks=lambda request: False)
    async with AsyncClient(
        server.base_url, token=server.token, retries=FAST_RETRIES, transport=recording
    ) as http:
        # A delay far beyond the test's patience: only the size limit can send these.
        batcher = CompletionBatcher(http, max_items=3, max_delay_s=3600)
        await asyncio.gather(
            *(batcher.complete(t.id, t.lease.token, None) for t in tasks if t.lease)
        )
    assert len(recording.sent("complete")) == 1
