"""`taskgate tail` as an operator runs it: the installed console script following the event
stream of a real server, replaying from an event id, and filtering by queue."""

from __future__ import annotations

import json
import queue
import signal
import subprocess
import threading
import time
from typing import IO, Any

from .harness import ServerFactory, clean_env, console_script

CLI_TIMEOUT_S = 60


def run_tail(server: Any, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(console_script()), "tail", *args],
        env=clean_env({"TASKGATE_URL": server.base_url, "TASKGATE_TOKEN": server.token}),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=CLI_TIMEOUT_S,
        check=False,
    )


def test_tail_replays_from_an_id_and_filters_by_queue(start_server: ServerFactory) -> None:
    server = start_server(long_poll_max_seconds=0.5)
    with server.client() as http:
        task = http.post("/v1/queues/shown/tasks", json={"type": "t"}).json()
        http.post("/v1/queues/hidden/tasks", json={"type": "t"})
        http.post(f"/v1/tasks/{task['id']}/cancel")

    replay = run_tail(server, "--once", "--after", "0", "--queue", "shown", "-o", "json")
    plain = run_tail(server, "--once", "--after", "0")

    assert replay.returncode == 0, replay.stderr
    events = [json.loads(line) for line in replay.stdout.splitlines()]
    assert [(e["task_id"], e["queue"], e["state"]) for e in events] == [
        (task["id"], "shown", "queued"),
        (task["id"], "shown", "cancelled"),
    ]
    assert [e["id"] for e in events] == sorted(e["id"] for e in events)
    assert plain.returncode == 0, plain.stderr
    lines = plain.stdout.splitlines()
    assert len(lines) == 3 and "hidden" in lines[1]
    assert f"shown  {task['id']}  cancelled  attempt 0  #3" in lines[2]


def line_reader(stream: IO[str]) -> queue.Queue[str]:
    """The lines of a child's output as they come, on a queue (read on a thread)."""
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in stream], daemon=True).start()
    return lines


def test_tail_follows_changes_until_interrupted(start_server: ServerFactory) -> None:
    # Streams end every 0.5 s: following across several of them must lose nothing.
    server = start_server(long_poll_max_seconds=0.5)
    with server.client() as http:
        # Where the stream stands now (the opening's id), so nothing is missed however
        # long the command takes to connect.
        now = http.get("/v1/events", params={"wait_seconds": 0}).text.split("id: ")[1].split()[0]
    with subprocess.Popen(
        [str(console_script()), "tail", "-o", "json", "--after", now],
        env=clean_env({"TASKGATE_URL": server.base_url, "TASKGATE_TOKEN": server.token}),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as tail:
        assert tail.stdout is not None and tail.stderr is not None
        lines = line_reader(tail.stdout)
        try:
            with server.client() as http:
                created = []
                for _ in range(3):
                    created.append(
                        http.post("/v1/queues/live/tasks", json={"type": "t"}).json()["id"]
                    )
                    time.sleep(0.4)  # spread over several of the server's 0.5 s streams
            seen = [json.loads(lines.get(timeout=30)) for _ in range(3)]
        finally:
            tail.send_signal(signal.SIGINT)
            tail.wait(timeout=CLI_TIMEOUT_S)
        errors = tail.stderr.read()

    assert [(e["task_id"], e["state"]) for e in seen] == [(i, "queued") for i in created]
    assert tail.returncode == 130
    assert errors == "taskgate: interrupted\n"  # and no traceback
