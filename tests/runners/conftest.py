"""Fixtures: one real server for the package per backend, a fresh queue per test, clients,
runner processes."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from pathlib import Path

import pytest

from runners import AsyncClient, Client
from tests.conftest import backend_database
from tests.e2e.harness import ServerProcess, server_factory

from .processes import RecordingProxy, RunnerProcess
from .scripted import FAST_RETRIES

RunnerFactory = Callable[..., RunnerProcess]


@pytest.fixture(scope="package")
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, backend: str
) -> Iterator[ServerProcess]:
    """One `taskgate serve` process shared by the package on each backend (so every test
    runs as [sqlite] and [postgres]; each test uses its own queue)."""
    with (
        backend_database(backend, request) as env,
        server_factory(tmp_path_factory.mktemp(f"runners-{backend}"), env=env) as start,
    ):
        yield start(long_poll_max_seconds=2.0, sweep_interval_seconds=0.05)


@pytest.fixture
def queue() -> str:
    """A queue name no other test uses."""
    return f"runners-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def client(server: ServerProcess) -> Iterator[Client]:
    with Client(server.base_url, token=server.token, retries=FAST_RETRIES) as sync_client:
        yield sync_client


@pytest.fixture
async def sdk(server: ServerProcess) -> AsyncIterator[AsyncClient]:
    async with AsyncClient(
        server.base_url, token=server.token, retries=FAST_RETRIES
    ) as async_client:
        yield async_client


@pytest.fixture
def start_runner(tmp_path: Path, server: ServerProcess) -> Iterator[RunnerFactory]:
    """`start_runner(*args, env=None)` starts `python -m runners ARGS`; all die at teardown.

    TASKGATE_TOKEN is an admin token of the package's server unless `env` says otherwise.
    """
    started: list[RunnerProcess] = []

    def start(*args: str, env: Mapping[str, str] | None = None) -> RunnerProcess:
        log_path = tmp_path / f"runner{len(started) + 1}.log"
        started.append(
            RunnerProcess(args, log_path, {"TASKGATE_TOKEN": server.token, **(env or {})})
        )
        return started[-1]

    yield start
    for process in started:
        process.close()


@pytest.fixture
def proxy(server: ServerProcess) -> Iterator[RecordingProxy]:
    """A recording HTTP proxy in front of the server."""
    recording = RecordingProxy(server.base_url)
    yield recording
    recording.close()
