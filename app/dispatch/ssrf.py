"""SSRF guard for webhook targets: http(s) only, every address globally routable.

A target URL's host is resolved once; each address must be public (not loopback,
private, link-local — 169.254.169.254 included —, CGNAT, unspecified, reserved,
multicast or IPv4-mapped) unless the host name or the address is on the allow-list.
The caller then connects to one of the addresses that were checked, never to a fresh
resolution of the name, so DNS rebinding cannot swap in another address.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

from app.core.errors import FieldError, InvalidInput

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
Resolver = Callable[[str, int], Awaitable[list[str]]]

DEFAULT_PORTS = {"http": 80, "https": 443}


RESOLVE_TIMEOUT_S = 5.0


class TargetRejected(InvalidInput):
    """The webhook URL is not an acceptable delivery target.

    `transient`: the host did not resolve (it may later); otherwise the URL or one of its
    addresses is refused by policy.
    """

    def __init__(self, message: str, fields: list[FieldError], transient: bool = False) -> None:
        super().__init__(message, fields)
        self.transient = transient


@dataclass(frozen=True, slots=True)
class AllowList:
    """Targets let through although not public: host names and networks (e.g. for tests)."""

    hosts: frozenset[str] = frozenset()
    networks: tuple[IPNetwork, ...] = ()

    @classmethod
    def parse(cls, entries: Sequence[str]) -> AllowList:
        """From setting entries: CIDRs or addresses (`127.0.0.1/32`, `::1`) and host names.

        Raises:
            ValueError: an entry is empty.
        """
        hosts: set[str] = set()
        networks: list[IPNetwork] = []
        for raw in entries:
            entry = raw.strip().lower()
            if not entry:
                raise ValueError("an allow-list entry is empty")
            try:
                networks.append(ipaddress.ip_network(entry, strict=False))
            except ValueError:
                hosts.add(entry.rstrip("."))
        return cls(frozenset(hosts), tuple(networks))

    def allows_host(self, host: str) -> bool:
        return host.lower().rstrip(".") in self.hosts

    def allows_address(self, address: IPAddress) -> bool:
        return any(address in network for network in self.networks)


@dataclass(frozen=True, slots=True)
class CheckedTarget:
    """A target that passed the guard: connect to `addresses`, send `Host: host`."""

    url: str
    scheme: str
    host: str
    port: int
    addresses: tuple[IPAddress, ...]


def why_not_public(address: IPAddress) -> str | None:
    """Why an address is not a public unicast address (None when it is)."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return "an IPv4-mapped IPv6 address"
    checks = (
        (address.is_unspecified, "unspecified"),
        (address.is_loopback, "loopback"),
        (address.is_link_local, "link-local (cloud metadata lives there)"),
        (address.is_multicast, "multicast"),
        (address.is_private, "private"),
        (address.is_reserved, "reserved"),
        (not address.is_global, "not globally routable (e.g. CGNAT 100.64.0.0/10)"),
    )
    for failed, reason in checks:
        if failed:
            return reason
    return None


def _reject(url: str, message: str, transient: bool = False) -> TargetRejected:
    return TargetRejected(
        f"webhook url {url!r}: {message}",
        [FieldError("body.webhook.url", message)],
        transient=transient,
    )


def split_target(url: str) -> tuple[str, str, int]:
    """(scheme, host, port) of an http(s) URL without credentials.

    Raises:
        TargetRejected: another scheme, no host, credentials, or a bad port.
    """
    try:
        parts = urlsplit(url)
    except ValueError:
        raise _reject(url, "is not a valid URL") from None
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS:
        raise _reject(url, "must be an http or https URL")
    if parts.username is not None or parts.password is not None:
        raise _reject(url, "must not carry credentials; use the signing secret instead")
    host = parts.hostname
    if not host:
        raise _reject(url, "has no host")
    try:
        port = parts.port or DEFAULT_PORTS[scheme]
    except ValueError:
        raise _reject(url, "has an invalid port") from None
    return scheme, host, port


async def system_resolver(host: str, port: int) -> list[str]:
    """The host's addresses from the system resolver (off the event loop)."""
    infos = await asyncio.get_running_loop().getaddrinfo(
        host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP
    )
    return [str(info[4][0]) for info in infos]


async def check_target(
    url: str, allow: AllowList, resolve: Resolver = system_resolver
) -> CheckedTarget:
    """Resolve the URL's host once and check every address.

    Raises:
        TargetRejected: the URL or one of its addresses is not acceptable.
    """
    scheme, host, port = split_target(url)
    try:
        literal: IPAddress | None = ipaddress.ip_address(host)
    except ValueError:
        literal = None
    if literal is not None:
        raw_addresses = [str(literal)]
    else:
        try:
            raw_addresses = await asyncio.wait_for(resolve(host, port), RESOLVE_TIMEOUT_S)
        except TimeoutError:
            raise _reject(url, f"host {host!r} did not resolve in time", transient=True) from None
        except OSError as exc:
            detail = f"host {host!r} does not resolve ({exc.strerror or exc})"
            raise _reject(url, detail, transient=True) from None
        except (UnicodeError, ValueError):
            raise _reject(url, f"host {host!r} is not a valid host name") from None
    addresses = tuple(
        dict.fromkeys(ipaddress.ip_address(a.split("%", 1)[0]) for a in raw_addresses)
    )
    if not addresses:
        raise _reject(url, f"host {host!r} has no address")
    host_allowed = allow.allows_host(host)
    for address in addresses:
        reason = why_not_public(address)
        if reason is not None and not (host_allowed or allow.allows_address(address)):
            raise _reject(
                url,
                f"resolves to {address}, which is {reason}; only public addresses are "
                "accepted unless the webhook allow-list names them",
            )
    return CheckedTarget(url=url, scheme=scheme, host=host, port=port, addresses=addresses)
