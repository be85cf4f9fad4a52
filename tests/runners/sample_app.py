"""A Runner for the CLI test: `python -m runners tests.runners.sample_app:runner --queue …`."""

from __future__ import annotations

from typing import Any

from runners import Runner

# Nothing is read from the environment here: the CLI supplies the URL and the queue.
runner = Runner(concurrency=2, poll_seconds=1.0, shutdown_grace_seconds=5.0)


@runner.handler("echo")
def echo(payload: Any) -> Any:
    return {"echo": payload}


@runner.handler("double")
async def double(payload: int) -> int:
    return payload * 2
