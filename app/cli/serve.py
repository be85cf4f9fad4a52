"""`taskgate serve`: migrate, then run uvicorn (one process) or gunicorn (several)."""

from __future__ import annotations

import logging
import math
import signal
import sys
from typing import Any

import uvicorn

from app.logs import configure_logging
from app.main import create_app
from app.settings import Settings
from app.store.migrate import migrate_sqlite

log = logging.getLogger("taskgate")

# Long-polls last up to 25 s; keep-alive and header timeouts protect against idle sockets.
KEEP_ALIVE_S = 5


def serve(settings: Settings) -> None:
    """Apply migrations once, then serve until SIGTERM/SIGINT."""
    configure_logging(settings.log_format, settings.log_level)
    report = migrate_sqlite(settings.database_path)
    if report.applied:
        log.info("applied migrations %s to %s", ", ".join(report.applied), settings.database_path)
    log.info(
        "serving http://%s:%s with %s process(es), database %s (durability %s)",
        settings.host,
        settings.port,
        settings.workers,
        settings.database_path,
        settings.durability,
    )
    if settings.workers > 1:
        _serve_gunicorn(settings)
    else:
        config = uvicorn.Config(
            create_app(settings),
            host=settings.host,
            port=settings.port,
            log_config=None,
            access_log=False,
            timeout_keep_alive=KEEP_ALIVE_S,
            timeout_graceful_shutdown=math.ceil(settings.graceful_timeout_seconds),
            lifespan="on",
        )
        _run_uvicorn(uvicorn.Server(config))


def _exit_cleanly(signum: int, frame: Any) -> None:
    sys.exit(0)


def _run_uvicorn(server: uvicorn.Server) -> None:
    # uvicorn re-raises the signal that stopped it once its graceful shutdown is done; under
    # SIGTERM's default action that kills the process (exit -15) although nothing failed.
    # It re-raises into the handler it found at start, so make that one a clean exit.
    previous = signal.signal(signal.SIGTERM, _exit_cleanly)
    try:
        server.run()
    finally:
        signal.signal(signal.SIGTERM, previous)


def _serve_gunicorn(settings: Settings) -> None:
    from gunicorn.app.base import BaseApplication

    class TaskgateGunicorn(BaseApplication):  # type: ignore[misc]
        def load_config(self) -> None:
            options: dict[str, Any] = {
                "bind": f"{settings.host}:{settings.port}",
                "workers": settings.workers,
                "worker_class": "uvicorn_worker.UvicornWorker",
                "graceful_timeout": math.ceil(settings.graceful_timeout_seconds),
                "timeout": 60,
                "keepalive": KEEP_ALIVE_S,
                "accesslog": None,
                "errorlog": "-",
                "loglevel": settings.log_level,
            }
            for key, value in options.items():
                self.cfg.set(key, value)

        def load(self) -> Any:
            configure_logging(settings.log_format, settings.log_level)
            return create_app(settings)

    TaskgateGunicorn().run()
