"""One frozen Settings, built once from defaults, a config file, TASKGATE_* and CLI flags."""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import yaml


class SettingsError(ValueError):
    """A setting has a value taskgate cannot use; the message says which and why."""


def _setting(
    default: Any,
    help: str,
    *,
    choices: tuple[str, ...] = (),
    minimum: float | None = None,
    comma_list: bool = False,
) -> Any:
    return field(
        default=default,
        metadata={"help": help, "choices": choices, "minimum": minimum, "comma_list": comma_list},
    )


@dataclass(frozen=True, slots=True)
class Settings:
    """Every knob of the server. Environment: TASKGATE_<NAME in upper case>."""

    database: str = _setting("taskgate.db", "SQLite database file (created on first start)")
    database_url: str = _setting(
        "",
        "postgresql://user:password@host:port/dbname selects the PostgreSQL store "
        "(empty: the SQLite file of `database`)",
    )
    database_pool_size: int = _setting(
        10, "PostgreSQL connections per server process (plus one for wake-ups)", minimum=1
    )
    host: str = _setting("127.0.0.1", "address to listen on")
    port: int = _setting(8000, "TCP port to listen on", minimum=0)
    unix_socket: str = _setting(
        "", "listen on this Unix socket path instead of host:port (behind nginx)"
    )
    trusted_proxies: str = _setting(
        "",
        "comma-separated addresses/CIDRs of reverse proxies whose X-Forwarded-For and "
        "X-Forwarded-Proto are believed (empty: none; 'unix' for a Unix socket peer)",
        comma_list=True,
    )
    workers: int = _setting(1, "server processes; more than 1 runs gunicorn", minimum=1)
    durability: str = _setting(
        "full",
        "full: a 2xx survives power loss; normal: survives a process crash",
        choices=("full", "normal"),
    )
    busy_timeout_ms: int = _setting(
        10_000, "how long a write waits for another process's lock", minimum=100
    )
    max_body_bytes: int = _setting(
        10 * 1024 * 1024, "largest accepted request body (bytes)", minimum=1024
    )
    long_poll_max_seconds: float = _setting(
        25.0, "cap on claim wait_seconds and get ?wait=", minimum=0
    )
    idempotency_window_seconds: int = _setting(
        86_400, "how long an idempotency key is remembered", minimum=1
    )
    default_max_attempts: int = _setting(
        5, "attempts per task unless the task or queue says otherwise", minimum=1
    )
    default_lease_seconds: int = _setting(
        60, "lease length unless the task, claim or queue says otherwise", minimum=1
    )
    default_retry_initial_seconds: float = _setting(1.0, "first retry delay", minimum=0)
    default_retry_factor: float = _setting(2.0, "retry delay growth factor", minimum=1)
    default_retry_max_seconds: float = _setting(300.0, "largest retry delay", minimum=0)
    default_retry_jitter: bool = _setting(True, "full jitter on retry delays")
    retention_seconds: int = _setting(
        7 * 86_400, "keep finished tasks this long (queues may override)", minimum=0
    )
    sweep_interval_seconds: float = _setting(
        1.0, "how often expired leases are collected", minimum=0.01
    )
    retention_interval_seconds: float = _setting(
        60.0, "how often finished tasks past retention are deleted", minimum=0.01
    )
    schedule_interval_seconds: float = _setting(
        1.0, "how often due cron schedules are fired", minimum=0.01
    )
    wake_poll_seconds: float = _setting(
        0.02, "how often to look for commits by other processes", minimum=0.001
    )
    worker_alive_seconds: int = _setting(
        60, "a worker counts as alive if seen this recently", minimum=1
    )
    worker_retention_seconds: int = _setting(
        86_400, "forget idle workers after this long", minimum=1
    )
    event_retention_seconds: int = _setting(
        3_600,
        "keep task events (GET /v1/events) this long, so that streams can resume",
        minimum=1,
    )
    auth: bool = _setting(
        True, "require a bearer token (JWT) on /v1; turn off only on a trusted local setup"
    )
    auth_secret_file: str = _setting(
        "",
        "HS256 signing secrets, one per line, the first signs (default: taskgate.secret "
        "next to the database, created on first start with mode 0600)",
    )
    auth_jwks: str = _setting(
        "", "JWKS file path or https URL of an identity provider's public keys (optional)"
    )
    auth_issuer: str = _setting("taskgate", "required `iss` of tokens")
    auth_audience: str = _setting("taskgate", "required `aud` of tokens")
    auth_leeway_seconds: int = _setting(30, "clock skew tolerated on exp/nbf/iat", minimum=0)
    metrics_auth: bool = _setting(True, "/metrics needs a token with the metrics scope")
    docs_auth: bool = _setting(False, "/docs and /openapi.* need a token")
    rate_limit_storage: str = _setting(
        "memory://",
        "where rate-limit counters live: memory:// (per process) or redis://host:port/db "
        "(shared by every process and host)",
    )
    rate_limit_submit: str = _setting(
        "20000/second", "limit per token on submits (a batch counts each task)"
    )
    rate_limit_work: str = _setting(
        "20000/second", "limit per token on claim, heartbeat, complete and fail"
    )
    rate_limit_read: str = _setting("2000/second", "limit per token on reads")
    rate_limit_admin: str = _setting("100/second", "limit per token on queue administration")
    rate_limit_anonymous: str = _setting(
        "20/second", "limit per client address on requests without a valid token"
    )
    dispatch: bool = _setting(True, "deliver the tasks of push queues from this server")
    webhook_allow: str = _setting(
        "",
        "comma-separated host names and CIDRs webhooks may target although not public "
        "(e.g. 127.0.0.1/32,::1 for local receivers)",
        comma_list=True,
    )
    log_format: str = _setting("text", "log line format", choices=("text", "json"))
    log_level: str = _setting("info", "log level", choices=("debug", "info", "warning", "error"))
    graceful_timeout_seconds: float = _setting(
        30.0, "how long in-flight requests get on shutdown", minimum=0
    )

    @property
    def database_path(self) -> Path:
        return Path(self.database).expanduser()

    @property
    def database_label(self) -> str:
        """The database for logs and messages: the URL without its password, or the file."""
        return redact_url(self.database_url) if self.database_url else str(self.database_path)


