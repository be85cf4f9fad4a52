"""taskgate behind a real nginx running deploy/nginx/taskgate.conf: TLS, redirects, limits.

One nginx and one `taskgate serve --workers 2 --unix-socket … --trusted-proxies unix` serve
the whole module (see nginx_support.py). Every client verifies nginx's certificate against
the test CA.
"""

from __future__ import annotations

import re
import socket
import ssl
import time
import warnings
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from .harness import LONG_POLL_TIMEOUT, wait_for_worker
from .nginx_support import FrontedServer, access_record, nginx_in_front

MAX_BODY_BYTES = 10 * 1024 * 1024  # the server's default max_body_bytes
HSTS = "max-age=63072000"
# Mozilla intermediate: forward-secret key exchange, AEAD only.
ACCEPTED_TLS12_CIPHERS = {
    "ECDHE-ECDSA-AES128-GCM-SHA256",
    "ECDHE-RSA-AES128-GCM-SHA256",
    "ECDHE-ECDSA-AES256-GCM-SHA384",
    "ECDHE-RSA-AES256-GCM-SHA384",
    "ECDHE-ECDSA-CHACHA20-POLY1305",
    "ECDHE-RSA-CHACHA20-POLY1305",
}


@pytest.fixture(scope="module")
def front(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FrontedServer]:
    with nginx_in_front(tmp_path_factory.mktemp("behind-nginx")) as fronted:
        yield fronted


def test_task_lifecycle_over_https(front: FrontedServer) -> None:
    with front.client() as http:
        created = http.post(
            "/v1/queues/tls/tasks", json={"type": "report.build", "payload": {"month": 5}}
        )
        assert created.status_code == 201, created.text
        task = created.json()
        assert created.headers["location"] == f"/v1/tasks/{task['id']}"

        claimed = http.post("/v1/queues/tls/claim", json={"worker_id": "tls-worker"})
        assert claimed.status_code == 200, claimed.text
        (leased,) = claimed.json()["tasks"]
        assert leased["id"] == task["id"]

        done = http.post(
            f"/v1/tasks/{task['id']}/complete",
            json={"lease_token": leased["lease"]["token"], "result": {"rows": 3}},
        )
        assert done.status_code == 200, done.text

        read = http.get(f"/v1/tasks/{task['id']}")
        assert read.status_code == 200
        assert read.json()["state"] == "succeeded"
        assert read.json()["result"] == {"rows": 3}


def test_long_poll_claim_gets_a_task_submitted_while_it_waits(front: FrontedServer) -> None:
    with (
        front.client() as http,
        front.client(timeout=LONG_POLL_TIMEOUT) as worker_http,
        ThreadPoolExecutor(max_workers=1) as pool,
    ):
        claim = pool.submit(
            worker_http.post,
            "/v1/queues/poll/claim",
            json={"worker_id": "poll-worker", "wait_seconds": 20},
        )
        wait_for_worker(http, "poll-worker")  # the claim is waiting in taskgate
        created = http.post("/v1/queues/poll/tasks", json={"type": "t"})
        assert created.status_code == 201, created.text
        claimed = claim.result(timeout=LONG_POLL_TIMEOUT.read)
    assert claimed.status_code == 200, claimed.text
    assert [t["id"] for t in claimed.json()["tasks"]] == [created.json()["id"]]
    assert claimed.headers["strict-transport-security"] == HSTS


def test_get_with_wait_returns_when_the_task_finishes(front: FrontedServer) -> None:
    with (
        front.client() as http,
        front.client(timeout=LONG_POLL_TIMEOUT) as reader_http,
        ThreadPoolExecutor(max_workers=1) as pool,
    ):
        task_id = http.post("/v1/queues/watched/tasks", json={"type": "t"}).json()["id"]
        (leased,) = http.post("/v1/queues/watched/claim", json={"worker_id": "w"}).json()["tasks"]
        waiting = pool.submit(reader_http.get, f"/v1/tasks/{task_id}", params={"wait": 20})
        completed = http.post(
            f"/v1/tasks/{task_id}/complete",
            json={"lease_token": leased["lease"]["token"], "result": {"ok": True}},
        )
        assert completed.status_code == 200, completed.text
        finished = waiting.result(timeout=LONG_POLL_TIMEOUT.read)
    assert finished.status_code == 200, finished.text
    assert finished.json()["state"] == "succeeded"


