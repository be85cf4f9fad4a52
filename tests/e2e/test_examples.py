"""The shipped examples run against a real server."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from tests.conftest import IN_CI

from .harness import REPO_ROOT, ServerFactory, clean_env


def test_shell_worker_completes_a_task(start_server: ServerFactory) -> None:
    if shutil.which("curl") is None:
        if IN_CI:
            pytest.fail("curl is missing: .ci/run installs it")
        pytest.skip("curl is not installed")
    server = start_server()
    with server.client() as http:
        task = http.post(
            "/v1/queues/emails/tasks", json={"type": "echo", "payload": {"n": 7}}
        ).json()
        completed = subprocess.run(
            [str(REPO_ROOT / "examples" / "curl" / "worker.sh"), "--once"],
            env=clean_env({"TASKGATE_URL": server.base_url, "QUEUE": "emails"}),
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert completed.returncode == 0, completed.stderr
        done = http.get(f"/v1/tasks/{task['id']}").json()
    assert done["state"] == "succeeded"
    assert done["result"] == {"echo": {"n": 7}}
