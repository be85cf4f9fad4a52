"""`worker_info`: what a runner says about itself on each claim, and what the server keeps."""

from __future__ import annotations

import importlib.metadata
import os
import socket
from typing import Any

import httpx
import pytest

from runners import AsyncClient, BadRequest, Client, TaskState, WorkerInfo
from runners import runner as runner_module
from runners.runner import default_worker_info, installed_version
from tests.e2e.harness import ServerProcess

from .inprocess import DEADLINE_S, make_runner, running

THIS_PROCESS: dict[str, Any] = {
    "host": socket.gethostname(),
    "pid": os.getpid(),
    "version": importlib.metadata.version("taskgate"),
    "sdk": "taskgate-python",
}


def listed_worker(server: ServerProcess, worker_id: str) -> dict[str, Any]:
    """The raw `GET /v1/workers` item of `worker_id` (raw: to see which keys the server sent)."""
    with httpx.Client(base_url=server.base_url, timeout=10, headers=server.auth_headers()) as http:
        workers = http.get("/v1/workers").raise_for_status().json()["workers"]
    (worker,) = (worker for worker in workers if worker["id"] == worker_id)
    return dict(worker)


def skip_unless_the_server_reports_info(worker: dict[str, Any]) -> None:
    if "info" not in worker:
        pytest.skip("this server's GET /v1/workers has no `info` yet (server side pending)")


def test_the_default_describes_this_process() -> None:
    assert default_worker_info().to_json() == THIS_PROCESS


def test_fields_given_to_the_runner_replace_the_defaults() -> None:
    info = default_worker_info(WorkerInfo(version="billing 2.4.1"))
    assert info.to_json() == {**THIS_PROCESS, "version": "billing 2.4.1"}


def test_the_version_without_an_installed_distribution(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(runner_module, "DISTRIBUTION_NAME", "taskgate-not-installed-anywhere")
    assert installed_version() == "0+unknown"


def test_the_server_validates_worker_info_against_the_spec(client: Client, queue: str) -> None:
    with pytest.raises(BadRequest) as caught:
        client.claim(queue, "w", worker_info=WorkerInfo(version="v" * 65))
    assert [error.field for error in caught.value.errors] == ["body.worker_info.version"]
    assert client.claim(queue, "w", worker_info=WorkerInfo(**THIS_PROCESS)) == []


@pytest.mark.anyio
async def test_a_runner_claims_with_its_worker_info_and_workers_lists_it(
    server: ServerProcess, queue: str, sdk: AsyncClient
) -> None:
    runner = make_runner(server, queue, worker_info=WorkerInfo(version="billing 2.4.1"))

    @runner.handler("t")
    async def handle(payload: Any) -> str:
        return "ok"

    async with running(runner):
        task = await sdk.submit(queue, "t")
        # The server validates every claim against the spec: a bad worker_info is a 422,
        # and the task would never run.
        finished = await sdk.wait(task.id, timeout=DEADLINE_S)
    assert finished.state is TaskState.SUCCEEDED

    expected = {**THIS_PROCESS, "version": "billing 2.4.1"}
    raw = listed_worker(server, runner.worker_id)
    skip_unless_the_server_reports_info(raw)
    assert raw["info"] == expected
    (typed,) = [w for w in await sdk.list_workers() if w.id == runner.worker_id]
    assert typed.info == WorkerInfo(**expected)


def test_a_worker_that_never_sent_info_has_none(
    server: ServerProcess, client: Client, queue: str
) -> None:
    worker_id = f"plain-{queue}"
    client.submit(queue, "t")
    client.claim(queue, worker_id)
    raw = listed_worker(server, worker_id)
    skip_unless_the_server_reports_info(raw)
    assert raw["info"] is None
    (typed,) = [w for w in client.list_workers() if w.id == worker_id]
    assert typed.info is None