def test_an_empty_long_poll_waits_its_full_time_without_a_gateway_timeout(
    front: FrontedServer,
) -> None:
    with front.client(timeout=LONG_POLL_TIMEOUT) as http:
        started = time.monotonic()
        claimed = http.post(
            "/v1/queues/idle/claim", json={"worker_id": "idle-worker", "wait_seconds": 20}
        )
        waited_s = time.monotonic() - started
    assert claimed.status_code == 200, claimed.text
    assert claimed.json()["tasks"] == []
    # A lower bound only: it shows the request was held open for the wait, through nginx.
    assert waited_s >= 15


def test_plain_http_is_redirected_to_https(front: FrontedServer) -> None:
    with httpx.Client(base_url=front.http_url, timeout=10.0) as http:
        read = http.get("/v1/tasks", params={"queue": "q"})
        submit = http.post("/v1/queues/q/tasks", json={"type": "t"})
    for response in (read, submit):
        assert response.status_code == 301
        assert response.headers["server"] == "nginx"
    # The production config redirects to the standard port, keeping path and query.
    assert read.headers["location"] == "https://127.0.0.1/v1/tasks?queue=q"
    assert submit.headers["location"] == "https://127.0.0.1/v1/queues/q/tasks"


def _submit_body(size: int) -> bytes:
    """A valid submit body of exactly `size` bytes (the padding is the payload string)."""
    frame = b'{"type":"big","payload":""}'
    return frame[:-2] + b"x" * (size - len(frame)) + frame[-2:]


def test_body_limit_matches_the_server_and_nginx_refuses_bigger_bodies(
    front: FrontedServer,
) -> None:
    headers = {"content-type": "application/json"}
    with front.client(timeout=60.0) as http:
        at_limit = http.post(
            "/v1/queues/big/tasks",
            content=_submit_body(MAX_BODY_BYTES),
            headers={**headers, "x-request-id": "body-at-limit"},
        )
        over_limit = http.post(
            "/v1/queues/big/tasks",
            content=_submit_body(MAX_BODY_BYTES + 1),
            headers={**headers, "x-request-id": "body-over-limit"},
        )
    assert at_limit.status_code == 201, at_limit.text[:500]
    assert front.server.access_record("body-at-limit")["status"] == 201
    assert over_limit.status_code == 413
    # nginx's own page, not taskgate's problem+json; nginx answered without asking
    # taskgate (no upstream response time), and taskgate logged no such request.
    assert over_limit.headers["content-type"].startswith("text/html")
    assert "413 Request Entity Too Large" in over_limit.text
    assert "<center>nginx</center>" in over_limit.text
    refused = front.nginx_access_line("body-over-limit")
    assert " 413 " in refused and "urt=- " in refused, refused
    assert access_record(front.server.output(), "body-over-limit") is None


def test_taskgate_sees_the_client_address_that_nginx_saw(front: FrontedServer) -> None:
    with front.client() as http:
        response = http.get(
            "/healthz",
            headers={"x-request-id": "who-is-it", "x-forwarded-for": "203.0.113.7"},
        )
    assert response.status_code == 200
    record = front.server.access_record("who-is-it")
    # nginx replaces the client's X-Forwarded-For with the peer it saw; taskgate believes
    # nginx (a Unix socket peer, trusted) and logs that address, not the spoofed one.
    assert record["client"] == "127.0.0.1"


def test_request_ids_pass_through_and_are_made_by_nginx_when_missing(
    front: FrontedServer,
) -> None:
    with front.client() as http:
        given = http.get("/healthz", headers={"x-request-id": "from-the-client"})
        made = http.get("/healthz")
    assert given.headers["x-request-id"] == "from-the-client"
    nginx_id = made.headers["x-request-id"]
    assert re.fullmatch(r"[0-9a-f]{32}", nginx_id), nginx_id
    assert front.server.access_record(nginx_id)["status"] == 200
    assert '"GET /healthz HTTP/1.1" 200' in front.nginx_access_line(nginx_id)


