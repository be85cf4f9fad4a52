"""The gate every request passes: bearer authentication, scopes, and rate limits.

What an operation needs comes from the spec (`security` → bearer scopes); the server's
`metrics_auth` / `docs_auth` settings open or close the system endpoints. A request
without a valid token is answered 401 (after counting against its address's limit, so
token guessing is throttled); a valid token without the scope gets 403; a token past its
rate limit gets 429. Queue restrictions of a token are checked by the handlers, which
know the queue (see `RequestContext.require_queue` and `visible`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from starlette.requests import Request

from app.api.ratelimit import RateLimiter, rate_limit_headers
from app.auth.principal import (
    ADMIN,
    METRICS,
    QUEUES_ADMIN,
    READ,
    SUBMIT,
    UNAUTHENTICATED_ADMIN,
    WORK,
    Principal,
)
from app.auth.tokens import TokenRejected, TokenVerifier
from app.core.errors import Forbidden, RateLimited, Unauthenticated

log = logging.getLogger("taskgate.auth")

ANONYMOUS = Principal(subject="anonymous", scopes=frozenset())
GROUP_BY_SCOPE = {
    SUBMIT: "submit",
    WORK: "work",
    READ: "read",
    METRICS: "read",
    QUEUES_ADMIN: "admin",
    ADMIN: "admin",
}
DOCS_OPERATIONS = frozenset({"getDocs", "getOpenapiJson", "getOpenapiYaml"})


@dataclass(frozen=True, slots=True)
class Access:
    """What an operation needs: bearer scopes (None: open) and its rate-limit group."""

    scopes: tuple[str, ...] | None
    group: str


def access_for(
    operation_id: str, spec_scopes: tuple[str, ...] | None, *, metrics_auth: bool, docs_auth: bool
) -> Access:
    """The access rule of an operation, with the settings that open or close system ones."""
    scopes = spec_scopes
    if operation_id == "getMetrics" and not metrics_auth:
        scopes = None
    if operation_id in DOCS_OPERATIONS and docs_auth:
        scopes = ()
    group = GROUP_BY_SCOPE.get(scopes[0], "read") if scopes else "read"
    return Access(scopes=scopes, group=group)


def bearer_token(request: Request) -> str | None:
    """The token of an `Authorization: Bearer …` header (None when absent)."""
    header = request.headers.get("authorization")
    if header is None:
        return None
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthenticated("the Authorization header must be `Bearer <token>`", token_given=True)
    return token.strip()


def client_key(request: Request) -> str:
    """The rate-limit key of an unauthenticated caller: its address (as the server sees it,
    i.e. from X-Forwarded-For only behind a trusted proxy)."""
    client = request.client
    return f"ip:{client.host}" if client is not None else "ip:unix"


class Guard:
    """Admits requests: authenticates, authorises by scope, and rate-limits."""

    def __init__(
        self,
        verifier: TokenVerifier | None,
        limiter: RateLimiter | None = None,
    ) -> None:
        self._verifier = verifier
        self._limiter = limiter

    async def admit(self, request: Request, access: Access) -> Principal:
        """The caller, once allowed.

        Raises:
            Unauthenticated, Forbidden, RateLimited.
        """
        if access.scopes is None:
            return ANONYMOUS
        if self._verifier is None:
            await self.charge(access.group, client_key(request))
            return UNAUTHENTICATED_ADMIN
        principal = await self._authenticate(request)
        if not principal.has_scopes(access.scopes):
            raise Forbidden(
                f"this operation needs the scope {' '.join(access.scopes)}; the token of "
                f"{principal.subject!r} has {' '.join(sorted(principal.scopes)) or 'none'}",
                access.scopes,
            )
        await self.charge(access.group, f"sub:{principal.subject}")
        return principal

    async def _authenticate(self, request: Request) -> Principal:
        assert self._verifier is not None
        try:
            token = bearer_token(request)
        except Unauthenticated:
            await self.charge("anonymous", client_key(request))
            raise
        if token is None:
            await self.charge("anonymous", client_key(request))
            raise Unauthenticated("this endpoint needs an `Authorization: Bearer <token>` header")
        try:
            return await self._verifier.verify(token)
        except TokenRejected as exc:
            log.info(
                "token rejected: %s",
                exc.reason,
                extra={"client": client_key(request), "path": request.url.path},
            )
            await self.charge("anonymous", client_key(request))
            raise Unauthenticated(exc.public, token_given=True) from None

    async def charge(self, group: str, key: str, cost: int = 1) -> None:
        """Count `cost` requests against `key` in `group`.

        Raises:
            RateLimited: the limit is used up (nothing was counted).
        """
        if self._limiter is None or cost <= 0:
            return
        decision = await self._limiter.refusal(group, key, cost)
        if decision is not None:
            headers = rate_limit_headers(decision)
            raise RateLimited(
                f"the {group} rate limit for this caller is used up; retry after "
                f"{headers.get('Retry-After', '1')} s",
                headers,
            )
