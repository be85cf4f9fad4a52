"""schemathesis over the whole spec (all phases) against a real server process."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

BIN = Path(sys.executable).parent
SEED = "164172621297073247854906352424509609184"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def server_url(tmp_path: Path, fresh_env: dict[str, str]) -> Iterator[str]:
    port = _free_port()
    env = {**fresh_env, "TASKGATE_LONG_POLL_MAX_SECONDS": "0.2", "TASKGATE_LOG_LEVEL": "warning"}
    log = (tmp_path / "server.log").open("wb")
    process = subprocess.Popen(
        [
            str(BIN / "taskgate"),
            "serve",
            "--database",
            str(tmp_path / "st.db"),
            "--port",
            str(port),
        ],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    try:
        while True:
            try:
                if httpx.get(f"{url}/healthz").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"server did not start:\n{(tmp_path / 'server.log').read_text()}")
            time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)
        log.close()


def test_schemathesis_finds_nothing(server_url: str, request: pytest.FixtureRequest) -> None:
    slow = request.config.getoption("--run-slow")
    command = [
        str(BIN / "st"),
        "run",
        f"{server_url}/openapi.json",
        "--checks",
        "all",
        "--phases",
        "examples,coverage,fuzzing,stateful",
        "--max-examples",
        "300" if slow else "60",
        # One worker: hypothesis's lambda-source cache is not thread-safe on Python 3.11.
        "--workers",
        "1",
        "--no-color",
    ]
    if not slow:
        command += ["--seed", SEED]
    completed = subprocess.run(
        command,
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "SCHEMATHESIS_TELEMETRY": "false"},
        check=False,
    )
    output = completed.stdout + completed.stderr
    counts = re.search(r"(\d+) generated, (\d+) passed", output)
    print(counts.group(0) if counts else output[-2000:])
    assert completed.returncode == 0, output[-20000:]
    assert counts is not None and int(counts.group(1)) > 500
    assert counts.group(1) == counts.group(2)
