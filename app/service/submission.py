"""Turns a validated submit body into a NewTask: ids, due time, request fingerprint."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

from ulid import ULID

from app.core.clock import parse_rfc3339_ms
from app.core.errors import FieldError, IdempotencyMismatch, InvalidInput
from app.core.jsontext import dump_json
from app.core.models import NewTask, Priority, RetryPatch


def new_task_id() -> str:
    """A time-sortable task id (ULID)."""
    return str(ULID())


def fingerprint(body: Mapping[str, Any]) -> str:
    """A stable hash of a submit body, to tell an idempotent replay from a different request."""
    canonical = dump_json(
        {key: value for key, value in body.items() if key != "idempotency_key"}, sort_keys=True
    )
    return hashlib.sha256(canonical).hexdigest()


def build_new_task(
    queue: str,
    body: Mapping[str, Any],
    header_key: str | None,
    now_ms: int,
    field_prefix: str = "body",
) -> NewTask:
    """A NewTask from a body that already passed the TaskSubmit schema.

    Raises:
        InvalidInput: rules the schema cannot say (the two idempotency keys disagree,
            an unreadable `run_at`).
    """
    body_key = body.get("idempotency_key")
    if header_key is not None and body_key is not None and header_key != body_key:
        raise IdempotencyMismatch(
            "the Idempotency-Key header and the body's idempotency_key differ; send one key"
        )
    run_at_ms = now_ms
    if "run_at" in body:
        try:
            run_at_ms = parse_rfc3339_ms(body["run_at"])
        except (ValueError, OverflowError) as exc:
            raise InvalidInput(
                "run_at is not a usable RFC 3339 timestamp",
                [FieldError(f"{field_prefix}.run_at", str(exc))],
            ) from None
    elif "delay_seconds" in body:
        run_at_ms = now_ms + round(float(body["delay_seconds"]) * 1000)
    retry = body.get("retry")
    idempotency_key = header_key if header_key is not None else body_key
    return NewTask(
        id=new_task_id(),
        queue=queue,
        type=body["type"],
        payload_json=dump_json(body.get("payload")).decode(),
        priority=Priority[body.get("priority", "normal")],
        run_at_ms=run_at_ms,
        max_attempts=body.get("max_attempts"),
        retry=None if retry is None else RetryPatch(**retry),
        lease_seconds=body.get("lease_seconds"),
        idempotency_key=idempotency_key,
        # Only a keyed submit is ever compared with an earlier one; skip the hash otherwise.
        request_hash=fingerprint(body) if idempotency_key is not None else "",
        tags=tuple(body.get("tags", ())),
    )
