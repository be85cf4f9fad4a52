"""What the commands that talk HTTP share: --url/--token/--output, the client, exit codes.

A command module registers parsers with `remote_command(...)` and a handler
`(client, args, output) -> exit code`; `run_remote` builds the client from the flags (or
TASKGATE_URL / TASKGATE_TOKEN) and turns every client error into one message on stderr.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Mapping
from typing import TextIO, TypeAlias

from app.cli.output import OUTPUT_FORMATS, Output
from runners import ApiError, Client, ClientError, TransportError
from runners.cli import DEFAULT_URL, token_value

RemoteHandler = Callable[[Client, argparse.Namespace, Output], int]
# A string: argparse's class is generic only in typeshed, not at run time.
Subcommands: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


def connection_flags(*, nested: bool = False) -> argparse.ArgumentParser:
    """A parent parser holding --url, --token and --output for remote commands.

    `nested` is for actions under a group that has the flags too (`queues show`): their
    defaults are left out, so `taskgate queues -o json show Q` keeps the group's value.
    """
    parent = argparse.ArgumentParser(add_help=False)
    group = parent.add_argument_group("server")
    unset = argparse.SUPPRESS if nested else None
    group.add_argument(
        "--url",
        metavar="URL",
        default=unset,
        help=f"the taskgate server (env TASKGATE_URL; default {DEFAULT_URL})",
    )
    group.add_argument(
        "--token",
        type=token_value,
        metavar="TOKEN",
        default=unset,
        help="bearer token sent with every request (env TASKGATE_TOKEN; prefer the variable: "
        "flags show in ps)",
    )
    group.add_argument(
        "-o",
        "--output",
        choices=OUTPUT_FORMATS,
        default=unset or "table",
        help="table (default), json or yaml",
    )
    return parent


def remote_command(
    commands: Subcommands,
    name: str,
    handler: RemoteHandler,
    *,
    parents: list[argparse.ArgumentParser],
    help: str,
    description: str | None = None,
    aliases: tuple[str, ...] = (),
) -> argparse.ArgumentParser:
    """Add subcommand `name` that runs `handler` with a client; returns its parser for flags."""
    parser: argparse.ArgumentParser = commands.add_parser(
        name,
        parents=parents,
        help=help,
        description=description or help[:1].upper() + help[1:] + ".",
        aliases=list(aliases),
    )
    parser.set_defaults(remote_handler=handler, command_parser=parser)
    return parser


def server_url(args: argparse.Namespace, environ: Mapping[str, str]) -> str:
    """--url, else TASKGATE_URL, else the local default."""
    return str(args.url or environ.get("TASKGATE_URL") or DEFAULT_URL)


def server_token(args: argparse.Namespace, environ: Mapping[str, str]) -> str | None:
    """--token, else TASKGATE_TOKEN (an empty variable counts as unset).

    Raises:
        argparse.ArgumentTypeError: the variable holds something unusable as a header.
    """
    if args.token:
        return str(args.token)
    text = environ.get("TASKGATE_TOKEN")
    return token_value(text) if text else None


def run_remote(args: argparse.Namespace, environ: Mapping[str, str] | None = None) -> int:
    """Run the parsed command's handler against the server; the process exit code."""
    environ = os.environ if environ is None else environ
    url = server_url(args, environ)
    try:
        token = server_token(args, environ)
    except argparse.ArgumentTypeError as exc:
        args.command_parser.error(f"TASKGATE_TOKEN {exc}")
    output = Output(args.output)
    try:
        with Client(url, token=token) as client:
            handler: RemoteHandler = args.remote_handler
            return handler(client, args, output)
    except ApiError as exc:
        report_problem(exc, token_given=token is not None)
    except TransportError as exc:
        print(f"taskgate: cannot reach {url}: {transport_reason(exc)}", file=sys.stderr)
    except ClientError as exc:  # any other failure of the client, still one line
        print(f"taskgate: {exc}", file=sys.stderr)
    except KeyboardInterrupt:
        print("taskgate: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # The reader (`| head`) went away: nothing more to say, and nowhere to say it.
        _silence_stdout()
    return EXIT_ERROR


def report_problem(error: ApiError, *, token_given: bool, stream: TextIO | None = None) -> None:
    """The problem's title and detail, each invalid field, and the request id, on stderr."""
    stream = stream or sys.stderr
    headline = f"taskgate: {error.title}"
    if error.detail:
        headline += f": {error.detail}"
    print(headline, file=stream)
    for field_error in error.errors:
        described = f"{field_error.field}: {field_error.message}"
        if described != error.detail:  # a lone error is often the detail word for word
            print(f"  {described}", file=stream)
    if error.status == 401 and not token_given:
        print("  (no token given: set TASKGATE_TOKEN or pass --token)", file=stream)
    if error.request_id:
        print(f"  request id: {error.request_id}", file=stream)


def transport_reason(error: TransportError) -> str:
    """Why no answer came, in a few words (the httpx error behind the SDK's)."""
    cause = error.__cause__
    if cause is None:
        return str(error)
    return str(cause) or type(cause).__name__


def _silence_stdout() -> None:
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
