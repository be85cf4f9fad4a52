"""Bearer authentication and authorisation, in process with real tokens and keys."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import stat
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from joserfc import jwt
from joserfc.jwk import ECKey, OctKey, OKPKey, RSAKey

from app.api.spec import load_spec
from app.auth.principal import SCOPES
from app.auth.setup import secret_path
from app.main import create_app
from app.resources import openapi_path
from tests.conftest import AppFactory, SettingsFactory, admin_token, running_app

pytestmark = pytest.mark.anyio

RSA = RSAKey.generate_key(2048, parameters={"kid": "rsa-1", "alg": "RS256"})
EC = ECKey.generate_key("P-256", parameters={"kid": "ec-1"})
ED = OKPKey.generate_key("Ed25519", parameters={"kid": "ed-1"})


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def claims(**overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    base = {"iss": "taskgate", "aud": "taskgate", "sub": "probe", "exp": now + 600, "iat": now}
    base["scope"] = "admin"
    base.update(overrides)
    return {key: value for key, value in base.items() if value is not None}


def hand_signed(header: dict[str, Any], body: dict[str, Any], key: bytes) -> str:
    """A JWS made by hand (joserfc refuses to make the malicious ones)."""
    signing_input = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(body).encode())}"
    signature = hmac.new(key, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64(signature)}"


@pytest.fixture
def jwks_file(tmp_path: Path) -> Path:
    path = tmp_path / "jwks.json"
    keys = [k.as_dict(private=False) for k in (RSA, EC, ED)]
    path.write_text(json.dumps({"keys": keys}))
    return path


@pytest.fixture
async def anonymous(
    make_settings: SettingsFactory, jwks_file: Path
) -> AsyncIterator[httpx.AsyncClient]:
    """A client without a token, on a server that also trusts the JWKS file."""
    settings = make_settings(auth_jwks=str(jwks_file))
    async with running_app(create_app(settings)) as client:
        client.headers["x-secret-file"] = str(secret_path(settings))  # for tests that need it
        yield client


def server_secret(client: httpx.AsyncClient) -> bytes:
    return Path(client.headers["x-secret-file"]).read_bytes().splitlines()[0].strip()


def server_kid(client: httpx.AsyncClient) -> str:
    return "hs256-" + hashlib.sha256(server_secret(client)).hexdigest()[:16]


async def status_with(client: httpx.AsyncClient, token: str) -> httpx.Response:
    return await client.get("/v1/queues", headers={"Authorization": f"Bearer {token}"})


async def test_tokens_from_the_jwks_are_accepted_with_their_pinned_algorithm(
    anonymous: httpx.AsyncClient,
) -> None:
    for key, alg in ((RSA, "RS256"), (EC, "ES256"), (ED, "Ed25519")):
        token = jwt.encode({"alg": alg, "kid": key.kid}, claims(), key, algorithms=[alg])
        assert (await status_with(anonymous, token)).status_code == 200, alg


def probes(client: httpx.AsyncClient) -> dict[str, str]:
    secret = server_secret(client)
    kid = server_kid(client)
    good_key = OctKey.import_key(secret)
    other_key = OctKey.import_key(b"another-secret-that-is-long-enough-0123")
    signed = jwt.encode({"alg": "HS256", "kid": kid}, claims(), good_key)
    head, body, _ = signed.split(".")
    public_pem = RSA.as_pem(private=False)
    now = int(time.time())
    return {
        "malformed": "not-a-jwt",
        "two segments": f"{head}.{body}",
        "wrong signature": f"{head}.{body}.{b64(b'0' * 32)}",
        "signed with another secret": jwt.encode({"alg": "HS256", "kid": kid}, claims(), other_key),
        "alg none": f"{b64(json.dumps({'alg': 'none', 'kid': kid}).encode())}.{body}.",
        "alg none without kid": f"{b64(json.dumps({'alg': 'none'}).encode())}.{body}.",
        "HS256 with the RSA public key": hand_signed(
            {"alg": "HS256", "kid": "rsa-1"}, claims(), public_pem
        ),
        "RS256 header on the HS key": hand_signed({"alg": "RS256", "kid": kid}, claims(), secret),
        "expired": jwt.encode(
            {"alg": "HS256", "kid": kid}, claims(exp=now - 3600, iat=now - 7200), good_key
        ),
        "not yet valid": jwt.encode({"alg": "HS256", "kid": kid}, claims(nbf=now + 3600), good_key),
        "wrong audience": jwt.encode({"alg": "HS256", "kid": kid}, claims(aud="other"), good_key),
        "wrong issuer": jwt.encode({"alg": "HS256", "kid": kid}, claims(iss="evil"), good_key),
        "missing exp": jwt.encode({"alg": "HS256", "kid": kid}, claims(exp=None), good_key),
        "missing sub": jwt.encode({"alg": "HS256", "kid": kid}, claims(sub=None), good_key),
        "unknown kid": jwt.encode({"alg": "HS256", "kid": "nope"}, claims(), good_key),
        "scope of the wrong type": jwt.encode(
            {"alg": "HS256", "kid": kid}, claims(scope={"admin": True}), good_key
        ),
    }


async def test_every_bad_token_gets_401_and_is_not_logged(
    anonymous: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    assert (await anonymous.get("/v1/queues")).status_code == 401
    for name, token in probes(anonymous).items():
        response = await status_with(anonymous, token)
        assert response.status_code == 401, name
        assert response.headers["www-authenticate"].startswith('Bearer realm="taskgate"'), name
        assert response.headers["content-type"].startswith("application/problem+json")
        assert token not in caplog.text, name
    assert "token rejected" in caplog.text
    for header in ("Basic dXNlcjpwdw==", "Bearer", "Bearer   "):
        response = await anonymous.get("/v1/queues", headers={"Authorization": header})
        assert response.status_code == 401, header


async def test_an_expired_token_says_so(anonymous: httpx.AsyncClient) -> None:
    token = probes(anonymous)["expired"]
    response = await status_with(anonymous, token)
    assert "expired" in response.json()["detail"]
    assert 'error="invalid_token"' in response.headers["www-authenticate"]


def secured_operations() -> list[tuple[str, str, str, tuple[str, ...]]]:
    spec = load_spec(openapi_path())
    found = []
    for op in spec.operations():
        if op.scopes:
            path = op.path.replace("{queue}", "q").replace("{task_id}", "t_missing")
            found.append((op.operation_id, op.method, path, op.scopes))
    return found


@pytest.mark.parametrize(("operation", "method", "path", "scopes"), secured_operations())
async def test_each_operation_needs_a_token_and_its_scope(
    make_settings: SettingsFactory, operation: str, method: str, path: str, scopes: tuple[str, ...]
) -> None:
    settings = make_settings()
    others = tuple(s for s in SCOPES if s not in scopes and s != "admin")
    async with running_app(create_app(settings)) as client:
        missing = await client.request(method, path, json={})
        assert missing.status_code == 401, operation
        wrong = admin_token(settings, others)
        response = await client.request(
            method, path, json={}, headers={"Authorization": f"Bearer {wrong}"}
        )
        assert response.status_code == 403, operation
        assert f'scope="{" ".join(scopes)}"' in response.headers["www-authenticate"]
        right = admin_token(settings, scopes)
        allowed = await client.request(
            method, path, json={}, headers={"Authorization": f"Bearer {right}"}
        )
        assert allowed.status_code not in (401, 403), operation


async def test_open_endpoints_stay_open_and_metrics_needs_its_scope(
    anonymous: httpx.AsyncClient,
) -> None:
    for path in ("/healthz", "/readyz", "/openapi.json", "/openapi.yaml", "/docs"):
        assert (await anonymous.get(path)).status_code == 200, path
    assert (await anonymous.get("/metrics")).status_code == 401


async def test_metrics_and_docs_follow_their_settings(
    start_app: AppFactory, make_settings: SettingsFactory
) -> None:
    async with running_app(create_app(make_settings(metrics_auth=False, docs_auth=True))) as client:
        assert (await client.get("/metrics")).status_code == 200
        assert (await client.get("/docs")).status_code == 401
        assert (await client.get("/openapi.json")).status_code == 401


async def test_without_auth_anyone_may_do_anything(make_settings: SettingsFactory) -> None:
    async with running_app(create_app(make_settings(auth=False))) as client:
        assert (await client.post("/v1/queues/q/tasks", json={"type": "t"})).status_code == 201


async def test_queue_patterns_limit_what_a_token_sees(make_settings: SettingsFactory) -> None:
    settings = make_settings()
    admin = {"Authorization": f"Bearer {admin_token(settings)}"}
    scoped = admin_token(
        settings,
        ("tasks:submit", "tasks:read", "tasks:work", "queues:admin"),
        queues=["emails", "reports.*"],
    )
    limited = {"Authorization": f"Bearer {scoped}"}
    async with running_app(create_app(settings)) as client:
        hidden = (
            await client.post("/v1/queues/secret/tasks", json={"type": "t"}, headers=admin)
        ).json()
        mine = await client.post(
            "/v1/queues/reports.daily/tasks", json={"type": "t"}, headers=limited
        )
        assert mine.status_code == 201
        assert (
            await client.post("/v1/queues/secret/tasks", json={"type": "t"}, headers=limited)
        ).status_code == 403
        assert (
            await client.post("/v1/queues/reportsX/claim", json={"worker_id": "w"}, headers=limited)
        ).status_code == 403
        for method, path, body in (
            ("GET", f"/v1/tasks/{hidden['id']}", None),
            ("POST", f"/v1/tasks/{hidden['id']}/cancel", None),
            ("POST", f"/v1/tasks/{hidden['id']}/complete", {"lease_token": "lt_x"}),
            ("POST", f"/v1/tasks/{hidden['id']}/fail", {"lease_token": "lt_x"}),
            ("POST", f"/v1/tasks/{hidden['id']}/heartbeat", {"lease_token": "lt_x"}),
        ):
            response = await client.request(method, path, json=body, headers=limited)
            assert response.status_code == 404, path
        listed = (await client.get("/v1/tasks", headers=limited)).json()["tasks"]
        assert [t["queue"] for t in listed] == ["reports.daily"]
        assert (await client.get("/v1/tasks?queue=secret", headers=limited)).json()["tasks"] == []
        queues = (await client.get("/v1/queues", headers=limited)).json()["queues"]
        assert [q["name"] for q in queues] == ["reports.daily"]
        for path in ("/v1/queues/secret", "/v1/queues/secret/dead"):
            assert (await client.get(path, headers=limited)).status_code == 403
        assert (await client.post("/v1/queues/secret/pause", headers=limited)).status_code == 403
        task = (await client.get(f"/v1/tasks/{hidden['id']}", headers=admin)).json()
        assert task["state"] == "queued"


async def test_a_queue_limited_token_sees_only_its_workers_queues_and_leases(
    make_settings: SettingsFactory,
) -> None:
    settings = make_settings()
    admin = {"Authorization": f"Bearer {admin_token(settings)}"}
    limited = {
        "Authorization": "Bearer "
        + admin_token(settings, ("queues:admin",), queues=["emails"], subject="mailroom")
    }
    async with running_app(create_app(settings), admin_token(settings)) as client:
        for queue in ("emails", "secret"):
            await client.post(f"/v1/queues/{queue}/tasks", json={"type": "t"})
        # "both" works both queues, "hidden" only the one the limited token may not see.
        for worker, queue in (("both", "emails"), ("both", "secret"), ("hidden", "secret")):
            claimed = await client.post(f"/v1/queues/{queue}/claim", json={"worker_id": worker})
            assert claimed.status_code == 200, claimed.text

        everything = (await client.get("/v1/workers", headers=admin)).json()["workers"]
        seen = (await client.get("/v1/workers", headers=limited)).json()["workers"]

    assert {w["id"]: sorted(w["queues"]) for w in everything} == {
        "both": ["emails", "secret"],
        "hidden": ["secret"],
    }
    (both,) = seen
    assert both["id"] == "both" and both["queues"] == ["emails"]
    assert [lease["queue"] for lease in both["leases"]] == ["emails"]
    assert both["in_flight"] == 1


async def test_the_secret_file_is_private_and_created_once(make_settings: SettingsFactory) -> None:
    settings = make_settings()
    async with running_app(create_app(settings)):
        path = secret_path(settings)
        first = path.read_bytes()
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    async with running_app(create_app(settings)):
        assert path.read_bytes() == first


async def test_a_secret_file_others_can_read_is_refused(make_settings: SettingsFactory) -> None:
    from app.auth.signing_keys import SecretFileError

    settings = make_settings()
    admin_token(settings)  # creates it
    secret_path(settings).chmod(0o644)
    with pytest.raises(SecretFileError, match="chmod 600"):
        create_app(settings)


async def test_a_second_secret_keeps_old_tokens_valid(make_settings: SettingsFactory) -> None:
    settings = make_settings()
    old_token = admin_token(settings)
    path = secret_path(settings)
    path.write_bytes(b"a-brand-new-secret-that-signs-from-now-on-0123\n" + path.read_bytes())
    new_token = admin_token(settings)
    assert new_token != old_token
    async with running_app(create_app(settings)) as client:
        for token in (old_token, new_token):
            assert (await status_with(client, token)).status_code == 200
    path.write_bytes(path.read_bytes().splitlines()[0] + b"\n")
    async with running_app(create_app(settings)) as client:
        assert (await status_with(client, old_token)).status_code == 401
        assert (await status_with(client, new_token)).status_code == 200


async def test_a_remembered_token_still_expires(make_settings: SettingsFactory) -> None:
    from app.auth.setup import token_rules
    from app.auth.signing_keys import load_signing_keys
    from app.auth.tokens import TokenRejected, TokenVerifier

    settings = make_settings()
    token = admin_token(settings, ttl_seconds=100)
    clock = [time.time()]
    verifier = TokenVerifier(
        load_signing_keys(secret_path(settings)), token_rules(settings), now=lambda: clock[0]
    )
    assert (await verifier.verify(token)).subject == "tests"
    clock[0] += 50  # remembered: no re-verification needed, still valid
    assert (await verifier.verify(token)).subject == "tests"
    clock[0] += 100  # past exp (and the leeway): refused although it was remembered
    with pytest.raises(TokenRejected):
        await verifier.verify(token)
