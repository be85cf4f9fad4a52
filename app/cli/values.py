"""Parsers of flag values for the `taskgate` commands (argparse `type=` functions).

Each raises `argparse.ArgumentTypeError`, which argparse reports as a usage error (exit 2).
"""

from __future__ import annotations

import argparse
import json
from datetime import datetime
from pathlib import Path
from typing import Any


def json_value(text: str) -> Any:
    """A JSON document given inline, or as `@path` to read it from a file.

    Raises:
        argparse.ArgumentTypeError: unreadable file or not JSON.
    """
    source = "the value"
    if text.startswith("@"):
        source = text[1:]
        try:
            text = Path(source).read_text(encoding="utf-8")
        except OSError as exc:
            raise argparse.ArgumentTypeError(f"cannot read {source}: {exc.strerror}") from None
    try:
        return json.loads(text, parse_constant=_refuse_constant)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{source} is not JSON: {exc}") from None


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def timestamp_value(text: str) -> datetime:
    """An RFC 3339 timestamp with an offset, e.g. `2030-01-01T09:00:00+01:00` or `…Z`.

    Raises:
        argparse.ArgumentTypeError: not a timestamp, or one without an offset.
    """
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an RFC 3339 timestamp") from None
    if moment.tzinfo is None:
        raise argparse.ArgumentTypeError(f"{text!r} needs an offset, such as Z or +01:00")
    return moment


def seconds_value(text: str) -> float:
    """A number of seconds, 0 or more.

    Raises:
        argparse.ArgumentTypeError: anything else.
    """
    try:
        seconds = float(text)
    except ValueError:
        seconds = -1.0
    if not 0 <= seconds < float("inf"):
        raise argparse.ArgumentTypeError(f"must be seconds, 0 or more, got {text!r}")
    return seconds


def positive_int(text: str) -> int:
    """A whole number, 1 or more.

    Raises:
        argparse.ArgumentTypeError: anything else.
    """
    try:
        number = int(text)
    except ValueError:
        number = 0
    if number < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number, 1 or more, got {text!r}")
    return number
