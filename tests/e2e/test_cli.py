"""The `taskgate` command as an operator runs it: exit codes, messages, help."""

from __future__ import annotations

import subprocess
from collections.abc import Mapping
from pathlib import Path

import httpx

from app import __version__

from .harness import REPO_ROOT, ServerFactory, clean_env, console_script, taskgate_command

CLI_TIMEOUT_S = 60


def run_taskgate(
    *args: str, env: Mapping[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*taskgate_command(), *args],
        cwd=REPO_ROOT,
        env=clean_env(env),
        capture_output=True,
        text=True,
        timeout=CLI_TIMEOUT_S,
        check=False,
    )


def test_migrate_applies_once_then_reports_up_to_date(tmp_path: Path) -> None:
    database = tmp_path / "nested" / "taskgate.db"

    first = run_taskgate("migrate", "--database", str(database))
    assert first.returncode == 0, first.stderr
    assert "0001_initial" in first.stdout
    assert str(database) in first.stdout
    assert database.exists()

    second = run_taskgate("migrate", "--database", str(database))
    assert second.returncode == 0, second.stderr
    assert "already up to date" in second.stdout
    assert "0001_initial" not in second.stdout


def test_migrate_takes_the_database_from_the_environment(tmp_path: Path) -> None:
    database = tmp_path / "from-env.db"
    migrated = run_taskgate("migrate", env={"TASKGATE_DATABASE": str(database)})
    assert migrated.returncode == 0, migrated.stderr
    assert "0001_initial" in migrated.stdout
    assert database.exists()


def test_migrate_reports_an_unusable_database_path(tmp_path: Path) -> None:
    failed = run_taskgate("migrate", "--database", str(tmp_path))  # a directory
    assert failed.returncode == 1
    assert "cannot migrate" in failed.stderr
    assert str(tmp_path) in failed.stderr
    assert "Traceback" not in failed.stderr


def test_serve_refuses_a_bad_setting_naming_it(tmp_path: Path) -> None:
    database = tmp_path / "never.db"
    bad_flag = run_taskgate("serve", "--database", str(database), "--durability", "bogus")
    assert bad_flag.returncode == 2
    assert "durability" in bad_flag.stderr
    assert "bogus" in bad_flag.stderr

    bad_env = run_taskgate("serve", "--database", str(database), env={"TASKGATE_DURABILITY": "no"})
    assert bad_env.returncode == 2
    assert "durability" in bad_env.stderr
    assert "Traceback" not in bad_env.stderr
    assert not database.exists(), "a refused start must not create the database"


def test_serve_help_names_the_environment_variables() -> None:
    shown = run_taskgate("serve", "--help", env={"COLUMNS": "200"})
    assert shown.returncode == 0, shown.stderr
    for variable in ("TASKGATE_DATABASE", "TASKGATE_PORT", "TASKGATE_WORKERS"):
        assert variable in shown.stdout


def test_console_script_is_installed() -> None:
    version = subprocess.run(
        [str(console_script()), "--version"],
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=CLI_TIMEOUT_S,
        check=False,
    )
    assert version.returncode == 0, version.stderr
    assert version.stdout.strip() == f"taskgate {__version__}"


def test_token_create_mints_what_the_server_accepts(
    tmp_path: Path, start_server: ServerFactory
) -> None:
    database = tmp_path / "taskgate.db"
    server = start_server(database)
    assert "taskgate token create --scope admin" in server.output()
    worker = run_taskgate(
        "token",
        "create",
        "--scope",
        "tasks:work",
        "--queue",
        "mail.*",
        "--ttl",
        "2h",
        "--subject",
        "mailer",
        "--database",
        str(database),
    )
    assert worker.returncode == 0, worker.stderr
    token = worker.stdout.strip()
    assert token.count(".") == 2 and token not in server.output()
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=server.base_url, headers=headers) as http:
        claim = {"worker_id": "mailer-1"}
        assert http.post("/v1/queues/mail.eu/claim", json=claim).status_code == 200
        assert http.post("/v1/queues/billing/claim", json=claim).status_code == 403
        assert http.post("/v1/queues/mail.eu/tasks", json={"type": "t"}).status_code == 403


def test_token_create_refuses_bad_arguments(tmp_path: Path) -> None:
    database = str(tmp_path / "taskgate.db")
    for arguments in (
        ("--scope", "root"),
        ("--scope", "admin", "--ttl", "forever"),
        ("--scope", "admin", "--ttl", "0s"),
        (),
    ):
        completed = run_taskgate("token", "create", *arguments, "--database", database)
        assert completed.returncode == 2, arguments
        assert "Traceback" not in completed.stderr
