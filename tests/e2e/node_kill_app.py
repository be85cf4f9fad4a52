"""The runner process of the node-kill test: the SDK's `Runner` over a client that records.

`python -m tests.e2e.node_kill_app --url … --ca … --log … --worker-id … [--queues a,b]`
(token in $TASKGATE_TOKEN) works the `work` and `ticks` queues (or those given) until
SIGTERM. Every claimed task, every handler run and every complete or fail sent is one JSON
line in the `--log` file, with the task id, attempt, lease token and the server's answer to
that item (200, 409, or the error of the whole request), so the test can tell which result
was accepted and which refused.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import ssl
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import IO, Any

import httpx

from runners import ApiError, AsyncClient, ClientError, Runner, Task, WorkerInfo
from runners.models import JSON, WorkItemResult

DEFAULT_QUEUES = "work,ticks"
CONCURRENCY = 50
CLAIM_BATCH = 25
POLL_SECONDS = 5.0


class Journal:
    """Appends one JSON object per line, flushed at once (the process may be SIGKILLed)."""

    def __init__(self, output: IO[str], worker_id: str) -> None:
        self._output = output
        self._worker_id = worker_id

    def write(self, event: str, **fields: Any) -> None:
        record = {"event": event, "worker": self._worker_id, "at": time.time(), **fields}
        self._output.write(json.dumps(record) + "\n")
        self._output.flush()


def _error_fields(exc: ClientError) -> dict[str, Any]:
    return {"status": exc.status if isinstance(exc, ApiError) else None, "error": str(exc)[:300]}


class RecordingClient(AsyncClient):
    """An `AsyncClient` that journals what the runner claims and reports, and the answers."""

    def __init__(self, base_url: str, *, token: str, ca_file: str, journal: Journal) -> None:
        verify = ssl.create_default_context(cafile=ca_file)
        super().__init__(base_url, token=token, transport=httpx.AsyncHTTPTransport(verify=verify))
        self._journal = journal

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
        try:
            tasks = await super().claim(
                queue,
                worker_id,
                max_tasks=max_tasks,
                wait_seconds=wait_seconds,
                lease_seconds=lease_seconds,
                types=types,
                worker_info=worker_info,
            )
        except ClientError as exc:
            self._journal.write("claim-error", queue=queue, **_error_fields(exc))
            raise
        for task in tasks:
            assert task.lease is not None
            self._journal.write(
                "claimed",
                task=task.id,
                queue=queue,
                attempt=task.attempts,
                lease=task.lease.token,
            )
        return tasks

    async def complete_many(self, items: Iterable[tuple[str, str, JSON]]) -> list[WorkItemResult]:
        batch = list(items)
        try:
            results = await super().complete_many(batch)
        except ClientError as exc:
            for task_id, lease, _ in batch:
                self._journal.write("complete", task=task_id, lease=lease, **_error_fields(exc))
            raise
        for (task_id, lease, _), outcome in zip(batch, results, strict=True):
            problem = outcome.problem
            self._journal.write(
                "complete",
                task=task_id,
                lease=lease,
                status=outcome.status,
                error=problem.type if problem is not None else None,
            )
        return results

    async def complete(self, task_id: str, lease_token: str, result: JSON = None) -> Task:
        raise AssertionError("the node-kill runner batches its completions (complete_many)")

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
        # The handlers never fail: a fail here is a finding, recorded for the test to show.
        self._journal.write(
            "fail", task=task_id, lease=lease_token, type=error_type, message=message
        )
        return await super().fail(
            task_id,
            lease_token,
            message=message,
            error_type=error_type,
            traceback=traceback,
            retry=retry,
            retry_after_seconds=retry_after_seconds,
        )


def build_runner(
    url: str, token: str, ca_file: str, worker_id: str, queues: Sequence[str], journal: Journal
) -> Runner:
    """A Runner with a handler per task type of the test, each journaling its runs."""
    client = RecordingClient(url, token=token, ca_file=ca_file, journal=journal)
    runner = Runner(
        queues=queues,
        concurrency=CONCURRENCY,
        claim_batch=CLAIM_BATCH,
        poll_seconds=POLL_SECONDS,
        worker_id=worker_id,
        shutdown_grace_seconds=5.0,
        client=client,
    )

    def sleeper(key: str) -> Callable[[JSON], Awaitable[JSON]]:
        """Sleeps `ms`, journals the run as {key: n} and returns {key: n}."""

        async def handle(payload: JSON) -> JSON:
            assert isinstance(payload, dict)
            await asyncio.sleep(payload["ms"] / 1000)
            journal.write("ran", **{key: payload["n"]})
            return {key: payload["n"]}

        return handle

    runner.handler("work")(sleeper("n"))
    runner.handler("hold")(sleeper("hold"))

    @runner.handler("tick")
    async def tick(payload: JSON) -> JSON:
        journal.write("ran", tick=True)
        return {"ticked": True}

    return runner


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--url", required=True, help="nginx in front of the cluster")
    parser.add_argument("--ca", required=True, help="the CA file that signed nginx's certificate")
    parser.add_argument("--log", required=True, help="the journal file (JSON lines, appended)")
    parser.add_argument("--worker-id", required=True)
    parser.add_argument("--queues", default=DEFAULT_QUEUES, help="comma-separated")
    args = parser.parse_args(argv)
    with open(args.log, "a", encoding="utf-8") as output:
        journal = Journal(output, args.worker_id)
        runner = build_runner(
            args.url,
            os.environ["TASKGATE_TOKEN"],
            args.ca,
            args.worker_id,
            args.queues.split(","),
            journal,
        )
        runner.run_forever()


if __name__ == "__main__":
    main()
