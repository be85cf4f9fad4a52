"""`taskgate serve` on a Unix socket, forwarded headers from trusted proxies only, and
deploy/gunicorn.conf.py, on real server processes."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from .harness import (
    EXIT_TIMEOUT_S,
    REPO_ROOT,
    ServerFactory,
    clean_env,
    settings_flags,
    taskgate_command,
    wait_until,
)
from .nginx_support import UnixSocketServer, wait_for_access_record

SERVER_KINDS = pytest.mark.parametrize("workers", [1, 2], ids=["uvicorn", "gunicorn"])
SPOOFED = "203.0.113.7"


def _unix_server(tmp_path: Path, workers: int, **settings: object) -> UnixSocketServer:
    return UnixSocketServer(
        tmp_path / "s.sock",
        database=tmp_path / "taskgate.db",
        log_dir=tmp_path,
        name=f"unix{workers}",
        settings={"workers": workers, "log_format": "json", **settings},
    )


@contextlib.contextmanager
def _stopped_at_exit(server: UnixSocketServer) -> Iterator[UnixSocketServer]:
    try:
        yield server
    finally:
        server.stop()


def _healthz(http: httpx.Client, request_id: str, forwarded_for: str = SPOOFED) -> None:
    response = http.get(
        "/healthz", headers={"x-request-id": request_id, "x-forwarded-for": forwarded_for}
    )
    assert response.status_code == 200, response.text


@SERVER_KINDS
def test_serves_on_a_unix_socket_and_removes_it_on_exit(tmp_path: Path, workers: int) -> None:
    with _stopped_at_exit(_unix_server(tmp_path, workers).start()) as server:
        assert server.socket_path.stat().st_mode & 0o777 == 0o660
        with server.client() as http:
            _healthz(http, "over-the-socket")
            queues = http.get("/v1/queues")
            assert queues.status_code == 200, queues.text
        # Not trusted: the header is ignored, and a Unix socket peer has no address.
        record = wait_for_access_record(server.output, "over-the-socket")
        assert record["client"] == ""
        server.terminate()
        assert server.wait_exit() == 0
        assert not server.socket_path.exists()


@SERVER_KINDS
def test_unix_peers_are_believed_when_trusted(tmp_path: Path, workers: int) -> None:
    server = _unix_server(tmp_path, workers, trusted_proxies="unix")
    with _stopped_at_exit(server.start()), server.client() as http:
        _healthz(http, "via-proxy", forwarded_for=f"198.51.100.1, {SPOOFED}")
        record = wait_for_access_record(server.output, "via-proxy")
        # The right-most address not itself a trusted proxy: the one the proxy added.
        assert record["client"] == SPOOFED


def test_a_stale_socket_is_replaced_and_a_live_one_is_not_taken(tmp_path: Path) -> None:
    with _stopped_at_exit(_unix_server(tmp_path, 1).start()) as server:
        server.kill()  # SIGKILL: the socket file stays behind
        assert server.socket_path.exists()
        server.start()
        with server.client() as http:
            assert http.get("/healthz").status_code == 200

        second = subprocess.run(
            [*server.command(), "--database", str(tmp_path / "other.db")],
            cwd=REPO_ROOT,
            env=clean_env(),
            capture_output=True,
            text=True,
            timeout=EXIT_TIMEOUT_S,
            check=False,
        )
        assert second.returncode != 0
        assert "another server is listening" in second.stderr
        with server.client() as http:
            assert http.get("/healthz").status_code == 200


@SERVER_KINDS
def test_forwarded_headers_are_ignored_without_trusted_proxies(
    start_server: ServerFactory, workers: int
) -> None:
    # uvicorn and gunicorn would believe 127.0.0.1 by default (FORWARDED_ALLOW_IPS).
    server = start_server(workers=workers, log_format="json")
    with server.client() as http:
        _healthz(http, "no-proxy")
    assert wait_for_access_record(server.output, "no-proxy")["client"] == "127.0.0.1"


@SERVER_KINDS
def test_forwarded_headers_are_believed_from_a_trusted_address(
    start_server: ServerFactory, workers: int
) -> None:
    server = start_server(workers=workers, log_format="json", trusted_proxies="127.0.0.0/8")
    with server.client() as http:
        _healthz(http, "from-proxy")
    assert wait_for_access_record(server.output, "from-proxy")["client"] == SPOOFED


def test_an_invalid_trusted_proxy_is_refused_at_start(tmp_path: Path) -> None:
    refused = subprocess.run(
        [
            *taskgate_command(),
            "serve",
            "--database",
            str(tmp_path / "t.db"),
            *settings_flags({"trusted_proxies": "10.0.0.1/8"}),
        ],
        cwd=REPO_ROOT,
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=EXIT_TIMEOUT_S,
        check=False,
    )
    assert refused.returncode != 0
    assert "trusted_proxies: '10.0.0.1/8'" in refused.stderr


def test_deploy_gunicorn_conf_serves_with_the_taskgate_settings(tmp_path: Path) -> None:
    socket_path = tmp_path / "g.sock"
    env = clean_env(
        {
            "TASKGATE_DATABASE": str(tmp_path / "taskgate.db"),
            "TASKGATE_UNIX_SOCKET": str(socket_path),
            "TASKGATE_TRUSTED_PROXIES": "unix",
            "TASKGATE_WORKERS": "2",
            "TASKGATE_LOG_FORMAT": "json",
        }
    )
    command = [
        str(Path(sys.executable).with_name("gunicorn")),
        "-c",
        str(REPO_ROOT / "deploy" / "gunicorn.conf.py"),
        "app.asgi:app_from_environment()",
    ]
    log_path = tmp_path / "gunicorn.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            command,
            cwd=REPO_ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        wait_until(lambda: _answers(socket_path), "gunicorn to answer on its socket", 20.0)
        assert socket_path.stat().st_mode & 0o777 == 0o660
        transport = httpx.HTTPTransport(uds=str(socket_path))
        with httpx.Client(base_url="http://taskgate", transport=transport) as http:
            _healthz(http, "gunicorn-conf")
        record = wait_for_access_record(log_path.read_text, "gunicorn-conf")
        assert record["client"] == SPOOFED
        assert "applied migrations" in log_path.read_text()
        os.kill(process.pid, signal.SIGTERM)
        assert process.wait(EXIT_TIMEOUT_S) == 0, log_path.read_text()
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def _answers(path: Path) -> bool:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        try:
            probe.connect(str(path))
        except OSError:
            return False
    return True
