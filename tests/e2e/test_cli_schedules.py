"""`taskgate schedules` as an operator runs it: the installed console script creating,
listing, showing, pausing, resuming and deleting cron schedules on a real server."""

from __future__ import annotations

import json
import subprocess
from typing import Any

from .harness import ServerFactory, ServerProcess, clean_env, console_script

CLI_TIMEOUT_S = 60


def taskgate(server: ServerProcess, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(console_script()), *args],
        env=clean_env({"TASKGATE_URL": server.base_url, "TASKGATE_TOKEN": server.token}),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=CLI_TIMEOUT_S,
        check=False,
    )


def ok_json(completed: subprocess.CompletedProcess[str]) -> Any:
    assert completed.returncode == 0, completed.stderr
    return json.loads(completed.stdout)


def test_schedules_lifecycle_from_the_command_line(start_server: ServerFactory) -> None:
    server = start_server()
    created = ok_json(
        taskgate(
            server,
            *("schedules", "create", "nightly", "--cron", "30 2 * * *"),
            *("--timezone", "Europe/Berlin", "--queue", "reports", "--type", "report.build"),
            *("--payload", '{"kind": "daily"}', "--priority", "high", "--tag", "cron"),
            *("--missed", "run_all", "--max-catch-up", "5", "-o", "json"),
        )
    )
    assert (created["id"], created["cron"], created["timezone"]) == (
        "nightly",
        "30 2 * * *",
        "Europe/Berlin",
    )
    assert created["task"]["payload"] == {"kind": "daily"}
    assert created["task"]["priority"] == "high" and created["task"]["tags"] == ["cron"]
    assert (created["missed"], created["max_catch_up"]) == ("run_all", 5)
    assert created["next_run_at"] is not None

    listed = ok_json(taskgate(server, "schedules", "-o", "json"))
    assert [s["id"] for s in listed] == ["nightly"]
    table = taskgate(server, "schedules", "list")
    assert table.returncode == 0 and "nightly" in table.stdout and "Europe/Berlin" in table.stdout

    paused = ok_json(taskgate(server, "schedules", "pause", "nightly", "-o", "json"))
    assert paused["paused"] is True and paused["next_run_at"] is None
    resumed = ok_json(taskgate(server, "schedules", "resume", "nightly", "-o", "json"))
    assert resumed["paused"] is False and resumed["next_run_at"] is not None
    shown = ok_json(taskgate(server, "schedules", "show", "nightly", "-o", "json"))
    assert shown["id"] == "nightly"

    deleted = taskgate(server, "schedules", "delete", "nightly")
    assert deleted.returncode == 0, deleted.stderr
    assert ok_json(taskgate(server, "schedules", "-o", "json")) == []


def test_bad_schedules_are_refused_with_the_problem(start_server: ServerFactory) -> None:
    server = start_server()

    bad_cron = taskgate(
        server, "schedules", "create", "s", "--cron", "61 * * * *", "--queue", "q", "--type", "t"
    )
    missing = taskgate(server, "schedules", "show", "nope")
    usage = taskgate(server, "schedules", "create", "s", "--queue", "q")

    assert bad_cron.returncode == 1 and "cron" in bad_cron.stderr
    assert missing.returncode == 1 and "Not found" in missing.stderr
    assert usage.returncode == 2
    assert "Traceback" not in bad_cron.stderr + missing.stderr + usage.stderr
