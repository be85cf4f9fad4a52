"""Typed views of a queue: its live counts, its task defaults, and how its tasks are delivered.

`WebhookPatch` is what `configure_queue` sends to make a queue push its tasks to a webhook.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from .models import RetryPolicy


class Delivery(StrEnum):
    """How a queue hands out its tasks."""

    PULL = "pull"
    """Workers claim them (`claim`, a `Runner`)."""
    PUSH = "push"
    """The server POSTs each due task to the queue's webhook; claims are refused (409)."""


@dataclass(frozen=True, slots=True)
class QueueCounts:
    """Tasks of a queue by state; `queued` is `due` + `scheduled`."""

    queued: int
    due: int
    scheduled: int
    running: int
    succeeded: int
    dead: int
    cancelled: int

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> QueueCounts:
        return cls(**{name: data[name] for name in cls.__dataclass_fields__})


@dataclass(frozen=True, slots=True)
class QueueConfig:
    """A queue's defaults for its tasks, and how long finished tasks are kept."""

    max_attempts: int
    retry: RetryPolicy
    lease_seconds: int
    retention_seconds: int

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> QueueConfig:
        return cls(
            max_attempts=data["max_attempts"],
            retry=RetryPolicy.from_json(data["retry"]),
            lease_seconds=data["lease_seconds"],
            retention_seconds=data["retention_seconds"],
        )


@dataclass(frozen=True, slots=True)
class Webhook:
    """A queue's push target as the server reports it.

    `signing_secrets` are in full only in the answer to `configure_queue`; elsewhere the
    server masks them (`whsec_…abcd`).
    """

    url: str
    signing_secrets: tuple[str, ...]
    timeout_seconds: float
    max_concurrency: int
    max_dispatches_per_second: float | None
    retry_client_errors: bool

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Webhook:
        per_second = data.get("max_dispatches_per_second")
        return cls(
            url=data["url"],
            signing_secrets=tuple(data["signing_secrets"]),
            timeout_seconds=float(data["timeout_seconds"]),
            max_concurrency=int(data["max_concurrency"]),
            max_dispatches_per_second=None if per_second is None else float(per_second),
            retry_client_errors=bool(data["retry_client_errors"]),
        )


@dataclass(frozen=True, slots=True)
class WebhookPatch:
    """A push target to configure; it replaces the queue's previous webhook as a whole.

    Fields left as None take the server's defaults (30 s timeout, 10 in flight, no rate
    limit, 4xx answers not retried), except `signing_secrets`: left out, the queue keeps
    its secrets (one is generated on first configuration).
    """

    url: str
    signing_secrets: Sequence[str] | None = None
    timeout_seconds: float | None = None
    max_concurrency: int | None = None
    max_dispatches_per_second: float | None = None
    retry_client_errors: bool | None = None

    def to_json(self) -> dict[str, Any]:
        """The `WebhookPatch` request object."""
        body: dict[str, Any] = {"url": self.url}
        optional: dict[str, Any] = {
            "signing_secrets": None if self.signing_secrets is None else list(self.signing_secrets),
            "timeout_seconds": self.timeout_seconds,
            "max_concurrency": self.max_concurrency,
            "max_dispatches_per_second": self.max_dispatches_per_second,
            "retry_client_errors": self.retry_client_errors,
        }
        body.update((name, value) for name, value in optional.items() if value is not None)
        return body


@dataclass(frozen=True, slots=True)
class Queue:
    """A queue with live stats, its configuration and its delivery mode.

    A server older than push delivery sends neither `delivery` nor `webhook`: such a
    queue reads as `Delivery.PULL` without a webhook.
    """

    name: str
    paused: bool
    pause_reason: str | None
    counts: QueueCounts
    oldest_due_age_seconds: float | None
    config: QueueConfig
    delivery: Delivery = Delivery.PULL
    webhook: Webhook | None = None

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Queue:
        webhook = data.get("webhook")
        return cls(
            name=data["name"],
            paused=data["paused"],
            pause_reason=data.get("pause_reason"),
            counts=QueueCounts.from_json(data["counts"]),
            oldest_due_age_seconds=data.get("oldest_due_age_seconds"),
            config=QueueConfig.from_json(data["config"]),
            delivery=Delivery(data.get("delivery", Delivery.PULL)),
            webhook=None if webhook is None else Webhook.from_json(webhook),
        )
