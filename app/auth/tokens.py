"""Bearer tokens: strict verification (joserfc) and minting with the server's secret.

Verification never takes a key or an algorithm from the token: the `kid` in its header
only selects one of the configured keys, and that key's pinned algorithm is the only
one accepted (so `alg: none` and HS256-signed-with-a-public-key tokens fail). `exp` is
required, `iss` and `aud` must match, `nbf`/`iat` are checked, with a small leeway.
"""

from __future__ import annotations

import secrets
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from joserfc import jws, jwt
from joserfc.errors import ExpiredTokenError, JoseError, MissingClaimError, SecurityWarning
from joserfc.jwk import Key

from app.auth.jwks import JwksSource
from app.auth.principal import SCOPES, Principal
from app.auth.signing_keys import SigningKey

MAX_TOKEN_CHARS = 8192
HS256 = "HS256"
# Verified tokens are remembered (per process) so a client's next request skips the
# signature and claim checks; an entry is trusted until the token's exp, at most this long.
CACHE_SECONDS = 60.0
CACHE_ENTRIES = 10_000


class TokenRejected(Exception):
    """The token is not acceptable. `reason` is for the log; `public` for the client."""

    def __init__(self, reason: str, public: str = "the bearer token is not valid") -> None:
        super().__init__(reason)
        self.reason = reason
        self.public = public


@dataclass(frozen=True, slots=True)
class TokenRules:
    """What every token must say about itself."""

    issuer: str
    audience: str
    leeway_seconds: int = 30


class TokenVerifier:
    """Checks bearer tokens against the server secrets and an optional JWKS."""

    def __init__(
        self,
        signing_keys: Sequence[SigningKey],
        rules: TokenRules,
        jwks: JwksSource | None = None,
        now: Callable[[], float] = time.time,
    ) -> None:
        self._hs_keys = {key.kid: key.key for key in signing_keys}
        self._rules = rules
        self.jwks = jwks
        self._now = now
        self._verified: dict[str, tuple[Principal, float]] = {}

    async def verify(self, token: str) -> Principal:
        """The principal of a valid token.

        Raises:
            TokenRejected: malformed, unknown key, bad signature, or claims that do not hold.
        """
        cached = self._verified.get(token)
        if cached is not None:
            principal, trusted_until = cached
            if self._now() < trusted_until:
                return principal
            del self._verified[token]
        principal, expires_at = await self._verify(token)
        if len(self._verified) >= CACHE_ENTRIES:
            self._verified.clear()
        self._verified[token] = (principal, min(expires_at, self._now() + CACHE_SECONDS))
        return principal

    async def _verify(self, token: str) -> tuple[Principal, float]:
        if len(token) > MAX_TOKEN_CHARS or token.count(".") != 2:
            raise TokenRejected("not a compact JWS")
        try:
            header = jws.extract_compact(token.encode("ascii")).headers()
        except (JoseError, ValueError, UnicodeError) as exc:
            raise TokenRejected(f"unreadable token header: {exc}") from None
        key, algorithm = await self._key_for(header.get("kid"))
        if header.get("alg") != algorithm:
            raise TokenRejected(f"algorithm {header.get('alg')!r} is not the key's {algorithm}")
        try:
            with warnings.catch_warnings():
                # EdDSA is pinned only for keys that declare it (RFC 9864 renamed it).
                warnings.simplefilter("ignore", SecurityWarning)
                claims = jwt.decode(token, key, algorithms=[algorithm]).claims
            jwt.JWTClaimsRegistry(
                now=int(self._now()),
                leeway=self._rules.leeway_seconds,
                exp={"essential": True},
                sub={"essential": True},
                iss={"essential": True, "value": self._rules.issuer},
                aud={"essential": True, "value": self._rules.audience},
            ).validate(claims)
        except ExpiredTokenError:
            raise TokenRejected("expired", "the bearer token has expired") from None
        except MissingClaimError as exc:
            raise TokenRejected(f"missing claim {exc}") from None
        except (JoseError, ValueError, TypeError) as exc:
            raise TokenRejected(f"{type(exc).__name__}: {exc}") from None
        exp = claims["exp"]
        if not isinstance(exp, int | float):
            raise TokenRejected("exp is not a number")
        return _principal(claims), float(exp)

    async def _key_for(self, kid: object) -> tuple[Key, str]:
        if kid is None:
            if self._hs_keys:
                return next(iter(self._hs_keys.values())), HS256
            raise TokenRejected("no kid and no server secret")
        if not isinstance(kid, str):
            raise TokenRejected("kid is not a string")
        hs_key = self._hs_keys.get(kid)
        if hs_key is not None:
            return hs_key, HS256
        if self.jwks is not None:
            pinned = await self.jwks.get(kid)
            if pinned is not None:
                return pinned.key, pinned.algorithm
        raise TokenRejected(f"unknown kid {kid[:64]!r}")


def _principal(claims: dict[str, object]) -> Principal:
    subject = claims["sub"]
    if not isinstance(subject, str) or not subject:
        raise TokenRejected("sub is not a non-empty string")
    raw_scope = claims.get("scope", claims.get("scp", ""))
    if isinstance(raw_scope, str):
        scopes = raw_scope.split()
    elif isinstance(raw_scope, list) and all(isinstance(s, str) for s in raw_scope):
        scopes = list(raw_scope)
    else:
        raise TokenRejected("scope is neither a space-separated string nor a list")
    queues = claims.get("queues")
    if queues is not None and not (
        isinstance(queues, list) and all(isinstance(q, str) and q for q in queues)
    ):
        raise TokenRejected("queues is not a list of patterns")
    return Principal(
        subject=subject,
        scopes=frozenset(scope for scope in scopes if scope in SCOPES),
        queue_patterns=None if queues is None else tuple(queues),
    )


def mint_token(
    signing_key: SigningKey,
    rules: TokenRules,
    subject: str,
    scopes: Sequence[str],
    ttl_seconds: int,
    queues: Sequence[str] | None = None,
    now: float | None = None,
) -> str:
    """An HS256 token signed with the server secret.

    Raises:
        ValueError: an unknown scope, no scope, or a non-positive lifetime.
    """
    unknown = sorted(set(scopes) - set(SCOPES))
    if unknown or not scopes:
        raise ValueError(f"scopes must be some of {', '.join(SCOPES)}; got {list(scopes)}")
    if ttl_seconds <= 0:
        raise ValueError("the lifetime must be positive")
    issued = int(time.time() if now is None else now)
    claims: dict[str, object] = {
        "iss": rules.issuer,
        "aud": rules.audience,
        "sub": subject,
        "iat": issued,
        "nbf": issued,
        "exp": issued + ttl_seconds,
        "jti": secrets.token_urlsafe(12),
        "scope": " ".join(dict.fromkeys(scopes)),
    }
    if queues is not None:
        claims["queues"] = list(queues)
    return jwt.encode(
        {"alg": HS256, "kid": signing_key.kid}, claims, signing_key.key, algorithms=[HS256]
    )
