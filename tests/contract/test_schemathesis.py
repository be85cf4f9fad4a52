"""schemathesis over the whole spec (all phases) against a real server process, on each
backend."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.harness import ServerProcess, server_factory

BIN = Path(sys.executable).parent
CONFIG = Path(__file__).with_name("schemathesis.toml")
SEED = "164172621297073247854906352424509609184"


@pytest.fixture
def server(tmp_path: Path, backend_env: dict[str, str]) -> Iterator[ServerProcess]:
    """A real server whose long-polls are short (the fuzzer asks for waits of up to 60 s).

    Push delivery is off: a fuzzed webhook URL with a public address must not make the
    test suite POST to the internet. Rate limits are out of reach: the fuzzer sends
    thousands of requests a second, and a 429 where it expects a 401 is a finding it
    reports (the limits have their own tests).
    """
    unlimited = "1000000/second"
    with server_factory(tmp_path, env=backend_env) as start:
        yield start(
            long_poll_max_seconds=0.2,
            log_level="warning",
            dispatch=False,
            rate_limit_anonymous=unlimited,
            rate_limit_admin=unlimited,
            rate_limit_read=unlimited,
        )


def test_schemathesis_finds_nothing(server: ServerProcess, request: pytest.FixtureRequest) -> None:
    slow = request.config.getoption("--run-slow")
    command = [
        str(BIN / "st"),
        "--config-file",
        str(CONFIG),
        "run",
        f"{server.base_url}/openapi.json",
        # An admin token: every operation is reachable; the `ignored_auth` check still
        # sends requests without it and expects 401.
        "--header",
        f"Authorization: Bearer {server.token}",
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
