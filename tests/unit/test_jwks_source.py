"""JWKS from a URL (a real local HTTP server): keys rotate in without a restart."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from joserfc import jwt
from joserfc.jwk import RSAKey

from app.auth.jwks import JwksError, JwksSource, parse_jwks
from app.auth.tokens import TokenRejected, TokenRules, TokenVerifier

pytestmark = pytest.mark.anyio

OLD = RSAKey.generate_key(2048, parameters={"kid": "old", "alg": "RS256"})
NEW = RSAKey.generate_key(2048, parameters={"kid": "new", "alg": "RS256"})


class Provider:
    """An identity provider's JWKS endpoint that can rotate its keys."""

    def __init__(self) -> None:
        self.keys = [OLD]
        self.requests = 0
        provider = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                provider.requests += 1
                body = json.dumps({"keys": [k.as_dict(private=False) for k in provider.keys]})
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.end_headers()
                self.wfile.write(body.encode())

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/jwks.json"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def provider() -> Iterator[Provider]:
    running = Provider()
    yield running
    running.server.shutdown()
    running.server.server_close()


def token(key: RSAKey) -> str:
    now = int(time.time())
    claims = {"iss": "idp", "aud": "taskgate", "sub": "svc", "exp": now + 60, "scope": "tasks:read"}
    return jwt.encode({"alg": "RS256", "kid": key.kid}, claims, key)


async def test_a_rotated_in_key_is_fetched_on_first_sight(provider: Provider) -> None:
    source = JwksSource(provider.url, refresh_interval_s=0)
    await source.fetch()
    verifier = TokenVerifier([], TokenRules(issuer="idp", audience="taskgate"), source)
    assert (await verifier.verify(token(OLD))).subject == "svc"
    with pytest.raises(TokenRejected, match="unknown kid"):
        await verifier.verify(token(NEW))
    provider.keys = [OLD, NEW]
    principal = await verifier.verify(token(NEW))
    assert principal.scopes == frozenset({"tasks:read"})


async def test_unknown_kids_do_not_hammer_the_provider(provider: Provider) -> None:
    source = JwksSource(provider.url, refresh_interval_s=3600)
    await source.fetch()
    for kid in ("a", "b", "c"):
        assert await source.get(kid) is None
    assert provider.requests == 1


def test_a_jwks_must_hold_only_usable_public_keys() -> None:
    with pytest.raises(JwksError, match="keys"):
        parse_jwks({"nope": []})
    with pytest.raises(JwksError, match="only RSA, EC and OKP"):
        parse_jwks({"keys": [{"kty": "oct", "kid": "s", "k": "c2VjcmV0"}]})
    with pytest.raises(JwksError, match="kid"):
        parse_jwks({"keys": [OLD.as_dict(private=False) | {"kid": None}]})
    with pytest.raises(JwksError, match="not accepted"):
        parse_jwks({"keys": [OLD.as_dict(private=False) | {"alg": "HS256"}]})
    keys = parse_jwks({"keys": [OLD.as_dict(private=True)]})
    assert not keys["old"].key.is_private
