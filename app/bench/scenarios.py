"""Runs the scenario the command line names, `--repeat` times, against its target."""

from __future__ import annotations

import argparse
import contextlib
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from app.bench.api import Context, Meter
from app.bench.backlog import BacklogOptions, run_backlog
from app.bench.flow import run_flow
from app.bench.load import run_async
from app.bench.stats import Figures, median_figures
from app.bench.submit import run_submit
from app.bench.target import ServerOptions, Target, remote_target, spawned_target
from app.bench.wake import run_wake

DEFAULT_TASKS = {"submit": 20_000, "submit-batch": 200_000}


def server_options(args: argparse.Namespace) -> ServerOptions:
    return ServerOptions(
        workers=args.workers,
        durability=args.durability,
        database=Path(args.database) if args.database else None,
        database_url=args.database_url,
        serve_args=tuple(args.serve_arg),
        keep=args.keep,
    )


@contextlib.contextmanager
def open_target(args: argparse.Namespace) -> Iterator[Target]:
    """The spawned server or the deployment the flags name. Raises: TargetError."""
    if args.spawn:
        with spawned_target(server_options(args)) as target:
            yield target
    else:
        yield remote_target(args.url, args.token)


def run_scenario(
    args: argparse.Namespace, meter: Meter, target_description: dict[str, Any]
) -> list[list[Figures]]:
    """Each repeat's runs (one per concurrency, wake case or backlog phase)."""
    if args.scenario == "backlog":
        options = BacklogOptions(
            backlog=args.backlog,
            tasks=args.tasks,
            concurrency=args.concurrency,
            e2e_tasks=args.e2e_tasks,
            runners=args.runners,
            runner_concurrency=args.runner_concurrency,
            claim_batch=args.claim_batch,
            claims=args.claims,
        )
        server = server_options(args)
        target_description.update(kind="spawned", workers=server.workers)
        target_description.update(durability=server.durability)
        return [
            run_backlog(
                server,
                options,
                meter=meter,
                generator_processes=args.generator_processes,
                queue_prefix=args.queue_prefix,
            )
            for _ in range(args.repeat)
        ]
    with open_target(args) as target:
        target_description.update(target.description)
        context = Context(target, meter, args.generator_processes, args.queue_prefix)
        return [run_async(_one_repeat(context, args)) for _ in range(args.repeat)]


async def _one_repeat(ctx: Context, args: argparse.Namespace) -> list[Figures]:
    if args.scenario in ("submit", "submit-batch"):
        batch_size = args.batch_size if args.scenario == "submit-batch" else None
        tasks = args.tasks or (None if args.duration else DEFAULT_TASKS[args.scenario])
        return [
            await run_submit(
                ctx,
                concurrency=concurrency,
                tasks=tasks,
                duration_s=args.duration,
                batch_size=batch_size,
                rate_per_s=args.rate,
            )
            for concurrency in args.concurrency
        ]
    if args.scenario in ("e2e", "e2e-single"):
        single = args.scenario == "e2e-single"
        return [
            await run_flow(
                ctx,
                tasks=args.tasks,
                single=single,
                concurrency=args.concurrency,
                batch_size=1 if single else args.batch_size,
                consumers=args.runners,
                consumer_concurrency=args.runner_concurrency,
                claim_batch=1 if single else args.claim_batch,
            )
        ]
    if args.scenario == "wake":
        return await run_wake(ctx, samples=args.samples, settle_s=args.settle)
    raise ValueError(f"unknown scenario {args.scenario!r}")


def median_runs(repeats: Sequence[Sequence[Figures]]) -> list[Figures]:
    """Run by run (same position in every repeat), the median of each figure."""
    return [
        median_figures([repeat[index] for repeat in repeats]) for index in range(len(repeats[0]))
    ]
