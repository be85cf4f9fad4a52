"""The Runner the soak test starts as subprocesses: handlers that succeed, raise, ask for
a retry, outlive their lease, or hang. Each records overlapping runs of the same task."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

from runners import Retry, Runner

runner = Runner(
    queues=["soak"],
    concurrency=8,
    poll_seconds=1.0,
    task_timeout_seconds=3.0,
    shutdown_grace_seconds=5.0,
)
MARKS = Path(os.environ.get("SOAK_MARKS", "/tmp/taskgate-soak"))


class Running:
    """Creates `<task>.running` exclusively for the duration of a run; a clash is recorded."""

    def __init__(self, key: str) -> None:
        self.path = MARKS / f"{key}.running"

    def __enter__(self) -> None:
        try:
            os.close(os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
        except FileExistsError:
            (MARKS / f"{self.path.stem}.double").touch()

    def __exit__(self, *exc: object) -> None:
        self.path.unlink(missing_ok=True)


@runner.handler("ok")
def ok(payload: dict[str, Any]) -> Any:
    with Running(payload["key"]):
        return {"n": payload["n"]}


@runner.handler("raise")
def fails(payload: dict[str, Any]) -> Any:
    with Running(payload["key"]):
        raise ValueError(f"task {payload['n']} always fails")


@runner.handler("retry")
def retry_once(payload: dict[str, Any]) -> Any:
    with Running(payload["key"]):
        first = MARKS / f"{payload['key']}.first"
        if not first.exists():
            first.touch()
            raise Retry("not yet", after=0.2)
        return {"n": payload["n"], "second": True}


@runner.handler("slow")
async def slow(payload: dict[str, Any]) -> Any:
    with Running(payload["key"]):
        await asyncio.sleep(payload.get("seconds", 1.5))
        return {"n": payload["n"]}


@runner.handler("hang")
async def hang(payload: dict[str, Any]) -> Any:
    with Running(payload["key"]):
        await asyncio.sleep(60)
    return None
