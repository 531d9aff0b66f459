"""Which addresses a link card's fetch may reach: public ones only, IPv6 included, an IPv6
address carrying an IPv4 one judged by that IPv4 address; and the URLs refused before any
name is resolved. Nothing here connects: the resolver is the test's."""

from __future__ import annotations

import ipaddress

import pytest

from workers.channels.link_cards import CardRefused, IPAddress, LinkPreviews, PublicAddresses, is_public

REFUSED = {
    "0.0.0.0": "unspecified",
    "0.1.2.3": "this network",
    "127.0.0.1": "loopback",
    "127.255.255.254": "loopback, end of the range",
    "10.0.0.1": "private 10/8",
    "172.16.0.1": "private 172.16/12",
    "172.31.255.255": "private 172.16/12, end",
    "192.168.1.1": "private 192.168/16",
    "100.64.0.1": "shared address space (carrier-grade NAT)",
    "169.254.169.254": "link-local: cloud instance metadata",
    "169.254.0.1": "link-local",
    "192.0.0.8": "IETF protocol assignments",
    "192.0.2.1": "documentation TEST-NET-1",
    "198.18.0.1": "benchmarking",
    "198.51.100.7": "documentation TEST-NET-2",
    "203.0.113.9": "documentation TEST-NET-3",
    "224.0.0.1": "multicast",
    "224.0.1.1": "multicast (globally scoped)",
    "239.255.255.250": "multicast (SSDP)",
    "240.0.0.1": "reserved",
    "255.255.255.255": "broadcast",
    "::": "IPv6 unspecified",
    "::1": "IPv6 loopback",
    "fe80::1": "IPv6 link-local",
    "fc00::1": "IPv6 unique local",
    "fd12:3456::1": "IPv6 unique local",
    "ff02::1": "IPv6 multicast",
    "ff0e::1": "IPv6 multicast, global scope",
    "2001:db8::1": "IPv6 documentation",
    "100::1": "IPv6 discard-only",
    "::ffff:127.0.0.1": "IPv4-mapped loopback",
    "::ffff:10.0.0.1": "IPv4-mapped private",
    "::ffff:169.254.169.254": "IPv4-mapped metadata",
    "64:ff9b::a9fe:a9fe": "NAT64 of 169.254.169.254",
    "64:ff9b::7f00:1": "NAT64 of 127.0.0.1",
    "2002:7f00:1::": "6to4 of 127.0.0.1",
    "2002:a00:1::": "6to4 of 10.0.0.1",
    "2001:0:4136:e378:8000:63bf:f5ff:fffe": "Teredo whose client is 10.0.0.1",
    "::127.0.0.1": "IPv4-compatible (deprecated) loopback",
}
ADMITTED = {
    "93.184.215.14": "a public IPv4 address",
    "1.1.1.1": "a public resolver",
    "2606:4700:4700::1111": "a public IPv6 address",
    "::ffff:93.184.215.14": "IPv4-mapped public",
    "64:ff9b::5db8:d70e": "NAT64 of a public address",
}


@pytest.mark.parametrize("address", list(REFUSED), ids=list(REFUSED.values()))
def test_an_address_that_is_not_public_is_refused(address: str) -> None:
    assert not is_public(ipaddress.ip_address(address))
    assert not PublicAddresses().admits(ipaddress.ip_address(address), 443)


@pytest.mark.parametrize("address", list(ADMITTED), ids=list(ADMITTED.values()))
def test_a_public_address_is_admitted(address: str) -> None:
    assert is_public(ipaddress.ip_address(address))


def refusal(url: str, *addresses: str) -> CardRefused:
    """Why a preview of ``url`` is refused when its host resolves to ``addresses``; fails if it
    would connect (the resolver's addresses all admitted)."""
    resolved: list[tuple[str, int]] = []

    def resolver(host: str, port: int) -> list[IPAddress]:
        resolved.append((host, port))
        return [ipaddress.ip_address(a) for a in addresses]

    previews = LinkPreviews(resolver=resolver)
    with pytest.raises(CardRefused) as refused:
        previews.preview(url)
    return refused.value


@pytest.mark.parametrize("address", ["169.254.169.254", "10.0.0.1", "::1", "::ffff:127.0.0.1", "fd00::1"])
def test_a_host_resolving_to_a_refused_address_is_refused_before_connecting(address: str) -> None:
    refused = refusal("https://card.example/page", address)
    assert refused.reason == "address_refused"
    assert str(ipaddress.ip_address(address)) in refused.detail


def test_a_host_with_one_inward_address_among_public_ones_is_refused() -> None:
    # A name that also points inward is not followed, whichever address would be tried first.
    refused = refusal("https://card.example/page", "93.184.215.14", "2606:4700:4700::1111", "10.0.0.1")
    assert refused.reason == "address_refused"
    assert "10.0.0.1" in refused.detail


@pytest.mark.parametrize("url", ["http://127.0.0.1/", "http://[::1]/", "http://[::ffff:7f00:1]/",
                                 "http://2130706433/", "http://0x7f.1/", "http://localhost/"])
def test_a_literal_or_disguised_loopback_host_is_refused(url: str) -> None:
    # The system's resolver turns each spelling into its address, and the address is judged.
    refused = LinkPreviews()
    with pytest.raises(CardRefused) as caught:
        refused.preview(url)
    assert caught.value.reason == "address_refused"


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("file:///etc/passwd", "url_refused"),
        ("ftp://example.com/x", "url_refused"),
        ("gopher://example.com:70/_x", "url_refused"),
        ("javascript:alert(1)", "url_refused"),
        ("http://user:secret@example.com/", "url_refused"),
        ("http://example.com:22/", "port_refused"),
        ("https://example.com:8443/", "port_refused"),
        ("http://example.com:443/", "port_refused"),
    ],
)
def test_a_url_whose_scheme_user_info_or_port_is_refused_is_never_resolved(url: str, reason: str) -> None:
    def resolver(host: str, port: int) -> list[IPAddress]:
        raise AssertionError(f"{host} was resolved")

    with pytest.raises(CardRefused) as refused:
        LinkPreviews(resolver=resolver).preview(url)
    assert refused.value.reason == reason


def test_the_default_ports_of_http_and_https_are_admitted() -> None:
    policy = PublicAddresses()
    assert policy.admits_port("http", 80)
    assert policy.admits_port("https", 443)
    assert not policy.admits_port("https", 80)


def test_a_name_that_does_not_resolve_gives_no_card() -> None:
    def resolver(host: str, port: int) -> list[IPAddress]:
        raise OSError("Name or service not known")

    with pytest.raises(CardRefused) as refused:
        LinkPreviews(resolver=resolver).preview("https://nowhere.example/")
    assert refused.value.reason == "unresolvable"
