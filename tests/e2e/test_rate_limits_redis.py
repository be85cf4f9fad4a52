"""Rate limits shared through a real redis-server by two server processes."""

from __future__ import annotations

import httpx

from tests.redis_server import RedisServer

from .harness import ServerFactory, mint_test_token


def test_two_processes_share_one_limit_through_redis(
    start_server: ServerFactory, redis_server: RedisServer
) -> None:
    server = start_server(
        workers=2, rate_limit_storage=redis_server.uri, rate_limit_submit="10/hour"
    )
    secret = server.database.parent / "taskgate.secret"
    alice = {"Authorization": f"Bearer {mint_test_token(secret, subject='alice')}"}
    bob = {"Authorization": f"Bearer {mint_test_token(secret, subject='bob')}"}
    statuses = []
    for _ in range(16):
        # A new connection each time, so both gunicorn workers answer some of them.
        with httpx.Client(base_url=server.base_url, timeout=10) as http:
            response = http.post("/v1/queues/q/tasks", json={"type": "t"}, headers=alice)
            statuses.append(response.status_code)
    # Per-process memory counters would let up to 20 through.
    assert statuses.count(201) == 10 and statuses.count(429) == 6
    with httpx.Client(base_url=server.base_url, timeout=10) as http:
        assert http.post("/v1/queues/q/tasks", json={"type": "t"}, headers=bob).status_code == 201
