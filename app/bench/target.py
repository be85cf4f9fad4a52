"""The server under test: an existing deployment (`--url`), or a local one the bench starts.

A spawned server is a real `taskgate serve` in its own session (process group), on a free
port, with a fresh database in a temporary directory unless one is given, rate limits
lifted, and an admin token minted with its secret. It is stopped (SIGTERM, then SIGKILL
of the whole group) when the benchmark ends.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import httpx

from app.auth.setup import ensure_secret, secret_path, token_rules
from app.auth.signing_keys import load_signing_keys
from app.auth.tokens import mint_token
from app.bench.machine import (
    Memory,
    connections_by_process,
    cpu_seconds,
    memory,
    process_tree,
    serving_pid,
    tree_cpu_seconds,
)
from app.bench.postgres_database import (
    BenchDatabaseError,
    fresh_database,
    local_postmaster_pid,
    server_version,
)
from app.settings import Settings, redact_url

READY_TIMEOUT_S = 30.0
PROBES_PER_CHECK = 20
STOP_TIMEOUT_S = 20.0
TOKEN_TTL_S = 24 * 3600
UNLIMITED = "1000000000/second"
RATE_LIMIT_FLAGS = (
    "--rate-limit-submit",
    "--rate-limit-work",
    "--rate-limit-read",
    "--rate-limit-admin",
    "--rate-limit-anonymous",
)


class TargetError(Exception):
    """The server under test could not be reached, started or configured."""


@dataclass(frozen=True, slots=True)
class ServerOptions:
    """How to start a local server: `taskgate bench --spawn …`."""

    workers: int = 1
    durability: str = "full"
    database: Path | None = None
    # A PostgreSQL server: the spawned server gets a fresh database on it (postgres_database).
    database_url: str | None = None
    serve_args: tuple[str, ...] = ()
    keep: bool = False


@dataclass(frozen=True, slots=True)
class CpuMark:
    """CPU seconds used so far by the server's processes and by a local PostgreSQL."""

    server: float | None
    database: float | None


@dataclass
class Target:
    """Where requests go and, for a spawned server, its processes."""

    url: str
    token: str | None
    server: SpawnedServer | None = None
    description: dict[str, Any] = field(default_factory=dict)

    def cpu_mark(self) -> CpuMark:
        return CpuMark(self.server_cpu_seconds(), self.database_cpu_seconds())

    def database_cpu_seconds(self) -> float | None:
        """CPU used so far by a PostgreSQL server on this machine (None: SQLite, whose work
        is in the server's processes, or a database elsewhere)."""
        if self.server is None or self.server.postmaster_pid is None:
            return None
        return tree_cpu_seconds(self.server.postmaster_pid)

    def server_pids(self) -> list[int]:
        return self.server.pids() if self.server is not None else []

    def server_cpu_seconds(self) -> float | None:
        """CPU used so far by every server process (None when the server is not local)."""
        pids = self.server_pids()
        return sum(cpu_seconds(pid) for pid in pids) if pids else None

    def server_memory(self) -> list[Memory]:
        return [m for pid in self.server_pids() if (m := memory(pid)) is not None]

    def connection_spread(self) -> list[int]:
        """Established client connections held by each serving process, most first.

        With several processes on one listening socket, the kernel decides which process
        accepts a connection; a skewed spread leaves a process (and a core) idle.
        """
        if self.server is None:
            return []
        counts = connections_by_process(self.server.port, self.server.serving_pids())
        return sorted(counts.values(), reverse=True)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class SpawnedServer:
    """One `taskgate serve` started by the bench (uvicorn, or gunicorn with its workers)."""

    def __init__(self, options: ServerOptions, workdir: Path) -> None:
        self.options = options
        self.workdir = workdir
        # With PostgreSQL the file is unused, but the token secret is made next to it.
        self.database = options.database or workdir / "bench.db"
        self.database_url: str | None = None
        self.postmaster_pid: int | None = None
        self.log_path = workdir / "server.log"
        self.port = free_port()
        self._process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        limits = [arg for flag in RATE_LIMIT_FLAGS for arg in (flag, UNLIMITED)]
        return [
            sys.executable,
            "-m",
            "app.cli.main",
            "serve",
            "--database",
            str(self.database),
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--workers",
            str(self.options.workers),
            "--durability",
            self.options.durability,
            "--log-level",
            "warning",
            *limits,
            *self.options.serve_args,
        ]

    def mint_admin_token(self) -> str:
        """An admin token signed with the secret next to the database (created if missing)."""
        settings = Settings(database=str(self.database))
        ensure_secret(settings)
        key = load_signing_keys(secret_path(settings))[0]
        return mint_token(key, token_rules(settings), "taskgate-bench", ["admin"], TOKEN_TTL_S)

    def start(self) -> None:
        """Start the server and return once /healthz answers. Raises: TargetError."""
        # Only the bench's flags configure the server: TASKGATE_* of the caller could change
        # what is measured (a config file, a Redis rate-limit storage) without showing it.
        env = {k: v for k, v in os.environ.items() if not k.startswith("TASKGATE_")}
        if self.database_url:
            # In the environment, not the command line, where `ps` would show its password.
            env["TASKGATE_DATABASE_URL"] = self.database_url
        self._log = self.log_path.open("ab")
        self._process = subprocess.Popen(  # noqa: S603 - our own interpreter and fixed flags
            self.command(),
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + READY_TIMEOUT_S
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise TargetError(
                    f"`taskgate serve` exited with code {self._process.returncode}; "
                    f"its output is in {self.log_path}:\n{self.log_tail()}"
                )
            if self._healthy() and self.ready_processes() and self._every_worker_answers():
                return
            time.sleep(0.05)
        self.stop()
        raise TargetError(f"the server did not answer /healthz within {READY_TIMEOUT_S} s")

    def _healthy(self) -> bool:
        try:
            return httpx.get(f"{self.url}/healthz", timeout=1.0).status_code == 200
        except httpx.TransportError:
            return False

    def _every_worker_answers(self) -> bool:
        """Each serving process has accepted a connection and answered on it.

        gunicorn's workers start one after the other, and /healthz answers as soon as the
        first one serves; a measurement started then would run on fewer processes.
        """
        workers = set(self.serving_pids())
        if len(workers) < 2:
            return True
        answered: set[int] = set()
        for _ in range(PROBES_PER_CHECK):
            connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=1.0)
            try:
                connection.request("GET", "/healthz")
                connection.getresponse().read()
                assert connection.sock is not None
                pid = serving_pid(connection.sock.getsockname()[1], self.port, list(workers))
            except (OSError, http.client.HTTPException):
                return False
            finally:
                connection.close()
            if pid is not None:
                answered.add(pid)
            if answered == workers:
                return True
        return False

    def ready_processes(self) -> bool:
        """Every worker process has started (gunicorn forks them one by one)."""
        expected = 1 if self.options.workers == 1 else self.options.workers + 1
        return len(self.pids()) >= expected

    def serving_pids(self) -> list[int]:
        """The processes that accept connections: the gunicorn workers, or the one uvicorn."""
        pids = self.pids()
        if self.options.workers > 1 and self._process is not None:
            return [pid for pid in pids if pid != self._process.pid]
        return pids

    def pids(self) -> list[int]:
        """The server's live processes: the uvicorn process, or gunicorn's master and workers."""
        if self._process is None or self._process.poll() is not None:
            return []
        return process_tree(self._process.pid)

    def log_tail(self, chars: int = 4000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def stop(self) -> None:
        """SIGTERM, then SIGKILL of the whole process group if it lingers."""
        if self._process is None:
            return
        if self._process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self._process.send_signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._process.wait(STOP_TIMEOUT_S)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self._process.pid, signal.SIGKILL)
        self._process.wait()
        self._process = None
        if self._log is not None:
            self._log.close()
            self._log = None


