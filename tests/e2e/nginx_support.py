"""Real nginx, configured from deploy/nginx/taskgate.conf, in front of a real `taskgate serve`.

`nginx_in_front(work_dir, **settings)` starts `taskgate serve --unix-socket … --trusted-proxies
unix` (gunicorn, two workers, JSON logs), then nginx in the foreground, in its own process
group, with the deploy config's ports, paths and certificate replaced: free ports on
127.0.0.1 and a `trustme` CA. It yields a `FrontedServer` (HTTPS and HTTP URLs, the CA,
the taskgate process, nginx's logs) and tears both down. Tests of behaviour through the
proxy (rate limits, for one) reuse it with a fixture of their own. The parts are public
for other deploy configs: `nginx_workspace()` (directory, CA, ports), `localized_config()`
and `running_nginx()` (tests/e2e/cluster.py puts nginx in front of several TCP nodes).

Run as root, nginx runs as `nobody` with the server's group as an extra group, as in
production (nginx's user in the taskgate group, socket mode 0660); otherwise as the
current user. Without nginx the tests skip, except in CI (CI=true), where they fail.
"""

from __future__ import annotations

import contextlib
import json
import os
import pwd
import re
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import trustme

from .harness import READY_TIMEOUT_S, REPO_ROOT, ServerProcess, free_port, wait_until

DEPLOY_CONF = REPO_ROOT / "deploy" / "nginx" / "taskgate.conf"
NGINX_STOP_TIMEOUT_S = 10.0


def nginx_binary() -> str:
    """The nginx executable; skips the test when there is none (fails it in CI)."""
    found = shutil.which("nginx") or next(
        (path for path in ("/usr/sbin/nginx", "/usr/local/sbin/nginx") if Path(path).exists()),
        None,
    )
    if found is None:
        message = "nginx is not installed (Debian: apt-get install nginx)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return found


