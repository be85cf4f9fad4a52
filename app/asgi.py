"""The app as servers run it: create_app, behind forwarded-header handling for trusted proxies.

`app_from_environment()` is the factory for running gunicorn yourself:
`gunicorn -c deploy/gunicorn.conf.py 'app.asgi:app_from_environment()'`.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from app.logs import configure_logging
from app.main import create_app
from app.metrics.instruments import Metrics
from app.metrics.multiprocess import MULTIPROC_DIR_ENV
from app.settings import Settings, SettingsError, load_settings

# The ASGI shapes, spelled out here so that only api/ and main.py import Starlette.
Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

# The trusted_proxies entry for a peer on a Unix socket. uvicorn has no address for such a
# peer (`scope["client"]` is None), so no address or CIDR can name it.
UNIX_PEER = "unix"


@dataclass(frozen=True, slots=True)
class TrustedProxies:
    """The peers whose X-Forwarded-For and X-Forwarded-Proto are believed."""

    networks: tuple[IPNetwork, ...] = ()
    unix_peers: bool = False

    @classmethod
    def parse(cls, text: str) -> TrustedProxies:
        """The `trusted_proxies` setting: addresses, CIDRs and `unix`, comma-separated.

        Raises:
            SettingsError: an entry that is none of those (named in the message).
        """
        networks: list[IPNetwork] = []
        unix_peers = False
        for entry in (part.strip() for part in text.split(",")):
            if not entry:
                continue
            if entry.lower() == UNIX_PEER:
                unix_peers = True
                continue
            try:
                networks.append(ipaddress.ip_network(entry))
            except ValueError:
                raise SettingsError(
                    f"trusted_proxies: {entry!r} is not an address, a CIDR (with no host "
                    f"bits set) or {UNIX_PEER!r}"
                ) from None
        return cls(tuple(networks), unix_peers)

    def __bool__(self) -> bool:
        return bool(self.networks) or self.unix_peers

    def trusts(self, host: str | None) -> bool:
        """Whether a peer (an address, or None for a Unix socket peer) is a trusted proxy."""
        if host is None:
            return self.unix_peers
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            return False
        return any(address in network for network in self.networks)


class ForwardedHeadersMiddleware:
    """Client address and scheme from X-Forwarded-For/-Proto, when a trusted proxy sent them.

    The client is the right-most X-Forwarded-For entry that is not itself a trusted proxy:
    entries to its left were written by the client and prove nothing. From any other peer
    the headers are ignored, and the peer's own address stays the client.
    """

    def __init__(self, app: ASGIApp, trusted: TrustedProxies) -> None:
        self.app = app
        self.trusted = trusted

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket"):
            peer = scope.get("client")
            if self.trusted.trusts(peer[0] if peer else None):
                self._apply_forwarded_headers(scope)
        await self.app(scope, receive, send)

    def _apply_forwarded_headers(self, scope: Scope) -> None:
        proto: bytes | None = None
        forwarded_for: list[bytes] = []
        for name, value in scope["headers"]:
            if name == b"x-forwarded-proto":
                proto = value
            elif name == b"x-forwarded-for":
                forwarded_for.append(value)
        if proto is not None:
            scheme = proto.decode("latin-1").strip().lower()
            if scheme in ("http", "https"):
                is_websocket = scope["type"] == "websocket"
                scope["scheme"] = scheme.replace("http", "ws") if is_websocket else scheme
        if forwarded_for:
            client = self._client_from(b",".join(forwarded_for).decode("latin-1"))
            if client is not None:
                scope["client"] = (client, 0)

    def _client_from(self, forwarded_for: str) -> str | None:
        hops = [hop.strip() for hop in forwarded_for.split(",") if hop.strip()]
        for hop in reversed(hops):
            if not self.trusted.trusts(hop):
                return _address_or_none(hop)
        # Every hop is a trusted proxy: the left-most one is where the request came from.
        return _address_or_none(hops[0]) if hops else None


def _address_or_none(text: str) -> str | None:
    # Anything but a bare address (a port, "unknown", garbage) leaves the peer as the client.
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        return None


def serving_app(settings: Settings, metrics_dir: Path | None = None) -> ASGIApp:
    """create_app(settings) for a server process (start-up objects frozen out of the
    garbage collector), wrapped to believe forwarded headers only from trusted_proxies.

    `metrics_dir`: the multiprocess metrics directory shared by a gunicorn server's
    workers; None for a server of one process, which counts in its own memory.

    Raises:
        SettingsError: an invalid `trusted_proxies` entry.
    """
    trusted = TrustedProxies.parse(settings.trusted_proxies)
    metrics = Metrics.multiprocess(metrics_dir) if metrics_dir else Metrics.in_process()
    app: ASGIApp = create_app(settings, metrics=metrics, freeze_gc=True)
    return ForwardedHeadersMiddleware(app, trusted) if trusted else app


def app_from_environment() -> ASGIApp:
    """The app from TASKGATE_* and TASKGATE_CONFIG, with logging set up (a gunicorn factory).

    Metrics go to PROMETHEUS_MULTIPROC_DIR when it is set (deploy/gunicorn.conf.py sets
    it in the master, for every worker).

    Raises:
        SettingsError: an invalid setting.
    """
    settings = load_settings()
    configure_logging(settings.log_format, settings.log_level)
    metrics_dir = os.environ.get(MULTIPROC_DIR_ENV)
    return serving_app(settings, Path(metrics_dir) if metrics_dir else None)
