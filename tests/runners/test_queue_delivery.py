"""A queue's delivery mode and webhook through the SDK: parsing both server shapes, configuring."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from runners import (
    Client,
    Conflict,
    Delivery,
    LeaseLost,
    Queue,
    Webhook,
    WebhookPatch,
    Worker,
)
from tests.e2e.harness import ServerProcess

from .scripted import FAST_RETRIES, ScriptedTransport

# A public address literal: it passes the server's SSRF check without DNS. No task is ever
# submitted to the push queue of these tests, so nothing is ever sent there.
PUBLIC_WEBHOOK_URL = "http://93.184.215.14/taskgate-sdk-test"
SECRET = "whsec_" + "A" * 43 + "="

QUEUE_BEFORE_PUSH: dict[str, Any] = {
    "name": "q",
    "paused": False,
    "pause_reason": None,
    "counts": dict.fromkeys(
        ("queued", "due", "scheduled", "running", "succeeded", "dead", "cancelled"), 0
    ),
    "oldest_due_age_seconds": None,
    "config": {
        "max_attempts": 5,
        "retry": {"initial_delay_seconds": 1.0, "factor": 2.0, "max_delay_seconds": 300.0},
        "lease_seconds": 60,
        "retention_seconds": 604800,
    },
}


def test_a_queue_from_a_server_without_push_delivery_reads_as_pull() -> None:
    queue = Queue.from_json(QUEUE_BEFORE_PUSH)
    assert (queue.delivery, queue.webhook) == (Delivery.PULL, None)


def test_a_push_queue_is_parsed_with_its_webhook() -> None:
    webhook = {
        "url": "https://hooks.example.com/t",
        "signing_secrets": ["whsec_…abcd"],
        "timeout_seconds": 15,
        "max_concurrency": 20,
        "max_dispatches_per_second": None,
        "retry_client_errors": False,
    }
    queue = Queue.from_json({**QUEUE_BEFORE_PUSH, "delivery": "push", "webhook": webhook})
    assert queue.delivery is Delivery.PUSH
    assert queue.webhook == Webhook(
        url="https://hooks.example.com/t",
        signing_secrets=("whsec_…abcd",),
        timeout_seconds=15.0,
        max_concurrency=20,
        max_dispatches_per_second=None,
        retry_client_errors=False,
    )


def test_a_worker_without_info_from_an_older_server() -> None:
    worker = Worker.from_json(
        {
            "id": "w",
            "first_seen_at": "2030-01-01T00:00:00Z",
            "last_seen_at": "2030-01-01T00:00:01Z",
            "alive": True,
            "queues": ["q"],
            "in_flight": 0,
            "leases": [],
        }
    )
    assert worker.info is None


def test_a_webhook_patch_sends_only_what_is_set() -> None:
    assert WebhookPatch("https://h.example/t").to_json() == {"url": "https://h.example/t"}
    full = WebhookPatch(
        "https://h.example/t",
        signing_secrets=[SECRET],
        timeout_seconds=5,
        max_concurrency=2,
        max_dispatches_per_second=0.5,
        retry_client_errors=True,
    )
    assert full.to_json() == {
        "url": "https://h.example/t",
        "signing_secrets": [SECRET],
        "timeout_seconds": 5,
        "max_concurrency": 2,
        "max_dispatches_per_second": 0.5,
        "retry_client_errors": True,
    }


def sent_bodies(transport: ScriptedTransport) -> list[Any]:
    return [json.loads(r.content) for r in transport.requests if r.method == "PATCH"]


def test_push_delivery_round_trip(server: ServerProcess, queue: str) -> None:
    transport = ScriptedTransport()
    with Client(
        server.base_url, token=server.token, retries=FAST_RETRIES, transport=transport
    ) as sdk:
        pulled = sdk.configure_queue(queue, delivery=Delivery.PULL)
        with httpx.Client(
            base_url=server.base_url, timeout=10, headers=server.auth_headers()
        ) as http:
            if "delivery" not in http.get(f"/v1/queues/{queue}").json():
                pytest.skip("this server's queues have no `delivery` yet (server side pending)")
        assert (pulled.delivery, pulled.webhook) == (Delivery.PULL, None)

        pushed = sdk.configure_queue(
            queue,
            delivery="push",
            webhook=WebhookPatch(
                PUBLIC_WEBHOOK_URL,
                signing_secrets=[SECRET],
                max_concurrency=3,
                max_dispatches_per_second=2.5,
            ),
        )
        assert pushed.delivery is Delivery.PUSH and pushed.webhook is not None
        webhook = pushed.webhook
        assert webhook.url == PUBLIC_WEBHOOK_URL
        assert webhook.signing_secrets == (SECRET,)  # in full in this answer only
        assert (webhook.max_concurrency, webhook.max_dispatches_per_second) == (3, 2.5)
        assert not webhook.retry_client_errors
        shown = sdk.get_queue(queue)
        assert shown.delivery is Delivery.PUSH and shown.webhook is not None
        assert shown.webhook.url == PUBLIC_WEBHOOK_URL

        with pytest.raises(Conflict) as refused:
            sdk.claim(queue, "puller")
        assert not isinstance(refused.value, LeaseLost) and refused.value.status == 409

        back = sdk.configure_queue(queue, delivery=Delivery.PULL)
        assert back.delivery is Delivery.PULL and back.webhook is not None  # kept
        removed = sdk.configure_queue(queue, reset=["webhook"])
        assert (removed.delivery, removed.webhook) == (Delivery.PULL, None)

    assert sent_bodies(transport) == [
        {"delivery": "pull"},
        {
            "delivery": "push",
            "webhook": {
                "url": PUBLIC_WEBHOOK_URL,
                "signing_secrets": [SECRET],
                "max_concurrency": 3,
                "max_dispatches_per_second": 2.5,
            },
        },
        {"delivery": "pull"},
        {"webhook": None},
    ]
