"""`python -m runners MODULE:ATTRIBUTE`: a real runner process works, then exits on SIGTERM."""

from __future__ import annotations

import signal
import subprocess
import sys

import pytest

from runners import Client, TaskState
from tests.e2e.harness import REPO_ROOT, ServerProcess, clean_env

EXIT_TIMEOUT_S = 15.0


def test_python_m_runners_processes_tasks_and_exits_cleanly_on_sigterm(
    server: ServerProcess, queue: str, client: Client
) -> None:
    command = [sys.executable, "-m", "runners", "tests.runners.sample_app:runner"]
    command += ["--queue", queue, "--url", server.base_url, "--concurrency", "3"]
    process = subprocess.Popen(
        command,
        cwd=REPO_ROOT,
        env=clean_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        echo = client.submit(queue, "echo", {"hello": "world"})
        double = client.submit(queue, "double", 4)
        assert client.wait(echo.id, timeout=EXIT_TIMEOUT_S).result == {"echo": {"hello": "world"}}
        doubled = client.wait(double.id, timeout=EXIT_TIMEOUT_S)
        assert (doubled.state, doubled.result) == (TaskState.SUCCEEDED, 8)
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=EXIT_TIMEOUT_S)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0, output
    assert "stopped" in output


@pytest.mark.parametrize("entry", [["runners"], ["app.cli.main", "runner"]])
def test_a_target_that_is_not_a_runner_is_refused(entry: list[str]) -> None:
    done = subprocess.run(
        [sys.executable, "-m", *entry, "tests.runners.sample_app:echo", "--queue", "q"],
        cwd=REPO_ROOT,
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=EXIT_TIMEOUT_S,
    )
    assert done.returncode == 2
    assert "not a runners.Runner" in done.stderr
