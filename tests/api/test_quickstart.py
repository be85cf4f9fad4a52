"""The README's lifecycle, in process: submit, claim, complete, read the result."""

from __future__ import annotations

import httpx
import pytest

pytestmark = pytest.mark.anyio


async def test_submit_claim_complete_read(client: httpx.AsyncClient) -> None:
    created = await client.post(
        "/v1/queues/emails/tasks", json={"type": "email.send", "payload": {"to": "ada@example.com"}}
    )
    assert created.status_code == 201
    task = created.json()
    assert created.headers["location"] == f"/v1/tasks/{task['id']}"
    assert task["state"] == "queued"

    claimed = await client.post("/v1/queues/emails/claim", json={"worker_id": "w1"})
    assert claimed.status_code == 200
    (leased,) = claimed.json()["tasks"]
    assert leased["id"] == task["id"]
    assert leased["attempts"] == 1

    done = await client.post(
        f"/v1/tasks/{task['id']}/complete",
        json={"lease_token": leased["lease"]["token"], "result": {"sent": True}},
    )
    assert done.status_code == 200
    assert done.json()["state"] == "succeeded"

    read = await client.get(f"/v1/tasks/{task['id']}")
    assert read.json()["result"] == {"sent": True}
    assert read.headers["x-request-id"]
