"""Runner processes (`python -m runners …`) whose output goes to a file, and a recording proxy.

An unread stdout pipe fills up and blocks the child, hence the files.
"""

from __future__ import annotations

import http.server
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import httpx
import pytest

from tests.e2e.harness import REPO_ROOT, clean_env

from .inprocess import DEADLINE_S

# Headers that belong to one connection, not to the request being relayed.
HOP_HEADERS = frozenset(
    {"connection", "content-length", "host", "keep-alive", "transfer-encoding", "accept-encoding"}
)


class RunnerProcess:
    """One `python -m runners ARGS` process; teardown kills it if it still runs."""

    def __init__(self, args: Sequence[str], log_path: Path, env: Mapping[str, str] | None) -> None:
        self.log_path = log_path
        self._log: IO[bytes] = log_path.open("wb")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "runners", *args],
            cwd=REPO_ROOT,
            env=clean_env(env),
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )

    @property
    def pid(self) -> int:
        return self.process.pid

    def output(self) -> str:
        self._log.flush()
        return self.log_path.read_text(errors="replace")

    def wait_for_output(self, text: str) -> None:
        """Return once `text` is in the output; fail (with the output) if it never comes."""
        deadline = time.monotonic() + DEADLINE_S
        while text not in self.output():
            if self.process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"runner never wrote {text!r}:\n{self.output()}")
            time.sleep(0.02)

    def terminate(self) -> None:
        self.process.send_signal(signal.SIGTERM)

    def wait_exit(self) -> int:
        try:
            return self.process.wait(DEADLINE_S)
        except subprocess.TimeoutExpired:
            self.close()
            pytest.fail(f"runner still running {DEADLINE_S} s after SIGTERM:\n{self.output()}")

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self._log.close()


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str
    authorization: str | None
    body: bytes


class _ProxyServer(http.server.ThreadingHTTPServer):
    # Joined at close, so no relay outlives the proxy's httpx client.
    daemon_threads = False
    proxy: RecordingProxy


class _Relay(http.server.BaseHTTPRequestHandler):
    server: _ProxyServer

    def _relay(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        proxy = self.server.proxy
        proxy.record(
            RecordedRequest(self.command, self.path, self.headers.get("Authorization"), body)
        )
        headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_HEADERS}
        answer = proxy.upstream.request(self.command, self.path, content=body, headers=headers)
        self.send_response(answer.status_code)
        for name, value in answer.headers.items():
            if name.lower() not in HOP_HEADERS | {"content-encoding"}:
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(answer.content)))
        self.end_headers()
        self.wfile.write(answer.content)

    do_GET = do_POST = do_PATCH = do_DELETE = _relay

    def log_message(self, format: str, *args: Any) -> None:
        pass


class RecordingProxy:
    """A real HTTP server in front of taskgate: relays each request and records its headers."""

    def __init__(self, upstream_url: str) -> None:
        self.requests: list[RecordedRequest] = []
        self._lock = threading.Lock()
        self.upstream = httpx.Client(base_url=upstream_url, timeout=40.0)
        self._server = _ProxyServer(("127.0.0.1", 0), _Relay)
        self._server.proxy = self
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def record(self, request: RecordedRequest) -> None:
        with self._lock:
            self.requests.append(request)

    def sent(self, operation: str) -> list[RecordedRequest]:
        """The recorded requests whose path ends with `/{operation}` (e.g. "claim")."""
        with self._lock:
            return [r for r in self.requests if r.path.split("?")[0].endswith(f"/{operation}")]

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()
        self.upstream.close()
