"""Settings: defaults < config file < environment < flags, validated with clear messages."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.settings import Settings, SettingsError, load_settings, redact_url


def test_defaults_are_the_embedded_sqlite_server() -> None:
    settings = load_settings(environ={})
    assert settings == Settings()
    assert settings.database == "taskgate.db" and settings.port == 8000
    assert settings.durability == "full" and settings.long_poll_max_seconds == 25


def test_precedence_file_then_env_then_overrides(tmp_path: Path) -> None:
    config = tmp_path / "taskgate.toml"
    config.write_text('port = 9001\ndurability = "normal"\nlog_format = "json"\n')
    settings = load_settings(
        environ={"TASKGATE_PORT": "9002", "TASKGATE_LOG_FORMAT": "text"},
        config_file=config,
        overrides={"port": 9003},
    )
    assert (settings.port, settings.durability, settings.log_format) == (9003, "normal", "text")


def test_yaml_config_and_config_from_env(tmp_path: Path) -> None:
    config = tmp_path / "taskgate.yaml"
    config.write_text("workers: 2\ndefault-retry-jitter: false\n")
    settings = load_settings(environ={"TASKGATE_CONFIG": str(config)})
    assert settings.workers == 2 and settings.default_retry_jitter is False


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"TASKGATE_PORT": "eighty"}, "port: expected int"),
        ({"TASKGATE_DURABILITY": "sometimes"}, "durability: must be one of full, normal"),
        ({"TASKGATE_WORKERS": "0"}, "workers: must be at least 1"),
        (
            {"TASKGATE_DEFAULT_RETRY_JITTER": "maybe"},
            "default_retry_jitter: expected true or false",
        ),
    ],
)
def test_invalid_values_are_named(environ: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        load_settings(environ=environ)


def test_unknown_setting_in_a_file_is_refused(tmp_path: Path) -> None:
    config = tmp_path / "bad.toml"
    config.write_text("prot = 1\n")
    with pytest.raises(SettingsError, match="unknown setting 'prot'"):
        load_settings(environ={}, config_file=config)


def test_unreadable_or_malformed_files_are_named(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match=r"missing\.toml"):
        load_settings(environ={}, config_file=tmp_path / "missing.toml")
    broken = tmp_path / "broken.toml"
    broken.write_text("port = = 1")
    with pytest.raises(SettingsError, match=r"broken\.toml"):
        load_settings(environ={}, config_file=broken)


def test_a_comma_list_setting_takes_a_list_in_a_config_file(tmp_path: Path) -> None:
    config = tmp_path / "taskgate.toml"
    config.write_text('webhook_allow = ["10.20.0.0/16", "hooks.internal"]\nport = [1, 2]\n')
    with pytest.raises(SettingsError, match="port: expected a single value"):
        load_settings(environ={}, config_file=config)
    config.write_text('webhook_allow = ["10.20.0.0/16", "hooks.internal"]\n')
    assert (
        load_settings(environ={}, config_file=config).webhook_allow == "10.20.0.0/16,hooks.internal"
    )


def test_a_postgresql_url_selects_postgres_and_is_logged_without_its_password() -> None:
    url = "postgresql://taskgate:s3cr%40t@db.internal:5432/taskgate?sslmode=require"
    settings = load_settings(
        environ={"TASKGATE_DATABASE_URL": url, "TASKGATE_DATABASE_POOL_SIZE": "20"}
    )
    assert settings.database_url == url and settings.database_pool_size == 20
    assert settings.database_label == (
        "postgresql://taskgate:***@db.internal:5432/taskgate?sslmode=require"
    )
    assert "s3cr" not in settings.database_label
    assert load_settings(environ={}).database_label == "taskgate.db"
    no_password = "postgres://db.internal/taskgate"
    assert redact_url(no_password) == no_password


def test_a_database_url_of_another_kind_is_refused_without_echoing_a_password() -> None:
    with pytest.raises(SettingsError, match="database_url: expected postgresql") as refused:
        load_settings(environ={"TASKGATE_DATABASE_URL": "mysql://root:hunter2@db/x"})
    assert "hunter2" not in str(refused.value)
