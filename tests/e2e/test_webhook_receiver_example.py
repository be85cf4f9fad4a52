"""The webhook receiver example, run by uvicorn, against deliveries signed by taskgate's signer."""

from __future__ import annotations

import contextlib
import json
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.dispatch.signing import new_secret, signed_headers

from .harness import REPO_ROOT, clean_env, free_port, wait_until

RECEIVER_DIR = REPO_ROOT / "examples" / "webhook-receiver"
STOP_TIMEOUT_S = 15.0


@dataclass(frozen=True)
class Secrets:
    """`known` and `also_known` are in the receiver's WEBHOOK_SECRET; `unknown` is not."""

    known: str
    also_known: str
    unknown: str


@dataclass(frozen=True)
class Receiver:
    base_url: str
    log_path: Path

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")


def uvicorn_command(port: int) -> list[str]:
    """The example as its README runs it (from the repository root)."""
    app_flags = ["--app-dir", str(RECEIVER_DIR), "--factory", "receiver:create_app"]
    return [sys.executable, "-m", "uvicorn", *app_flags, "--host", "127.0.0.1", "--port", str(port)]


@pytest.fixture(scope="module")
def secrets() -> Secrets:
    return Secrets(known=new_secret(), also_known=new_secret(), unknown=new_secret())


@pytest.fixture(scope="module")
def receiver(tmp_path_factory: pytest.TempPathFactory, secrets: Secrets) -> Iterator[Receiver]:
    """The example receiver in uvicorn, shared by the module's tests (ids never repeat)."""
    port = free_port()
    log_path = tmp_path_factory.mktemp("receiver") / "uvicorn.log"
    env = clean_env({"WEBHOOK_SECRET": f"{secrets.known}, {secrets.also_known}"})
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            uvicorn_command(port),
            cwd=REPO_ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            receiver = Receiver(f"http://127.0.0.1:{port}", log_path)

            def listening() -> bool:
                if process.poll() is not None:
                    pytest.fail(f"uvicorn exited with {process.returncode}:\n{receiver.output()}")
                try:
                    probe = httpx.get(f"{receiver.base_url}/taskgate", timeout=1.0)
                except httpx.TransportError:
                    return False
                return probe.status_code == 405  # only POST is routed: the app is answering

            wait_until(listening, "the example receiver to listen", timeout_s=20)
            yield receiver
        finally:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    process.kill()
                process.wait()


def delivery(
    task_type: str, payload: Any, *, task_id: str | None = None, attempt: int = 1
) -> bytes:
    """A delivery body as taskgate sends it."""
    task = {
        "id": task_id or uuid.uuid4().hex,
        "queue": "hooks",
        "type": task_type,
        "payload": payload,
        "attempt": attempt,
        "max_attempts": 5,
        "tags": ["example"],
    }
    return json.dumps(task).encode()


def post(
    receiver: Receiver,
    body: bytes,
    signing_secrets: Sequence[str],
    *,
    signed_body: bytes | None = None,
    sent_at: datetime | None = None,
) -> httpx.Response:
    """POST `body` over a real socket with headers signed over `signed_body` (default: `body`)."""
    message_id = json.loads(body)["id"]
    headers = signed_headers(
        signing_secrets,
        message_id,
        sent_at or datetime.now(UTC),
        body if signed_body is None else signed_body,
    )
    headers |= {"content-type": "application/json", "user-agent": "taskgate/test"}
    response = httpx.post(f"{receiver.base_url}/taskgate", content=body, headers=headers)
    return response


def assert_problem(response: httpx.Response, status: int) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["status"] == status


def test_a_signed_delivery_runs_its_handler(receiver: Receiver, secrets: Secrets) -> None:
    response = post(receiver, delivery("greet", {"name": "Ada"}), [secrets.known])

    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {"greeting": "hello Ada"}


