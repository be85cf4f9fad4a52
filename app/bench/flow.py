"""`e2e` and `e2e-single`: producers submit while consumers claim and complete.

`e2e` consumes with the real `runners.Runner` (a no-op async handler; batched claims,
and whatever batching of completes the Runner does) in R processes, while producers
submit batches. `e2e-single` makes one request per operation (submit 1, claim 1,
complete 1) from a raw loop. The rate is the tasks over the span from the first task's
`created_at` to the last one's `finished_at`, and the latencies are `started_at -
created_at` and `finished_at - created_at` of every task, all read back from the server
at the end (so one clock, the server's, in milliseconds).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

import orjson

from app.bench.api import TASK_BODY, TASK_TYPE, Api, BenchError, Context, batch_body, parse_ms
from app.bench.load import (
    ProcessGroup,
    Report,
    RequestLoad,
    cpu_now,
    generate_requests,
    run_async,
    split,
)
from app.bench.stats import Figures, cpu_percent, latency_figures, rate
from app.bench.submit import POLL_S, request_figures, server_figures
from app.bench.wire import Connection, Endpoint, WireError
from runners import Runner

READY_TIMEOUT_S = 60.0
STALL_TIMEOUT_S = 60.0
CLAIM_WAIT_S = 1.0
RUNNER_POLL_S = 5.0
STOP_POLL_S = 0.05


@dataclass(frozen=True, slots=True)
class ConsumerLoad:
    """What one consumer process does: `loops` claim loops on `queue` as `worker_id`."""

    url: str
    token: str | None
    queue: str
    worker_id: str
    loops: int
    claim_batch: int
    runner: bool


async def run_flow(
    ctx: Context,
    *,
    tasks: int,
    single: bool,
    concurrency: int,
    batch_size: int,
    consumers: int,
    consumer_concurrency: int,
    claim_batch: int,
    queue: str | None = None,
) -> Figures:
    """Run producers and consumers on a fresh queue until `tasks` tasks have succeeded."""
    queue = queue or ctx.new_queue("e2e-single" if single else "e2e")
    per_request = 1 if single else batch_size
    consumer_loads = [
        ConsumerLoad(
            url=ctx.target.url,
            token=ctx.target.token,
            queue=queue,
            worker_id=f"{queue}-consumer-{index}",
            loops=consumer_concurrency,
            claim_batch=1 if single else claim_batch,
            runner=not single,
        )
        for index in range(consumers)
    ]
    consumer_group = ProcessGroup("consumer", consumers, barrier=False)
    consumer_group.start(consume, [(load,) for load in consumer_loads])
    api = ctx.api()
    try:
        ctx.meter.begin("consumers starting", None)
        await api.wait_for_workers(
            {load.worker_id for load in consumer_loads}, READY_TIMEOUT_S, consumer_group.alive
        )
        ctx.meter.end()
        producer_group = _start_producers(ctx, queue, tasks, per_request, concurrency)
        await asyncio.to_thread(producer_group.release)
        cpu_before, wall_before = ctx.target.cpu_mark(), time.monotonic()
        producer_reports = await _follow(ctx, api, producer_group, queue, tasks)
        server = server_figures(ctx, cpu_before, time.monotonic() - wall_before)
    except BaseException:
        consumer_group.terminate()
        api.close()
        raise
    consumer_group.stop()
    consumer_reports = await asyncio.to_thread(consumer_group.collect)
    try:
        figures = await _read_back(ctx, api, queue, tasks)
    finally:
        api.close()
    figures["label"] = "e2e-single" if single else "e2e"
    figures.update(
        consumers=consumers,
        consumer_concurrency=consumer_concurrency,
        claim_batch=1 if single else claim_batch,
        producer_connections=concurrency,
        producer_batch_size=per_request,
    )
    producer = request_figures(producer_reports, per_request)
    figures["submit_tasks_per_second"] = producer["tasks_per_second"]
    figures["failed_requests"] = producer["failed_requests"]
    figures["failures"] = producer["failures"]
    window = float(figures["seconds"] or 0) or float(producer["seconds"] or 0)
    figures["generator_cpu_percent"] = producer["generator_cpu_percent"]
    consumer_cpu = sum(float(report["cpu_seconds"]) for report in consumer_reports)
    figures["consumer_cpu_percent"] = cpu_percent(consumer_cpu, window)
    figures["consumer_failures"] = sum(int(report["failures"]) for report in consumer_reports)
    figures.update(server)
    return figures


def _start_producers(
    ctx: Context, queue: str, tasks: int, per_request: int, concurrency: int
) -> ProcessGroup:
    requests = -(-tasks // per_request)
    if requests * per_request != tasks:
        raise BenchError(f"--tasks ({tasks}) must be a multiple of the batch size {per_request}")
    processes = max(1, min(ctx.generator_processes, concurrency))
    if per_request == 1:
        path, body, status = f"/v1/queues/{queue}/tasks", orjson.dumps(TASK_BODY), 201
    else:
        path, body, status = f"/v1/queues/{queue}/tasks/batch", batch_body(per_request), 200
    group = ProcessGroup("producer", processes)
    group.start(
        generate_requests,
        [
            (
                RequestLoad(
                    url=ctx.target.url,
                    token=ctx.target.token,
                    method="POST",
                    path=path,
                    body=body,
                    expect_status=status,
                    tasks_per_request=per_request,
                    connections=connections,
                    requests=share,
                ),
            )
            for connections, share in zip(
                split(concurrency, processes), split(requests, processes), strict=True
            )
        ],
    )
    return group


async def _follow(
    ctx: Context, api: Api, producers: ProcessGroup, queue: str, tasks: int
) -> list[Report]:
    """Until every task has finished; the meter shows the server's count of finished tasks."""
    collecting = asyncio.create_task(asyncio.to_thread(producers.collect))
    ctx.meter.begin("tasks finished", tasks)
    finished, last_change = 0, time.monotonic()
    try:
        while True:
            counts = await api.queue_counts(queue)
            done = counts["succeeded"] + counts["dead"] + counts["cancelled"]
            if done != finished:
                finished, last_change = done, time.monotonic()
                ctx.meter.advance_to(done)
            if done >= tasks and collecting.done():
                break
            if time.monotonic() - last_change > STALL_TIMEOUT_S:
                raise BenchError(f"no task finished for {STALL_TIMEOUT_S} s; counts: {counts}")
            await asyncio.wait([collecting], timeout=POLL_S)
    finally:
        ctx.meter.end()
    return collecting.result()


