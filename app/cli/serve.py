"""`taskgate serve`: migrate, then run uvicorn (one process) or gunicorn (several)."""

from __future__ import annotations

import contextlib
import logging
import math
import os
import signal
import socket
import stat
import sys
from pathlib import Path
from typing import Any, ClassVar

import uvicorn
from uvicorn_worker import UvicornWorker

from app.asgi import UNIX_PEER, TrustedProxies, serving_app
from app.auth.setup import ensure_secret, secret_path
from app.logs import configure_logging
from app.metrics.multiprocess import fresh_metrics_dir, mark_worker_dead, remove_metrics_dir
from app.settings import Settings, SettingsError
from app.store.migrate import migrate_database

log = logging.getLogger("taskgate")

# Long-polls last up to 25 s; keep-alive and header timeouts protect against idle sockets.
KEEP_ALIVE_S = 5
# Owner and group may connect, nobody else: put the proxy's user in the server's group.
UNIX_SOCKET_MODE = 0o660


class TaskgateWorker(UvicornWorker):  # type: ignore[misc]
    """gunicorn's uvicorn worker with uvicorn's proxy-header handling off.

    uvicorn would otherwise believe X-Forwarded-For from FORWARDED_ALLOW_IPS (127.0.0.1 by
    default); taskgate's own ForwardedHeadersMiddleware decides, from `trusted_proxies`.
    """

    CONFIG_KWARGS: ClassVar[dict[str, Any]] = {
        **UvicornWorker.CONFIG_KWARGS,
        "proxy_headers": False,
    }


def serve(settings: Settings) -> None:
    """Apply migrations once, then serve until SIGTERM/SIGINT."""
    configure_logging(settings.log_format, settings.log_level)
    trusted = _trusted_proxies(settings)
    report = migrate_database(settings)
    if report.applied:
        log.info("applied migrations %s to %s", ", ".join(report.applied), settings.database_label)
    if settings.auth and ensure_secret(settings):
        log.info(
            "created the token signing secret %s (mode 0600); make an admin token with: "
            "taskgate token create --scope admin --database %s",
            secret_path(settings),
            settings.database_path,
        )
    log.info(
        "serving %s with %s process(es), database %s",
        f"unix:{settings.unix_socket}"
        if settings.unix_socket
        else f"http://{settings.host}:{settings.port}",
        settings.workers,
        settings.database_label
        if settings.database_url
        else f"{settings.database_label} (durability {settings.durability})",
    )
    if trusted:
        log.info("believing X-Forwarded-For/-Proto from %s", settings.trusted_proxies)
    if settings.unix_socket:
        remove_stale_socket(Path(settings.unix_socket))
    if settings.workers > 1:
        _serve_gunicorn(settings)
        return
    # One process holds every count, so it counts in memory: exact, no files to make or
    # clean, cheaper per increment than an mmap write, and with its process metrics.
    config = uvicorn.Config(
        serving_app(settings),
        host=settings.host,
        port=settings.port,
        log_config=None,
        access_log=False,
        # Forwarded headers are handled by app.asgi, from trusted_proxies only.
        proxy_headers=False,
        # No header-size limit to set: httptools (the parser uvicorn picks) has none, and
        # h11_max_incomplete_event_size binds only the slower h11 parser. nginx enforces
        # header sizes and slow-client timeouts in front (deploy/nginx/taskgate.conf).
        timeout_keep_alive=KEEP_ALIVE_S,
        timeout_graceful_shutdown=math.ceil(settings.graceful_timeout_seconds),
        lifespan="on",
    )
    if not settings.unix_socket:
        _run_uvicorn(uvicorn.Server(config))
        return
    path = Path(settings.unix_socket)
    listener = bind_unix_socket(path)
    try:
        _run_uvicorn(uvicorn.Server(config), sockets=[listener])
    finally:
        listener.close()
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def _trusted_proxies(settings: Settings) -> TrustedProxies:
    try:
        trusted = TrustedProxies.parse(settings.trusted_proxies)
    except SettingsError as exc:
        raise SystemExit(f"taskgate serve: {exc}") from None
    if trusted.unix_peers and not settings.unix_socket:
        log.warning(
            "trusted_proxies names %r but the server listens on TCP, not a Unix socket",
            UNIX_PEER,
        )
    return trusted


