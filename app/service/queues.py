"""Queue use-cases: stats, configuration, pause/resume, dead letters, the worker registry."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from app.core.clock import Clock
from app.core.errors import FieldError, InvalidInput, NotFound
from app.core.models import (
    Delivery,
    DeliveryConfig,
    QueueInfo,
    QueueOverrides,
    RetryPatch,
    Task,
    Webhook,
    WorkerInfo,
)
from app.dispatch.signing import is_valid_secret, new_secret
from app.dispatch.ssrf import AllowList, Resolver, check_target, system_resolver
from app.service.waiters import Waiters, queue_key
from app.store.base import Store

CONFIG_FIELDS = ("max_attempts", "retry", "lease_seconds", "retention_seconds")

# Woken when a queue's delivery or paused flag changes in this process (the dispatcher).
PUSH_QUEUES_KEY = "push-queues"


class QueueService:
    """Operations on queues as a whole."""

    def __init__(
        self,
        store: Store,
        waiters: Waiters,
        clock: Clock,
        webhook_allow: AllowList | None = None,
        resolver: Resolver = system_resolver,
    ) -> None:
        self._store = store
        self._waiters = waiters
        self._clock = clock
        self._webhook_allow = webhook_allow or AllowList()
        self._resolver = resolver

    async def list_all(self) -> list[QueueInfo]:
        """Every known queue with live stats."""
        return await self._store.list_queues(self._clock.now_ms())

    async def get(self, name: str) -> QueueInfo:
        """One queue with live stats.

        Raises:
            NotFound: the queue has never been used or configured.
        """
        info = await self._store.get_queue(name, self._clock.now_ms())
        if info is None:
            raise NotFound(f"queue {name!r} does not exist (it is created by its first submit)")
        return info

    async def configure(self, name: str, patch: Mapping[str, Any]) -> QueueInfo:
        """Set the fields present in `patch` (None resets one to the server default).

        Raises:
            InvalidInput: push without a webhook, a refused webhook URL (SSRF guard) or
                an unusable signing secret; nothing is changed then.
        """
        delivery = await self._delivery_change(name, patch)
        retry = patch.get("retry")
        overrides = QueueOverrides(
            max_attempts=patch.get("max_attempts"),
            retry=None if retry is None else RetryPatch(**retry),
            lease_seconds=patch.get("lease_seconds"),
            retention_seconds=patch.get("retention_seconds"),
        )
        fields = frozenset(key for key in CONFIG_FIELDS if key in patch)
        info = await self._store.configure_queue(
            name, overrides, fields, self._clock.now_ms(), delivery
        )
        if delivery is not None:
            self._waiters.notify(PUSH_QUEUES_KEY)
        return info

    async def _delivery_change(self, name: str, patch: Mapping[str, Any]) -> DeliveryConfig | None:
        """The queue's delivery after the patch (None: the patch does not touch it)."""
        if "delivery" not in patch and "webhook" not in patch:
            return None
        current = await self._store.get_queue(name, self._clock.now_ms())
        before = current.delivery if current is not None else DeliveryConfig()
        webhook = before.webhook
        if "webhook" in patch:
            webhook = await self._webhook_from(patch["webhook"], before.webhook)
        mode = Delivery(patch.get("delivery", before.mode))
        if mode is Delivery.push and webhook is None:
            raise InvalidInput(
                "delivery push needs a webhook: send one in this request",
                [FieldError("body.webhook", "required when delivery is push")],
            )
        return DeliveryConfig(mode=mode, webhook=webhook)

    async def _webhook_from(
        self, data: Mapping[str, Any] | None, before: Webhook | None
    ) -> Webhook | None:
        if data is None:
            return None
        await check_target(data["url"], self._webhook_allow, self._resolver)
        secrets = data.get("signing_secrets")
        if secrets is None:
            secrets = before.signing_secrets if before is not None else [new_secret()]
        for index, secret in enumerate(secrets):
            if not is_valid_secret(secret):
                raise InvalidInput(
                    "a signing secret is not `whsec_` followed by base64 of at least 16 bytes",
                    [FieldError(f"body.webhook.signing_secrets[{index}]", "not a usable secret")],
                )
        return Webhook(
            url=data["url"],
            signing_secrets=tuple(dict.fromkeys(secrets)),
            timeout_seconds=float(data.get("timeout_seconds", 30.0)),
            max_concurrency=int(data.get("max_concurrency", 10)),
            max_dispatches_per_second=data.get("max_dispatches_per_second"),
            retry_client_errors=bool(data.get("retry_client_errors", False)),
        )

    async def pause(self, name: str, reason: str | None) -> QueueInfo:
        """Stop handing out claims from the queue (submits are still accepted)."""
        info = await self._store.set_paused(name, True, reason, self._clock.now_ms())
        self._waiters.notify(PUSH_QUEUES_KEY)
        return info

    async def resume(self, name: str) -> QueueInfo:
        """Hand out claims again."""
        info = await self._store.set_paused(name, False, None, self._clock.now_ms())
        self._waiters.notify(queue_key(name))
        self._waiters.notify(PUSH_QUEUES_KEY)
        return info

    async def list_dead(
        self, queue: str, before_id: str | None, limit: int
    ) -> tuple[list[Task], str | None]:
        """A page of the queue's dead tasks and the next cursor."""
        page = await self._store.list_dead(queue, before_id, limit + 1)
        if len(page) > limit:
            page = page[:limit]
            return page, page[-1].id
        return page, None

    async def redrive(self, queue: str, task_ids: Sequence[str] | None) -> int:
        """Queue dead tasks again, due now with fresh attempts."""
        moved = await self._store.redrive(queue, task_ids, self._clock.now_ms())
        if moved:
            self._waiters.notify(queue_key(queue))
        return moved

    async def purge_dead(self, queue: str) -> int:
        """Delete the queue's dead tasks."""
        return await self._store.purge_dead(queue)

    async def workers(self, limit: int = 1000) -> list[WorkerInfo]:
        """Workers seen through claims and heartbeats, most recent first."""
        return await self._store.list_workers(limit)
