"""The webhook SSRF guard: schemes, credentials, and every kind of non-public address."""

from __future__ import annotations

import ipaddress

import pytest

from app.dispatch.ssrf import AllowList, Resolver, TargetRejected, check_target, why_not_public

pytestmark = pytest.mark.anyio

NOBODY = AllowList()


def resolver_to(*addresses: str) -> Resolver:
    async def resolve(host: str, port: int) -> list[str]:
        return list(addresses)

    return resolve


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/hook",
        "http://[::1]:8080/hook",
        "http://10.0.0.1/",
        "http://172.16.5.4/",
        "http://192.168.1.1/",
        "http://169.254.169.254/latest/meta-data/",
        "http://100.64.0.1/",
        "http://0.0.0.0/",
        "http://[::ffff:127.0.0.1]/",
        "http://[fe80::1]/",
        "http://224.0.0.1/",
        "http://2130706433/",  # decimal 127.0.0.1
        "http://0177.0.0.1/",  # octal 127.0.0.1
        "http://localhost:9000/",
    ],
)
async def test_non_public_targets_are_refused(url: str) -> None:
    with pytest.raises(TargetRejected) as caught:
        await check_target(url, NOBODY)
    assert caught.value.errors[0].field == "body.webhook.url"


async def test_a_name_resolving_to_loopback_is_refused() -> None:
    with pytest.raises(TargetRejected, match="loopback"):
        await check_target("https://innocent.example/", NOBODY, resolver_to("127.0.0.1"))


async def test_one_bad_address_among_good_ones_is_enough_to_refuse() -> None:
    with pytest.raises(TargetRejected, match="private"):
        await check_target(
            "https://mixed.example/", NOBODY, resolver_to("93.184.216.34", "10.1.2.3")
        )


async def test_public_targets_pass_with_their_checked_addresses() -> None:
    target = await check_target(
        "https://hooks.example:8443/taskgate", NOBODY, resolver_to("93.184.216.34", "93.184.216.34")
    )
    assert (target.scheme, target.host, target.port) == ("https", "hooks.example", 8443)
    assert target.addresses == (ipaddress.ip_address("93.184.216.34"),)


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("ftp://hooks.example/", "http or https"),
        ("file:///etc/passwd", "http or https"),
        ("https://user:secret@hooks.example/", "credentials"),
        ("http:///nohost", "no host"),
        ("http://hooks.example:99999/", "invalid port"),
    ],
)
async def test_malformed_urls_are_refused(url: str, message: str) -> None:
    with pytest.raises(TargetRejected, match=message):
        await check_target(url, NOBODY, resolver_to("93.184.216.34"))


async def test_allow_list_lets_named_hosts_and_networks_through() -> None:
    allow = AllowList.parse(["127.0.0.1/32", "receiver.internal", "::1"])
    loopback = await check_target("http://127.0.0.1:8123/hook", allow)
    assert loopback.port == 8123
    named = await check_target("http://receiver.internal/", allow, resolver_to("10.9.9.9"))
    assert named.addresses == (ipaddress.ip_address("10.9.9.9"),)
    with pytest.raises(TargetRejected):
        await check_target("http://10.0.0.1/", allow)


async def test_unresolvable_hosts_are_refused() -> None:
    async def fail(host: str, port: int) -> list[str]:
        raise OSError(-2, "Name or service not known")

    with pytest.raises(TargetRejected, match="does not resolve"):
        await check_target("https://nowhere.invalid/", NOBODY, fail)


def test_public_addresses_have_no_objection() -> None:
    assert why_not_public(ipaddress.ip_address("93.184.216.34")) is None
    assert why_not_public(ipaddress.ip_address("2606:4700::1111")) is None
