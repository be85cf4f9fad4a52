"""Runners for the CLI tests: `python -m runners tests.runners.sample_app:runner --queue …`."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from runners import Runner

# Nothing is read from the environment here: the CLI supplies the URL and the queue.
runner = Runner(concurrency=2, poll_seconds=1.0, shutdown_grace_seconds=5.0)
# The same handlers without a shutdown grace of its own: only `--grace` can give it one.
graceless_runner = Runner(concurrency=2, poll_seconds=1.0, shutdown_grace_seconds=0.0)


def echo(payload: Any) -> Any:
    return {"echo": payload}


async def double(payload: int) -> int:
    return payload * 2


async def wait_for_file(payload: str) -> str:
    """Runs until the file named by the payload exists: the test decides when it ends."""
    path = Path(payload)
    while not path.exists():
        await asyncio.sleep(0.02)
    return "finished"


for each_runner in (runner, graceless_runner):
    each_runner.handler("echo")(echo)
    each_runner.handler("double")(double)
    each_runner.handler("wait.for.file")(wait_for_file)
