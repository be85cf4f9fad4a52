"""A cron schedule fired by two real server processes on one database: once per fire time."""

from __future__ import annotations

import re
import time

from app.core.clock import parse_rfc3339_ms

from .harness import ServerFactory

FIRED = re.compile(r"schedule 'ticks' fired (\d+) task\(s\)")
LOST = "schedule 'ticks': fired elsewhere"


def test_every_second_schedule_fires_once_per_second_across_two_processes(
    start_server: ServerFactory,
) -> None:
    # Both loops look for due schedules every 50 ms, so they race for every fire time.
    racing = {"schedule_interval_seconds": 0.05, "log_level": "debug"}
    first = start_server(name="first", **racing)
    second = start_server(first.database, name="second", **racing)
    with first.client() as one, second.client() as other:
        created = one.post(
            "/v1/schedules",
            json={
                "id": "ticks",
                "cron": "* * * * * *",
                "queue": "ticks",
                "task": {"type": "tick"},
                "missed": "run_all",
            },
        )
        assert created.status_code == 201, created.text
        time.sleep(3.6)
        # After the pause commits, no fire planned before it can win its compare-and-set.
        paused = other.patch("/v1/schedules/ticks", json={"paused": True})
        assert paused.status_code == 200, paused.text
        schedule = paused.json()
        tasks = one.get("/v1/tasks", params={"queue": "ticks", "limit": 1000}).json()["tasks"]

    fire_times = sorted(parse_rfc3339_ms(task["run_at"]) for task in tasks)
    keys = {task["idempotency_key"] for task in tasks}
    assert len(tasks) >= 3, tasks
    assert len(set(fire_times)) == len(fire_times), "a fire time was submitted twice"
    assert keys == {f"schedule:ticks:{ms}" for ms in fire_times}
    # One task for every second from the first fire time to the last: none skipped.
    assert fire_times == list(range(fire_times[0], fire_times[-1] + 1000, 1000))
    assert fire_times[0] > parse_rfc3339_ms(schedule["created_at"])
    assert parse_rfc3339_ms(schedule["last_run_at"]) == fire_times[-1]
    assert schedule["last_task_id"] in {task["id"] for task in tasks}

    # Each process logs what it created: together exactly the tasks there are.
    won = {
        server.name: [int(n) for n in FIRED.findall(server.output())] for server in (first, second)
    }
    lost = {server.name: server.output().count(LOST) for server in (first, second)}
    print(f"fire orders won: {won}; lost the compare-and-set: {lost}")
    assert sum(sum(counts) for counts in won.values()) == len(tasks)
