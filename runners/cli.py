"""The `runner` command (`taskgate runner …` and `python -m runners …`): load a Runner, run it.

Flags fall back to environment variables: `--url` to TASKGATE_URL, `--worker-id` to
TASKGATE_WORKER_ID, `--token` to TASKGATE_TOKEN, `--lease-seconds` to
TASKGATE_LEASE_SECONDS and `--grace` to TASKGATE_GRACE_SECONDS.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import math
import os
import sys
from collections.abc import Callable, Mapping
from typing import TypeVar

from .runner import Runner

DEFAULT_URL = "http://127.0.0.1:8000"
# ClaimRequest.lease_seconds in openapi.yaml.
MIN_LEASE_SECONDS = 1
MAX_LEASE_SECONDS = 43_200

V = TypeVar("V")


class RunnerNotFound(ValueError):
    """The MODULE:ATTRIBUTE target does not name a `Runner`."""


class UsageError(ValueError):
    """A flag or its environment variable has an unusable value (the message names it)."""


def lease_seconds_value(text: str) -> int:
    """A `--lease-seconds` value: whole seconds from 1 to 43200.

    Raises:
        argparse.ArgumentTypeError: anything else.
    """
    try:
        seconds = int(text)
    except ValueError:
        seconds = 0
    if not MIN_LEASE_SECONDS <= seconds <= MAX_LEASE_SECONDS:
        raise argparse.ArgumentTypeError(
            f"must be whole seconds from {MIN_LEASE_SECONDS} to {MAX_LEASE_SECONDS}, got {text!r}"
        )
    return seconds


def grace_seconds_value(text: str) -> float:
    """A `--grace` value: seconds, 0 or more (0 hands in-flight tasks back at once).

    Raises:
        argparse.ArgumentTypeError: anything else.
    """
    try:
        seconds = float(text)
    except ValueError:
        seconds = math.nan
    if not (math.isfinite(seconds) and seconds >= 0):
        raise argparse.ArgumentTypeError(f"must be seconds, 0 or more, got {text!r}")
    return seconds


def token_value(text: str) -> str:
    """A `--token` value: printable ASCII without spaces (it goes into a header).

    Raises:
        argparse.ArgumentTypeError: empty or unusable; the message never repeats the token.
    """
    if not text:
        raise argparse.ArgumentTypeError("must not be empty")
    if not all("!" <= char <= "~" for char in text):
        raise argparse.ArgumentTypeError("must be printable ASCII without spaces")
    return text


def add_runner_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the runner's target and flags to `parser`."""
    parser.add_argument(
        "target", metavar="MODULE:ATTRIBUTE", help="the Runner to start, e.g. myapp.tasks:runner"
    )
    parser.add_argument(
        "--queue",
        action="append",
        dest="queues",
        metavar="NAME",
        help="a queue to consume (repeat for several; default: the runner's own queues)",
    )
    parser.add_argument(
        "--concurrency",
        type=int,
        metavar="N",
        help="tasks run at once (default: the runner's own setting)",
    )
    parser.add_argument(
        "--url",
        metavar="URL",
        help=f"the taskgate server (default: $TASKGATE_URL, the runner's own, then {DEFAULT_URL})",
    )
    parser.add_argument(
        "--token",
        type=token_value,
        metavar="TOKEN",
        help="sent as 'Authorization: Bearer TOKEN' on every request (default: "
        "$TASKGATE_TOKEN, then the runner's own; prefer the variable: flags show in ps)",
    )
    parser.add_argument(
        "--worker-id",
        metavar="ID",
        help="the id the runner claims under (default: $TASKGATE_WORKER_ID, else host:pid:random)",
    )
    parser.add_argument(
        "--lease-seconds",
        type=lease_seconds_value,
        metavar="S",
        help=f"lease asked for on each claim and heartbeat, {MIN_LEASE_SECONDS}-"
        f"{MAX_LEASE_SECONDS} (default: $TASKGATE_LEASE_SECONDS, the runner's own, then "
        "the task's or queue's lease)",
    )
    parser.add_argument(
        "--grace",
        type=grace_seconds_value,
        metavar="S",
        help="seconds in-flight tasks get to finish after SIGTERM/SIGINT before they are "
        "failed back as retryable (default: $TASKGATE_GRACE_SECONDS, then the runner's own, 30)",
    )
    parser.add_argument(
        "--log-level",
        default="INFO",
        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
        help="logging level (default: INFO)",
    )


