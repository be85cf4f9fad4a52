"""`backlog`: the same measurements on an empty database and on one holding a backlog.

Two servers are spawned one after the other, each on a fresh database: the first empty,
the second filled beforehand (`prefill.fill`) with N queued tasks (in the queue the
claim probe reads, so every probed claim takes the oldest of N due tasks) and N
succeeded ones (in a queue of their own, so the e2e read-back sees only its tasks). On
each: `submit`, `e2e`, then a claim probe (one claim of one task at a time, then its
complete, on one connection), then the server's memory per process and, after it has
stopped, the database's bytes per task.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import sqlite_utils

from app.bench.api import Context, Meter
from app.bench.flow import run_flow
from app.bench.load import run_async
from app.bench.prefill import fill
from app.bench.stats import Figures, latency_figures
from app.bench.submit import run_submit
from app.bench.target import ServerOptions, SpawnedServer, spawned_target

KEPT_FIGURES = {
    "submit": ("tasks_per_second", "latency_p50_ms", "latency_p99_ms", "generator_cpu_percent"),
    "e2e": ("tasks_per_second", "start_p99_ms", "complete_p50_ms", "complete_p99_ms"),
}
COMPARED = (
    "submit_tasks_per_second",
    "submit_latency_p99_ms",
    "e2e_tasks_per_second",
    "e2e_complete_p99_ms",
    "claim_p50_ms",
    "claim_p99_ms",
    "complete_p99_ms",
    "server_max_process_peak_rss_mib",
)


@dataclass(frozen=True, slots=True)
class BacklogOptions:
    backlog: int
    tasks: int
    concurrency: int
    e2e_tasks: int
    runners: int
    runner_concurrency: int
    claim_batch: int
    claims: int


def run_backlog(
    server: ServerOptions,
    options: BacklogOptions,
    *,
    meter: Meter,
    generator_processes: int,
    queue_prefix: str,
) -> list[Figures]:
    """Both phases, and the ratio backlog ÷ empty of the figures that should hold steady."""
    phases = []
    for backlog in (0, options.backlog):
        phases.append(
            _phase(
                server,
                options,
                backlog,
                meter=meter,
                generator_processes=generator_processes,
                queue_prefix=queue_prefix,
            )
        )
    empty, full = phases
    ratio: Figures = {"label": "backlog ÷ empty"}
    for name in COMPARED:
        low, high = empty.get(name), full.get(name)
        if isinstance(low, int | float) and isinstance(high, int | float) and low:
            ratio[name] = round(high / low, 3)
    return [*phases, ratio]


def _phase(
    server: ServerOptions,
    options: BacklogOptions,
    backlog: int,
    *,
    meter: Meter,
    generator_processes: int,
    queue_prefix: str,
) -> Figures:
    deep_queue = f"{queue_prefix}-deep"
    figures: Figures = {"label": f"backlog {backlog:,} + {backlog:,}" if backlog else "empty"}
    figures["backlog_queued"] = figures["backlog_finished"] = backlog

    def prepare(spawned: SpawnedServer) -> None:
        seconds = fill(
            spawned.database,
            queued=backlog,
            finished=backlog,
            queued_queue=deep_queue,
            finished_queue=f"{queue_prefix}-finished",
            meter=meter,
        )
        figures["fill_seconds"] = round(seconds, 1)

    with spawned_target(server, before_start=[prepare] if backlog else []) as target:
        ctx = Context(target, meter, generator_processes, queue_prefix)
        submit = run_async(run_submit(ctx, concurrency=options.concurrency, tasks=options.tasks))
        e2e = run_async(
            run_flow(
                ctx,
                tasks=options.e2e_tasks,
                single=False,
                concurrency=4,
                batch_size=100,
                consumers=options.runners,
                consumer_concurrency=options.runner_concurrency,
                claim_batch=options.claim_batch,
            )
        )
        for prefix, source in (("submit", submit), ("e2e", e2e)):
            for name in KEPT_FIGURES[prefix]:
                figures[f"{prefix}_{name}"] = source.get(name)
        figures.update(run_async(_probe_claims(ctx, deep_queue, options.claims, backlog)))
        memories = target.server_memory()
        figures["server_processes"] = len(memories)
        figures["server_max_process_rss_mib"] = max(m.rss_mib for m in memories)
        figures["server_max_process_peak_rss_mib"] = max(m.peak_rss_mib for m in memories)
        assert target.server is not None
        target.server.stop()
        figures.update(_disk_figures(target.server.database))
    return figures


async def _probe_claims(ctx: Context, queue: str, claims: int, backlog: int) -> Figures:
    """Sequential claim-1 then complete-1 on `queue`, topped up to `claims` due tasks."""
    api = ctx.api()
    try:
        if backlog < claims:
            await api.submit_tasks(queue, claims - backlog)
        claim_ms, complete_ms = [], []
        ctx.meter.begin("claim probe", claims)
        body = {"worker_id": f"{queue}-probe", "max_tasks": 1, "wait_seconds": 0}
        for done in range(claims):
            sent = time.perf_counter()
            claimed = await api.call("POST", f"/v1/queues/{queue}/claim", body)
            answered = time.perf_counter()
            task = claimed["tasks"][0]
            await api.call(
                "POST", f"/v1/tasks/{task['id']}/complete", {"lease_token": task["lease"]["token"]}
            )
            claim_ms.append((answered - sent) * 1000)
            complete_ms.append((time.perf_counter() - answered) * 1000)
            if done % 50 == 0:
                ctx.meter.advance_to(done)
        ctx.meter.end()
    finally:
        api.close()
    figures: Figures = {"claims": claims}
    figures.update(latency_figures("claim", claim_ms))
    figures.update(latency_figures("complete", complete_ms))
    return figures


def _disk_figures(database: Path) -> Figures:
    """Size of the database file (its WAL folded in by the server's last close) per task."""
    size = sum(
        path.stat().st_size
        for path in (database, database.with_name(database.name + "-wal"))
        if path.exists()
    )
    db = sqlite_utils.Database(database)
    try:
        tasks = db.table("tasks").count
    finally:
        db.close()
    return {
        "database_mib": round(size / 1024**2, 1),
        "tasks_in_database": tasks,
        "bytes_per_task": round(size / tasks) if tasks else None,
    }
