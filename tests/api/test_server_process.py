"""What a server process's app does beyond an in-process test app: it freezes its
start-up objects out of the cyclic garbage collector once started."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from app.asgi import serving_app
from tests.conftest import SettingsFactory, running_app

pytestmark = pytest.mark.anyio


@pytest.fixture
def unfrozen() -> Iterator[None]:
    gc.unfreeze()
    yield
    gc.unfreeze()  # give the test process's objects back to the collector


async def test_a_serving_app_freezes_its_start_up_objects(
    make_settings: SettingsFactory, unfrozen: None
) -> None:
    app = serving_app(make_settings(auth=False))
    assert gc.get_freeze_count() == 0

    async with running_app(app) as client:  # type: ignore[arg-type]
        assert (await client.get("/healthz")).status_code == 200
        assert gc.get_freeze_count() > 0