def load_runner(target: str) -> Runner:
    """Import `MODULE:ATTRIBUTE` (the working directory is importable) and return the Runner.

    Raises:
        RunnerNotFound: a malformed target, a missing module or attribute, or not a Runner.
    """
    module_name, _, attribute = target.partition(":")
    if not module_name or not attribute:
        raise RunnerNotFound(f"{target!r} is not MODULE:ATTRIBUTE")
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        raise RunnerNotFound(f"cannot import {module_name!r}: {exc}") from exc
    runner = getattr(module, attribute, None)
    if not isinstance(runner, Runner):
        raise RunnerNotFound(f"{target} is {type(runner).__name__}, not a runners.Runner")
    return runner


def _flag_or_env(
    flag_value: V | None, environ: Mapping[str, str], variable: str, parse: Callable[[str], V]
) -> V | None:
    """The flag's value, else the variable's (an empty variable counts as unset).

    Raises:
        UsageError: the variable's value does not parse.
    """
    if flag_value is not None:
        return flag_value
    text = environ.get(variable)
    if not text:
        return None
    try:
        return parse(text)
    except argparse.ArgumentTypeError as exc:
        raise UsageError(f"{variable} {exc}") from exc


def apply_arguments(
    runner: Runner, args: argparse.Namespace, environ: Mapping[str, str] | None = None
) -> None:
    """Apply the flags (else their TASKGATE_* variables) of `args` to `runner`.

    Raises:
        UsageError: a value is out of range, or there is no queue to consume.
    """
    environ = os.environ if environ is None else environ
    if args.queues:
        runner.queues = tuple(args.queues)
    if args.concurrency is not None:
        if args.concurrency < 1:
            raise UsageError("--concurrency must be at least 1")
        runner.concurrency = args.concurrency
    runner.base_url = args.url or environ.get("TASKGATE_URL") or runner.base_url or DEFAULT_URL
    worker_id = args.worker_id or environ.get("TASKGATE_WORKER_ID")
    if worker_id:
        runner.worker_id = worker_id
    token = _flag_or_env(args.token, environ, "TASKGATE_TOKEN", token_value)
    if token is not None:
        runner.token = token
    lease_seconds = _flag_or_env(
        args.lease_seconds, environ, "TASKGATE_LEASE_SECONDS", lease_seconds_value
    )
    if lease_seconds is not None:
        runner.lease_seconds = lease_seconds
    grace = _flag_or_env(args.grace, environ, "TASKGATE_GRACE_SECONDS", grace_seconds_value)
    if grace is not None:
        runner.shutdown_grace_seconds = grace
    if not runner.queues:
        raise UsageError("no queue (give --queue NAME)")


def run_from_args(args: argparse.Namespace) -> int:
    """Load the runner named by `args`, apply the flags, run until SIGTERM/SIGINT; exit code."""
    logging.basicConfig(
        level=args.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        runner = load_runner(args.target)
        apply_arguments(runner, args)
    except (RunnerNotFound, UsageError) as exc:
        print(f"taskgate runner: {exc}", file=sys.stderr)
        return 2
    runner.run_forever()
    return 0


def main(argv: list[str] | None = None) -> int:
    """`python -m runners MODULE:ATTRIBUTE [flags]`."""
    parser = argparse.ArgumentParser(
        prog="python -m runners", description="Run a taskgate Runner until SIGTERM or SIGINT."
    )
    add_runner_arguments(parser)
    return run_from_args(parser.parse_args(argv))