class UnixSocketServer(ServerProcess):
    """A `taskgate serve` that listens on a Unix socket (its TCP port flags are ignored)."""

    def __init__(self, socket_path: Path, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.socket_path = socket_path
        self.settings["unix_socket"] = str(socket_path)

    @property
    def base_url(self) -> str:
        return "http://taskgate"

    def client(self, timeout: float | httpx.Timeout = 10.0) -> httpx.Client:
        return self.anonymous_client(timeout, headers=self.auth_headers())

    def anonymous_client(
        self, timeout: float | httpx.Timeout = 10.0, headers: dict[str, str] | None = None
    ) -> httpx.Client:
        """A client over the socket, without credentials unless `headers` holds them."""
        return httpx.Client(
            base_url=self.base_url,
            transport=httpx.HTTPTransport(uds=str(self.socket_path)),
            timeout=timeout,
            headers=headers,
        )

    def wait_ready(self, timeout_s: float = READY_TIMEOUT_S) -> None:
        """Poll /healthz over the socket until it answers 200."""
        assert self._process is not None
        deadline = time.monotonic() + timeout_s
        last_error: str | None = "no answer yet"
        while time.monotonic() < deadline:
            exit_code = self._process.poll()
            if exit_code is not None:
                pytest.fail(
                    f"{self.name}: `taskgate serve` exited with code {exit_code} before it "
                    f"was ready.\ncommand: {' '.join(self.command())}\n{self.output_tail()}"
                )
            last_error = self._healthz_problem()
            if last_error is None:
                return
            time.sleep(0.05)
        self.kill()
        pytest.fail(
            f"{self.name}: /healthz on {self.socket_path} did not answer 200 within "
            f"{timeout_s} s (last: {last_error}).\n{self.output_tail()}"
        )

    def _healthz_problem(self) -> str | None:
        """Why /healthz over the socket does not answer 200 yet (None once it does)."""
        if not _socket_accepts(self.socket_path):
            # httpx (httpcore 1.0) leaks the socket of a failed Unix connect: probe first.
            return f"nothing accepts connections on {self.socket_path}"
        try:
            with self.anonymous_client(timeout=1.0) as http:
                response = http.get("/healthz")
        except httpx.TransportError as exc:
            return repr(exc)
        if response.status_code != 200:
            return f"status {response.status_code}: {response.text[:200]}"
        return None

    def access_record(self, request_id: str) -> dict[str, Any]:
        """The access-log record of the request with this X-Request-ID (waits for it)."""
        return wait_for_access_record(self.output, request_id)


def access_record(output: str, request_id: str) -> dict[str, Any] | None:
    """The access-log record (a JSON log line) of the request with this request id."""
    for line in output.splitlines():
        if not line.startswith("{"):
            continue
        record: dict[str, Any] = json.loads(line)
        if record.get("logger") == "taskgate.access" and record.get("request_id") == request_id:
            return record
    return None


def wait_for_access_record(
    read_output: Callable[[], str], request_id: str, timeout_s: float = 10.0
) -> dict[str, Any]:
    """The access-log record of a request, once written (it is logged after the answer)."""
    found: list[dict[str, Any]] = []

    def logged() -> bool:
        record = access_record(read_output(), request_id)
        if record is not None:
            found.append(record)
        return record is not None

    wait_until(logged, f"the access-log line of request {request_id!r}", timeout_s)
    return found[0]


def _socket_accepts(path: Path) -> bool:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        try:
            probe.connect(str(path))
        except OSError:
            return False
    return True


@dataclass
class FrontedServer:
    """taskgate behind nginx: where to reach it and what to look at."""

    server: UnixSocketServer
    https_url: str
    http_url: str
    https_port: int
    ca_pem: Path
    nginx_dir: Path

    def ssl_context(self) -> ssl.SSLContext:
        """A client context that trusts the test CA (and only it)."""
        return ssl.create_default_context(cafile=str(self.ca_pem))

    def client(self, timeout: float | httpx.Timeout = 10.0) -> httpx.Client:
        """An HTTPS client to nginx, verifying its certificate, authenticated as an admin."""
        return self.anonymous_client(timeout, headers=self.server.auth_headers())

    def anonymous_client(
        self, timeout: float | httpx.Timeout = 10.0, headers: dict[str, str] | None = None
    ) -> httpx.Client:
        """An HTTPS client to nginx, verifying its certificate, without credentials."""
        return httpx.Client(
            base_url=self.https_url, verify=self.ssl_context(), timeout=timeout, headers=headers
        )

    def nginx_access_log(self) -> str:
        return _read(self.nginx_dir / "logs" / "taskgate.access.log")

    def nginx_access_line(self, request_id: str) -> str:
        """nginx's access-log line of a request (waits for it: nginx logs after answering)."""
        marker = f"request_id={request_id} "

        def lines() -> list[str]:
            return [line for line in self.nginx_access_log().splitlines() if marker in line]

        wait_until(lambda: bool(lines()), f"nginx's access-log line of {request_id!r}")
        (line,) = lines()
        return line

    def nginx_output(self) -> str:
        logs = self.nginx_dir / "logs"
        parts = [f"--- {name} ---\n{_read(logs / name)}" for name in _NGINX_LOGS]
        return "\n".join(parts)


_NGINX_LOGS = ("nginx.out", "error.log", "taskgate.error.log")


def _read(path: Path) -> str:
    return path.read_text(errors="replace") if path.exists() else ""


def replace_in_config(conf: Path, text: str, old: str, new: str) -> str:
    """`text` (read from `conf`) with `old` replaced; fails the test if `conf` lacks `old`."""
    if old not in text:
        pytest.fail(
            f"{conf} no longer contains {old!r}, which the nginx tests replace: "
            "update tests/e2e/nginx_support.py (or cluster.py) with it"
        )
    return text.replace(old, new)


def localized_config(conf: Path, *, http_port: int, https_port: int, nginx_dir: Path) -> str:
    """A deploy config with local listen ports, log and webroot paths and test certificate.

    The upstream is left as it is: each caller replaces its own (socket or node addresses).
    """
    text = conf.read_text()
    # No IPv6 listeners: the test machine may have no IPv6.
    text, removed = re.subn(r"(?m)^\s*listen \[::\]:\d+[^;]*;\n", "", text)
    if removed != 2:
        pytest.fail(f"{conf}: expected two IPv6 listen lines, found {removed}")
    replacements = {
        "listen 80;": f"listen 127.0.0.1:{http_port};",
        "listen 443 ssl;": f"listen 127.0.0.1:{https_port} ssl;",
        "/etc/letsencrypt/live/taskgate.example.com/fullchain.pem": str(
            nginx_dir / "tls" / "fullchain.pem"
        ),
        "/etc/letsencrypt/live/taskgate.example.com/privkey.pem": str(
            nginx_dir / "tls" / "privkey.pem"
        ),
        "/var/log/nginx/": f"{nginx_dir / 'logs'}/",
        "/var/www/letsencrypt": str(nginx_dir / "webroot"),
    }
    for old, new in replacements.items():
        text = replace_in_config(conf, text, old, new)
    return text


def site_config(*, http_port: int, https_port: int, socket: Path, nginx_dir: Path) -> str:
    """deploy/nginx/taskgate.conf with local ports, paths and certificate."""
    text = localized_config(
        DEPLOY_CONF, http_port=http_port, https_port=https_port, nginx_dir=nginx_dir
    )
    return replace_in_config(
        DEPLOY_CONF, text, "unix:/run/taskgate/taskgate.sock", f"unix:{socket}"
    )


def main_config(nginx_dir: Path) -> str:
    """The top-level nginx.conf: foreground, everything under `nginx_dir`, the site included."""
    temp = nginx_dir / "temp"
    return f"""
daemon off;
worker_processes 2;
pid {nginx_dir / "nginx.pid"};
error_log {nginx_dir / "logs" / "error.log"} notice;
events {{
    worker_connections 256;
}}
http {{
    access_log {nginx_dir / "logs" / "access.log"};
    default_type application/octet-stream;
    client_body_temp_path {temp / "client_body"};
    proxy_temp_path {temp / "proxy"};
    fastcgi_temp_path {temp / "fastcgi"};
    uwsgi_temp_path {temp / "uwsgi"};
    scgi_temp_path {temp / "scgi"};
    include {nginx_dir / "taskgate.conf"};
}}
"""


def _write_certificate(ca: trustme.CA, tls_dir: Path) -> None:
    cert = ca.issue_cert("localhost", "127.0.0.1")
    cert.private_key_pem.write_to_path(tls_dir / "privkey.pem")
    for blob in cert.cert_chain_pems:
        blob.write_to_path(tls_dir / "fullchain.pem", append=True)


def _as_nginx_user() -> dict[str, Any]:
    """Popen arguments that drop root: nobody, plus our group (which owns the socket)."""
    if os.geteuid() != 0:
        return {}
    nobody = pwd.getpwnam("nobody")
    return {"user": nobody.pw_uid, "group": nobody.pw_gid, "extra_groups": [os.getgid()]}


def _give_to_nginx(path: Path, user: dict[str, Any]) -> None:
    if not user:
        return
    for entry in [path, *path.rglob("*")]:
        os.chown(entry, user["user"], user["group"])


@dataclass
class NginxWorkspace:
    """A directory nginx (maybe running as nobody) can use: logs, temp, TLS, webroot."""

    root: Path
    """Removed at exit; `run/` in it is private to our group (for a Unix socket)."""
    nginx_dir: Path
    ca_pem: Path
    """The test CA that signed nginx's certificate (for 127.0.0.1 and localhost)."""
    user: dict[str, Any]
    """Popen arguments that run nginx as nobody when we are root (else empty)."""
    http_port: int
    https_port: int

    @property
    def https_url(self) -> str:
        return f"https://127.0.0.1:{self.https_port}"

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def ssl_context(self) -> ssl.SSLContext:
        """A client context that trusts the test CA (and only it)."""
        return ssl.create_default_context(cafile=str(self.ca_pem))

    def output(self) -> str:
        """nginx's own output and error logs, for failure messages."""
        logs = self.nginx_dir / "logs"
        return "\n".join(f"--- {name} ---\n{_read(logs / name)}" for name in _NGINX_LOGS)


@contextlib.contextmanager
def nginx_workspace() -> Iterator[NginxWorkspace]:
    """A fresh workspace with a trustme CA and certificate and two free ports; removed at exit."""
    user = _as_nginx_user()
    # Not under pytest's tmp dir: that one is private to root, and nginx may run as nobody.
    root = Path(tempfile.mkdtemp(prefix="taskgate-nginx-"))
    try:
        root.chmod(0o755)
        (root / "run").mkdir(mode=0o750)  # a socket's directory: our group, nobody else
        nginx_dir = root / "nginx"
        for sub in ("logs", "temp", "tls", "webroot"):
            (nginx_dir / sub).mkdir(parents=True)
        ca = trustme.CA()
        _write_certificate(ca, nginx_dir / "tls")
        ca_pem = nginx_dir / "tls" / "ca.pem"
        ca.cert_pem.write_to_path(ca_pem)
        yield NginxWorkspace(
            root=root,
            nginx_dir=nginx_dir,
            ca_pem=ca_pem,
            user=user,
            http_port=free_port(),
            https_port=free_port(),
        )
    finally:
        shutil.rmtree(root, ignore_errors=True)


class NginxProcess:
    """nginx in the foreground, in its own process group, its output in a file."""

    def __init__(self, nginx_dir: Path, user: dict[str, Any]) -> None:
        self.nginx_dir = nginx_dir
        self.command = [nginx_binary(), "-p", str(nginx_dir), "-c", str(nginx_dir / "nginx.conf")]
        self._user = user
        self._process: subprocess.Popen[bytes] | None = None

    def check_config(self) -> None:
        checked = subprocess.run(
            [*self.command, "-t"], capture_output=True, text=True, check=False, **self._user
        )
        if checked.returncode != 0:
            pytest.fail(f"nginx -t refused the generated config:\n{checked.stderr}")

    def start(self) -> None:
        with (self.nginx_dir / "logs" / "nginx.out").open("wb") as output:
            self._process = subprocess.Popen(
                self.command,
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                **self._user,
            )

    def exited(self) -> int | None:
        assert self._process is not None
        return self._process.poll()

    def stop(self) -> None:
        if self._process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self._process.pid, signal.SIGTERM)
        try:
            self._process.wait(NGINX_STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self._process.pid, signal.SIGKILL)
            self._process.wait()


