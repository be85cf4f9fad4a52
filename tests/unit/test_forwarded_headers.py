"""Forwarded headers: believed from trusted proxies only; the gunicorn options of `serve`."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from app.asgi import ForwardedHeadersMiddleware, Scope, TrustedProxies
from app.cli.serve import gunicorn_options
from app.settings import Settings, SettingsError


def _seen_by_app(
    trusted: str,
    peer: tuple[str, int] | None,
    headers: list[tuple[bytes, bytes]],
    scope_type: str = "http",
) -> Scope:
    seen: list[Scope] = []

    async def app(scope: Scope, receive: Any, send: Any) -> None:
        seen.append(scope)

    middleware = ForwardedHeadersMiddleware(app, TrustedProxies.parse(trusted))
    scope: Scope = {"type": scope_type, "client": peer, "scheme": "http", "headers": headers}
    asyncio.run(middleware(scope, None, None))  # type: ignore[arg-type]
    return seen[0]


def test_parse_addresses_networks_and_unix() -> None:
    trusted = TrustedProxies.parse(" 10.0.0.0/8, ::1 ,unix,")
    assert trusted.unix_peers
    assert trusted.trusts("10.1.2.3") and trusted.trusts("::1") and trusted.trusts(None)
    assert not trusted.trusts("11.0.0.1") and not trusted.trusts("not-an-address")


def test_empty_trusts_nobody() -> None:
    trusted = TrustedProxies.parse("")
    assert not trusted
    assert not trusted.trusts("127.0.0.1") and not trusted.trusts(None)


@pytest.mark.parametrize("entry", ["10.0.0.1/8", "proxy.internal", "127.0.0.1:80"])
def test_parse_refuses_what_is_not_an_address(entry: str) -> None:
    with pytest.raises(SettingsError, match=f"trusted_proxies: '{entry}'"):
        TrustedProxies.parse(f"127.0.0.1,{entry}")


def test_a_trusted_peer_sets_client_and_scheme() -> None:
    scope = _seen_by_app(
        "127.0.0.1",
        ("127.0.0.1", 5000),
        [(b"x-forwarded-for", b"203.0.113.7"), (b"x-forwarded-proto", b"https")],
    )
    assert scope["client"] == ("203.0.113.7", 0)
    assert scope["scheme"] == "https"


def test_an_untrusted_peer_is_not_believed() -> None:
    scope = _seen_by_app(
        "10.0.0.0/8",
        ("127.0.0.1", 5000),
        [(b"x-forwarded-for", b"203.0.113.7"), (b"x-forwarded-proto", b"https")],
    )
    assert scope["client"] == ("127.0.0.1", 5000)
    assert scope["scheme"] == "http"


def test_a_unix_socket_peer_is_trusted_only_as_unix() -> None:
    headers = [(b"x-forwarded-for", b"203.0.113.7")]
    assert _seen_by_app("unix", None, headers)["client"] == ("203.0.113.7", 0)
    assert _seen_by_app("127.0.0.1", None, headers)["client"] is None


def test_addresses_the_client_wrote_itself_are_skipped() -> None:
    # The client sent "X-Forwarded-For: 1.1.1.1"; an inner trusted proxy (10.0.0.2)
    # appended the real client, and the outer one appended the inner one.
    scope = _seen_by_app(
        "10.0.0.0/8",
        ("10.0.0.1", 5000),
        [(b"x-forwarded-for", b"1.1.1.1, 198.51.100.4"), (b"x-forwarded-for", b"10.0.0.2")],
    )
    assert scope["client"] == ("198.51.100.4", 0)


def test_a_chain_of_trusted_proxies_gives_the_left_most() -> None:
    scope = _seen_by_app(
        "10.0.0.0/8", ("10.0.0.1", 5000), [(b"x-forwarded-for", b"10.9.9.9, 10.0.0.2")]
    )
    assert scope["client"] == ("10.9.9.9", 0)


@pytest.mark.parametrize("value", [b"unknown", b"203.0.113.7:4000", b"", b" , "])
def test_an_unusable_forwarded_for_leaves_the_peer(value: bytes) -> None:
    scope = _seen_by_app("127.0.0.1", ("127.0.0.1", 5000), [(b"x-forwarded-for", value)])
    assert scope["client"] == ("127.0.0.1", 5000)


def test_an_unknown_scheme_is_ignored_and_websockets_get_ws() -> None:
    odd = _seen_by_app("unix", None, [(b"x-forwarded-proto", b"gopher")])
    assert odd["scheme"] == "http"
    websocket = _seen_by_app("unix", None, [(b"x-forwarded-proto", b"https")], "websocket")
    assert websocket["scheme"] == "wss"


def test_lifespan_passes_untouched() -> None:
    scope = _seen_by_app("unix", None, [], "lifespan")
    assert scope == {"type": "lifespan", "client": None, "scheme": "http", "headers": []}


def test_gunicorn_binds_the_unix_socket_0660_and_trusts_no_header_itself() -> None:
    options = gunicorn_options(Settings(unix_socket="/run/taskgate/taskgate.sock", workers=3))
    assert options["bind"] == ["unix:/run/taskgate/taskgate.sock"]
    assert 0o777 & ~options["umask"] == 0o660
    assert options["workers"] == 3
    assert options["worker_class"] == "app.cli.serve.TaskgateWorker"
    assert options["forwarded_allow_ips"] == ""
    assert gunicorn_options(Settings(host="0.0.0.0", port=9000))["bind"] == ["0.0.0.0:9000"]
