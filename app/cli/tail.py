"""`taskgate tail`: task state changes as they happen, from the event stream (GET /v1/events).

One line per change and flushed at once, so it can be piped: a plain line by default, one
JSON object per line with `-o json` (JSON Lines), one YAML document per change with
`-o yaml`. It runs until interrupted (or, with `--once`, until the server ends a stream).
"""

from __future__ import annotations

import argparse
import json
import sys

import yaml

from app.cli.output import Output, plain, rfc3339
from app.cli.remote import EXIT_OK, Subcommands, remote_command
from runners import Client, EventsMissed, TaskEvent


def event_line(event: TaskEvent) -> str:
    """`2026-12-05T02:03:26.417Z  emails  01M9…  running  attempt 1  #2`"""
    return (
        f"{rfc3339(event.at)}  {event.queue}  {event.task_id}  {event.state.value}"
        f"  attempt {event.attempts}  #{event.id}"
    )


def show_event(event: TaskEvent, output: Output) -> None:
    if output.format == "json":
        output.line(json.dumps(plain(event), ensure_ascii=False, separators=(",", ":")))
    elif output.format == "yaml":
        output.line("---\n" + yaml.safe_dump(plain(event), sort_keys=False).rstrip())
    else:
        output.line(event_line(event))


def tail_events(client: Client, args: argparse.Namespace, output: Output) -> int:
    for item in client.events(args.queue, after=args.after, follow=not args.once):
        if isinstance(item, EventsMissed):
            print(f"taskgate: some events were missed ({item.reason})", file=sys.stderr)
        else:
            show_event(item, output)
    return EXIT_OK


def add_tail_command(commands: Subcommands, parents: list[argparse.ArgumentParser]) -> None:
    """`tail`."""
    parser = remote_command(
        commands,
        "tail",
        tail_events,
        parents=parents,
        help="print task state changes as they happen, until interrupted",
        description="Print task state changes as they happen (GET /v1/events), one line "
        "each, until interrupted. Needs a token with tasks:read.",
    )
    parser.add_argument("--queue", help="only the changes of this queue's tasks")
    parser.add_argument(
        "--after",
        type=int,
        metavar="EVENT_ID",
        help="start after this event id (the number after # on each line), "
        "replaying what happened since; default: from now on",
    )
    parser.add_argument(
        "--once",
        action="store_true",
        help="stop when the server ends the stream (within its long-poll limit, 25 s "
        "by default) instead of reconnecting",
    )
