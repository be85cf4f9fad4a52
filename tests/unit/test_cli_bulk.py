"""How `taskgate submit --jsonl` cuts its input into batches and words its rejections."""

from __future__ import annotations

import json

from app.cli.bulk import (
    MAX_BATCH_BYTES,
    MAX_BATCH_ITEMS,
    BulkSummary,
    read_batches,
    rejection_reason,
)
from runners import FieldError


def jsonl(*items: object) -> list[bytes]:
    return [(json.dumps(item) + "\n").encode() for item in items]


def test_batches_hold_at_most_the_api_limit_and_keep_line_numbers() -> None:
    lines = jsonl(*({"type": "t", "payload": n} for n in range(2 * MAX_BATCH_ITEMS + 5)))
    summary = BulkSummary()
    batches = list(read_batches(lines, summary))
    assert [len(batch.tasks) for batch in batches] == [MAX_BATCH_ITEMS, MAX_BATCH_ITEMS, 5]
    assert batches[1].lines[0] == MAX_BATCH_ITEMS + 1
    assert batches[1].tasks[0] == {"type": "t", "payload": MAX_BATCH_ITEMS}
    assert batches[-1].consumed_bytes == sum(len(line) for line in lines)
    assert summary.handled == 0, "nothing is counted before the server answers"


def test_a_batch_stays_under_the_byte_budget() -> None:
    big = "x" * (MAX_BATCH_BYTES // 3)
    batches = list(
        read_batches(jsonl(*({"type": "t", "payload": big} for _ in range(4))), BulkSummary())
    )
    assert [len(batch.tasks) for batch in batches] == [2, 2]
    assert all(batch.size <= MAX_BATCH_BYTES for batch in batches)


def test_lines_that_are_not_json_objects_are_rejected_here_by_number() -> None:
    lines = [
        b'{"type": "a"}\n',
        b"\n",
        b"   \n",
        b"not json\n",
        b"[1, 2]\n",
        b'{"type": "b", "payload": NaN}\n',
        b"\xff\xfe\n",
        b'{"type": "c"}',
    ]
    summary = BulkSummary()
    (batch,) = read_batches(lines, summary)
    assert batch.lines == [1, 8]
    assert batch.tasks == [{"type": "a"}, {"type": "c"}]
    assert [(r.line, r.status) for r in summary.rejections] == [
        (4, None),
        (5, None),
        (6, None),
        (7, None),
    ]
    assert summary.rejections[1].reason == "not a JSON object"
    assert "NaN" in summary.rejections[2].reason
    assert summary.rejected == 4


def test_rejection_reasons_name_fields_as_the_line_has_them() -> None:
    errors = [
        FieldError("body.tasks[41].type", "is required"),
        FieldError("body.tasks[41].retry.factor", "0 is less than the minimum of 1"),
        FieldError("body.tasks[41]", "Additional properties are not allowed"),
    ]
    assert rejection_reason("Invalid request", "…", errors) == (
        "type: is required; retry.factor: 0 is less than the minimum of 1; "
        "the task: Additional properties are not allowed"
    )
    assert rejection_reason("Idempotency key reused", "key 'k' was used", []) == "key 'k' was used"
    assert rejection_reason("Conflict", None, []) == "Conflict"
