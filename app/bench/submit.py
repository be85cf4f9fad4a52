"""`submit` and `submit-batch`: tasks pushed as fast as C connections get answers.

Each connection sends its next request as soon as the previous one is answered (a closed
loop, like wrk), so the latency is what a client waits at that concurrency. Figures
come from the generator processes' clocks; the server's count of tasks in the queue is
checked against what was acknowledged.
"""

from __future__ import annotations

import asyncio
import math
import sys
import time
from array import array
from collections import Counter
from typing import Any

import orjson

from app.bench.api import STATES, TASK_BODY, BenchError, Context, batch_body
from app.bench.load import ProcessGroup, Report, RequestLoad, generate_requests, split
from app.bench.stats import Figures, cpu_percent, latency_figures, rate
from app.bench.target import CpuMark

POLL_S = 0.1


async def run_submit(
    ctx: Context,
    *,
    concurrency: int,
    tasks: int | None,
    duration_s: float | None = None,
    batch_size: int | None = None,
    rate_per_s: float | None = None,
    queue: str | None = None,
) -> Figures:
    """Submit `tasks` tasks (or for `duration_s`) from `concurrency` connections.

    With `rate_per_s`, requests are paced to that total rate instead of sent back to back.
    """
    queue = queue or ctx.new_queue("submit-batch" if batch_size else "submit")
    per_request = batch_size or 1
    if batch_size:
        path, body, status = f"/v1/queues/{queue}/tasks/batch", batch_body(batch_size), 200
    else:
        path, body, status = f"/v1/queues/{queue}/tasks", orjson.dumps(TASK_BODY), 201
    requests = math.ceil(tasks / per_request) if tasks else sys.maxsize
    processes = max(1, min(ctx.generator_processes, concurrency))
    loads = [
        RequestLoad(
            url=ctx.target.url,
            token=ctx.target.token,
            method="POST",
            path=path,
            body=body,
            expect_status=status,
            tasks_per_request=per_request,
            connections=connections,
            requests=share if tasks else sys.maxsize,
            duration_s=duration_s,
            interval_s=concurrency / rate_per_s if rate_per_s else None,
        )
        for connections, share in zip(
            split(concurrency, processes), split(requests, processes), strict=True
        )
    ]
    label = f"batch {batch_size}, c={concurrency}" if batch_size else f"c={concurrency}"
    if rate_per_s:
        label += f", {rate_per_s:g}/s"
    group = ProcessGroup("submit", processes)
    group.start(generate_requests, [(load,) for load in loads])
    await asyncio.to_thread(group.release)
    measured = await measure_group(
        ctx, group, f"submit {label}", None if not tasks else requests * per_request, concurrency
    )
    reports: list[Report] = measured.pop("reports")
    figures: Figures = {"label": label, "concurrency": concurrency, "batch_size": per_request}
    figures["paced_requests_per_second"] = rate_per_s
    figures.update(request_figures(reports, per_request))
    figures.update(measured)
    api = ctx.api()
    try:
        counts = await api.queue_counts(queue)
    finally:
        api.close()
    counted, acknowledged = sum(counts[s] for s in STATES), int(figures["tasks"] or 0)
    figures["tasks_counted_by_server"] = counted
    # More is possible (a request whose connection broke may still have committed); fewer
    # would mean an acknowledged task was lost.
    if counted < acknowledged:
        raise BenchError(
            f"{acknowledged} tasks were acknowledged but the server counts only {counted} "
            f"in {queue}"
        )
    return figures


async def measure_group(
    ctx: Context, group: ProcessGroup, description: str, total: int | None, connections: int
) -> dict[str, Any]:
    """Follow a released group to its end: reports, server CPU, memory, connection spread."""
    cpu_before = ctx.target.cpu_mark()
    wall_before = time.monotonic()
    ctx.meter.begin(description, total)
    collecting = asyncio.create_task(asyncio.to_thread(group.collect))
    spread: list[int] = []
    try:
        while not collecting.done():
            ctx.meter.advance_to(group.completed())
            if sum(spread) < connections:
                spread = ctx.target.connection_spread()
            await asyncio.wait([collecting], timeout=POLL_S)
    finally:
        ctx.meter.end()
    reports = collecting.result()
    wall = time.monotonic() - wall_before
    result: dict[str, Any] = {"reports": reports}
    if len(spread) > 1:
        result["server_connections_per_process"] = "/".join(str(count) for count in spread)
    result.update(server_figures(ctx, cpu_before, wall))
    return result


def server_figures(ctx: Context, cpu_before: CpuMark, wall_s: float) -> Figures:
    """Server (and local PostgreSQL) CPU, % of one core, since `cpu_before`; the server's
    memory now. Local servers only."""
    cpu_after = ctx.target.cpu_mark()
    figures: Figures = {}
    if cpu_before.server is not None and cpu_after.server is not None:
        figures["server_cpu_percent"] = cpu_percent(cpu_after.server - cpu_before.server, wall_s)
    if cpu_before.database is not None and cpu_after.database is not None:
        used = cpu_after.database - cpu_before.database
        figures["database_cpu_percent"] = cpu_percent(used, wall_s)
    memories = ctx.target.server_memory()
    if memories:
        figures["server_processes"] = len(memories)
        figures["server_rss_mib"] = round(sum(m.rss_mib for m in memories), 1)
        figures["server_max_process_rss_mib"] = max(m.rss_mib for m in memories)
        figures["server_max_process_peak_rss_mib"] = max(m.peak_rss_mib for m in memories)
    return figures


def request_figures(reports: list[Report], tasks_per_request: int) -> Figures:
    """Rates, latency percentiles and generator CPU from the generator processes' reports."""
    started = min(report["started"] for report in reports)
    finished = max(report["finished"] for report in reports)
    seconds = finished - started
    ok_requests = sum(int(report["ok_requests"]) for report in reports)
    failures: Counter[str] = Counter()
    latencies: array[float] = array("d")
    for report in reports:
        failures.update(report["failures"])
        latencies.extend(report["latencies_ms"])
    figures: Figures = {
        "generator_processes": len(reports),
        "tasks": ok_requests * tasks_per_request,
        "requests": ok_requests,
        "failed_requests": sum(failures.values()),
        "failures": "; ".join(f"{name} x{count}" for name, count in failures.most_common(3))
        or None,
        "seconds": round(seconds, 3),
        "tasks_per_second": rate(ok_requests * tasks_per_request, seconds),
        "requests_per_second": rate(ok_requests, seconds),
    }
    figures.update(latency_figures("latency", latencies))
    cpu = sum(float(report["cpu_seconds"]) for report in reports)
    figures["generator_cpu_percent"] = cpu_percent(cpu, seconds)
    return figures