def test_another_task_type(receiver: Receiver, secrets: Secrets) -> None:
    response = post(receiver, delivery("sum", {"numbers": [1, 2, 3.5]}), [secrets.known])

    assert response.status_code == 200, response.text
    assert response.json() == {"sum": 6.5}


def test_a_tampered_body_is_refused(receiver: Receiver, secrets: Secrets) -> None:
    task_id = uuid.uuid4().hex
    signed = delivery("greet", {"name": "Ada"}, task_id=task_id)
    sent = delivery("greet", {"name": "Mallory"}, task_id=task_id)

    assert_problem(post(receiver, sent, [secrets.known], signed_body=signed), 401)


def test_a_signature_with_another_secret_is_refused(receiver: Receiver, secrets: Secrets) -> None:
    assert_problem(post(receiver, delivery("greet", {"name": "Ada"}), [secrets.unknown]), 401)


def test_a_stale_timestamp_is_refused(receiver: Receiver, secrets: Secrets) -> None:
    an_hour_ago = datetime.now(UTC) - timedelta(hours=1)
    response = post(
        receiver, delivery("greet", {"name": "Ada"}), [secrets.known], sent_at=an_hour_ago
    )

    assert_problem(response, 401)


def test_a_delivery_without_signature_headers_is_refused(receiver: Receiver) -> None:
    response = httpx.post(
        f"{receiver.base_url}/taskgate",
        content=delivery("greet", {"name": "Ada"}),
        headers={"content-type": "application/json"},
    )

    assert_problem(response, 401)


def test_one_known_signature_among_several_is_enough(receiver: Receiver, secrets: Secrets) -> None:
    # The server signs with every secret of the queue; the receiver knows only the second.
    response = post(receiver, delivery("greet", {"name": "Ada"}), [secrets.unknown, secrets.known])

    assert response.status_code == 200, response.text
    assert response.json() == {"greeting": "hello Ada"}


def test_any_secret_of_the_receiver_verifies(receiver: Receiver, secrets: Secrets) -> None:
    # WEBHOOK_SECRET lists two secrets (a rotation); a delivery signed with either passes.
    response = post(receiver, delivery("greet", {"name": "Bo"}), [secrets.also_known])

    assert response.status_code == 200, response.text
    assert response.json() == {"greeting": "hello Bo"}


def test_an_unknown_type_is_unprocessable(receiver: Receiver, secrets: Secrets) -> None:
    response = post(receiver, delivery("launch.rockets", {}), [secrets.known])

    assert_problem(response, 422)
    assert "launch.rockets" in response.json()["detail"]


def test_an_invalid_payload_is_unprocessable(receiver: Receiver, secrets: Secrets) -> None:
    response = post(receiver, delivery("sum", {"numbers": "1, 2"}), [secrets.known])

    assert_problem(response, 422)


def test_a_redelivery_answers_the_first_result(receiver: Receiver, secrets: Secrets) -> None:
    task_id = uuid.uuid4().hex
    first = post(receiver, delivery("greet", {"name": "Ada"}, task_id=task_id), [secrets.known])
    # Same webhook-id, a later attempt; a changed payload shows the handler did not run again.
    again = post(
        receiver,
        delivery("greet", {"name": "Grace"}, task_id=task_id, attempt=2),
        [secrets.known],
    )

    assert first.status_code == again.status_code == 200
    assert again.json() == first.json() == {"greeting": "hello Ada"}


def test_the_receiver_refuses_to_start_without_a_secret(tmp_path: Path) -> None:
    log_path = tmp_path / "uvicorn.log"
    with log_path.open("wb") as log:
        completed = subprocess.run(
            uvicorn_command(free_port()),
            cwd=REPO_ROOT,
            env=clean_env({"WEBHOOK_SECRET": ""}),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            timeout=60,
            check=False,
        )

    assert completed.returncode != 0
    assert "set WEBHOOK_SECRET" in log_path.read_text(errors="replace")
