"""Completions sent in small batches: many handlers finishing together share one request.

A completion waits at most `max_delay_s` (a few milliseconds) or until `max_items` are
pending, then one `POST /v1/tasks/complete` carries them all; each caller gets its own
item's outcome (a refused item raises its own error, e.g. LeaseLost, to its caller only).
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass

from .client import AsyncClient
from .errors import ApiError, ClientError
from .models import JSON

MAX_ITEMS = 100  # the server's limit per request


@dataclass(slots=True)
class _Pending:
    task_id: str
    lease_token: str
    result: JSON
    done: asyncio.Future[None]


class CompletionBatcher:
    """Collects completions and flushes them together."""

    def __init__(
        self, client: AsyncClient, *, max_items: int = 50, max_delay_s: float = 0.002
    ) -> None:
        self._client = client
        self._max_items = min(max_items, MAX_ITEMS)
        self._max_delay_s = max_delay_s
        self._pending: list[_Pending] = []
        self._timer: asyncio.TimerHandle | None = None
        self._flushes: set[asyncio.Task[None]] = set()

    async def complete(self, task_id: str, lease_token: str, result: JSON) -> None:
        """Record the result (batched with others).

        Raises:
            TypeError, ValueError: the result is not JSON (nothing was sent).
            ApiError: this item was refused (LeaseLost, NotFound, ...).
            ClientError: the request as a whole failed.
        """
        json.dumps(result, allow_nan=False)  # refuse a non-JSON result here, for this caller
        loop = asyncio.get_running_loop()
        pending = _Pending(task_id, lease_token, result, loop.create_future())
        self._pending.append(pending)
        if len(self._pending) >= self._max_items:
            self._flush_now()
        elif self._timer is None:
            self._timer = loop.call_later(self._max_delay_s, self._flush_now)
        await pending.done

    def _flush_now(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        batch, self._pending = self._pending, []
        if batch:
            flush = asyncio.create_task(self._send(batch))
            self._flushes.add(flush)
            flush.add_done_callback(self._flushes.discard)

    async def _send(self, batch: list[_Pending]) -> None:
        try:
            results = await self._client.complete_many(
                (p.task_id, p.lease_token, p.result) for p in batch
            )
        except ClientError as exc:
            for pending in batch:
                if not pending.done.done():
                    pending.done.set_exception(exc)
            return
        except BaseException as exc:  # cancelled mid-flight: nobody may wait forever
            for pending in batch:
                if not pending.done.done():
                    pending.done.set_exception(ClientError(f"the completion was not sent: {exc!r}"))
            raise
        for pending, outcome in zip(batch, results, strict=True):
            if pending.done.done():
                continue
            if outcome.ok:
                pending.done.set_result(None)
            else:
                assert outcome.problem is not None
                pending.done.set_exception(ApiError.from_problem(outcome.problem))
