"""Real `taskgate serve` processes for the e2e tests: start, wait for /healthz, signal, restart.

Each server runs in its own session (process group), so a SIGKILL reaches the gunicorn
master and its workers at once, and teardown can never leave a worker behind.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import IO, Any

import httpx
import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
READY_TIMEOUT_S = 20.0
EXIT_TIMEOUT_S = 15.0
LOG_TAIL_CHARS = 6000
LONG_POLL_TIMEOUT = httpx.Timeout(40.0, connect=5.0)


def taskgate_command() -> list[str]:
    """The `taskgate` CLI of this checkout (run with cwd=REPO_ROOT, it imports this `app`)."""
    return [sys.executable, "-m", "app.cli.main"]


def console_script() -> Path:
    """The installed `taskgate` console script, next to the interpreter running the tests."""
    return Path(sys.executable).with_name("taskgate")


def clean_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment without TASKGATE_* variables, so only explicit flags configure a run."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("TASKGATE_")}
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra or {})
    return env


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def settings_flags(settings: Mapping[str, Any]) -> list[str]:
    """`--name value` flags for settings given by their Settings field names."""
    flags: list[str] = []
    for name, value in settings.items():
        flag = name.replace("_", "-")
        if isinstance(value, bool):
            flags.append(f"--{flag}" if value else f"--no-{flag}")
        else:
            flags += [f"--{flag}", str(value)]
    return flags


def mint_test_token(
    secret_file: Path,
    scopes: tuple[str, ...] = ("admin",),
    *,
    subject: str = "tests",
    queues: tuple[str, ...] | None = None,
    ttl_s: int = 3600,
) -> str:
    """A token signed with a server's secret file, as `taskgate token create` makes them."""
    from app.auth.signing_keys import load_signing_keys
    from app.auth.tokens import TokenRules, mint_token

    key = load_signing_keys(secret_file)[0]
    rules = TokenRules(issuer="taskgate", audience="taskgate")
    return mint_token(key, rules, subject, list(scopes), ttl_s, list(queues) if queues else None)


def group_members(pgid: int) -> set[int]:
    """The pids of the live (non-zombie) processes of process group `pgid` (Linux /proc)."""
    members: set[int] = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # The command name is in parentheses and may contain spaces: split after it.
        fields = stat[stat.rfind(")") + 2 :].split()
        state, group = fields[0], int(fields[2])
        if group == pgid and state not in ("Z", "X"):
            members.add(int(entry.name))
    return members


def _group_has_live_members(pgid: int) -> bool:
    """Whether a non-zombie process still belongs to process group `pgid`."""
    return bool(group_members(pgid))


