"""Rate limits in the request path: per token subject, per address without a token."""

from __future__ import annotations

import pytest

from app.main import create_app
from tests.conftest import SettingsFactory, admin_token, running_app

pytestmark = pytest.mark.anyio


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_a_token_over_its_limit_gets_429_while_another_token_goes_on(
    make_settings: SettingsFactory,
) -> None:
    settings = make_settings(rate_limit_submit="3/hour")
    alice = bearer(admin_token(settings, subject="alice"))
    bob = bearer(admin_token(settings, subject="bob"))
    async with running_app(create_app(settings)) as client:
        for _ in range(3):
            ok = await client.post("/v1/queues/q/tasks", json={"type": "t"}, headers=alice)
            assert ok.status_code == 201
        refused = await client.post("/v1/queues/q/tasks", json={"type": "t"}, headers=alice)
        assert refused.status_code == 429
        assert refused.headers["content-type"].startswith("application/problem+json")
        assert int(refused.headers["retry-after"]) >= 1
        assert refused.headers["ratelimit-limit"] == "3"
        assert refused.headers["ratelimit-remaining"] == "0"
        assert int(refused.headers["ratelimit-reset"]) >= 1
        assert "submit rate limit" in refused.json()["detail"]
        # Another token is counted on its own; another group of the same token too.
        assert (
            await client.post("/v1/queues/q/tasks", json={"type": "t"}, headers=bob)
        ).status_code == 201
        assert (await client.get("/v1/queues/q", headers=alice)).status_code == 200
        queue = (await client.get("/v1/queues/q", headers=alice)).json()
        assert queue["counts"]["queued"] == 4


async def test_a_batch_counts_each_task(make_settings: SettingsFactory) -> None:
    settings = make_settings(rate_limit_submit="5/hour")
    token = bearer(admin_token(settings))
    async with running_app(create_app(settings)) as client:
        batch = {"tasks": [{"type": "t"}] * 4}
        assert (
            await client.post("/v1/queues/q/tasks/batch", json=batch, headers=token)
        ).status_code == 200
        again = await client.post("/v1/queues/q/tasks/batch", json=batch, headers=token)
        assert again.status_code == 429
        assert (await client.get("/v1/queues/q", headers=token)).json()["counts"]["queued"] == 4


async def test_requests_without_a_valid_token_are_limited_by_address(
    make_settings: SettingsFactory,
) -> None:
    settings = make_settings(rate_limit_anonymous="3/hour")
    async with running_app(create_app(settings)) as client:
        statuses = [
            (await client.get("/v1/queues", headers=bearer(f"guess-{n}"))).status_code
            for n in range(5)
        ]
        assert statuses == [401, 401, 401, 429, 429]
        # A valid token is counted in its own group, not by the address.
        token = bearer(admin_token(settings))
        assert (await client.get("/v1/queues", headers=token)).status_code == 200


async def test_open_endpoints_are_not_limited(make_settings: SettingsFactory) -> None:
    settings = make_settings(rate_limit_anonymous="1/hour", rate_limit_read="1/hour")
    async with running_app(create_app(settings)) as client:
        for _ in range(5):
            assert (await client.get("/healthz")).status_code == 200


async def test_a_bad_limit_setting_is_refused_naming_it(make_settings: SettingsFactory) -> None:
    with pytest.raises(ValueError, match="submit"):
        create_app(make_settings(rate_limit_submit="lots"))


async def test_a_limit_of_several_windows_applies_the_tightest(
    make_settings: SettingsFactory,
) -> None:
    settings = make_settings(rate_limit_read="100/hour;2/minute")
    token = bearer(admin_token(settings))
    async with running_app(create_app(settings)) as client:
        codes = [(await client.get("/v1/queues", headers=token)).status_code for _ in range(3)]
    assert codes == [200, 200, 429]


async def test_the_limit_also_applies_without_authentication(
    make_settings: SettingsFactory,
) -> None:
    settings = make_settings(auth=False, rate_limit_read="2/hour")
    async with running_app(create_app(settings)) as client:
        codes = [(await client.get("/v1/queues")).status_code for _ in range(3)]
    assert codes == [200, 200, 429]