def remove_stale_socket(path: Path) -> None:
    """Remove a socket file left by a server that died; refuse to take over a live one.

    Raises:
        SystemExit: the path is not a socket, or a server answers on it.
    """
    try:
        mode = path.lstat().st_mode
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(mode):
        raise SystemExit(f"taskgate serve: {path} exists and is not a socket")
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        try:
            probe.connect(str(path))
        except (ConnectionRefusedError, FileNotFoundError):
            path.unlink(missing_ok=True)
            return
        except OSError as exc:
            raise SystemExit(f"taskgate serve: cannot check {path}: {exc.strerror}") from None
    raise SystemExit(f"taskgate serve: another server is listening on {path}")


def bind_unix_socket(path: Path) -> socket.socket:
    """A listening Unix socket at `path` with mode 0660 (the proxy must share our group)."""
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        # Created 0600 whatever the umask, then opened to the group: no moment where a
        # stranger could connect.
        previous_umask = os.umask(0o177)
        try:
            listener.bind(str(path))
        finally:
            os.umask(previous_umask)
        os.chmod(path, UNIX_SOCKET_MODE)
        listener.listen(2048)
    except OSError as exc:
        listener.close()
        raise SystemExit(f"taskgate serve: cannot listen on {path}: {exc.strerror}") from None
    return listener


def _exit_cleanly(signum: int, frame: Any) -> None:
    sys.exit(0)


def _run_uvicorn(server: uvicorn.Server, sockets: list[socket.socket] | None = None) -> None:
    # uvicorn re-raises the signal that stopped it once its graceful shutdown is done; under
    # SIGTERM's default action that kills the process (exit -15) although nothing failed.
    # It re-raises into the handler it found at start, so make that one a clean exit.
    previous = signal.signal(signal.SIGTERM, _exit_cleanly)
    try:
        server.run(sockets=sockets)
    finally:
        signal.signal(signal.SIGTERM, previous)


def gunicorn_options(settings: Settings) -> dict[str, Any]:
    """gunicorn settings for `taskgate serve --workers N` and deploy/gunicorn.conf.py."""
    if settings.unix_socket:
        bind = f"unix:{settings.unix_socket}"
    else:
        bind = f"{settings.host}:{settings.port}"
    return {
        "bind": [bind],
        # gunicorn applies `umask` only when it creates a Unix socket: 0o117 gives 0660.
        "umask": 0o777 & ~UNIX_SOCKET_MODE,
        "workers": settings.workers,
        "worker_class": f"{TaskgateWorker.__module__}.{TaskgateWorker.__qualname__}",
        # Read by uvicorn's proxy-header handling, which TaskgateWorker turns off; empty
        # anyway, so that a stock UvicornWorker would not believe 127.0.0.1 either.
        "forwarded_allow_ips": "",
        "graceful_timeout": math.ceil(settings.graceful_timeout_seconds),
        # The worker heartbeat, not a request timeout: long-polls are async and keep it alive.
        "timeout": 60,
        "keepalive": KEEP_ALIVE_S,
        "accesslog": None,
        "errorlog": "-",
        "loglevel": settings.log_level,
    }


def metrics_hooks(metrics_dir: Path) -> dict[str, Any]:
    """gunicorn server hooks for multiprocess metrics in `metrics_dir`."""

    def child_exit(server: Any, worker: Any) -> None:
        mark_worker_dead(metrics_dir, worker.pid)

    return {"child_exit": child_exit}


def _serve_gunicorn(settings: Settings) -> None:
    from gunicorn.app.base import BaseApplication

    # Made before any worker starts, and given to each explicitly (no environment).
    metrics_dir = fresh_metrics_dir()
    master_pid = os.getpid()

    class TaskgateGunicorn(BaseApplication):  # type: ignore[misc]
        def load_config(self) -> None:
            for key, value in {**gunicorn_options(settings), **metrics_hooks(metrics_dir)}.items():
                self.cfg.set(key, value)

        def load(self) -> Any:
            configure_logging(settings.log_format, settings.log_level)
            return serving_app(settings, metrics_dir)

    try:
        TaskgateGunicorn().run()
    finally:
        # A worker leaves gunicorn by SystemExit too, up through this frame: only the
        # master, once every worker is gone, removes the directory.
        if os.getpid() == master_pid:
            remove_metrics_dir(metrics_dir)
