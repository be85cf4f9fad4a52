"""The scripted webhook receiver (tests/e2e/webhook_receiver.py) as a uvicorn process.

`run_receiver(work_dir)` starts it on a free port with a fresh signing secret and yields a
`Receiver`: its URL and secret for a push queue's webhook, and what it was delivered.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from app.dispatch.signing import new_secret

from .harness import REPO_ROOT, clean_env, free_port, wait_until


@dataclass
class Receiver:
    """The scripted receiver process (tests/e2e/webhook_receiver.py)."""

    url: str
    secret: str
    log_path: Path
    process: subprocess.Popen[bytes]

    def deliveries(self) -> list[dict[str, Any]]:
        if not self.log_path.exists():
            return []
        return [json.loads(line) for line in self.log_path.read_text().splitlines() if line]

    def for_task(self, task_id: str) -> list[dict[str, Any]]:
        return [entry for entry in self.deliveries() if entry["webhook_id"] == task_id]


@contextlib.contextmanager
def run_receiver(work_dir: Path) -> Iterator[Receiver]:
    """The receiver, listening on 127.0.0.1 and logging to `work_dir`; killed at exit."""
    port = free_port()
    secret = new_secret()
    log_path = work_dir / "deliveries.jsonl"
    with (work_dir / "receiver.out").open("wb") as output:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "tests.e2e.webhook_receiver:app",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--log-level",
                "warning",
            ],
            cwd=REPO_ROOT,
            env=clean_env({"RECEIVER_SECRET": secret, "RECEIVER_LOG": str(log_path)}),
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
        url = f"http://127.0.0.1:{port}/hook"

        def up() -> bool:
            try:
                return httpx.post(url, content=b"{}", timeout=1).status_code == 401
            except httpx.TransportError:
                return False

        try:
            wait_until(up, "the webhook receiver to listen")
            log_path.unlink(missing_ok=True)
            yield Receiver(url, secret, log_path, process)
        finally:
            process.kill()
            process.wait()