class ServerProcess:
    """One `taskgate serve` process (uvicorn, or a gunicorn master with its workers)."""

    def __init__(
        self,
        database: Path,
        log_dir: Path,
        name: str,
        settings: Mapping[str, Any],
        *,
        port: int = 0,
        env: Mapping[str, str] | None = None,
    ) -> None:
        """`port` 0 picks a fresh free port at every start; another value is kept across
        restarts (a proxy in front names it). `env` adds variables (TASKGATE_* included)."""
        self.database = database
        self.name = name
        self.settings = dict(settings)
        self._log_dir = log_dir
        self._log_path: Path | None = None
        self._log_file: IO[bytes] | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._runs = 0
        self._fixed_port = port
        self._env = dict(env or {})
        self.port = port

    # -- lifecycle ------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def temp_dir(self) -> Path:
        """The server's TMPDIR, its test's directory: what a server killed at teardown
        leaves there (a gunicorn master's metrics directory) goes with the test."""
        return self._log_dir

    @property
    def pid(self) -> int:
        assert self._process is not None, "the server was never started"
        return self._process.pid

    @property
    def runs(self) -> int:
        """How many times this server was started (1 after the first start)."""
        return self._runs

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def command(self) -> list[str]:
        return [
            *taskgate_command(),
            "serve",
            "--database",
            str(self.database),
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            *settings_flags(self.settings),
        ]

    def start(self) -> ServerProcess:
        """Start (on a fresh free port unless one was fixed); return once /healthz answers."""
        self.spawn()
        self.wait_ready()
        return self

    def spawn(self) -> None:
        """Start the process and return at once (`wait_ready` waits for /healthz)."""
        assert not self.running, f"{self.name} is already running"
        self._close_log()
        self._runs += 1
        self.port = self._fixed_port or free_port()
        self._log_path = self._log_dir / f"{self.name}-run{self._runs}.log"
        self._log_file = self._log_path.open("wb")
        self._process = subprocess.Popen(
            self.command(),
            cwd=REPO_ROOT,
            env=clean_env({"TMPDIR": str(self.temp_dir), **self._env}),
            stdin=subprocess.DEVNULL,
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def wait_ready(self, timeout_s: float = READY_TIMEOUT_S) -> None:
        """Poll /healthz until it answers 200; fail with the server's output if it never does."""
        assert self._process is not None
        deadline = time.monotonic() + timeout_s
        last_error = "no answer yet"
        while time.monotonic() < deadline:
            exit_code = self._process.poll()
            if exit_code is not None:
                pytest.fail(
                    f"{self.name}: `taskgate serve` exited with code {exit_code} before it "
                    f"was ready.\ncommand: {' '.join(self.command())}\n{self.output_tail()}"
                )
            try:
                response = httpx.get(f"{self.base_url}/healthz", timeout=1.0)
            except httpx.TransportError as exc:
                last_error = repr(exc)
            else:
                if response.status_code == 200:
                    return
                last_error = f"status {response.status_code}: {response.text[:200]}"
            time.sleep(0.05)
        self.kill()
        pytest.fail(
            f"{self.name}: /healthz on {self.base_url} did not answer 200 within {timeout_s} s "
            f"(last: {last_error}).\ncommand: {' '.join(self.command())}\n{self.output_tail()}"
        )

    def restart(self) -> ServerProcess:
        """Start again on the same database file (SIGKILLing the old process if it runs)."""
        if self.running:
            self.kill()
        return self.start()

    # -- signals --------------------------------------------------------------------

    def terminate(self) -> None:
        """SIGTERM to the main process only, as `kill PID` or a process manager does."""
        assert self._process is not None
        self._process.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        """SIGKILL the whole process group (gunicorn master and workers) and reap it."""
        if self._process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self._process.pid, signal.SIGKILL)
        self._process.wait()
        deadline = time.monotonic() + EXIT_TIMEOUT_S
        while _group_has_live_members(self._process.pid) and time.monotonic() < deadline:
            time.sleep(0.02)

    def wait_exit(self, timeout_s: float = EXIT_TIMEOUT_S) -> int:
        """The exit code once the main process ends; fail if it is still running at the deadline."""
        assert self._process is not None
        try:
            return self._process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.kill()
            pytest.fail(
                f"{self.name}: still running {timeout_s} s after the signal.\n{self.output_tail()}"
            )

    def stop(self) -> None:
        """Teardown: make sure nothing of this server survives the test."""
        self.kill()
        self._close_log()

    # -- I/O ------------------------------------------------------------------------

    @property
    def secret_file(self) -> Path:
        """The token signing secret: the `auth_secret_file` setting, else next to the database."""
        configured = self.settings.get("auth_secret_file")
        return Path(configured) if configured else self.database.parent / "taskgate.secret"

    @property
    def token(self) -> str:
        """An admin token for this server (signed with its secret file)."""
        return mint_test_token(self.secret_file)

    def auth_headers(self) -> dict[str, str]:
        """Headers that authenticate as an admin to this server."""
        return {"Authorization": f"Bearer {self.token}"}

    def client(self, timeout: float | httpx.Timeout = 10.0) -> httpx.Client:
        return httpx.Client(base_url=self.base_url, timeout=timeout, headers=self.auth_headers())

    def output(self) -> str:
        if self._log_file is not None:
            self._log_file.flush()
        if self._log_path is None or not self._log_path.exists():
            return ""
        return self._log_path.read_text(errors="replace")

    def output_tail(self) -> str:
        text = self.output()
        if len(text) > LOG_TAIL_CHARS:
            text = "…" + text[-LOG_TAIL_CHARS:]
        return f"--- output of {self.name} ---\n{text}--- end of output ---"

    def _close_log(self) -> None:
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None


ServerFactory = Callable[..., ServerProcess]


@contextlib.contextmanager
def server_factory(tmp_path: Path, env: Mapping[str, str] | None = None) -> Iterator[ServerFactory]:
    """`start(database=None, *, name=None, **settings)` starts a server; all die at exit.

    `env` goes to every server: `backend_env`'s TASKGATE_DATABASE_URL puts them on PostgreSQL.
    """
    servers: list[ServerProcess] = []

    def start(
        database: Path | None = None, *, name: str | None = None, **settings: Any
    ) -> ServerProcess:
        server = ServerProcess(
            database=database or tmp_path / "taskgate.db",
            log_dir=tmp_path,
            name=name or f"server{len(servers) + 1}",
            settings=settings,
            env=env,
        )
        servers.append(server)
        return server.start()

    try:
        yield start
    finally:
        for server in servers:
            server.stop()


def wait_until(
    predicate: Callable[[], bool], what: str, timeout_s: float = 10.0, interval_s: float = 0.02
) -> None:
    """Poll `predicate` until it holds; fail naming `what` at the deadline."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(interval_s)
    pytest.fail(f"timed out after {timeout_s} s waiting for {what}")


def wait_for_worker(client: httpx.Client, worker_id: str) -> None:
    """Wait until the server has registered `worker_id` (its claim reached the database)."""

    def seen() -> bool:
        response = client.get("/v1/workers")
        response.raise_for_status()
        return any(worker["id"] == worker_id for worker in response.json()["workers"])

    wait_until(seen, f"worker {worker_id!r} to appear in GET /v1/workers")


def assert_problem(response: httpx.Response, status: int) -> dict[str, Any]:
    """An RFC 9457 problem+json response with `status`; returns its body."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    assert body["title"]
    assert body["detail"]
    assert body["type"].startswith("urn:taskgate:problem:")
    assert "Traceback" not in response.text
    return body
