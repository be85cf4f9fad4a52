"""`taskgate submit | get (status) | wait | list | cancel`: tasks over HTTP through runners.Client.

`submit` without a TYPE reads JSON Lines and hands over to `app.cli.bulk`.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Iterable
from typing import Any

from rich.console import RenderableType

from app.cli.bulk import submit_jsonl
from app.cli.output import Output, compact_json, fields_table, grid
from app.cli.remote import EXIT_ERROR, EXIT_OK, Subcommands, remote_command
from app.cli.values import json_value, positive_int, seconds_value, timestamp_value
from runners import Client, Priority, Task, TaskPage, TaskState, WaitTimeout

# The API's page size limit (`limit` on list endpoints).
MAX_PAGE = 1000
DEFAULT_LIST_LIMIT = 100


# -- tables ------------------------------------------------------------------------------


def task_fields(task: Task) -> RenderableType:
    """One task, field by field."""
    rows: list[tuple[str, Any]] = [
        ("id", task.id),
        ("queue", task.queue),
        ("type", task.type),
        ("state", task.state),
        ("priority", task.priority),
        ("attempts", f"{task.attempts} of {task.max_attempts}"),
        ("run at", task.run_at),
        ("created at", task.created_at),
        ("started at", task.started_at),
        ("finished at", task.finished_at),
        ("worker", task.worker_id),
        ("lease expires", task.lease_expires_at),
        ("payload", compact_json(task.payload)),
    ]
    if task.cancel_requested:
        rows.append(("cancel requested", True))
    if task.result is not None:
        rows.append(("result", compact_json(task.result)))
    if task.last_error is not None:
        error = task.last_error
        described = f"{error.type}: {error.message}" if error.type else error.message
        rows.append(("last error", described))
    rows.append(("tags", ", ".join(task.tags) or None))
    rows.append(("idempotency key", task.idempotency_key))
    return fields_table(rows)


def task_rows(tasks: Iterable[Task]) -> RenderableType:
    """Tasks, one per row."""
    return grid(
        ("id", "queue", "type", "state", "priority", "attempts", "run at", "created at"),
        (
            (
                task.id,
                task.queue,
                task.type,
                task.state,
                task.priority,
                f"{task.attempts}/{task.max_attempts}",
                task.run_at,
                task.created_at,
            )
            for task in tasks
        ),
    )


def collect_pages(
    fetch_page: Callable[[str | None, int], TaskPage], limit: int, everything: bool
) -> tuple[list[Task], bool]:
    """Tasks across pages (at most `limit` unless `everything`), and whether more may match."""
    tasks: list[Task] = []
    cursor: str | None = None
    while True:
        wanted = MAX_PAGE if everything else min(MAX_PAGE, limit - len(tasks))
        page = fetch_page(cursor, wanted)
        tasks.extend(page.tasks)
        cursor = page.next_cursor
        if cursor is None or not page.tasks:
            return tasks, False
        if not everything and len(tasks) >= limit:
            return tasks, True


def warn_truncated(shown: int) -> None:
    print(
        f"taskgate: showing the first {shown}; more may match (raise --limit, or --all)",
        file=sys.stderr,
    )


# -- handlers --------------------------------------------------------------------------

# Flags that describe one task (flag → attribute); refused with --jsonl.
SINGLE_TASK_FLAGS = {
    "--payload": "payload",
    "--priority": "priority",
    "--delay-seconds": "delay_seconds",
    "--run-at": "run_at",
    "--max-attempts": "max_attempts",
    "--lease-seconds": "lease_seconds",
    "--idempotency-key": "idempotency_key",
    "--tag": "tags",
}


def submit(client: Client, args: argparse.Namespace, output: Output) -> int:
    if args.jsonl is None and args.type is None:
        if sys.stdin.isatty():
            args.command_parser.error("give a TYPE, or --jsonl FILE ('-' for stdin) for many")
        args.jsonl = "-"
    if args.jsonl is not None:
        if args.type is not None:
            args.command_parser.error("give either a TYPE or --jsonl, not both")
        single_task_flags = [
            flag for flag, name in SINGLE_TASK_FLAGS.items() if getattr(args, name) is not None
        ]
        if single_task_flags:
            args.command_parser.error(
                f"{', '.join(single_task_flags)} describe one task; with --jsonl each line "
                "carries its own fields"
            )
        return submit_jsonl(client, args.queue, args.jsonl, output)
    task = client.submit(
        args.queue,
        args.type,
        args.payload,
        priority=args.priority,
        delay_seconds=args.delay_seconds,
        run_at=args.run_at,
        max_attempts=args.max_attempts,
        lease_seconds=args.lease_seconds,
        idempotency_key=args.idempotency_key,
        tags=args.tags,
    )
    if args.quiet:
        output.line(task.id)
    else:
        output.show(task, lambda: task_fields(task))
    return EXIT_OK


def get(client: Client, args: argparse.Namespace, output: Output) -> int:
    task = client.get(args.task_id)
    output.show(task, lambda: task_fields(task))
    return EXIT_OK


def wait(client: Client, args: argparse.Namespace, output: Output) -> int:
    try:
        task = client.wait(args.task_id, timeout=args.timeout)
    except WaitTimeout as exc:
        print(
            f"taskgate: gave up after {args.timeout:g} s: task {exc.task.id} is still "
            f"{exc.task.state}",
            file=sys.stderr,
        )
        return EXIT_ERROR
    output.show(task, lambda: task_fields(task))
    return EXIT_OK if task.state is TaskState.SUCCEEDED else EXIT_ERROR


def list_tasks(client: Client, args: argparse.Namespace, output: Output) -> int:
    def fetch_page(cursor: str | None, limit: int) -> TaskPage:
        return client.list_tasks(
            queue=args.queue,
            state=args.state,
            type=args.type,
            tag=args.tag,
            limit=limit,
            cursor=cursor,
        )

    tasks, more = collect_pages(fetch_page, args.limit, args.all)
    output.show(tasks, lambda: task_rows(tasks))
    if more:
        warn_truncated(len(tasks))
    return EXIT_OK


def cancel(client: Client, args: argparse.Namespace, output: Output) -> int:
    task = client.cancel(args.task_id)
    output.show(task, lambda: task_fields(task))
    return EXIT_OK


# -- parsers ---------------------------------------------------------------------------


def add_task_commands(commands: Subcommands, parents: list[argparse.ArgumentParser]) -> None:
    """`submit`, `get` (alias `status`), `wait`, `list`, `cancel`."""
    submit_parser = remote_command(
        commands,
        "submit",
        submit,
        parents=parents,
        help="submit a task, or many as JSON Lines",
        description="Submit one task of TYPE to QUEUE, or, with --jsonl (or piped stdin and "
        "no TYPE), one task object per line, sent in batches of up to 1,000.",
    )
    submit_parser.add_argument("queue", metavar="QUEUE")
    submit_parser.add_argument("type", metavar="TYPE", nargs="?", help="the task type")
    submit_parser.add_argument(
        "--jsonl",
        metavar="FILE",
        help="read task objects (the API's TaskSubmit: type, payload, …) one per line from "
        "FILE, '-' for stdin",
    )
    submit_parser.add_argument(
        "--payload", type=json_value, metavar="JSON", help="the payload: JSON, or @file.json"
    )
    submit_parser.add_argument("--priority", choices=[p.value for p in Priority])
    due = submit_parser.add_mutually_exclusive_group()
    due.add_argument("--delay-seconds", type=seconds_value, metavar="S", help="due in S seconds")
    due.add_argument(
        "--run-at", type=timestamp_value, metavar="TIME", help="due at an RFC 3339 time"
    )
    submit_parser.add_argument("--max-attempts", type=positive_int, metavar="N")
    submit_parser.add_argument("--lease-seconds", type=positive_int, metavar="S")
    submit_parser.add_argument("--idempotency-key", metavar="KEY")
    submit_parser.add_argument(
        "--tag", dest="tags", action="append", metavar="TAG", help="a tag (repeatable)"
    )
    submit_parser.add_argument(
        "-q", "--quiet", action="store_true", help="print only the new task's id"
    )

    for name, handler, text in (
        ("get", get, "show a task"),
        ("cancel", cancel, "cancel a queued task, or ask a running one's worker to stop"),
    ):
        parser = remote_command(
            commands,
            name,
            handler,
            parents=parents,
            help=text,
            aliases=("status",) if name == "get" else (),
        )
        parser.add_argument("task_id", metavar="TASK_ID")

    wait_parser = remote_command(
        commands,
        "wait",
        wait,
        parents=parents,
        help="wait for a task to finish; exit 0 only if it succeeded",
        description="Long-poll the task until it is succeeded, dead or cancelled, then show "
        "it. Exit code 0 if it succeeded, 1 if it did not or --timeout passed first.",
    )
    wait_parser.add_argument("task_id", metavar="TASK_ID")
    wait_parser.add_argument(
        "--timeout", type=seconds_value, metavar="S", help="give up after S seconds"
    )

    list_parser = remote_command(
        commands, "list", list_tasks, parents=parents, help="list tasks, newest first"
    )
    list_parser.add_argument("--queue", metavar="QUEUE")
    list_parser.add_argument("--state", choices=[s.value for s in TaskState])
    list_parser.add_argument("--type", metavar="TYPE")
    list_parser.add_argument("--tag", metavar="TAG")
    list_parser.add_argument(
        "--limit",
        type=positive_int,
        default=DEFAULT_LIST_LIMIT,
        metavar="N",
        help=f"show at most N tasks (default {DEFAULT_LIST_LIMIT})",
    )
    list_parser.add_argument(
        "--all", action="store_true", help="every matching task (pages through them all)"
    )
