"""`taskgate bench`: every scenario runs end to end at tiny sizes against --spawn.

These are smoke tests: they check that a run completes and that its figures are sane
(counts match, rates are positive, percentiles are ordered), never how fast anything is.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import psycopg
import pytest

from app.bench.wire import WireError, parse_response
from tests.postgres_server import PostgresServer

from .harness import REPO_ROOT, ServerFactory, clean_env, taskgate_command

BENCH_TIMEOUT_S = 120
LOG_TAIL_CHARS = 4000


def run_bench(tmp_path: Path, name: str, *args: str) -> subprocess.CompletedProcess[str]:
    """`taskgate bench ARGS` with its output kept in `tmp_path/name.log`."""
    log_path = tmp_path / f"{name}.log"
    with log_path.open("w") as log:
        completed = subprocess.run(
            [*taskgate_command(), "bench", *args, "--no-progress"],
            cwd=REPO_ROOT,
            env=clean_env(),
            stdout=log,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=BENCH_TIMEOUT_S,
            check=False,
        )
    completed.stdout = log_path.read_text()
    return completed


def bench_json(tmp_path: Path, name: str, *args: str) -> dict[str, Any]:
    """Run a scenario with --json and return the document, failing with the output if it fails."""
    path = tmp_path / f"{name}.json"
    completed = run_bench(tmp_path, name, *args, "--json", str(path))
    assert completed.returncode == 0, completed.stdout[-LOG_TAIL_CHARS:]
    document: dict[str, Any] = json.loads(path.read_text())
    return document


def assert_ordered(run: dict[str, Any], prefix: str) -> None:
    values = [run[f"{prefix}_{name}_ms"] for name in ("p50", "p90", "p99", "max")]
    assert all(isinstance(value, int | float) for value in values), values
    assert 0 <= values[0] <= values[1] <= values[2] <= values[3], (prefix, values)


def assert_common(document: dict[str, Any], scenario: str) -> None:
    assert document["format"] == "taskgate-bench/1"
    assert document["scenario"] == scenario
    machine = document["machine"]
    assert machine["cpu_cores"] >= 1
    assert machine["python"] and machine["sqlite_server"] and machine["sqlite_stdlib"]
    assert "token" not in document["parameters"]
    assert document["target"]["kind"] == "spawned"


def test_submit_sweep_counts_every_task_and_plots(tmp_path: Path) -> None:
    document = bench_json(
        tmp_path, "submit", "submit", "--spawn", "--concurrency", "1,4", "--tasks", "200",
        "--repeat", "2",
    )  # fmt: skip
    assert_common(document, "submit")
    assert [run["concurrency"] for run in document["runs"]] == [1, 4]
    assert len(document["repeats"]) == 2
    for run in document["runs"]:
        assert run["tasks"] == run["requests"] == run["tasks_counted_by_server"] == 200
        assert run["failed_requests"] == 0
        assert run["tasks_per_second"] > 0
        assert run["generator_cpu_percent"] > 0
        assert run["server_rss_mib"] > 0
        assert_ordered(run, "latency")

    png = tmp_path / "plot" / "submit.png"
    completed = subprocess.run(
        [*taskgate_command(), "bench", "plot", str(tmp_path / "submit.json"), "-o", str(png)],
        cwd=REPO_ROOT,
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=BENCH_TIMEOUT_S,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    assert png.read_bytes().startswith(b"\x89PNG")


def test_submit_batch_reports_tasks_not_requests(tmp_path: Path) -> None:
    document = bench_json(
        tmp_path, "batch", "submit-batch", "--spawn", "--batch-size", "50", "--tasks", "1000",
        "--concurrency", "2",
    )  # fmt: skip
    run = document["runs"][0]
    assert run["tasks"] == run["tasks_counted_by_server"] == 1000
    assert run["requests"] == 20
    assert run["tasks_per_second"] == pytest.approx(run["requests_per_second"] * 50, rel=0.01)
    assert_ordered(run, "latency")


def test_paced_submit_keeps_to_its_rate(tmp_path: Path) -> None:
    document = bench_json(
        tmp_path, "paced", "submit", "--spawn", "--concurrency", "4", "--rate", "400",
        "--tasks", "200",
    )  # fmt: skip
    run = document["runs"][0]
    assert run["tasks"] == 200 and run["paced_requests_per_second"] == 400
    # 200 submits due over half a second: never faster than the pace (with slack for timers).
    assert run["seconds"] >= 0.4
    assert_ordered(run, "latency")


def test_e2e_with_runner_processes_finishes_every_task(tmp_path: Path) -> None:
    document = bench_json(
        tmp_path, "e2e", "e2e", "--spawn", "--tasks", "1000", "--runners", "2",
        "--runner-concurrency", "20", "--claim-batch", "10", "--concurrency", "2",
    )  # fmt: skip
    run = document["runs"][0]
    assert run["tasks"] == 1000
    assert run["tasks_per_second"] > 0 and run["submit_tasks_per_second"] > 0
    assert run["redeliveries"] == 0 and run["failed_requests"] == 0
    assert_ordered(run, "start")
    assert_ordered(run, "complete")
    assert run["start_p50_ms"] <= run["complete_p50_ms"]
    assert run["consumer_cpu_percent"] > 0


def test_e2e_single_claims_and_completes_one_at_a_time(tmp_path: Path) -> None:
    document = bench_json(
        tmp_path, "single", "e2e-single", "--spawn", "--tasks", "200", "--runners", "1",
        "--runner-concurrency", "4", "--concurrency", "4",
    )  # fmt: skip
    run = document["runs"][0]
    assert run["tasks"] == 200
    assert run["claim_batch"] == 1 and run["producer_batch_size"] == 1
    assert run["consumer_failures"] == 0
    assert run["tasks_per_second"] > 0
    assert_ordered(run, "complete")


def test_e2e_on_postgres_runs_on_a_fresh_database_it_drops_after(
    tmp_path: Path, postgres_server: PostgresServer
) -> None:
    admin_url = postgres_server.url("postgres")
    document = bench_json(
        tmp_path, "e2e-pg", "e2e", "--spawn", "--database-url", admin_url, "--workers", "2",
        "--tasks", "500", "--runners", "1", "--runner-concurrency", "10", "--claim-batch", "10",
    )  # fmt: skip
    run = document["runs"][0]
    assert run["tasks"] == 500 and run["redeliveries"] == 0 and run["failed_requests"] == 0
    # The throwaway server runs here, so its CPU is counted next to the app's.
    assert run["database_cpu_percent"] > 0 and run["server_cpu_percent"] > 0
    target = document["target"]
    assert target["backend"] == "postgres" and target["postgres_server"].startswith("15")
    assert target["database"].startswith(admin_url.rsplit("/", 1)[0] + "/taskgate_bench_")
    with psycopg.connect(admin_url) as admin:
        names = [row[0] for row in admin.execute("SELECT datname FROM pg_database")]
    assert not [name for name in names if name.startswith("taskgate_bench_")]


def test_wake_measures_both_cases_across_two_processes(tmp_path: Path) -> None:
    document = bench_json(
        tmp_path, "wake", "wake", "--spawn", "--workers", "2", "--samples", "4",
        "--settle", "0.05",
    )  # fmt: skip
    runs = {run["label"]: run for run in document["runs"]}
    assert set(runs) == {"same process", "other process"}
    for run in runs.values():
        assert run["samples"] == 4
        assert_ordered(run, "wake")
        assert_ordered(run, "submit")


def test_backlog_compares_an_empty_and_a_filled_database(tmp_path: Path) -> None:
    document = bench_json(
        tmp_path, "backlog", "backlog", "--spawn", "--backlog", "2000", "--tasks", "200",
        "--e2e-tasks", "200", "--claims", "20", "--runners", "1", "--concurrency", "4",
    )  # fmt: skip
    empty, full, ratio = document["runs"]
    assert empty["label"] == "empty" and ratio["label"] == "backlog ÷ empty"
    assert full["backlog_queued"] == full["backlog_finished"] == 2000
    # The filled database holds the backlog, the probe's claims and what the phase added.
    assert full["tasks_in_database"] == 4000 + 200 + 200
    assert empty["tasks_in_database"] == 20 + 200 + 200
    for phase in (empty, full):
        assert phase["submit_tasks_per_second"] > 0 and phase["e2e_tasks_per_second"] > 0
        assert phase["server_max_process_peak_rss_mib"] > 0
        assert phase["bytes_per_task"] > 0
        assert_ordered(phase, "claim")
    assert ratio["submit_tasks_per_second"] > 0


def test_runs_against_a_url_and_refuses_a_bad_token(
    tmp_path: Path, start_server: ServerFactory
) -> None:
    server = start_server()
    document = bench_json(
        tmp_path, "url", "wake", "--url", server.base_url, "--token", server.token,
        "--samples", "2", "--settle", "0.05",
    )  # fmt: skip
    assert document["target"] == {"kind": "url", "url": server.base_url}
    (run,) = document["runs"]
    assert run["label"] == "processes unknown" and run["samples"] == 2

    refused = run_bench(tmp_path, "bad-token", "submit", "--url", server.base_url, "--token", "x")
    assert refused.returncode == 1
    assert "refused the token (401)" in refused.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["submit"], "give --url URL"),
        (["backlog", "--url", "http://127.0.0.1:9"], "needs --spawn"),
        (["submit", "--spawn", "--database", "postgresql://db/x"], "--database-url"),
        (["submit", "--url", "http://x", "--database-url", "postgresql://db/x"], "for --spawn"),
        (["submit", "--spawn", "--database-url", "mysql://db/x"], "postgresql:// URL"),
        (["backlog", "--spawn", "--database-url", "postgresql://db/x"], "SQLite only"),
        (["submit", "--spawn", "--url", "http://127.0.0.1:9"], "not both"),
    ],
)
def test_refuses_flags_it_cannot_honour(tmp_path: Path, args: list[str], message: str) -> None:
    completed = run_bench(tmp_path, "refused", *args)
    assert completed.returncode == 2
    assert message in completed.stdout


def test_the_generator_reads_every_http_framing_it_may_meet() -> None:
    chunked = bytearray(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nab")
    assert parse_response(chunked) is None  # a partial chunk waits for more bytes
    chunked += b"cd\r\n2;ext=1\r\nef\r\n0\r\n\r\nHTTP/1.1 204"
    response = parse_response(chunked)
    assert response is not None
    assert (response.status, response.body, response.keep_alive) == (200, b"abcdef", True)
    assert chunked == bytearray(b"HTTP/1.1 204")  # the next response's bytes stay buffered

    closing = bytearray(b"HTTP/1.1 201 Created\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}")
    response = parse_response(closing)
    assert response is not None and response.status == 201 and not response.keep_alive
    assert response.json() == {}

    with pytest.raises(WireError):
        parse_response(bytearray(b"SSH-2.0-OpenSSH\r\n\r\n"))
