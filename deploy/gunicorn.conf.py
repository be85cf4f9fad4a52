# gunicorn settings for taskgate, for running gunicorn yourself instead of `taskgate serve`:
#
#   TASKGATE_CONFIG=/etc/taskgate/taskgate.toml \
#     gunicorn -c deploy/gunicorn.conf.py 'app.asgi:app_from_environment()'
#
# Every value comes from the same settings as `taskgate serve --workers N` (the config file
# named by TASKGATE_CONFIG, then TASKGATE_* variables), through the same function, so the
# two ways of running gunicorn cannot drift apart. With `unix_socket` set, gunicorn binds
# that path with mode 0660; otherwise `host:port`.
#
# To change a gunicorn setting that taskgate has no setting for, assign it below the
# `globals().update(...)` line (for example `max_requests = 10000`). gunicorn's
# limit_request_line/_fields/_field_size do not apply here: the uvicorn worker parses HTTP
# itself, so header limits are nginx's job (see deploy/nginx/taskgate.conf).
#
# Metrics: the hooks below give every start a fresh PROMETHEUS_MULTIPROC_DIR (a temporary
# directory, removed when the master exits), which the workers inherit; /metrics then
# adds up the counts of every worker. If you define on_starting, child_exit or on_exit
# yourself, keep what these do.
import os
from pathlib import Path
from typing import Any

from app.cli.serve import gunicorn_options, remove_stale_socket
from app.metrics.multiprocess import (
    MULTIPROC_DIR_ENV,
    fresh_metrics_dir,
    mark_worker_dead,
    remove_metrics_dir,
)
from app.settings import load_settings
from app.store.migrate import migrate_sqlite

_settings = load_settings()

# bind, umask (the socket's mode), workers, worker_class (uvicorn, proxy headers from
# trusted_proxies only), forwarded_allow_ips, graceful_timeout, timeout, keepalive,
# accesslog, errorlog, loglevel.
globals().update(gunicorn_options(_settings))


def on_starting(server: Any) -> None:
    """In the master, before it listens or forks: migrate once, clear a stale socket,
    make the metrics directory that every worker inherits."""
    report = migrate_sqlite(_settings.database_path)
    if report.applied:
        server.log.info("applied migrations %s", ", ".join(report.applied))
    if _settings.unix_socket:
        remove_stale_socket(Path(_settings.unix_socket))
    # Here rather than at the top: gunicorn reads this file again on SIGHUP, and the
    # workers it then starts must keep adding to the same counts.
    os.environ[MULTIPROC_DIR_ENV] = str(fresh_metrics_dir())


def child_exit(server: Any, worker: Any) -> None:
    """In the master, after a worker exited: forget that worker's live gauges."""
    mark_worker_dead(Path(os.environ[MULTIPROC_DIR_ENV]), worker.pid)


def on_exit(server: Any) -> None:
    """In the master, as it exits: remove the metrics directory."""
    remove_metrics_dir(Path(os.environ[MULTIPROC_DIR_ENV]))
