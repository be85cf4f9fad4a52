"""`taskgate dead list | redrive | purge QUEUE`: a queue's dead letters.

`purge` deletes for good, so it asks first on a terminal and wants --yes anywhere else.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable

from rich.console import RenderableType

from app.cli.output import Output, error_console, fields_table, grid
from app.cli.remote import EXIT_ERROR, EXIT_OK, Subcommands, remote_command
from app.cli.tasks import DEFAULT_LIST_LIMIT, collect_pages, warn_truncated
from app.cli.values import positive_int
from runners import ApiError, Client, Task, TaskPage

# The API takes at most this many ids per redrive request.
MAX_REDRIVE_IDS = 1000


def dead_rows(tasks: Iterable[Task]) -> RenderableType:
    return grid(
        ("id", "type", "attempts", "finished at", "last error"),
        (
            (
                task.id,
                task.type,
                f"{task.attempts}/{task.max_attempts}",
                task.finished_at,
                None if task.last_error is None else task.last_error.message,
            )
            for task in tasks
        ),
    )


def list_dead(client: Client, args: argparse.Namespace, output: Output) -> int:
    def fetch_page(cursor: str | None, limit: int) -> TaskPage:
        return client.list_dead(args.queue, limit=limit, cursor=cursor)

    tasks, more = collect_pages(fetch_page, args.limit, args.all)
    output.show(tasks, lambda: dead_rows(tasks))
    if more:
        warn_truncated(len(tasks))
    return EXIT_OK


def redrive(client: Client, args: argparse.Namespace, output: Output) -> int:
    if args.all:
        redriven = client.redrive(args.queue)
    else:
        ids: list[str] = args.ids
        redriven = sum(
            client.redrive(args.queue, ids[start : start + MAX_REDRIVE_IDS])
            for start in range(0, len(ids), MAX_REDRIVE_IDS)
        )
    output.show({"redriven": redriven}, lambda: fields_table([("redriven", redriven)]))
    return EXIT_OK


def purge(client: Client, args: argparse.Namespace, output: Output) -> int:
    if not args.yes and not confirmed_on_terminal(client, args):
        print("taskgate: nothing deleted", file=sys.stderr)
        return EXIT_ERROR
    purged = client.purge_dead(args.queue)
    output.show({"purged": purged}, lambda: fields_table([("purged", purged)]))
    return EXIT_OK


def confirmed_on_terminal(client: Client, args: argparse.Namespace) -> bool:
    """Whether the operator at the terminal said yes (a queue without dead tasks needs no yes)."""
    if not sys.stdin.isatty():
        args.command_parser.error("purging deletes for good: confirm with --yes")
    try:
        count = f"the {client.get_queue(args.queue).counts.dead}"
    except ApiError as exc:
        # A queues:admin token may lack tasks:read (403); the question still stands.
        if exc.status not in (403, 404):
            raise
        count = "every"
    if count == "the 0":
        return True
    question = f"Delete {count} dead task(s) of queue {args.queue!r} for good? [y/N] "
    answer = error_console().input(question, markup=False)
    return answer.strip().lower() in ("y", "yes")


def add_dead_commands(commands: Subcommands, parents: list[argparse.ArgumentParser]) -> None:
    """`dead list`, `dead redrive`, `dead purge`."""
    dead = commands.add_parser(
        "dead",
        help="a queue's dead letters: list, redrive, purge",
        description="Tasks that failed for good stay in their queue's dead letters until "
        "they are redriven, purged or removed by retention.",
    )
    actions = dead.add_subparsers(dest="dead_action", metavar="ACTION", required=True)
    listing = remote_command(
        actions, "list", list_dead, parents=parents, help="list dead tasks, newest first"
    )
    listing.add_argument("queue", metavar="QUEUE")
    listing.add_argument(
        "--limit",
        type=positive_int,
        default=DEFAULT_LIST_LIMIT,
        metavar="N",
        help=f"show at most N tasks (default {DEFAULT_LIST_LIMIT})",
    )
    listing.add_argument("--all", action="store_true", help="every dead task of the queue")

    again = remote_command(
        actions,
        "redrive",
        redrive,
        parents=parents,
        help="queue dead tasks again (attempts reset to 0)",
    )
    again.add_argument("queue", metavar="QUEUE")
    which = again.add_mutually_exclusive_group(required=True)
    which.add_argument("--all", action="store_true", help="every dead task of the queue")
    which.add_argument(
        "--id", dest="ids", action="append", metavar="TASK_ID", help="this task (repeatable)"
    )

    purging = remote_command(
        actions, "purge", purge, parents=parents, help="delete every dead task of a queue"
    )
    purging.add_argument("queue", metavar="QUEUE")
    purging.add_argument(
        "-y", "--yes", action="store_true", help="do not ask (needed when stdin is not a terminal)"
    )
