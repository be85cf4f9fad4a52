"""Problem+json answers become typed errors; which failures are retried, and how often."""

from __future__ import annotations

import httpx
import pytest

from runners import (
    ApiError,
    BadRequest,
    Client,
    ClientError,
    Conflict,
    LeaseLost,
    NotFound,
    Retries,
    ServerUnavailable,
    Task,
    TaskState,
    TransportError,
)
from tests.e2e.harness import ServerProcess, free_port

from .scripted import (
    FAST_RETRIES,
    ScriptedTransport,
    bad_gateway,
    connection_reset,
    unavailable,
)


def lease_token(task: Task) -> str:
    assert task.lease is not None
    return task.lease.token


def test_the_error_tree() -> None:
    assert issubclass(LeaseLost, Conflict)
    for error in (BadRequest, NotFound, Conflict, ServerUnavailable):
        assert issubclass(error, ApiError)
    assert issubclass(ApiError, ClientError) and issubclass(TransportError, ClientError)


def test_not_found(client: Client, queue: str) -> None:
    with pytest.raises(NotFound) as caught:
        client.get("01NOSUCHTASK0000000000000")
    assert caught.value.status == 404 and caught.value.detail
    with pytest.raises(NotFound):
        client.get_queue(queue)


def test_a_stale_lease_token_is_lease_lost(client: Client, queue: str) -> None:
    client.submit(queue, "t")
    (first,) = client.claim(queue, "w1")
    client.fail(first.id, lease_token(first), message="retry me", retry_after_seconds=0)
    (second,) = client.claim(queue, "w2")
    assert second.id == first.id and lease_token(second) != lease_token(first)
    with pytest.raises(LeaseLost) as caught:
        client.complete(first.id, lease_token(first), "late result")
    assert caught.value.status == 409
    assert caught.value.type == "urn:taskgate:problem:lease-lost"
    assert client.get(first.id).state is TaskState.RUNNING


def test_cancelling_a_finished_task_is_a_conflict(client: Client, queue: str) -> None:
    task = client.submit(queue, "t")
    client.cancel(task.id)
    with pytest.raises(Conflict) as caught:
        client.cancel(task.id)
    assert not isinstance(caught.value, LeaseLost)


def test_503_is_retried_honouring_retry_after(
    server: ServerProcess, client: Client, queue: str
) -> None:
    transport = ScriptedTransport(before=[unavailable("0"), unavailable("0")])
    with Client(
        server.base_url, token=server.token, retries=FAST_RETRIES, transport=transport
    ) as sdk:
        task = sdk.submit(queue, "t")  # a 503 means nothing was written: safe even without a key
    assert len(transport.requests) == 3
    assert [t.id for t in client.list_tasks(queue=queue).tasks] == [task.id]


def test_503_until_the_attempts_run_out(server: ServerProcess) -> None:
    transport = ScriptedTransport(before=[unavailable()] * 3)
    with (
        Client(
            server.base_url, token=server.token, retries=FAST_RETRIES, transport=transport
        ) as sdk,
        pytest.raises(ServerUnavailable) as caught,
    ):
        sdk.list_queues()
    assert len(transport.requests) == 3
    assert caught.value.status == 503 and caught.value.title == "Database unavailable"


@pytest.mark.parametrize("operation", ["health", "claim"])
def test_connection_refused_is_retried_then_a_transport_error(operation: str) -> None:
    transport = ScriptedTransport()
    nowhere = f"http://127.0.0.1:{free_port()}"
    with (
        Client(nowhere, retries=FAST_RETRIES, transport=transport) as sdk,
        pytest.raises(TransportError),
    ):
        if operation == "health":
            sdk.health()
        else:
            sdk.claim("q", "w")  # nothing was sent, so even a claim is retried
    assert len(transport.requests) == FAST_RETRIES.attempts


def test_a_claim_whose_answer_was_lost_is_not_retried(server: ServerProcess, queue: str) -> None:
    transport = ScriptedTransport()
    with Client(
        server.base_url, token=server.token, retries=FAST_RETRIES, transport=transport
    ) as sdk:
        task = sdk.submit(queue, "t")
        transport.fail_next_answers(connection_reset)
        with pytest.raises(TransportError):
            sdk.claim(queue, "w")
        assert len(transport.requests) == 2
        # The lost answer did lease the task: a blind retry would have leased another one.
        assert sdk.get(task.id).state is TaskState.RUNNING


def test_a_submit_without_key_whose_answer_was_lost_is_not_retried(
    server: ServerProcess, queue: str
) -> None:
    transport = ScriptedTransport(after=[connection_reset])
    with Client(
        server.base_url, token=server.token, retries=FAST_RETRIES, transport=transport
    ) as sdk:
        with pytest.raises(TransportError):
            sdk.submit(queue, "t")
        assert len(transport.requests) == 1
        assert len(sdk.list_tasks(queue=queue).tasks) == 1


