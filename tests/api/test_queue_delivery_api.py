"""Configuring push delivery over HTTP: validation, secrets, the SSRF guard, pull refusals."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from app.dispatch.signing import is_valid_secret, new_secret
from tests.conftest import AppFactory

pytestmark = pytest.mark.anyio

HOOK = "http://127.0.0.1:9/hook"  # allow-listed below; nothing listens (dispatch is off)


@pytest.fixture
async def client(start_app: AppFactory) -> AsyncIterator[httpx.AsyncClient]:
    async with start_app(webhook_allow="127.0.0.1/32", dispatch=False) as http:
        yield http


async def patch(
    client: httpx.AsyncClient, body: dict[str, Any], queue: str = "q"
) -> httpx.Response:
    return await client.patch(f"/v1/queues/{queue}", json=body)


def field_of(response: httpx.Response) -> str:
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    field: str = response.json()["errors"][0]["field"]
    return field


async def test_push_gets_a_generated_secret_shown_once_in_full(client: httpx.AsyncClient) -> None:
    response = await patch(client, {"delivery": "push", "webhook": {"url": HOOK}})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["delivery"] == "push"
    webhook = body["webhook"]
    (secret,) = webhook["signing_secrets"]
    assert is_valid_secret(secret)
    assert webhook == {
        "url": HOOK,
        "signing_secrets": [secret],
        "timeout_seconds": 30,
        "max_concurrency": 10,
        "max_dispatches_per_second": None,
        "retry_client_errors": False,
    }
    shown = (await client.get("/v1/queues/q")).json()["webhook"]["signing_secrets"]
    assert shown == [f"whsec_…{secret[-4:]}"]
    listed = (await client.get("/v1/queues")).json()["queues"][0]["webhook"]
    assert secret not in str(listed)


async def test_a_new_webhook_keeps_the_secrets_unless_given(client: httpx.AsyncClient) -> None:
    first = (await patch(client, {"delivery": "push", "webhook": {"url": HOOK}})).json()
    (secret,) = first["webhook"]["signing_secrets"]
    moved = await patch(client, {"webhook": {"url": HOOK + "2", "max_concurrency": 3}})
    assert moved.json()["webhook"]["signing_secrets"] == [secret]
    assert moved.json()["webhook"]["max_concurrency"] == 3
    rotated_to = new_secret()
    rotated = await patch(
        client, {"webhook": {"url": HOOK, "signing_secrets": [rotated_to, secret]}}
    )
    assert rotated.json()["webhook"]["signing_secrets"] == [rotated_to, secret]


async def test_back_to_pull_keeps_the_webhook_and_allows_claims(client: httpx.AsyncClient) -> None:
    await patch(client, {"delivery": "push", "webhook": {"url": HOOK}})
    await client.post("/v1/queues/q/tasks", json={"type": "t"})
    refused = await client.post("/v1/queues/q/claim", json={"worker_id": "w"})
    assert refused.status_code == 409
    assert "push" in refused.json()["detail"]
    pulled = await patch(client, {"delivery": "pull"})
    assert pulled.json()["delivery"] == "pull" and pulled.json()["webhook"]["url"] == HOOK
    claimed = await client.post("/v1/queues/q/claim", json={"worker_id": "w"})
    assert len(claimed.json()["tasks"]) == 1
    removed = await patch(client, {"webhook": None})
    assert removed.json()["webhook"] is None


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"delivery": "push"}, "body.webhook"),
        ({"delivery": "push", "webhook": None}, "body.webhook"),
        ({"delivery": "push", "webhook": {"url": "http://10.1.2.3/x"}}, "body.webhook.url"),
        ({"delivery": "push", "webhook": {"url": "file:///etc/passwd"}}, "body.webhook.url"),
        ({"delivery": "push", "webhook": {"url": "http://exa mple.com/"}}, "body.webhook.url"),
        (
            {
                "delivery": "push",
                "webhook": {"url": HOOK, "signing_secrets": ["whsec_" + "A" * 23]},
            },
            "body.webhook.signing_secrets[0]",
        ),
        (
            {"delivery": "push", "webhook": {"url": HOOK, "max_concurrency": 0}},
            "body.webhook.max_concurrency",
        ),
        ({"delivery": "sideways"}, "body.delivery"),
    ],
)
async def test_bad_delivery_settings_are_refused_and_change_nothing(
    client: httpx.AsyncClient, body: dict[str, Any], field: str
) -> None:
    await patch(client, {"max_attempts": 4})
    assert field_of(await patch(client, {**body, "max_attempts": 9})) == field
    queue = (await client.get("/v1/queues/q")).json()
    assert queue["delivery"] == "pull" and queue["webhook"] is None
    assert queue["config"]["max_attempts"] == 4


async def test_removing_the_webhook_of_a_push_queue_is_refused(client: httpx.AsyncClient) -> None:
    await patch(client, {"delivery": "push", "webhook": {"url": HOOK}})
    assert field_of(await patch(client, {"webhook": None})) == "body.webhook"


async def test_claims_record_what_the_worker_says_about_itself(client: httpx.AsyncClient) -> None:
    info = {"host": "box-1", "pid": 4242, "version": "1.2.3", "sdk": "taskgate-python"}
    response = await client.post(
        "/v1/queues/q/claim", json={"worker_id": "w1", "worker_info": info}
    )
    assert response.status_code == 200
    workers = (await client.get("/v1/workers")).json()["workers"]
    assert workers[0]["id"] == "w1" and workers[0]["info"] == info
    bad = await client.post(
        "/v1/queues/q/claim", json={"worker_id": "w1", "worker_info": {"host": "x", "extra": 1}}
    )
    assert bad.status_code == 422