def test_security_headers_on_answers_and_errors(front: FrontedServer) -> None:
    with front.client() as http:
        answers = [http.get("/healthz"), http.get("/v1/tasks/01JZZZZZZZZZZZZZZZZZZZZZZZ")]
    assert answers[1].status_code == 404
    for response in answers:
        assert response.headers["strict-transport-security"] == HSTS
        assert response.headers["server"] == "nginx"  # no version (server_tokens off)


def _handshake(port: int, context: ssl.SSLContext) -> tuple[str | None, str]:
    with (
        socket.create_connection(("127.0.0.1", port), timeout=10) as raw,
        context.wrap_socket(raw, server_hostname="127.0.0.1") as tls,
    ):
        cipher = tls.cipher()
        assert cipher is not None
        return tls.version(), cipher[0]


@pytest.mark.parametrize(
    "version", [ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3], ids=["TLSv1.2", "TLSv1.3"]
)
def test_tls_1_2_and_1_3_are_accepted(front: FrontedServer, version: ssl.TLSVersion) -> None:
    context = front.ssl_context()
    context.minimum_version = context.maximum_version = version
    negotiated, cipher = _handshake(front.https_port, context)
    assert negotiated == ("TLSv1.2" if version is ssl.TLSVersion.TLSv1_2 else "TLSv1.3")
    if version is ssl.TLSVersion.TLSv1_2:
        assert cipher in ACCEPTED_TLS12_CIPHERS


def _old_tls_context(version: ssl.TLSVersion) -> ssl.SSLContext:
    """A client that offers only `version` (TLS 1.0 or 1.1), at OpenSSL security level 0."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # setting old versions warns
        context.minimum_version = context.maximum_version = version
    # At the default security level OpenSSL 3 would not even offer TLS 1.0/1.1.
    context.set_ciphers("DEFAULT:@SECLEVEL=0")
    return context


@pytest.mark.parametrize("version_name", ["TLSv1", "TLSv1_1"])
def test_tls_1_0_and_1_1_are_refused_by_nginx(front: FrontedServer, version_name: str) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        version = getattr(ssl.TLSVersion, version_name)
    with pytest.raises(ssl.SSLError) as refused:
        _handshake(front.https_port, _old_tls_context(version))
    # The alert came from nginx: the client did offer the old version, and nginx said no.
    # (A client unable to offer it fails with NO_PROTOCOLS_AVAILABLE before sending.)
    assert refused.value.reason == "TLSV1_ALERT_PROTOCOL_VERSION", refused.value


def test_a_weak_tls_1_2_cipher_is_refused_by_nginx(front: FrontedServer) -> None:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.maximum_version = ssl.TLSVersion.TLSv1_2
    context.set_ciphers("AES128-SHA")  # RSA key exchange (no forward secrecy), CBC
    with pytest.raises(ssl.SSLError) as refused:
        _handshake(front.https_port, context)
    assert refused.value.reason == "SSLV3_ALERT_HANDSHAKE_FAILURE", refused.value


def test_the_socket_is_for_owner_and_group_only(front: FrontedServer) -> None:
    mode = Path(front.server.socket_path).stat().st_mode & 0o777
    assert mode == 0o660


def test_rate_limits_key_on_the_real_client_address(tmp_path: Path) -> None:
    """Behind nginx every request comes from the same socket; the limit must still be per
    client: nginx's X-Forwarded-For is believed (trusted_proxies = unix) and keys it."""
    with nginx_in_front(tmp_path, rate_limit_anonymous="3/hour") as fronted:

        def statuses(source: str, count: int) -> list[int]:
            transport = httpx.HTTPTransport(local_address=source, verify=fronted.ssl_context())
            with httpx.Client(base_url=fronted.https_url, transport=transport) as http:
                return [http.get("/v1/queues").status_code for _ in range(count)]

        assert statuses("127.0.0.2", 4) == [401, 401, 401, 429]
        # Another address has its own budget, although nginx relays both over one socket.
        assert statuses("127.0.0.3", 1) == [401]
        with fronted.client() as http:
            assert http.get("/v1/queues").status_code == 200