def test_a_submit_with_key_whose_answer_was_lost_is_retried(
    server: ServerProcess, queue: str
) -> None:
    transport = ScriptedTransport(after=[connection_reset])
    with Client(
        server.base_url, token=server.token, retries=FAST_RETRIES, transport=transport
    ) as sdk:
        task = sdk.submit(queue, "t", idempotency_key="once")
        assert len(transport.requests) == 2
        assert [t.id for t in sdk.list_tasks(queue=queue).tasks] == [task.id]


def test_lease_calls_whose_answer_was_lost_are_retried(server: ServerProcess, queue: str) -> None:
    transport = ScriptedTransport()
    with Client(
        server.base_url, token=server.token, retries=FAST_RETRIES, transport=transport
    ) as sdk:
        sdk.submit(queue, "t")
        (leased,) = sdk.claim(queue, "w")
        transport.fail_next_answers(connection_reset)
        assert sdk.heartbeat(leased.id, lease_token(leased)).state is TaskState.RUNNING
        assert len(transport.requests) == 4
        # A complete that landed answers its repeat with 409: documented, and typed.
        transport.fail_next_answers(connection_reset)
        with pytest.raises(LeaseLost):
            sdk.complete(leased.id, lease_token(leased), "done")
        assert sdk.get(leased.id).state is TaskState.SUCCEEDED


def test_a_proxys_502_is_retried_for_lease_calls_only(server: ServerProcess, queue: str) -> None:
    transport = ScriptedTransport()
    with Client(
        server.base_url, token=server.token, retries=FAST_RETRIES, transport=transport
    ) as sdk:
        first = sdk.submit(queue, "t")
        second = sdk.submit(queue, "t")
        # A node leased a task and died before answering; nginx said 502. Not retried:
        # a second claim would lease another task while the first sits unseen.
        transport.fail_next_answers(bad_gateway)
        with pytest.raises(ApiError) as caught:
            sdk.claim(queue, "w")
        assert caught.value.status == 502
        assert sdk.get(first.id).state is TaskState.RUNNING
        (leased,) = sdk.claim(queue, "w")
        assert leased.id == second.id
        # nginx found no live node for the complete: the retry reaches one and lands.
        transport.fail_next_requests(bad_gateway)
        done = sdk.complete(leased.id, lease_token(leased), "done")
        assert done.state is TaskState.SUCCEEDED
        completes = [r for r in transport.requests if r.url.path.endswith("/complete")]
        assert len(completes) == 2
        # A submit without an idempotency key is not repeated after a 502 either.
        transport.fail_next_answers(bad_gateway)
        with pytest.raises(ApiError):
            sdk.submit(queue, "t")
        assert len(sdk.list_tasks(queue=queue).tasks) == 3


def test_one_attempt_means_no_retry(server: ServerProcess) -> None:
    transport = ScriptedTransport(before=[unavailable()])
    retries = Retries(attempts=1)
    with (
        Client(server.base_url, token=server.token, retries=retries, transport=transport) as sdk,
        pytest.raises(ServerUnavailable),
    ):
        sdk.health()
    assert len(transport.requests) == 1


def test_backoff_delays() -> None:
    plain = Retries(backoff_seconds=0.5, factor=2, max_backoff_seconds=3, jitter=False)
    assert [plain.delay(n) for n in (1, 2, 3, 4)] == [0.5, 1.0, 2.0, 3.0]
    assert plain.delay(1, retry_after=2.5) == 2.5
    assert plain.delay(1, retry_after=60) == 3.0
    jittered = Retries(backoff_seconds=1, factor=2, max_backoff_seconds=100)
    assert all(1.0 <= jittered.delay(2) <= 2.0 for _ in range(50))


def test_a_non_problem_error_body_still_gives_a_typed_error(server: ServerProcess) -> None:
    def proxy_page(request: httpx.Request) -> httpx.Response:
        return httpx.Response(404, text="<html>nginx</html>")

    transport = ScriptedTransport(before=[proxy_page])
    with (
        Client(server.base_url, token=server.token, transport=transport) as sdk,
        pytest.raises(NotFound) as caught,
    ):
        sdk.health()
    assert caught.value.detail == "<html>nginx</html>"


def test_a_2xx_that_is_not_json_is_an_api_error(server: ServerProcess) -> None:
    def portal(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, text="<html>sign in</html>")

    transport = ScriptedTransport(before=[portal])
    with (
        Client(server.base_url, token=server.token, transport=transport) as sdk,
        pytest.raises(ApiError) as caught,
    ):
        sdk.health()
    assert caught.value.status == 200 and caught.value.title == "Not JSON"
