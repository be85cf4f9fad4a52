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
from pathlib import Path
from typing import Any

from app.cli.serve import gunicorn_options, remove_stale_socket
from app.settings import load_settings
from app.store.migrate import migrate_sqlite

_settings = load_settings()

# bind, umask (the socket's mode), workers, worker_class (uvicorn, proxy headers from
# trusted_proxies only), forwarded_allow_ips, graceful_timeout, timeout, keepalive,
# accesslog, errorlog, loglevel.
globals().update(gunicorn_options(_settings))


def on_starting(server: Any) -> None:
    """In the master, before it listens or forks: migrate once, clear a stale socket."""
    report = migrate_sqlite(_settings.database_path)
    if report.applied:
        server.log.info("applied migrations %s", ", ".join(report.applied))
    if _settings.unix_socket:
        remove_stale_socket(Path(_settings.unix_socket))
