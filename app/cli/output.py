"""How the remote commands print: `--output table` (rich), `json` or `yaml`, from the SDK's records.

JSON and YAML carry every field under the API's names, timestamps in RFC 3339 UTC;
tables are for people and show the fields that matter at a glance.
"""

from __future__ import annotations

import dataclasses
import json
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from enum import Enum
from typing import Any, TextIO

import yaml
from rich.console import Console, RenderableType
from rich.table import Table
from rich.text import Text

OUTPUT_FORMATS = ("table", "json", "yaml")
# Wider than any terminal: a table piped to a file or grep keeps one row per line.
UNBOUNDED_WIDTH = 10_000


def plain(value: Any) -> Any:
    """`value` (SDK records, enums, datetimes, tuples) as plain JSON-ready data."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {item.name: plain(getattr(value, item.name)) for item in dataclasses.fields(value)}
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, datetime):
        return rfc3339(value)
    if isinstance(value, Mapping):
        return {str(key): plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [plain(item) for item in value]
    return value


def rfc3339(moment: datetime) -> str:
    """`2026-12-04T20:48:41.942Z`: the API's own timestamp form."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def short_time(moment: datetime | None) -> str:
    """A timestamp to the second for a table cell (`-` for none)."""
    if moment is None:
        return "-"
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def compact_json(value: Any) -> str:
    """One-line JSON for a payload or result in a table cell."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def cell(value: Any) -> Text:
    """A table cell shown literally: a `[` in a task type is text, not rich markup."""
    if value is None:
        return Text("-")
    if isinstance(value, bool):
        return Text("yes" if value else "no")
    if isinstance(value, Enum):
        return Text(str(value.value))
    if isinstance(value, datetime):
        return Text(short_time(value))
    return Text(str(value))


def grid(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> Table:
    """A borderless table, one row per record, headers in capitals."""
    table = Table(box=None, pad_edge=False, show_edge=False, header_style="bold")
    for header in headers:
        table.add_column(header.upper(), no_wrap=True)
    for row in rows:
        table.add_row(*(cell(value) for value in row))
    return table


def fields_table(rows: Iterable[tuple[str, Any]]) -> Table:
    """A two-column table of one record: field name, value."""
    table = Table(box=None, pad_edge=False, show_edge=False, show_header=False)
    table.add_column(style="bold", no_wrap=True)
    table.add_column(overflow="fold")
    for name, value in rows:
        table.add_row(Text(name), cell(value))
    return table


class Output:
    """Where and how a command prints its answer (stdout), in the format `--output` chose."""

    def __init__(self, output_format: str, stream: TextIO | None = None) -> None:
        self.format = output_format
        self._stream = stream or sys.stdout
        terminal = self._stream.isatty()
        self._console = Console(
            file=self._stream,
            width=None if terminal else UNBOUNDED_WIDTH,
            highlight=False,
            markup=False,
            emoji=False,
            soft_wrap=not terminal,
        )

    def show(self, data: Any, table: Callable[[], RenderableType]) -> None:
        """Print `data` as JSON or YAML, or the table `table()` builds from it."""
        if self.format == "json":
            self._stream.write(json.dumps(plain(data), indent=2, ensure_ascii=False) + "\n")
        elif self.format == "yaml":
            self._stream.write(yaml.safe_dump(plain(data), sort_keys=False, allow_unicode=True))
        else:
            with self._console.capture() as captured:
                self._console.print(table())
            # rich pads the last column to its width; trailing blanks only get in the way.
            self._stream.writelines(line.rstrip() + "\n" for line in captured.get().splitlines())
        self._stream.flush()

    def line(self, text: str) -> None:
        """A line of plain text (a bare id for scripts)."""
        self._stream.write(text + "\n")
        self._stream.flush()


def error_console() -> Console:
    """stderr for progress bars and prompts; plain when it is not a terminal."""
    return Console(stderr=True, highlight=False, markup=False, emoji=False)
