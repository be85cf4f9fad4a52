"""The few API calls the benchmark makes outside its load loops, and the shared run context."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol
from urllib.parse import urlencode

import orjson

from app.bench.target import Target
from app.bench.wire import Connection, Endpoint, Response

TASK_TYPE = "bench.noop"
PAYLOAD = {"to": "ada@example.com"}
TASK_BODY = {"type": TASK_TYPE, "payload": PAYLOAD}
LIST_PAGE = 1000
STATES = ("queued", "running", "succeeded", "dead", "cancelled")


class BenchError(Exception):
    """A scenario could not run or produced figures that cannot be trusted."""


class Meter(Protocol):
    """A progress display: one phase at a time."""

    def begin(self, description: str, total: int | None) -> None: ...
    def advance_to(self, completed: int) -> None: ...
    def end(self) -> None: ...


class NoMeter:
    def begin(self, description: str, total: int | None) -> None:
        pass

    def advance_to(self, completed: int) -> None:
        pass

    def end(self) -> None:
        pass


@dataclass
class Context:
    """What every scenario needs: the target, the progress meter, the generator settings."""

    target: Target
    meter: Meter
    generator_processes: int = 1
    queue_prefix: str = "bench"

    def new_queue(self, purpose: str) -> str:
        """A queue name of its own for one run, so runs never see each other's tasks."""
        return f"{self.queue_prefix}-{purpose}-{secrets.token_hex(4)}"

    def endpoint(self) -> Endpoint:
        return Endpoint.from_url(self.target.url, self.target.token)

    def api(self) -> Api:
        return Api(Connection(self.endpoint()))


def batch_body(size: int) -> bytes:
    return orjson.dumps({"tasks": [TASK_BODY] * size})


def parse_ms(timestamp: str) -> int:
    """RFC 3339 (as the API writes it) → integer milliseconds since the epoch."""
    return round(datetime.fromisoformat(timestamp).timestamp() * 1000)


class Api:
    """Calls made from the coordinating process, over one keep-alive connection."""

    def __init__(self, connection: Connection) -> None:
        self.connection = connection

    async def call(self, method: str, path: str, payload: Any = None, expect: int = 200) -> Any:
        """The JSON answer. Raises: BenchError: another status."""
        response = await self.connection.request(method, path, payload)
        return self._checked(response, method, path, expect)

    @staticmethod
    def _checked(response: Response, method: str, path: str, expect: int) -> Any:
        if response.status != expect:
            raise BenchError(f"{method} {path} answered {response.status}: {response.body[:300]!r}")
        return response.json()

    async def queue_counts(self, queue: str) -> dict[str, int]:
        """The queue's counts by state (all zero for a queue that does not exist yet)."""
        response = await self.connection.request("GET", f"/v1/queues/{queue}")
        if response.status == 404:
            return dict.fromkeys(STATES, 0)
        counts: dict[str, int] = self._checked(response, "GET", "queue", 200)["counts"]
        return counts

    async def worker_ids(self) -> set[str]:
        body = await self.call("GET", "/v1/workers")
        return {worker["id"] for worker in body["workers"]}

    async def tasks(self, queue: str, state: str) -> AsyncIterator[dict[str, Any]]:
        """Every task of `queue` in `state`, page by page."""
        cursor: str | None = None
        while True:
            query = {"queue": queue, "state": state, "limit": LIST_PAGE}
            if cursor:
                query["cursor"] = cursor
            page = await self.call("GET", f"/v1/tasks?{urlencode(query)}")
            for task in page["tasks"]:
                yield task
            cursor = page.get("next_cursor")
            if not cursor:
                return

    async def submit_tasks(self, queue: str, count: int, batch: int = 1000) -> None:
        """`count` tasks into `queue` by batches (to prepare a scenario, not measured)."""
        for start in range(0, count, batch):
            size = min(batch, count - start)
            body = await self.call(
                "POST", f"/v1/queues/{queue}/tasks/batch", {"tasks": [TASK_BODY] * size}
            )
            if body["rejected"]:
                raise BenchError(f"the server rejected {body['rejected']} of {size} tasks")

    async def wait_for_workers(
        self, worker_ids: set[str], timeout_s: float, still_running: Callable[[], bool]
    ) -> None:
        """Until the server has seen a claim from each of `worker_ids`. Raises: BenchError."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while loop.time() < deadline:
            if worker_ids <= await self.worker_ids():
                return
            if not still_running():
                raise BenchError("a consumer process ended before it claimed")
            await asyncio.sleep(0.1)
        raise BenchError(f"the consumers did not claim within {timeout_s} s")

    def close(self) -> None:
        self.connection.close()
