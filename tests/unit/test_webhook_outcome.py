"""What webhook answers mean, the delivery body, and the delivery-time SSRF check."""

from __future__ import annotations

import email.utils

import httpx
import orjson
import pytest

from app.core.models import Priority, Task, TaskState, Webhook
from app.dispatch.delivery import WebhookSender, delivery_body
from app.dispatch.outcome import (
    MAX_RETRY_AFTER_S,
    Delivered,
    Failed,
    Refused,
    classify_response,
    retry_after_seconds,
)
from app.dispatch.ssrf import AllowList

NOW_S = 1_800_000_000.0


def classify(
    status: int, body: bytes | None = b"", retry_client_errors: bool = False, **headers: str
) -> object:
    return classify_response(
        status,
        {name.replace("_", "-"): value for name, value in headers.items()},
        body,
        retry_client_errors=retry_client_errors,
        now_s=NOW_S,
    )


def test_2xx_json_becomes_the_result_and_anything_else_null() -> None:
    assert classify(200, b'{"a": [1, 2]}', content_type="application/json") == Delivered(
        '{"a":[1,2]}'
    )
    assert classify(
        201, b'{"a":1}', content_type="application/problem+json; charset=utf-8"
    ) == Delivered('{"a":1}')
    assert classify(200, b"<html>", content_type="text/html") == Delivered("null")
    assert classify(204, b"", content_type="application/json") == Delivered("null")
    assert classify(200, b"{broken", content_type="application/json") == Delivered("null")
    assert classify(200, None, content_type="application/json") == Delivered("null")


@pytest.mark.parametrize("status", [408, 429, 500, 502, 503, 504, 599])
def test_transient_answers_are_retried(status: int) -> None:
    outcome = classify(status, b"busy")
    assert isinstance(outcome, Failed) and outcome.retry
    assert outcome.error.type == f"webhook.http_{status}"
    assert "busy" in outcome.error.message


@pytest.mark.parametrize("status", [400, 401, 403, 404, 422, 301, 307])
def test_client_errors_and_redirects_are_final_unless_configured(status: int) -> None:
    outcome = classify(status, location="https://elsewhere")
    assert isinstance(outcome, Failed) and not outcome.retry
    again = classify(status, retry_client_errors=True)
    assert isinstance(again, Failed) and again.retry


def test_a_410_refuses_and_pauses() -> None:
    outcome = classify(410)
    assert isinstance(outcome, Refused) and "410" in outcome.reason


def test_retry_after_in_seconds_or_as_a_date_is_honoured_and_capped() -> None:
    outcome = classify(429, retry_after="7")
    assert isinstance(outcome, Failed) and outcome.retry_after_s == 7
    date = email.utils.formatdate(NOW_S + 30, usegmt=True)
    assert retry_after_seconds(date, NOW_S) == pytest.approx(30)
    assert retry_after_seconds(email.utils.formatdate(NOW_S - 30, usegmt=True), NOW_S) == 0
    assert retry_after_seconds("999999999", NOW_S) == MAX_RETRY_AFTER_S
    assert retry_after_seconds("soon", NOW_S) is None
    assert retry_after_seconds(None, NOW_S) is None


def task() -> Task:
    return Task(
        id="t_1",
        queue="q",
        type="email.send",
        payload_json='{"to": "a@b.c", "big": 12345678901234567890}',
        priority=Priority.normal,
        state=TaskState.running,
        attempts=2,
        max_attempts=5,
        retry=None,
        lease_seconds=60,
        run_at_ms=0,
        created_at_ms=0,
        updated_at_ms=0,
        started_at_ms=0,
        finished_at_ms=None,
        lease_token="lt_x",
        lease_expires_at_ms=1,
        worker_id="d",
        cancel_requested=False,
        result_json=None,
        errors_json="[]",
        idempotency_key=None,
        tags=("a",),
    )


def test_the_delivery_body_embeds_the_payload_verbatim() -> None:
    body = delivery_body(task())
    assert b'"payload":{"to": "a@b.c", "big": 12345678901234567890}' in body
    assert orjson.loads(body.replace(b"12345678901234567890", b"1"))["attempt"] == 2


@pytest.mark.anyio
async def test_a_target_that_now_resolves_to_loopback_is_refused_at_delivery() -> None:
    async def rebinding(host: str, port: int) -> list[str]:
        return ["127.0.0.1"]

    webhook = Webhook(url="https://hooks.test/x", signing_secrets=("whsec_" + "A" * 32,))
    async with httpx.AsyncClient() as client:
        sender = WebhookSender(client, webhook, AllowList(), rebinding)
        attempt = await sender.deliver(task())
    assert isinstance(attempt.outcome, Refused)
    assert "127.0.0.1" in attempt.outcome.reason and attempt.status is None


@pytest.mark.anyio
async def test_a_host_that_does_not_resolve_is_a_retryable_failure() -> None:
    async def nxdomain(host: str, port: int) -> list[str]:
        raise OSError(-2, "Name or service not known")

    webhook = Webhook(url="https://gone.test/x", signing_secrets=("whsec_" + "A" * 32,))
    async with httpx.AsyncClient() as client:
        attempt = await WebhookSender(client, webhook, AllowList(), nxdomain).deliver(task())
    assert isinstance(attempt.outcome, Failed) and attempt.outcome.retry
    assert attempt.outcome.error.type == "webhook.unresolvable"
