"""`taskgate submit QUEUE --jsonl FILE`: one task object per line, sent through the batch endpoint.

Lines go to the server as they are (it is the judge of what a valid task is); only lines
that are not JSON objects are refused here. The summary counts created, existing
(idempotent replays) and rejected tasks and names the lines that were rejected.
"""

from __future__ import annotations

import json
import os
import re
import stat
import sys
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import IO, Any

from rich.console import Group, RenderableType
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.text import Text

from app.cli.output import Output, error_console, fields_table, grid
from app.cli.remote import EXIT_ERROR, EXIT_OK
from runners import BadRequest, Client, ClientError, FieldError

MAX_BATCH_ITEMS = 1000
# Keeps a request well under the server's default 10 MiB body limit; a 413 anyway (a
# smaller server limit) splits the batch in two and tries again.
MAX_BATCH_BYTES = 8 * 1024 * 1024
SHOWN_REJECTIONS = 5
_ITEM_FIELD_PREFIX = re.compile(r"^body\.tasks\[\d+\]\.?")


@dataclass(frozen=True, slots=True)
class Rejection:
    """A line that did not become a task; `status` is None when it was refused before sending."""

    line: int
    status: int | None
    reason: str


@dataclass(slots=True)
class BulkSummary:
    """What a bulk submit did so far."""

    created: int = 0
    existing: int = 0
    rejected: int = 0
    rejections: list[Rejection] = field(default_factory=list)

    def reject(self, rejection: Rejection) -> None:
        self.rejected += 1
        self.rejections.append(rejection)

    @property
    def handled(self) -> int:
        """Lines with an outcome so far."""
        return self.created + self.existing + self.rejected


@dataclass(slots=True)
class Batch:
    """Task objects for one request, the input lines they came from, and the input read so far."""

    lines: list[int] = field(default_factory=list)
    tasks: list[dict[str, Any]] = field(default_factory=list)
    size: int = 0
    consumed_bytes: int = 0


def read_batches(stream: Iterable[bytes], summary: BulkSummary) -> Iterator[Batch]:
    """Batches of at most MAX_BATCH_ITEMS objects and MAX_BATCH_BYTES; bad lines go to `summary`."""
    batch = Batch()
    consumed = 0
    for number, raw in enumerate(stream, start=1):
        consumed += len(raw)
        text = raw.strip()
        if not text:
            continue
        try:
            item = json.loads(text, parse_constant=_refuse_constant)
        except ValueError as exc:  # UnicodeDecodeError included
            summary.reject(Rejection(number, None, f"not JSON: {exc}"))
            continue
        if not isinstance(item, dict):
            summary.reject(Rejection(number, None, "not a JSON object"))
            continue
        full = len(batch.tasks) >= MAX_BATCH_ITEMS or batch.size + len(text) > MAX_BATCH_BYTES
        if batch.tasks and full:
            yield batch
            batch = Batch()
        batch.lines.append(number)
        batch.tasks.append(item)
        batch.size += len(text)
        batch.consumed_bytes = consumed
    if batch.tasks:
        batch.consumed_bytes = consumed
        yield batch


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def rejection_reason(title: str, detail: str | None, errors: Sequence[FieldError]) -> str:
    """A problem in a few words, fields named as in the line (`type`, not `body.tasks[6].type`)."""
    if errors:
        return "; ".join(
            f"{_ITEM_FIELD_PREFIX.sub('', error.field) or 'the task'}: {error.message}"
            for error in errors
        )
    return detail or title


def send_batch(client: Client, queue: str, batch: Batch, summary: BulkSummary) -> None:
    """Submit one batch and count each item's outcome.

    Raises:
        ClientError: the request as a whole failed for a reason other than its content.
    """
    try:
        result = client.submit_batch(queue, batch.tasks)
    except BadRequest as exc:
        if exc.status == 413 and len(batch.tasks) > 1:
            middle = len(batch.tasks) // 2
            for half in (slice(None, middle), slice(middle, None)):
                send_batch(client, queue, Batch(batch.lines[half], batch.tasks[half]), summary)
            return
        reason = rejection_reason(exc.title, exc.detail, exc.errors)
        for line in batch.lines:
            summary.reject(Rejection(line, exc.status, reason))
        return
    for item in result.results:
        if item.status == 201:
            summary.created += 1
        elif item.status == 200:
            summary.existing += 1
        else:
            problem = item.error
            reason = (
                rejection_reason(problem.title, problem.detail, problem.errors)
                if problem is not None
                else f"status {item.status}"
            )
            summary.reject(Rejection(batch.lines[item.index], item.status, reason))


def summary_table(summary: BulkSummary) -> RenderableType:
    counts = fields_table(
        [
            ("created", summary.created),
            ("existing", summary.existing),
            ("rejected", summary.rejected),
        ]
    )
    if not summary.rejections:
        return counts
    shown = sorted(summary.rejections, key=lambda rejection: rejection.line)[:SHOWN_REJECTIONS]
    reasons = grid(
        ("line", "status", "reason"),
        ((r.line, r.status if r.status is not None else "not sent", r.reason) for r in shown),
    )
    parts: list[RenderableType] = [counts, Text(""), reasons]
    hidden = len(summary.rejections) - len(shown)
    if hidden:
        parts.append(Text(f"… and {hidden} more (-o json lists every rejection)"))
    return Group(*parts)


def summary_data(summary: BulkSummary) -> dict[str, Any]:
    rejections = sorted(summary.rejections, key=lambda rejection: rejection.line)
    return {
        "created": summary.created,
        "existing": summary.existing,
        "rejected": summary.rejected,
        "rejections": [
            {"line": r.line, "status": r.status, "reason": r.reason} for r in rejections
        ],
    }


def _input_size(stream: IO[bytes]) -> int | None:
    """The byte size of a regular file (for a progress bar with an end), else None."""
    try:
        info = os.fstat(stream.fileno())
    except (OSError, ValueError):
        return None
    return info.st_size if stat.S_ISREG(info.st_mode) else None


def submit_jsonl(client: Client, queue: str, path: str, output: Output) -> int:
    """Submit every task object of `path` ('-': stdin) to `queue`; exit 1 if any was rejected.

    Raises:
        ClientError: a batch failed as a whole (token refused, server gone); the summary of
            what was done before is printed first.
    """
    try:
        stream: IO[bytes] = sys.stdin.buffer if path == "-" else open(path, "rb")  # noqa: SIM115
    except OSError as exc:
        print(f"taskgate: cannot read {path}: {exc.strerror}", file=sys.stderr)
        return EXIT_ERROR
    summary = BulkSummary()
    console = error_console()
    progress = Progress(
        SpinnerColumn(),
        BarColumn(),
        TextColumn("{task.fields[handled]:,} lines"),
        TimeElapsedColumn(),
        console=console,
        transient=True,
        # On a terminal only: a redirected stderr gets the errors alone.
        disable=not console.is_terminal,
    )
    try:
        with stream, progress:
            bar = progress.add_task("submit", total=_input_size(stream), handled=0)
            for batch in read_batches(stream, summary):
                send_batch(client, queue, batch, summary)
                progress.update(bar, completed=batch.consumed_bytes, handled=summary.handled)
    except ClientError:
        if summary.handled:
            output.show(summary_data(summary), lambda: summary_table(summary))
        raise
    output.show(summary_data(summary), lambda: summary_table(summary))
    return EXIT_ERROR if summary.rejected else EXIT_OK