@contextlib.contextmanager
def running_nginx(
    workspace: NginxWorkspace, site: str, upstream_output: Callable[[], str]
) -> Iterator[NginxProcess]:
    """nginx serving `site` (a localized config) from `workspace`, proxying /healthz; stopped
    at exit. `upstream_output` adds the upstream's output to a failure message."""
    nginx_dir = workspace.nginx_dir
    (nginx_dir / "taskgate.conf").write_text(site)
    (nginx_dir / "nginx.conf").write_text(main_config(nginx_dir))
    _give_to_nginx(nginx_dir, workspace.user)
    nginx = NginxProcess(nginx_dir, workspace.user)
    try:
        nginx.check_config()
        nginx.start()
        _wait_until_proxying(workspace, nginx, upstream_output)
        yield nginx
    finally:
        nginx.stop()


def _wait_until_proxying(
    workspace: NginxWorkspace, nginx: NginxProcess, upstream_output: Callable[[], str]
) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    last_error = "no answer yet"
    while time.monotonic() < deadline:
        if (code := nginx.exited()) is not None:
            pytest.fail(f"nginx exited with code {code} at start.\n{workspace.output()}")
        try:
            with httpx.Client(verify=workspace.ssl_context(), timeout=1.0) as http:
                response = http.get(f"{workspace.https_url}/healthz")
        except httpx.TransportError as exc:
            last_error = repr(exc)
        else:
            if response.status_code == 200:
                return
            last_error = f"status {response.status_code}: {response.text[:200]}"
        time.sleep(0.05)
    pytest.fail(
        f"nginx did not proxy /healthz within {READY_TIMEOUT_S} s (last: {last_error}).\n"
        f"{workspace.output()}\n{upstream_output()}"
    )


@contextlib.contextmanager
def nginx_in_front(work_dir: Path, **settings: Any) -> Iterator[FrontedServer]:
    """taskgate (gunicorn, 2 workers, on a Unix socket) behind nginx; both stopped at exit.

    `settings` (Settings field names) are added to, or override, the server's flags.
    """
    with nginx_workspace() as workspace:
        socket_path = workspace.root / "run" / "taskgate.sock"
        site = site_config(
            http_port=workspace.http_port,
            https_port=workspace.https_port,
            socket=socket_path,
            nginx_dir=workspace.nginx_dir,
        )
        server = UnixSocketServer(
            socket_path,
            database=work_dir / "taskgate.db",
            log_dir=work_dir,
            name="behind-nginx",
            settings={"workers": 2, "trusted_proxies": "unix", "log_format": "json", **settings},
        )
        front = FrontedServer(
            server=server,
            https_url=workspace.https_url,
            http_url=workspace.http_url,
            https_port=workspace.https_port,
            ca_pem=workspace.ca_pem,
            nginx_dir=workspace.nginx_dir,
        )
        try:
            server.start()
            with running_nginx(workspace, site, server.output_tail):
                yield front
        finally:
            server.stop()
