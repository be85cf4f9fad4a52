"""`wake`: how long an idle long-polling claim takes to return after one submit.

A claim waits on an empty queue; after it has settled, one task is submitted on another
connection, and the time from sending the submit to the claim's answer is one sample.
With a spawned server, the bench finds which server process accepted each connection
(from /proc), so every sample is labelled "same process" (woken in-process) or "other
process" (woken by the cross-process change poll); with `--workers 2` it opens submit
connections until it has one to each process and measures both. Against `--url` the
processes cannot be told apart and the samples are reported together.
"""

from __future__ import annotations

import asyncio
import random
import time
from urllib.parse import urlsplit

import orjson

from app.bench.api import TASK_BODY, BenchError, Context
from app.bench.load import cpu_now
from app.bench.machine import serving_pid
from app.bench.stats import Figures, cpu_percent, latency_figures
from app.bench.wire import Connection

CLAIM_WAIT_S = 10.0
MAX_SUBMIT_CONNECTIONS = 64
PHASE_JITTER_S = 0.1
SAME, OTHER, UNKNOWN = "same process", "other process", "processes unknown"


async def run_wake(ctx: Context, *, samples: int, settle_s: float) -> list[Figures]:
    """`samples` wake-ups per kind the target allows (same process, other process)."""
    queue = ctx.new_queue("wake")
    endpoint = ctx.endpoint()
    claimer = Connection(endpoint, timeout_s=CLAIM_WAIT_S + 10)
    await _accepted(claimer)
    server_port = urlsplit(ctx.target.url).port or 80
    pids = ctx.target.server_pids()
    claim_pid = _pid_of(claimer, server_port, pids)
    if claim_pid is None:
        kinds = [UNKNOWN]
    elif len(pids) > 1:
        kinds = [SAME, OTHER]
    else:
        kinds = [SAME]
    submitters: list[tuple[Connection, int | None]] = []
    claim = claimer.encode(
        "POST",
        f"/v1/queues/{queue}/claim",
        orjson.dumps(
            {"worker_id": f"{queue}-claimer", "max_tasks": 1, "wait_seconds": CLAIM_WAIT_S}
        ),
    )
    submit_body = orjson.dumps(TASK_BODY)
    results: list[Figures] = []
    cpu_start, wall_start = cpu_now(), time.monotonic()
    try:
        for kind in kinds:
            submitter = await _submitter_for(kind, claim_pid, submitters, ctx, server_port, pids)
            submit = submitter.encode("POST", f"/v1/queues/{queue}/tasks", submit_body)
            wakes, after_ack, acks = [], [], []
            ctx.meter.begin(f"wake ({kind})", samples)
            for sample in range(samples):
                waiting = asyncio.create_task(claimer.send(claim))
                # A random share of a poll period on top, so samples do not keep one phase
                # against the server's change-poll timer.
                await asyncio.sleep(settle_s + random.uniform(0, PHASE_JITTER_S))
                if waiting.done():
                    raise BenchError(f"the claim returned before the submit: {waiting.result()}")
                sent = time.perf_counter()
                submitted = await submitter.send(submit)
                acked = time.perf_counter()
                claimed = await waiting
                woken = time.perf_counter()
                if submitted.status != 201 or claimed.status != 200:
                    raise BenchError(
                        f"submit answered {submitted.status}, claim answered {claimed.status}"
                    )
                tasks = claimed.json()["tasks"]
                if not tasks:
                    raise BenchError(f"the claim returned empty after {woken - sent:.1f} s")
                wakes.append((woken - sent) * 1000)
                after_ack.append((woken - acked) * 1000)
                acks.append((acked - sent) * 1000)
                await _complete(claimer, tasks[0])
                ctx.meter.advance_to(sample + 1)
            ctx.meter.end()
            figures: Figures = {"label": kind, "samples": samples, "settle_seconds": settle_s}
            figures.update(latency_figures("wake", wakes))
            figures.update(latency_figures("wake_after_ack", after_ack))
            figures.update(latency_figures("submit", acks))
            results.append(figures)
    finally:
        claimer.close()
        for connection, _ in submitters:
            connection.close()
    cpu = cpu_percent(cpu_now() - cpu_start, time.monotonic() - wall_start)
    for figures in results:
        figures["generator_cpu_percent"] = cpu
    return results


async def _accepted(connection: Connection) -> None:
    """Connect, and make sure a server process has accepted the connection (one answer).

    Only then does the connection's socket belong to a process that /proc can name.
    """
    response = await connection.request("GET", "/healthz")
    if response.status != 200:
        raise BenchError(f"/healthz answered {response.status}")


def _pid_of(connection: Connection, server_port: int, pids: list[int]) -> int | None:
    port = connection.local_port
    if port is None or not pids:
        return None
    return serving_pid(port, server_port, pids)


async def _submitter_for(
    kind: str,
    claim_pid: int | None,
    submitters: list[tuple[Connection, int | None]],
    ctx: Context,
    server_port: int,
    pids: list[int],
) -> Connection:
    """A submit connection served by the process `kind` asks for, opening more as needed.

    Raises:
        BenchError: none of MAX_SUBMIT_CONNECTIONS connections landed on such a process.
    """

    def fits(pid: int | None) -> bool:
        if kind == UNKNOWN:
            return True
        return (pid == claim_pid) == (kind == SAME)

    for connection, pid in submitters:
        if fits(pid):
            return connection
    for _ in range(MAX_SUBMIT_CONNECTIONS):
        connection = Connection(ctx.endpoint())
        await _accepted(connection)
        pid = _pid_of(connection, server_port, pids)
        submitters.append((connection, pid))
        if fits(pid):
            return connection
    raise BenchError(f"no connection reached a server process for the '{kind}' case")


async def _complete(connection: Connection, task: dict[str, object]) -> None:
    lease = task["lease"]
    assert isinstance(lease, dict)
    response = await connection.request(
        "POST", f"/v1/tasks/{task['id']}/complete", {"lease_token": lease["token"]}
    )
    if response.status != 200:
        raise BenchError(f"complete answered {response.status}")