async def _read_back(ctx: Context, api: Api, queue: str, tasks: int) -> Figures:
    """The run's figures from the finished tasks' server timestamps."""
    counts = await api.queue_counts(queue)
    if counts["succeeded"] != tasks or counts["dead"] or counts["cancelled"]:
        raise BenchError(f"expected {tasks} succeeded tasks in {queue}, found {counts}")
    ctx.meter.begin("reading tasks back", tasks)
    created, started, finished, attempts = [], [], [], 0
    async for task in api.tasks(queue, "succeeded"):
        created.append(parse_ms(task["created_at"]))
        started.append(parse_ms(task["started_at"]))
        finished.append(parse_ms(task["finished_at"]))
        attempts += int(task["attempts"])
        if len(created) % 1000 == 0:
            ctx.meter.advance_to(len(created))
    ctx.meter.end()
    if len(created) != tasks:
        raise BenchError(f"listed {len(created)} succeeded tasks of {tasks}")
    span_s = (max(finished) - min(created)) / 1000
    figures: Figures = {
        "tasks": tasks,
        "seconds": round(span_s, 3),
        "tasks_per_second": rate(tasks, span_s),
        "redeliveries": attempts - tasks,
    }
    figures.update(latency_figures("start", [s - c for s, c in zip(started, created, strict=True)]))
    figures.update(
        latency_figures("complete", [f - c for f, c in zip(finished, created, strict=True)])
    )
    return figures


def consume(load: ConsumerLoad, *, slot: int, progress: Any, stop: Any, barrier: Any) -> Report:
    """Child entry: run a Runner (`e2e`) or raw claim-1/complete-1 loops (`e2e-single`)."""
    cpu_start = cpu_now()
    if load.runner:
        failures = run_async(_run_runner(load, slot, progress, stop))
    else:
        failures = run_async(_claim_complete_loops(load, slot, progress, stop))
    return {"cpu_seconds": cpu_now() - cpu_start, "failures": failures}


async def _run_runner(load: ConsumerLoad, slot: int, progress: Any, stop: Any) -> int:
    runner = Runner(
        load.url,
        queues=[load.queue],
        concurrency=load.loops,
        worker_id=load.worker_id,
        token=load.token,
        claim_batch=load.claim_batch,
        poll_seconds=RUNNER_POLL_S,
        shutdown_grace_seconds=5.0,
    )

    @runner.handler(TASK_TYPE)
    async def noop(payload: Any) -> None:
        progress[slot] += 1

    async def stop_when_told() -> None:
        while not stop.is_set():
            await asyncio.sleep(STOP_POLL_S)
        runner.stop()

    stopper = asyncio.create_task(stop_when_told())
    try:
        await runner.run()
    finally:
        stopper.cancel()
    return 0


async def _claim_complete_loops(load: ConsumerLoad, slot: int, progress: Any, stop: Any) -> int:
    endpoint = Endpoint.from_url(load.url, load.token)
    claim_body = orjson.dumps(
        {"worker_id": load.worker_id, "max_tasks": 1, "wait_seconds": CLAIM_WAIT_S}
    )
    failures = 0

    async def claim_and_complete(connection: Connection) -> None:
        nonlocal failures
        claim = connection.encode("POST", f"/v1/queues/{load.queue}/claim", claim_body)
        while not stop.is_set():
            try:
                response = await connection.send(claim)
                if response.status != 200:
                    failures += 1
                    await asyncio.sleep(STOP_POLL_S)
                    continue
                for task in response.json()["tasks"]:
                    body = orjson.dumps({"lease_token": task["lease"]["token"], "result": None})
                    path = f"/v1/tasks/{task['id']}/complete"
                    done = await connection.send(connection.encode("POST", path, body))
                    if done.status == 200:
                        progress[slot] += 1
                    else:
                        failures += 1
            except WireError:
                failures += 1
                await asyncio.sleep(STOP_POLL_S)

    connections = [Connection(endpoint) for _ in range(load.loops)]
    await asyncio.gather(*(claim_and_complete(connection) for connection in connections))
    for connection in connections:
        connection.close()
    return failures