@contextlib.contextmanager
def spawned_target(
    options: ServerOptions, before_start: Sequence[Callable[[SpawnedServer], None]] = ()
) -> Iterator[Target]:
    """A started local server as a Target; stopped (and its temporary files removed) after.

    `before_start` callables get the server (its database path is set) before it starts:
    the backlog scenario fills the database there.

    Raises:
        TargetError: the server did not start.
    """
    workdir = Path(tempfile.mkdtemp(prefix="taskgate-bench-"))
    server = SpawnedServer(options, workdir)
    try:
        with contextlib.ExitStack() as stack:
            if options.database_url:
                try:
                    server.database_url = stack.enter_context(
                        fresh_database(options.database_url, keep=options.keep)
                    )
                except BenchDatabaseError as exc:
                    raise TargetError(str(exc)) from exc
                server.postmaster_pid = local_postmaster_pid(options.database_url)
            for prepare in before_start:
                prepare(server)
            token = server.mint_admin_token()
            stack.callback(server.stop)
            server.start()
            description = {
                "kind": "spawned",
                "workers": options.workers,
                # PostgreSQL's durability is its own (synchronous_commit), not this flag's.
                "durability": None if server.database_url else options.durability,
                "backend": "postgres" if server.database_url else "sqlite",
                "postgres_server": server_version(server.database_url)
                if server.database_url
                else None,
                "database": redact_url(server.database_url)
                if server.database_url
                else str(server.database),
                "serve_args": list(options.serve_args),
                "log": str(server.log_path),
            }
            yield Target(url=server.url, token=token, server=server, description=description)
    finally:
        server.stop()
        if not options.keep:
            shutil.rmtree(workdir, ignore_errors=True)


def remote_target(url: str, token: str | None) -> Target:
    """An existing deployment. Raises: TargetError: it does not answer /healthz."""
    try:
        response = httpx.get(f"{url.rstrip('/')}/healthz", timeout=5.0)
    except httpx.HTTPError as exc:
        raise TargetError(f"cannot reach {url}: {exc}") from exc
    if response.status_code != 200:
        raise TargetError(f"{url}/healthz answered {response.status_code}")
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        probe = httpx.get(f"{url.rstrip('/')}/v1/queues", headers=headers, timeout=5.0)
    except httpx.HTTPError as exc:
        raise TargetError(f"cannot reach {url}: {exc}") from exc
    if probe.status_code in (401, 403):
        raise TargetError(
            f"{url} refused the token ({probe.status_code}): give one with the admin scope "
            "(--token or TASKGATE_TOKEN)"
        )
    return Target(url=url.rstrip("/"), token=token, description={"kind": "url", "url": url})
