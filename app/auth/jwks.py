"""Public keys of an external identity provider, from a JWKS file or https URL.

Each key must have a `kid`; its algorithm is pinned from its `alg` member or, when
absent, from its type (RSA → RS256, EC P-256/P-384 → ES256/ES384, OKP Ed25519 →
Ed25519, RFC 9864; the older name EdDSA is accepted when a key declares it).
Symmetric (`oct`) keys are refused: a JWKS publishes public keys. A URL is fetched at
start and again when a token names an unknown `kid` (at most once per refresh interval),
so a provider's key rotation is picked up without a restart.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from joserfc.errors import JoseError
from joserfc.jwk import ECKey, OKPKey, RSAKey, import_key

log = logging.getLogger("taskgate.auth")

PublicKey = RSAKey | ECKey | OKPKey
# "EdDSA" is the pre-RFC 9864 name of Ed25519 signatures; still accepted for older IdPs.
ALLOWED_ALGORITHMS = frozenset(
    {"RS256", "RS384", "RS512", "PS256", "ES256", "ES384", "Ed25519", "EdDSA"}
)
FETCH_TIMEOUT_S = 5.0


class JwksError(Exception):
    """The key set cannot be loaded; the message says why."""


@dataclass(frozen=True, slots=True)
class PinnedKey:
    """A public key and the one algorithm tokens signed with it may use."""

    kid: str
    algorithm: str
    key: PublicKey


def _algorithm_of(jwk: dict[str, Any]) -> str:
    declared = jwk.get("alg")
    if isinstance(declared, str):
        if declared not in ALLOWED_ALGORITHMS:
            raise JwksError(f"key {jwk.get('kid')!r}: algorithm {declared!r} is not accepted")
        return declared
    inferred = {
        ("RSA", None): "RS256",
        ("EC", "P-256"): "ES256",
        ("EC", "P-384"): "ES384",
        ("OKP", "Ed25519"): "Ed25519",
    }
    algorithm = inferred.get((str(jwk.get("kty")), jwk.get("crv")))
    if algorithm is not None:
        return algorithm
    raise JwksError(f"key {jwk.get('kid')!r}: cannot tell its algorithm; give it an `alg`")


def parse_jwks(document: Any) -> dict[str, PinnedKey]:
    """Keys by kid from a JWKS document.

    Raises:
        JwksError: not a JWKS, a key without kid, a symmetric key, or an unusable key.
    """
    if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
        raise JwksError('a JWKS is a JSON object with a "keys" array')
    keys: dict[str, PinnedKey] = {}
    for jwk in document["keys"]:
        if not isinstance(jwk, dict) or not isinstance(jwk.get("kid"), str):
            raise JwksError("every key of the JWKS needs a string `kid`")
        if jwk.get("kty") not in ("RSA", "EC", "OKP"):
            raise JwksError(f"key {jwk['kid']!r}: only RSA, EC and OKP public keys are accepted")
        if jwk.get("use", "sig") != "sig":
            continue
        public = {
            name: value
            for name, value in jwk.items()
            if name not in ("d", "p", "q", "dp", "dq", "qi")
        }
        try:
            key = import_key(public)
        except (JoseError, ValueError, TypeError) as exc:
            raise JwksError(f"key {jwk['kid']!r}: {exc}") from None
        assert isinstance(key, RSAKey | ECKey | OKPKey)
        keys[jwk["kid"]] = PinnedKey(kid=jwk["kid"], algorithm=_algorithm_of(jwk), key=key)
    return keys


class JwksSource:
    """Keys from a file (read once) or a URL (cached; refreshed on an unknown kid)."""

    def __init__(self, location: str, refresh_interval_s: float = 60.0) -> None:
        self._location = location
        self._refresh_interval_s = refresh_interval_s
        self._keys: dict[str, PinnedKey] = {}
        self._fetched_at = float("-inf")
        self._lock = asyncio.Lock()

    @property
    def is_url(self) -> bool:
        return self._location.startswith(("https://", "http://"))

    def load_file(self) -> None:
        """Read a JWKS file (start-up).

        Raises:
            JwksError: unreadable or invalid.
        """
        try:
            document = json.loads(Path(self._location).read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise JwksError(f"auth JWKS file {self._location}: {exc}") from None
        self._keys = parse_jwks(document)

    async def fetch(self) -> None:
        """Fetch the JWKS URL.

        Raises:
            JwksError: the URL does not answer with a valid JWKS.
        """
        try:
            async with httpx.AsyncClient(timeout=FETCH_TIMEOUT_S, follow_redirects=False) as client:
                response = await client.get(self._location)
                response.raise_for_status()
                document = response.json()
        except (httpx.HTTPError, ValueError) as exc:
            raise JwksError(f"auth JWKS {self._location}: {exc}") from None
        self._keys = parse_jwks(document)
        self._fetched_at = time.monotonic()

    async def get(self, kid: str) -> PinnedKey | None:
        """The key named `kid`; a URL is fetched again (rate-limited) when it is unknown."""
        key = self._keys.get(kid)
        if key is not None or not self.is_url:
            return key
        async with self._lock:
            if (
                kid not in self._keys
                and time.monotonic() - self._fetched_at >= self._refresh_interval_s
            ):
                try:
                    await self.fetch()
                except JwksError as exc:
                    log.warning("could not refresh the JWKS: %s", exc)
                    self._fetched_at = time.monotonic()
        return self._keys.get(kid)
