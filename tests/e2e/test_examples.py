"""The shipped examples run against a real server: shell (curl + jq), Node.js, Python."""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys

import pytest

from tests.conftest import IN_CI

from .harness import (
    REPO_ROOT,
    ServerFactory,
    ServerProcess,
    clean_env,
    mint_test_token,
    wait_until,
)

EXAMPLES = REPO_ROOT / "examples"


def require(*tools: str) -> None:
    missing = [tool for tool in tools if shutil.which(tool) is None]
    if missing:
        if IN_CI:
            pytest.fail(f"{', '.join(missing)} missing: .ci/run installs them")
        pytest.skip(f"{', '.join(missing)} not installed")


def work_token(server: ServerProcess) -> dict[str, str]:
    """TASKGATE_TOKEN with just the scope a worker needs."""
    secret = server.database.parent / "taskgate.secret"
    return {"TASKGATE_TOKEN": mint_test_token(secret, ("tasks:work",), subject="worker")}


def run_worker_once(command: list[str], server: ServerProcess, queue: str) -> None:
    """Run an example worker with `--once` against `server` and check it exited cleanly."""
    completed = subprocess.run(
        [*command, "--once"],
        env=clean_env({"TASKGATE_URL": server.base_url, "QUEUE": queue, **work_token(server)}),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr


def test_shell_worker_completes_a_task(start_server: ServerFactory) -> None:
    require("curl", "jq")
    server = start_server()
    with server.client() as http:
        task = http.post(
            "/v1/queues/emails/tasks", json={"type": "echo", "payload": {"n": 7}}
        ).json()
        run_worker_once([str(EXAMPLES / "curl" / "worker.sh")], server, "emails")
        done = http.get(f"/v1/tasks/{task['id']}").json()
    assert done["state"] == "succeeded"
    assert done["result"] == {"echo": {"n": 7}}


def test_node_worker_completes_a_task(start_server: ServerFactory) -> None:
    require("node")
    server = start_server()
    with server.client() as http:
        good = http.post(
            "/v1/queues/text/tasks", json={"type": "text.upper", "payload": {"text": "shout"}}
        ).json()
        run_worker_once(["node", str(EXAMPLES / "node" / "worker.mjs")], server, "text")
        done = http.get(f"/v1/tasks/{good['id']}").json()
    assert done["state"] == "succeeded"
    assert done["result"] == {"text": "SHOUT"}


def test_python_runner_example_runs_sync_and_async_handlers(
    start_server: ServerFactory,
) -> None:
    server = start_server()
    runner = subprocess.Popen(
        [sys.executable, "-m", "runners", "examples.python.tasks:runner", "--url", server.base_url],
        cwd=REPO_ROOT,
        env=clean_env(work_token(server)),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        with server.client() as http:
            words = http.post(
                "/v1/queues/text/tasks", json={"type": "text.words", "payload": {"text": "a b c"}}
            ).json()
            backwards = http.post(
                "/v1/queues/text/tasks", json={"type": "text.reverse", "payload": {"text": "abc"}}
            ).json()

            def finished() -> bool:
                states = [
                    http.get(f"/v1/tasks/{task['id']}").json()["state"]
                    for task in (words, backwards)
                ]
                return states == ["succeeded", "succeeded"]

            wait_until(finished, "both example tasks succeed", timeout_s=30)
            results = [
                http.get(f"/v1/tasks/{t['id']}").json()["result"] for t in (words, backwards)
            ]
    finally:
        runner.send_signal(signal.SIGTERM)
        _, stderr = runner.communicate(timeout=30)
    assert results == [{"words": 3}, {"reversed": "cba"}]
    assert runner.returncode == 0, stderr