def redact_url(url: str) -> str:
    """`url` with its password (if any) replaced by `***`, fit to log."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{parts.username or ''}:***@{host}"))


ENV_PREFIX = "TASKGATE_"


def env_name(name: str) -> str:
    return ENV_PREFIX + name.upper()


def setting_fields() -> list[Any]:
    """The dataclass fields of Settings (for building CLI flags and help)."""
    return list(fields(Settings))


def _coerce(spec: Any, raw: Any) -> Any:
    name, kind = spec.name, spec.type
    if isinstance(raw, list | tuple) and spec.metadata.get("comma_list"):
        raw = ",".join(str(item) for item in raw)
    if isinstance(raw, list | tuple | dict):
        raise SettingsError(f"{name}: expected a single value, got {raw!r}")
    target = {"int": int, "float": float, "bool": bool, "str": str}[
        kind if isinstance(kind, str) else kind.__name__
    ]
    if target is bool:
        if isinstance(raw, bool):
            return raw
        text = str(raw).strip().lower()
        if text in {"1", "true", "yes", "on"}:
            return True
        if text in {"0", "false", "no", "off"}:
            return False
        raise SettingsError(f"{name}: expected true or false, got {raw!r}")
    if target is int and isinstance(raw, float) and not raw.is_integer():
        raise SettingsError(f"{name}: expected a whole number, got {raw!r}")
    try:
        return target(raw)
    except (TypeError, ValueError):
        raise SettingsError(f"{name}: expected {target.__name__}, got {raw!r}") from None


def read_config_file(path: Path) -> dict[str, Any]:
    """Settings from a TOML or YAML file (a flat table of setting names).

    Raises:
        SettingsError: unreadable file, bad syntax, or not a table.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise SettingsError(f"config file {path}: {exc.strerror}") from None
    try:
        data = tomllib.loads(text) if path.suffix == ".toml" else yaml.safe_load(text)
    except (tomllib.TOMLDecodeError, yaml.YAMLError) as exc:
        raise SettingsError(f"config file {path}: {exc}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise SettingsError(f"config file {path}: expected a table of settings")
    return data


def load_settings(
    environ: Mapping[str, str] | None = None,
    config_file: Path | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Settings:
    """Build Settings: defaults < config file < environment < explicit overrides.

    Raises:
        SettingsError: an unknown name or an invalid value (the message names it).
    """
    environ = os.environ if environ is None else environ
    known = {f.name: f for f in fields(Settings)}
    values: dict[str, Any] = {}
    if config_file is None and environ.get(env_name("config")):
        config_file = Path(environ[env_name("config")])
    if config_file is not None:
        for name, raw in read_config_file(config_file).items():
            key = str(name).replace("-", "_")
            if key not in known:
                raise SettingsError(f"config file {config_file}: unknown setting {name!r}")
            values[key] = raw
    for name in known:
        if env_name(name) in environ:
            values[name] = environ[env_name(name)]
    for name, raw in (overrides or {}).items():
        if raw is not None:
            values[name] = raw
    settings = replace(
        Settings(), **{name: _coerce(known[name], raw) for name, raw in values.items()}
    )
    _validate(settings)
    return settings


def _validate(settings: Settings) -> None:
    if settings.database_url and not settings.database_url.startswith(
        ("postgresql://", "postgres://")
    ):
        raise SettingsError(
            "database_url: expected postgresql://… (leave it empty for the SQLite file of "
            f"`database`), got {redact_url(settings.database_url)!r}"
        )
    for spec in fields(Settings):
        value = getattr(settings, spec.name)
        choices = spec.metadata.get("choices")
        if choices and value not in choices:
            raise SettingsError(f"{spec.name}: must be one of {', '.join(choices)}, got {value!r}")
        minimum = spec.metadata.get("minimum")
        if minimum is not None and value < minimum:
            raise SettingsError(f"{spec.name}: must be at least {minimum}, got {value!r}")
