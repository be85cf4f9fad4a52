"""The admin commands (`taskgate submit | get | wait | list | cancel | queues | dead | workers |
stats | backup`) as an operator runs them: the installed console script against a real server.
"""

from __future__ import annotations

import json
import os
import pty
import sqlite3
import subprocess
import threading
import uuid
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from .harness import (
    ServerFactory,
    ServerProcess,
    clean_env,
    console_script,
    free_port,
    server_factory,
)

CLI_TIMEOUT_S = 60


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """One server for the module; each test works in queues of its own."""
    with server_factory(tmp_path_factory.mktemp("admin-cli")) as start:
        yield start(long_poll_max_seconds=2.0, sweep_interval_seconds=0.1)


@pytest.fixture
def queue() -> str:
    return f"cli-{uuid.uuid4().hex[:10]}"


def taskgate(
    server: ServerProcess | None,
    *args: str,
    stdin: str | None = None,
    env: Mapping[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run the installed `taskgate` with TASKGATE_URL/TOKEN of `server` (if any) in its env."""
    variables = {} if server is None else {"TASKGATE_URL": server.base_url}
    if server is not None:
        variables["TASKGATE_TOKEN"] = server.token
    variables.update(env or {})
    return subprocess.run(
        [str(console_script()), *args],
        env=clean_env(variables),
        input=stdin,
        stdin=None if stdin is not None else subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=CLI_TIMEOUT_S,
        check=False,
    )


def ok_json(completed: subprocess.CompletedProcess[str]) -> Any:
    assert completed.returncode == 0, completed.stderr
    return json.loads(completed.stdout)


def make_dead(http: httpx.Client, queue: str, count: int) -> list[str]:
    """`count` tasks in `queue` made dead the way a worker does it: claim, fail without retry."""
    ids = []
    for n in range(count):
        created = http.post(f"/v1/queues/{queue}/tasks", json={"type": "job", "payload": n})
        assert created.status_code == 201, created.text
        (task,) = http.post(f"/v1/queues/{queue}/claim", json={"worker_id": "w"}).json()["tasks"]
        failed = http.post(
            f"/v1/tasks/{task['id']}/fail",
            json={
                "lease_token": task["lease"]["token"],
                "retry": False,
                "error": {"message": f"boom {n}"},
            },
        )
        assert failed.json()["state"] == "dead", failed.text
        ids.append(task["id"])
    return ids


def test_submit_one_task_with_its_options(
    server: ServerProcess, queue: str, tmp_path: Path
) -> None:
    payload_file = tmp_path / "payload.json"
    payload_file.write_text(json.dumps({"to": "ada@example.com", "n": [1, 2]}))
    welcome = (
        *("submit", queue, "email.send", "--payload", f"@{payload_file}"),
        *("--priority", "high", "--tag", "welcome", "--tag", "eu", "--max-attempts", "3"),
        *("--delay-seconds", "3600", "--idempotency-key", "welcome-ada"),
    )
    submitted = taskgate(server, *welcome, "-o", "json")
    task = ok_json(submitted)
    assert task["queue"] == queue and task["type"] == "email.send"
    assert task["payload"] == {"to": "ada@example.com", "n": [1, 2]}
    assert (task["priority"], task["max_attempts"]) == ("high", 3)
    assert task["tags"] == ["welcome", "eu"]
    assert task["state"] == "queued" and task["run_at"] > task["created_at"]
    with server.client() as http:
        stored = http.get(f"/v1/tasks/{task['id']}").json()
    assert stored["payload"] == task["payload"] and stored["idempotency_key"] == "welcome-ada"

    replay = taskgate(server, *welcome, "--quiet")
    assert replay.returncode == 0, replay.stderr
    assert replay.stdout == f"{task['id']}\n", "a replay answers with the first task's id"

    inline = taskgate(
        server,
        "submit",
        queue,
        "t",
        "--payload",
        "[1, null]",
        "--run-at",
        "2030-01-01T09:00:00+01:00",
        "-o",
        "yaml",
    )
    assert inline.returncode == 0, inline.stderr
    scheduled = yaml.safe_load(inline.stdout)
    assert scheduled["payload"] == [1, None]
    assert scheduled["run_at"] == "2030-01-01T08:00:00.000Z"

    table = taskgate(server, "submit", queue, "t")
    assert table.returncode == 0, table.stderr
    assert "state" in table.stdout and "queued" in table.stdout and queue in table.stdout

    for bad in (
        ["--payload", "{not json"],
        ["--payload", "@/no/such/file.json"],
        ["--run-at", "2030-01-01T09:00:00"],
        ["--priority", "urgent"],
    ):
        refused = taskgate(server, "submit", queue, "t", *bad)
        assert refused.returncode == 2, bad
        assert "Traceback" not in refused.stderr


def test_bulk_jsonl_goes_in_batches_and_names_the_rejected_lines(
    server: ServerProcess, queue: str, tmp_path: Path
) -> None:
    lines = [json.dumps({"type": "import.row", "payload": {"n": n}}) for n in range(1200)]
    lines[41] = json.dumps({"payload": {"n": 41}})  # no type: the server rejects it
    lines[1100] = "this is not json"
    lines.insert(500, "")  # blank lines are skipped
    jsonl = tmp_path / "tasks.jsonl"
    jsonl.write_text("\n".join(lines) + "\n")

    from_file = taskgate(server, "submit", queue, "--jsonl", str(jsonl), "-o", "json")
    assert from_file.returncode == 1, "any rejected line makes the exit code 1"
    summary = json.loads(from_file.stdout)
    assert (summary["created"], summary["existing"], summary["rejected"]) == (1198, 0, 2)
    first, second = summary["rejections"]
    assert (first["line"], first["status"]) == (42, 422)
    assert first["reason"] == "type: is required"
    assert second["line"] == 1102 and second["status"] is None
    assert second["reason"].startswith("not JSON")
    with server.client() as http:
        counts = http.get(f"/v1/queues/{queue}").json()["counts"]
    assert counts["queued"] == 1198

    # Two pages of the task list: the CLI follows the cursor.
    listed = ok_json(taskgate(server, "list", "--queue", queue, "--all", "-o", "json"))
    assert len(listed) == 1198 and len({task["id"] for task in listed}) == 1198
    limited = taskgate(server, "list", "--queue", queue, "--limit", "1100", "-o", "json")
    assert len(ok_json(limited)) == 1100 and "more may match" in limited.stderr

    table = taskgate(server, "submit", queue, "--jsonl", "-", stdin="\n".join(lines[:50]))
    assert table.returncode == 1
    assert "created   49" in table.stdout
    rows = [line.split(maxsplit=2) for line in table.stdout.splitlines()]
    assert ["42", "422", "type: is required"] in rows

    keyed = "\n".join(json.dumps({"type": "t", "idempotency_key": f"row-{n}"}) for n in range(3))
    piped = taskgate(server, "submit", queue, stdin=keyed)  # no TYPE, and stdin is not a TTY
    assert piped.returncode == 0, piped.stderr
    again = taskgate(server, "submit", queue, "-o", "yaml", stdin=keyed)
    assert yaml.safe_load(again.stdout) == {
        "created": 0,
        "existing": 3,
        "rejected": 0,
        "rejections": [],
    }

    both = taskgate(server, "submit", queue, "t", "--jsonl", str(jsonl))
    assert both.returncode == 2 and "not both" in both.stderr
    mixed = taskgate(server, "submit", queue, "--jsonl", str(jsonl), "--priority", "high")
    assert mixed.returncode == 2 and "--priority" in mixed.stderr


def test_bulk_splits_a_batch_the_server_finds_too_large(start_server: ServerFactory) -> None:
    small_limit = start_server(max_body_bytes=64 * 1024)
    lines = [json.dumps({"type": "t", "payload": "x" * 2000}) for _ in range(60)]
    lines.insert(30, json.dumps({"type": "t", "payload": "y" * 100_000}))  # too large alone
    submitted = taskgate(small_limit, "submit", "big", "-o", "json", stdin="\n".join(lines))
    assert submitted.returncode == 1
    summary = json.loads(submitted.stdout)
    assert (summary["created"], summary["rejected"]) == (60, 1)
    assert [(r["line"], r["status"]) for r in summary["rejections"]] == [(31, 413)]
    with small_limit.client() as http:
        assert http.get("/v1/queues/big").json()["counts"]["queued"] == 60


def test_get_and_wait_report_the_finished_task(server: ServerProcess, queue: str) -> None:
    task_id = taskgate(server, "submit", queue, "job", "--payload", '{"n": 1}', "-q").stdout
    task_id = task_id.strip()
    timed_out = taskgate(server, "wait", task_id, "--timeout", "0.3")
    assert timed_out.returncode == 1
    assert timed_out.stderr == f"taskgate: gave up after 0.3 s: task {task_id} is still queued\n"

    with server.client() as http:
        (leased,) = http.post(f"/v1/queues/{queue}/claim", json={"worker_id": "w"}).json()["tasks"]
        done = http.post(
            f"/v1/tasks/{task_id}/complete",
            json={"lease_token": leased["lease"]["token"], "result": {"sent": True}},
        )
        assert done.status_code == 200, done.text

    finished = ok_json(taskgate(server, "wait", task_id, "--timeout", "10", "-o", "json"))
    assert finished["state"] == "succeeded" and finished["result"] == {"sent": True}
    status = taskgate(server, "status", task_id, "-o", "yaml")
    assert status.returncode == 0, status.stderr
    assert yaml.safe_load(status.stdout)["worker_id"] == "w"
    shown = taskgate(server, "get", task_id)
    assert shown.returncode == 0
    assert '{"sent":true}' in shown.stdout and "succeeded" in shown.stdout

    with server.client() as http:
        (dead_id,) = make_dead(http, queue, 1)
    dead = taskgate(server, "wait", dead_id, "-o", "json")
    assert dead.returncode == 1, "a task that finished other than succeeded exits 1"
    assert json.loads(dead.stdout)["state"] == "dead"


def test_list_filters_pages_and_prints_three_formats(server: ServerProcess, queue: str) -> None:
    with server.client() as http:
        batch = [{"type": "kind.a" if n % 2 else "kind.b", "tags": [f"n{n}"]} for n in range(7)]
        created = http.post(f"/v1/queues/{queue}/tasks/batch", json={"tasks": batch}).json()
    ids = [item["task"]["id"] for item in created["results"]]
    newest_first = list(reversed(ids))

    every = ok_json(taskgate(server, "list", "--queue", queue, "-o", "json"))
    assert [task["id"] for task in every] == newest_first
    kind_a = ok_json(taskgate(server, "list", "--queue", queue, "--type", "kind.a", "-o", "json"))
    assert [task["id"] for task in kind_a] == newest_first[1::2]
    tagged = taskgate(server, "list", "--queue", queue, "--tag", "n3", "-o", "yaml")
    assert [task["id"] for task in yaml.safe_load(tagged.stdout)] == [ids[3]]
    assert (
        ok_json(taskgate(server, "list", "--queue", queue, "--state", "dead", "-o", "json")) == []
    )

    first_two = taskgate(server, "list", "--queue", queue, "--limit", "2", "-o", "json")
    assert [task["id"] for task in ok_json(first_two)] == newest_first[:2]
    assert "more may match" in first_two.stderr
    assert len(ok_json(taskgate(server, "list", "--queue", queue, "--all", "-o", "json"))) == 7

    table = taskgate(server, "list", "--queue", queue, "--type", "kind.b")
    assert table.returncode == 0, table.stderr
    header, *rows = table.stdout.splitlines()
    assert header.split()[:4] == ["ID", "QUEUE", "TYPE", "STATE"]
    assert [row.split()[0] for row in rows] == newest_first[0::2]
    assert all(row.split()[1:4] == [queue, "kind.b", "queued"] for row in rows)


def test_cancel_then_cancel_again_is_a_conflict(server: ServerProcess, queue: str) -> None:
    task_id = taskgate(server, "submit", queue, "job", "-q").stdout.strip()
    cancelled = ok_json(taskgate(server, "cancel", task_id, "-o", "json"))
    assert cancelled["id"] == task_id and cancelled["state"] == "cancelled"
    again = taskgate(server, "cancel", task_id)
    assert again.returncode == 1
    assert again.stderr.startswith("taskgate: Conflict: ")
    assert "Traceback" not in again.stderr


def test_queues_pause_resume_configure_show(server: ServerProcess, queue: str) -> None:
    paused = ok_json(
        taskgate(server, "queues", "pause", queue, "--reason", "upgrade", "-o", "json")
    )
    assert (paused["name"], paused["paused"], paused["pause_reason"]) == (queue, True, "upgrade")
    listed = ok_json(taskgate(server, "queues", "-o", "json"))
    assert [q["paused"] for q in listed if q["name"] == queue] == [True]
    resumed = ok_json(taskgate(server, "queues", "resume", queue, "-o", "json"))
    assert resumed["paused"] is False and resumed["pause_reason"] is None

    configured = ok_json(
        taskgate(
            server,
            "queues",
            "configure",
            queue,
            "--max-attempts",
            "7",
            "--lease-seconds",
            "90",
            "--retry-initial-seconds",
            "2",
            "--retry-factor",
            "3",
            "--no-retry-jitter",
            "--retention-seconds",
            "3600",
            "-o",
            "json",
        )
    )
    config = configured["config"]
    assert (config["max_attempts"], config["lease_seconds"]) == (7, 90)
    assert config["retention_seconds"] == 3600
    assert config["retry"]["initial_delay_seconds"] == 2 and config["retry"]["factor"] == 3
    assert config["retry"]["jitter"] is False
    shown = yaml.safe_load(taskgate(server, "queues", "show", queue, "-o", "yaml").stdout)
    assert shown["config"] == config

    reset = ok_json(
        taskgate(server, "queues", "configure", queue, "--reset", "max_attempts", "-o", "json")
    )
    assert reset["config"]["max_attempts"] == 5 and reset["config"]["lease_seconds"] == 90
    table = taskgate(server, "queues", "show", queue)
    assert "lease seconds      90" in table.stdout

    nothing = taskgate(server, "queues", "configure", queue)
    assert nothing.returncode == 2 and "nothing to change" in nothing.stderr
    refused = taskgate(
        server, "queues", "configure", queue, "--webhook-url", "http://169.254.169.254/latest"
    )
    assert refused.returncode == 1
    assert refused.stderr.startswith("taskgate: Invalid request: ")
    assert "  body.webhook.url: " in refused.stderr, "422 field errors are listed"
    missing = taskgate(server, "queues", "show", f"{queue}-none")
    assert missing.returncode == 1 and "taskgate: Not found" in missing.stderr


def test_dead_letters_list_redrive_purge(server: ServerProcess, queue: str) -> None:
    with server.client() as http:
        dead_ids = make_dead(http, queue, 3)
    listed = ok_json(taskgate(server, "dead", "list", queue, "-o", "json"))
    assert sorted(task["id"] for task in listed) == sorted(dead_ids)
    assert {task["last_error"]["message"] for task in listed} == {"boom 0", "boom 1", "boom 2"}
    table = taskgate(server, "dead", "list", queue)
    assert "boom 2" in table.stdout and dead_ids[2] in table.stdout

    redriven = ok_json(
        taskgate(server, "dead", "redrive", queue, "--id", dead_ids[0], "-o", "json")
    )
    assert redriven == {"redriven": 1}
    with server.client() as http:
        back = http.get(f"/v1/tasks/{dead_ids[0]}").json()
    assert (back["state"], back["attempts"]) == ("queued", 0)
    assert taskgate(server, "dead", "redrive", queue).returncode == 2, "--all or --id is required"

    unconfirmed = taskgate(server, "dead", "purge", queue)
    assert unconfirmed.returncode == 2 and "--yes" in unconfirmed.stderr
    declined = purge_on_terminal(server, queue, answer="n")
    assert declined.returncode == 1
    assert declined.stderr.startswith(f"Delete the 2 dead task(s) of queue '{queue}' for good?")
    assert "nothing deleted" in declined.stderr
    assert len(ok_json(taskgate(server, "dead", "list", queue, "-o", "json"))) == 2
    accepted = purge_on_terminal(server, queue, answer="y")
    assert accepted.returncode == 0, accepted.stderr
    assert accepted.stdout.split() == ["purged", "2"]
    assert ok_json(taskgate(server, "dead", "list", queue, "-o", "json")) == []
    with server.client() as http:
        assert http.get(f"/v1/tasks/{dead_ids[1]}").status_code == 404
        make_dead(http, queue, 2)
    assert ok_json(taskgate(server, "dead", "redrive", queue, "--all", "-o", "json")) == {
        "redriven": 2
    }
    with server.client() as http:
        make_dead(http, queue, 1)
    purged = ok_json(taskgate(server, "dead", "purge", queue, "--yes", "-o", "json"))
    assert purged == {"purged": 1}


def purge_on_terminal(
    server: ServerProcess, queue: str, answer: str
) -> subprocess.CompletedProcess[str]:
    """`taskgate dead purge QUEUE` with a terminal as stdin, answering its question."""
    controller, terminal = pty.openpty()
    variables = {"TASKGATE_URL": server.base_url, "TASKGATE_TOKEN": server.token}
    try:
        process = subprocess.Popen(
            [str(console_script()), "dead", "purge", queue],
            env=clean_env(variables),
            stdin=terminal,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        os.write(controller, answer.encode() + b"\n")
        stdout, stderr = process.communicate(timeout=CLI_TIMEOUT_S)
    finally:
        os.close(terminal)
        os.close(controller)
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)


def test_workers_and_stats(server: ServerProcess, queue: str) -> None:
    worker_id = f"worker-{queue}"
    with server.client() as http:
        for n in range(3):
            http.post(f"/v1/queues/{queue}/tasks", json={"type": "t", "payload": n})
        claim = {"worker_id": worker_id, "worker_info": {"host": "box-1", "pid": 4242}}
        (leased,) = http.post(f"/v1/queues/{queue}/claim", json=claim).json()["tasks"]

    workers = ok_json(taskgate(server, "workers", "-o", "json"))
    (mine,) = [worker for worker in workers if worker["id"] == worker_id]
    assert mine["alive"] is True and mine["queues"] == [queue] and mine["in_flight"] == 1
    assert mine["info"]["host"] == "box-1" and mine["leases"][0]["task_id"] == leased["id"]
    table = taskgate(server, "workers", "--alive")
    (row,) = [line.split() for line in table.stdout.splitlines() if line.startswith(worker_id)]
    assert row[1] == "yes" and row[-2:] == ["box-1", "4242"]

    stats = ok_json(taskgate(server, "stats", queue, "-o", "json"))
    assert stats["queues"][queue]["queued"] == 2 and stats["queues"][queue]["running"] == 1
    assert stats["total"]["running"] == 1
    everything = ok_json(taskgate(server, "stats", "-o", "json"))
    assert everything["queues"][queue] == stats["queues"][queue]
    assert everything["total"]["queued"] == sum(c["queued"] for c in everything["queues"].values())
    stats_table = taskgate(server, "stats", queue).stdout.splitlines()
    assert stats_table[0].split()[:4] == ["QUEUE", "QUEUED", "DUE", "SCHEDULED"]
    assert stats_table[1].split()[:5] == [queue, "2", "2", "0", "1"]
    assert stats_table[-1].split()[0] == "TOTAL"


def test_backup_while_the_server_is_writing(
    server: ServerProcess, queue: str, tmp_path: Path
) -> None:
    lines = "\n".join(json.dumps({"type": "t", "payload": "x" * 200}) for _ in range(3000))
    assert taskgate(server, "submit", queue, "--jsonl", "-", stdin=lines).returncode == 0
    stop = threading.Event()
    submitted_during = 0

    def keep_submitting() -> None:
        nonlocal submitted_during
        with server.client() as http:
            while not stop.is_set():
                body = {"tasks": [{"type": "t"} for _ in range(50)]}
                http.post(f"/v1/queues/{queue}/tasks/batch", json=body).raise_for_status()
                submitted_during += 50

    writer = threading.Thread(target=keep_submitting)
    writer.start()
    copy = tmp_path / "backups" / "taskgate-copy.db"
    try:
        backup = taskgate(None, "backup", str(copy), "--database", str(server.database))
    finally:
        stop.set()
        writer.join()
    assert backup.returncode == 0, backup.stderr
    assert "integrity ok" in backup.stdout
    with sqlite3.connect(copy) as connection:
        assert connection.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        in_copy = connection.execute("SELECT count(*) FROM tasks WHERE queue = ?", (queue,))
        copied_of_queue = in_copy.fetchone()[0]
        copied_all = connection.execute("SELECT count(*) FROM tasks").fetchone()[0]
    connection.close()
    assert 3000 <= copied_of_queue <= 3000 + submitted_during
    assert f"{copied_all:,} tasks" in backup.stdout
    assert [path.name for path in copy.parent.iterdir()] == [copy.name], "no temporary files"

    refused = taskgate(None, "backup", str(copy), env={"TASKGATE_DATABASE": str(server.database)})
    assert refused.returncode == 1 and "--force" in refused.stderr
    replaced = taskgate(None, "backup", str(copy), "--force", "--database", str(server.database))
    assert replaced.returncode == 0, replaced.stderr


def test_errors_are_one_message_and_an_exit_code(server: ServerProcess, queue: str) -> None:
    bad_token = taskgate(server, "list", env={"TASKGATE_TOKEN": "not.a.token"})
    assert bad_token.returncode == 1
    assert bad_token.stderr.startswith("taskgate: Authentication required: ")
    no_token = taskgate(None, "list", "--url", server.base_url)
    assert no_token.returncode == 1 and "TASKGATE_TOKEN" in no_token.stderr
    flags = taskgate(None, "list", "--url", server.base_url, "--token", server.token, "-o", "json")
    assert flags.returncode == 0, "--url and --token work without the variables"

    unknown = taskgate(server, "get", "01M91D51XP3XKJPQMHFGGH2BDP")
    assert unknown.returncode == 1
    assert unknown.stderr.startswith("taskgate: Not found: ")
    assert unknown.stdout == ""

    for usage in (["get"], ["list", "--state", "bogus"], ["frobnicate"], ["dead"]):
        wrong = taskgate(server, *usage)
        assert wrong.returncode == 2, usage
        assert "usage:" in wrong.stderr

    down_url = f"http://127.0.0.1:{free_port()}"
    down = taskgate(server, "queues", env={"TASKGATE_URL": down_url})
    assert down.returncode == 1
    assert down.stderr.count("\n") == 1 and down_url in down.stderr
    for completed in (bad_token, unknown, down):
        assert "Traceback" not in completed.stderr
