"""Bad input gets a clear problem+json and changes nothing: 400, 404, 405, 409, 413, 415, 422."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import AppFactory

pytestmark = pytest.mark.anyio

PROBLEM = "application/problem+json"


def assert_problem(response: httpx.Response, status: int, slug: str) -> dict[str, object]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    body: dict[str, object] = response.json()
    assert body["status"] == status
    assert body["type"] == f"urn:taskgate:problem:{slug}"
    assert body["detail"] and body["request_id"] == response.headers["x-request-id"]
    return body


async def task_count(client: httpx.AsyncClient) -> int:
    return len((await client.get("/v1/tasks", params={"limit": 1000})).json()["tasks"])


async def test_malformed_json_is_400(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/v1/queues/q/tasks", content=b'{"type": "a",', headers={"content-type": "application/json"}
    )
    assert_problem(response, 400, "malformed-body")
    response = await client.post(
        "/v1/queues/q/tasks", content=b'{"type": NaN}', headers={"content-type": "application/json"}
    )
    assert_problem(response, 400, "malformed-body")
    assert await task_count(client) == 0


async def test_non_json_media_type_is_415(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/v1/queues/q/tasks", content=b"type=a", headers={"content-type": "text/plain"}
    )
    assert_problem(response, 415, "unsupported-media-type")


async def test_schema_violations_are_422_naming_the_field(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/v1/queues/q/tasks", json={"type": "a", "priority": "urgent", "max_attempts": 0}
    )
    body = assert_problem(response, 422, "invalid-input")
    fields = {error["field"] for error in body["errors"]}  # type: ignore[attr-defined]
    assert fields == {"body.priority", "body.max_attempts"}
    both = await client.post(
        "/v1/queues/q/tasks",
        json={"type": "a", "delay_seconds": 1, "run_at": "2030-01-01T00:00:00Z"},
    )
    assert_problem(both, 422, "invalid-input")
    bad_queue = await client.post("/v1/queues/-bad/tasks", json={"type": "a"})
    assert "path.queue" in bad_queue.text
    assert_problem(await client.get("/v1/tasks", params={"limit": "lots"}), 422, "invalid-input")
    assert_problem(await client.post("/v1/queues/q/tasks"), 422, "invalid-input")
    assert await task_count(client) == 0


async def test_unknown_things_are_404_and_wrong_methods_405(client: httpx.AsyncClient) -> None:
    assert_problem(await client.get("/v1/tasks/01JUNKNOWN0000000000000000"), 404, "not-found")
    assert_problem(await client.get("/v1/queues/never-used"), 404, "not-found")
    assert_problem(await client.get("/v1/nothing-here"), 404, "not-found")
    assert_problem(await client.delete("/v1/tasks"), 405, "method-not-allowed")


@pytest.fixture
async def small_client(start_app: AppFactory) -> AsyncIterator[httpx.AsyncClient]:
    async with start_app(max_body_bytes=2048) as http:
        yield http


async def test_oversized_bodies_are_413_declared_or_streamed(
    small_client: httpx.AsyncClient,
) -> None:
    big = b'{"type": "a", "payload": "' + b"x" * 5000 + b'"}'
    declared = await small_client.post(
        "/v1/queues/q/tasks", content=big, headers={"content-type": "application/json"}
    )
    assert_problem(declared, 413, "body-too-large")

    async def chunks() -> AsyncIterator[bytes]:
        for start in range(0, len(big), 1000):
            yield big[start : start + 1000]

    streamed = await small_client.post(
        "/v1/queues/q/tasks", content=chunks(), headers={"content-type": "application/json"}
    )
    assert_problem(streamed, 413, "body-too-large")
    assert await task_count(small_client) == 0


async def test_store_failure_is_a_503_problem(start_app: AppFactory) -> None:
    async with start_app() as http:
        store = http._transport.app.state.store  # type: ignore[attr-defined]
        await store.close()
        response = await http.post("/v1/queues/q/tasks", json={"type": "a"})
        assert_problem(response, 503, "store-unavailable")
        assert response.headers["retry-after"] == "1"
        await store.open()


async def test_batch_over_the_limit_is_refused_whole(client: httpx.AsyncClient) -> None:
    tasks = [{"type": "a"}] * 1001
    assert_problem(
        await client.post("/v1/queues/q/tasks/batch", json={"tasks": tasks}), 422, "invalid-input"
    )
    assert await task_count(client) == 0


async def test_a_nul_in_stored_or_compared_text_is_422_on_every_backend(
    client: httpx.AsyncClient,
) -> None:
    # PostgreSQL's text cannot hold U+0000: these once gave 503 there (and a tag with one,
    # once stored, made every tag-filtered listing fail), while SQLite answered 200/404/409.
    nul = "a\x00b"
    task = (await client.post("/v1/queues/q/tasks", json={"type": "a", "tags": ["x"]})).json()
    requests = [
        client.get("/v1/tasks/a%00b"),
        client.get("/v1/tasks", params={"cursor": nul}),
        client.get("/v1/tasks", params={"tag": nul}),
        client.get("/v1/queues/q/dead", params={"cursor": nul}),
        client.get("/v1/schedules", params={"cursor": nul}),
        client.post(f"/v1/tasks/{task['id']}/heartbeat", json={"lease_token": nul}),
        client.post("/v1/tasks/complete", json={"items": [{"task_id": nul, "lease_token": "t"}]}),
        client.post("/v1/queues/q/dead/redrive", json={"task_ids": [nul]}),
        client.post("/v1/queues/q/pause", json={"reason": nul}),
        client.post("/v1/queues/q/tasks", json={"type": "a", "tags": [nul]}),
    ]
    for request in requests:
        assert_problem(await request, 422, "invalid-input")
    # JSON values are stored as JSON text, where a NUL is an escape: they keep it.
    kept = await client.post("/v1/queues/q/tasks", json={"type": "a", "payload": nul})
    assert kept.status_code == 201 and kept.json()["payload"] == nul
    listed = await client.get("/v1/tasks", params={"tag": "x"})
    assert [found["id"] for found in listed.json()["tasks"]] == [task["id"]]


async def test_field_errors_name_the_field_itself(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/v1/queues/q/tasks", json={"delay_seconds": 1, "run_at": "2030-01-01T00:00:00Z"}
    )
    body = assert_problem(response, 422, "invalid-input")
    assert body["errors"] == [
        {"field": "body.type", "message": "is required"},
        {"field": "body", "message": "delay_seconds and run_at cannot be given together"},
    ]


async def test_bodies_nested_too_deep_are_400_and_change_nothing(
    client: httpx.AsyncClient,
) -> None:
    deep = "[" * 65 + "]" * 65
    # The second form has a number too big for 64 bits, which takes the stdlib parser.
    for payload in (deep, "[" * 5000 + "1" * 30 + "]" * 5000):
        response = await client.post(
            "/v1/queues/deep/tasks",
            content=f'{{"type": "t", "payload": {payload}}}',
            headers={"content-type": "application/json"},
        )
        assert response.status_code == 400, response.text
        assert "nests deeper than 64" in response.json()["detail"]
    assert (await client.get("/v1/queues/deep")).status_code == 404
    fine = "[" * 60 + "]" * 60
    response = await client.post(
        "/v1/queues/deep/tasks",
        content=f'{{"type": "t", "payload": {fine}}}',
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 201


async def test_security_headers_and_a_strict_policy_on_html(client: httpx.AsyncClient) -> None:
    api = await client.get("/v1/queues")
    assert api.headers["x-content-type-options"] == "nosniff"
    assert "content-security-policy" not in api.headers
    docs = await client.get("/docs")
    policy = docs.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in policy and "script-src 'self'" in policy
    assert docs.headers["x-frame-options"] == "DENY"
    missing = await client.get("/v1/tasks/t_nope")
    assert "Traceback" not in missing.text and str(Path.cwd()) not in missing.text


async def test_oversized_headers_are_431_and_change_nothing(client: httpx.AsyncClient) -> None:
    for headers in (
        {"x-big": "a" * 9000},
        {f"x-h{i}": "v" for i in range(120)},
        {f"x-h{i}": "b" * 4000 for i in range(9)},
    ):
        response = await client.post("/v1/queues/hdr/tasks", json={"type": "t"}, headers=headers)
        assert response.status_code == 431, response.text
        assert response.headers["content-type"] == "application/problem+json"
        assert response.headers["x-request-id"]
    assert (await client.get("/v1/queues/hdr")).status_code == 404
