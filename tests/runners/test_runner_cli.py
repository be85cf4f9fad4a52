"""The runner command (`python -m runners` and `taskgate runner`): flags, variables, processes.

Runner processes run against the real server; their output goes to a file.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import socket
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest

from runners import Client, Runner, Task, TaskState
from runners.cli import UsageError, add_runner_arguments, apply_arguments
from tests.e2e.harness import REPO_ROOT, ServerProcess, clean_env, mint_test_token, wait_until

from .conftest import RunnerFactory
from .inprocess import DEADLINE_S
from .processes import RecordingProxy

ENTRIES = [["runners"], ["app.cli.main", "runner"]]
SAMPLE = "tests.runners.sample_app:runner"
GRACELESS_SAMPLE = "tests.runners.sample_app:graceless_runner"
STOPPING = "stopping:"  # the runner's log line once SIGTERM stopped its claims


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m runners")
    add_runner_arguments(parser)
    return parser.parse_args(["tests.runners.sample_app:runner", *argv])


def run_command(entry: list[str], *argv: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    done = subprocess.run(
        [sys.executable, "-m", *entry, *argv],
        cwd=REPO_ROOT,
        env=clean_env(env),
        capture_output=True,
        text=True,
        timeout=DEADLINE_S,
        check=False,
    )
    return done.returncode, done.stderr


def running_task(client: Client, task_id: str) -> Task:
    """The task once a runner has claimed it (polled; fails after a generous deadline)."""
    seen: list[Task] = []

    def running() -> bool:
        seen.append(client.get(task_id))
        assert not seen[-1].finished, seen[-1]
        return seen[-1].state is TaskState.RUNNING

    wait_until(running, f"task {task_id} to be claimed", timeout_s=DEADLINE_S)
    return seen[-1]


# -- flags and variables, in process ----------------------------------------------------


def test_flags_win_over_variables_which_win_over_the_runner_s_own() -> None:
    environ = {
        "TASKGATE_TOKEN": "env-token",
        "TASKGATE_LEASE_SECONDS": "90",
        "TASKGATE_GRACE_SECONDS": "2.5",
    }
    runner = Runner(queues=["q"], token="own", lease_seconds=30, shutdown_grace_seconds=7)
    apply_arguments(runner, parse(), environ)
    assert (runner.token, runner.lease_seconds, runner.shutdown_grace_seconds) == (
        "env-token",
        90,
        2.5,
    )
    flags = parse("--token", "flag-token", "--lease-seconds", "600", "--grace", "0")
    apply_arguments(runner, flags, environ)
    assert (runner.token, runner.lease_seconds, runner.shutdown_grace_seconds) == (
        "flag-token",
        600,
        0.0,
    )
    untouched = Runner(queues=["q"], token="own", lease_seconds=30, shutdown_grace_seconds=7)
    apply_arguments(untouched, parse(), {"TASKGATE_TOKEN": ""})  # empty counts as unset
    assert (untouched.token, untouched.lease_seconds, untouched.shutdown_grace_seconds) == (
        "own",
        30,
        7,
    )


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--lease-seconds", "0"], "argument --lease-seconds: must be whole seconds from 1 to"),
        (["--lease-seconds", "43201"], "argument --lease-seconds: must be whole seconds"),
        (["--lease-seconds", "1.5"], "argument --lease-seconds: must be whole seconds"),
        (["--grace", "-1"], "argument --grace: must be seconds, 0 or more, got '-1'"),
        (["--grace", "nan"], "argument --grace: must be seconds, 0 or more"),
        (["--grace", "soon"], "argument --grace: must be seconds, 0 or more"),
        (["--token", ""], "argument --token: must not be empty"),
        (["--token", "s3cret value"], "argument --token: must be printable ASCII"),
    ],
)
def test_bad_flag_values_are_usage_errors(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as caught:
        parse(*argv)
    assert caught.value.code == 2
    error = capsys.readouterr().err
    assert "usage:" in error and message in error
    assert "s3cret" not in error


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("TASKGATE_LEASE_SECONDS", "0", "TASKGATE_LEASE_SECONDS must be whole seconds"),
        ("TASKGATE_GRACE_SECONDS", "-5", "TASKGATE_GRACE_SECONDS must be seconds, 0 or more"),
        ("TASKGATE_TOKEN", "s3cret\nInjected: header", "TASKGATE_TOKEN must be printable ASCII"),
    ],
)
def test_bad_variable_values_are_refused_naming_the_variable(
    variable: str, value: str, message: str
) -> None:
    with pytest.raises(UsageError, match=message) as caught:
        apply_arguments(Runner(queues=["q"]), parse(), {variable: value})
    assert "s3cret" not in str(caught.value)


# -- the command, as a process -------------------------------------------------------------


@pytest.mark.parametrize("entry", ENTRIES)
def test_a_target_that_is_not_a_runner_is_refused(entry: list[str]) -> None:
    code, stderr = run_command(entry, "tests.runners.sample_app:echo", "--queue", "q")
    assert code == 2
    assert "not a runners.Runner" in stderr


@pytest.mark.parametrize("entry", ENTRIES)
def test_bad_values_exit_2_from_both_entry_points(entry: list[str]) -> None:
    code, stderr = run_command(entry, SAMPLE, "--queue", "q", "--grace", "-1")
    assert code == 2 and "argument --grace: must be seconds, 0 or more" in stderr
    code, stderr = run_command(
        entry, SAMPLE, "--queue", "q", env={"TASKGATE_LEASE_SECONDS": "forever"}
    )
    assert code == 2 and "TASKGATE_LEASE_SECONDS must be whole seconds" in stderr
    assert "Traceback" not in stderr


def test_python_m_runners_processes_tasks_and_exits_cleanly_on_sigterm(
    server: ServerProcess, queue: str, client: Client, start_runner: RunnerFactory
) -> None:
    runner = start_runner(SAMPLE, "--queue", queue, "--url", server.base_url, "--concurrency", "3")
    echo = client.submit(queue, "echo", {"hello": "world"})
    double = client.submit(queue, "double", 4)
    assert client.wait(echo.id, timeout=DEADLINE_S).result == {"echo": {"hello": "world"}}
    doubled = client.wait(double.id, timeout=DEADLINE_S)
    assert (doubled.state, doubled.result) == (TaskState.SUCCEEDED, 8)
    runner.terminate()
    assert runner.wait_exit() == 0, runner.output()
    assert "stopped" in runner.output()


@pytest.mark.parametrize("source", ["flag", "variable"])
def test_the_token_goes_with_every_request_and_is_never_logged(
    source: str,
    server: ServerProcess,
    queue: str,
    client: Client,
    proxy: RecordingProxy,
    start_runner: RunnerFactory,
) -> None:
    secret = server.database.parent / "taskgate.secret"
    token = mint_test_token(secret, ("tasks:work",), subject=f"runner-{source}")
    argv = [SAMPLE, "--queue", queue, "--url", proxy.base_url, "--log-level", "DEBUG"]
    env = {"TASKGATE_TOKEN": token} if source == "variable" else {"TASKGATE_TOKEN": "not-used"}
    if source == "flag":
        argv += ["--token", token]
    runner = start_runner(*argv, env=env)
    task = client.submit(queue, "echo", "through the proxy")
    assert client.wait(task.id, timeout=DEADLINE_S).state is TaskState.SUCCEEDED
    runner.terminate()
    assert runner.wait_exit() == 0, runner.output()

    assert proxy.sent("claim") and proxy.sent("complete")
    assert {r.authorization for r in proxy.requests} == {f"Bearer {token}"}
    assert token not in runner.output()
    # The claims validated against the spec (else no task would run), worker_info included.
    info = json.loads(proxy.sent("claim")[0].body)["worker_info"]
    assert info == {
        "host": socket.gethostname(),
        "pid": runner.pid,
        "version": importlib.metadata.version("taskgate"),
        "sdk": "taskgate-python",
    }


@pytest.mark.parametrize("source", ["flag", "variable"])
def test_lease_seconds_is_the_lease_each_claim_asks_for(
    source: str,
    server: ServerProcess,
    queue: str,
    client: Client,
    start_runner: RunnerFactory,
    tmp_path: Path,
) -> None:
    argv = [SAMPLE, "--queue", queue, "--url", server.base_url]
    env = {"TASKGATE_LEASE_SECONDS": "600"} if source == "variable" else None
    if source == "flag":
        argv += ["--lease-seconds", "600"]
    runner = start_runner(*argv, env=env)
    release = tmp_path / "release"
    task = client.submit(queue, "wait.for.file", str(release))
    claimed = running_task(client, task.id)
    assert claimed.started_at is not None and claimed.lease_expires_at is not None
    # Both timestamps come from the server's claim (the queue's default lease is 60 s).
    assert claimed.lease_expires_at - claimed.started_at == timedelta(seconds=600)
    release.touch()
    assert client.wait(task.id, timeout=DEADLINE_S).state is TaskState.SUCCEEDED
    runner.terminate()
    assert runner.wait_exit() == 0, runner.output()


def test_grace_0_hands_in_flight_tasks_back_at_sigterm(
    server: ServerProcess,
    queue: str,
    client: Client,
    start_runner: RunnerFactory,
    tmp_path: Path,
) -> None:
    # The sample runner's own grace is 5 s; the flag takes it to none. One slot, so no
    # claim is long-polling at SIGTERM: the server does not notice a client that left a
    # long-poll, and would lease the handed-back task to the departed runner.
    argv = [SAMPLE, "--queue", queue, "--url", server.base_url, "--concurrency", "1"]
    runner = start_runner(*argv, "--grace", "0")
    release = tmp_path / "release"
    task = client.submit(queue, "wait.for.file", str(release), max_attempts=3)
    running_task(client, task.id)
    runner.terminate()
    runner.wait_for_output(STOPPING)
    release.touch()  # too late: the handler was stopped as the runner logged `stopping`
    assert runner.wait_exit() == 0, runner.output()
    handed_back = client.get(task.id)
    assert (handed_back.state, handed_back.attempts) == (TaskState.QUEUED, 1)
    assert handed_back.last_error is not None and handed_back.last_error.type == "Shutdown"


@pytest.mark.parametrize("source", ["flag", "variable"])
def test_grace_lets_in_flight_tasks_finish_after_sigterm(
    source: str,
    server: ServerProcess,
    queue: str,
    client: Client,
    start_runner: RunnerFactory,
    tmp_path: Path,
) -> None:
    # This runner's own grace is 0: without the setting, the task would be handed back.
    argv = [GRACELESS_SAMPLE, "--queue", queue, "--url", server.base_url]
    env = {"TASKGATE_GRACE_SECONDS": "30"} if source == "variable" else None
    if source == "flag":
        argv += ["--grace", "30"]
    runner = start_runner(*argv, env=env)
    release = tmp_path / "release"
    task = client.submit(queue, "wait.for.file", str(release), max_attempts=3)
    running_task(client, task.id)
    runner.terminate()
    runner.wait_for_output(STOPPING)
    release.touch()  # after the runner stopped claiming: only the grace lets the task end
    assert runner.wait_exit() == 0, runner.output()
    finished = client.get(task.id)
    assert (finished.state, finished.result, finished.attempts) == (
        TaskState.SUCCEEDED,
        "finished",
        1,
    )
    assert "1 task(s) in flight get up to 30 s to finish" in runner.output()
