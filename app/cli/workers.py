"""`taskgate workers`: the workers the server has seen, with liveness and the leases they hold."""

from __future__ import annotations

import argparse
from collections.abc import Iterable

from rich.console import RenderableType

from app.cli.output import Output, grid
from app.cli.remote import EXIT_OK, Subcommands, remote_command
from runners import Client, Worker


def worker_rows(workers: Iterable[Worker]) -> RenderableType:
    return grid(
        ("id", "alive", "last seen", "in flight", "queues", "host", "pid"),
        (
            (
                worker.id,
                worker.alive,
                worker.last_seen_at,
                worker.in_flight,
                ", ".join(worker.queues),
                None if worker.info is None else worker.info.host,
                None if worker.info is None else worker.info.pid,
            )
            for worker in workers
        ),
    )


def list_workers(client: Client, args: argparse.Namespace, output: Output) -> int:
    workers = client.list_workers()
    if args.alive:
        workers = [worker for worker in workers if worker.alive]
    output.show(workers, lambda: worker_rows(workers))
    return EXIT_OK


def add_worker_commands(commands: Subcommands, parents: list[argparse.ArgumentParser]) -> None:
    """`workers`."""
    parser = remote_command(
        commands,
        "workers",
        list_workers,
        parents=parents,
        help="workers seen through their claims, most recent first",
        description="Workers seen through their claims and heartbeats, most recent first: "
        "whether each is alive, the queues it claims from and the leases it holds.",
    )
    parser.add_argument("--alive", action="store_true", help="only workers seen recently")
