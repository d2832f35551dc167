"""Outbound webhook rules (chalicelib/domain/webhooks.py): targets, event filters, backoff."""

from __future__ import annotations

import ipaddress
import pathlib

import pytest

from chalicelib.domain import addresses, webhooks
from chalicelib.domain.addresses import Reach, check_address, reach_of
from chalicelib.domain.errors import Invalid
from chalicelib.domain.webhooks import (
    EVENT_TYPES,
    MAX_ATTEMPTS,
    Subscription,
    attempts_for,
    check_events,
    check_url,
    retry_delay,
)

pytestmark = pytest.mark.unit

NEVER = [
    "http://169.254.169.254/latest/meta-data/",
    "https://169.254.0.1/",
    "https://[fe80::1%25eth0]/",
    "https://[fe80::abcd]/",
    "https://[::ffff:169.254.169.254]/",
    "https://[fd00:ec2::254]/",
    "https://0.0.0.0/",
    # IPv6 forms of a forbidden IPv4 address, and the deprecated ones (the same rows on every Python)
    "https://[64:ff9b::a9fe:a9fe]/",
    "https://[64:ff9b::169.254.169.254]/",
    "https://[64:ff9b:1::a9fe:a9fe]/",
    "https://[2002:a9fe:a9fe::1]/",
    "https://[::169.254.169.254]/",
    "https://[::127.0.0.1]/",
    "https://[::ffff:0:a9fe:a9fe]/",
    "https://[2001:0:4136:e378:8000:63bf:5601:5601]/",
    "https://[fec0::1]/",
    "https://[fd00:ec2::253]/",
    "https://[ff02::1]/",
    "https://[100::1]/",
    "https://224.0.0.251/",
    "https://255.255.255.255/",
    "ftp://example.com/",
    "file:///etc/passwd",
    "data:text/plain,hi",
    "//example.com/x",
    "https://user@example.com/",
    "https:///path",
    "https://example.com/#frag",
]
ON_AWS_ONLY = [
    "http://example.com/hook",
    "https://127.0.0.1/hook",
    "https://10.1.2.3/",
    "https://192.168.0.10/",
    "https://172.16.0.1/",
    "https://[::1]/",
    "https://[fc00::1]/",
    "https://localhost/hook",
    "https://100.64.0.1/",
    "https://[::ffff:127.0.0.1]/",
    "https://[::ffff:10.0.0.1]/",
    "https://[64:ff9b::7f00:1]/",
    "https://[2002:c0a8:1::1]/",
    "https://[2001:db8::1]/",
    "https://[fd12:3456::1]/",
    "https://192.0.2.10/",
]


@pytest.mark.parametrize("url", NEVER)
def test_never_a_target(url: str) -> None:
    for allow_private in (False, True):
        with pytest.raises(Invalid):
            check_url(url, allow_private)


@pytest.mark.parametrize("url", ON_AWS_ONLY)
def test_private_and_plain_http_targets_only_on_the_local_stack(url: str) -> None:
    with pytest.raises(Invalid):
        check_url(url, allow_private=False)
    check_url(url, allow_private=True)


PUBLIC = [
    "https://[2606:4700:4700::1111]/",
    "https://[::ffff:8.8.8.8]/",
    "https://[64:ff9b::808:808]/",
    "https://[2002:808:808::1]/",
]


@pytest.mark.parametrize("url", PUBLIC)
def test_public_targets_on_aws_too(url: str) -> None:
    """IPv6 forms of a public IPv4 address reach that address: they are judged by it, not refused wholesale."""
    assert check_url(url, allow_private=False).scheme == "https"


@pytest.mark.parametrize(
    ("address", "reach", "what"),
    [
        ("169.254.169.254", Reach.NEVER, "link-local"),
        ("::169.254.169.254", Reach.NEVER, "IPv4-compatible"),  # is_global is True here on Python 3.13
        ("64:ff9b::a9fe:a9fe", Reach.NEVER, "NAT64 form of link-local"),  # is_global True on 3.13
        ("2002:a9fe:a9fe::1", Reach.NEVER, "6to4 form of link-local"),
        ("2001:0:a9fe:a9fe::", Reach.NEVER, "Teredo form of link-local"),  # the Teredo server
        ("2001:0:4136:e378:8000:63bf:5601:5601", Reach.NEVER, "Teredo form of link-local"),  # the client (inverted)
        ("2001:0:4136:e378:8000:63bf:3fff:fdd2", Reach.PRIVATE, "Teredo form of documentation"),
        ("::ffff:127.0.0.1", Reach.PRIVATE, "IPv4-mapped form of loopback"),
        ("fec0::1", Reach.NEVER, "site-local"),
        ("fd00:ec2::254", Reach.NEVER, "EC2 services"),
        ("fd00:ec3::254", Reach.PRIVATE, "unique local"),
        ("2001:2::1", Reach.PRIVATE, "IETF protocol assignment"),
        ("4000::1", Reach.NEVER, "reserved IPv6"),
        ("2a05:d018::1", Reach.PUBLIC, "public"),
        ("8.8.8.8", Reach.PUBLIC, "public"),
        ("::ffff:8.8.8.8", Reach.PUBLIC, "IPv4-mapped"),
    ],
)
def test_the_prefix_table_decides_by_longest_prefix_and_embedded_ipv4(address: str, reach: Reach, what: str) -> None:
    verdict = reach_of(ipaddress.ip_address(address))
    assert verdict.reach is reach and verdict.what.startswith(what), verdict


def test_the_table_never_asks_ipaddress_for_its_opinion() -> None:
    """The rule is the table: is_global / is_private / is_link_local change between Python releases."""
    source = pathlib.Path(addresses.__file__).read_text(encoding="utf-8") + pathlib.Path(webhooks.__file__).read_text(
        encoding="utf-8"
    )
    code = "\n".join(line for line in source.splitlines() if not line.lstrip().startswith("#"))
    body = code.split('"""', 2)[2]  # past the module docstring, which names them
    for attribute in (".is_global", ".is_private", ".is_link_local", ".is_multicast", ".is_reserved", ".ipv4_mapped"):
        assert attribute not in body, attribute


def test_an_ipv6_literal_target_keeps_its_brackets_in_the_host_header() -> None:
    assert check_url("http://[::1]:8080/in", allow_private=True).authority == "[::1]:8080"
    assert check_url("https://[2606:4700::1]/", allow_private=False).authority == "[2606:4700::1]"
    assert check_url("https://hooks.example.com:443/", allow_private=False).authority == "hooks.example.com"
    assert check_url("http://127.0.0.1:443/", allow_private=True).authority == "127.0.0.1:443"
    assert check_url("https://hooks.example.com:8443/", allow_private=False).authority == "hooks.example.com:8443"


def test_a_public_https_target() -> None:
    target = check_url("https://hooks.example.com:8443/in?x=1", allow_private=False)
    assert (target.scheme, target.host, target.port, target.path) == ("https", "hooks.example.com", 8443, "/in?x=1")
    assert check_url("https://8.8.8.8", allow_private=False).path == "/"


@pytest.mark.parametrize(
    "address",
    [
        "169.254.169.254",
        "fe80::1",
        "fe80::1%eth0",
        "::ffff:169.254.169.254",
        "fd00:ec2::254",
        "224.0.0.1",
        "0.0.0.0",
        "64:ff9b::a9fe:a9fe",
        "2002:a9fe:a9fe::1",
        "::169.254.169.254",
        "::127.0.0.1",
        "fec0::1",
    ],
)
def test_resolved_addresses_never_reached(address: str) -> None:
    for allow_private in (False, True):
        with pytest.raises(Invalid):
            check_address(address, allow_private)


def test_resolved_private_addresses_only_locally() -> None:
    for address in ("127.0.0.1", "10.0.0.5", "::1", "::ffff:127.0.0.1"):
        with pytest.raises(Invalid):
            check_address(address, allow_private=False)
        check_address(address, allow_private=True)
    check_address("93.184.216.34", allow_private=False)


def test_event_filters() -> None:
    assert check_events(["*"]) == ("*",)
    assert check_events(["timeline.entry", "timeline.entry", "presence.changed"]) == ("timeline.entry", "presence.changed")
    for bad in ([], ["nope"], ["*", "timeline.entry"]):
        with pytest.raises(Invalid):
            check_events(bad)
    sub = Subscription("t1", "s", "https://x.example", ("workitem.ended",), True, "whsec_x")
    assert sub.wants("workitem.ended") and not sub.wants("timeline.entry")
    assert not Subscription("t1", "s", "https://x.example", ("*",), False, "whsec_x").wants("workitem.ended")
    assert all(Subscription("t1", "s", "u", ("*",), True, "k").wants(t) for t in EVENT_TYPES)
    assert "whsec_x" not in repr(sub)


def test_backoff_doubles_from_30_seconds_and_keeps_trying_for_a_day() -> None:
    assert [retry_delay(n) for n in range(1, 6)] == [30, 60, 120, 240, 480]
    assert retry_delay(40) == 6 * 3600
    attempts = attempts_for(24)
    assert sum(retry_delay(n) for n in range(1, attempts)) >= 24 * 3600
    assert sum(retry_delay(n) for n in range(1, attempts - 1)) < 24 * 3600
    assert attempts == MAX_ATTEMPTS == 14


def test_backoff_edges_with_numbers_worked_out_by_hand() -> None:
    # 30, 60, 120, 240, 480, 960, 1920 s: after seven attempts 3810 s have passed.
    assert retry_delay(0) == retry_delay(-3) == 30  # never less than the base
    assert retry_delay(7, base=10) == 640
    assert retry_delay(10**9) == 6 * 3600  # capped, however late
    assert attempts_for(0) == 1
    assert attempts_for(3810 / 3600) == 8  # exactly covered after seven retries: one more attempt
    assert attempts_for(3811 / 3600) == 9
    assert attempts_for(1, base=10) == 10  # 10, 20 ... 2560: 5110 s after nine


def test_rotation_keeps_the_previous_secret_for_the_overlap_asked_within_a_week() -> None:
    sub = Subscription("t1", "s", "https://h.example/in", ("*",), True, "whsec_old")
    week = 7 * 24 * 3600
    kept = sub.rotated("whsec_new", 1000, week)
    assert (kept.secret, kept.previous_secret, kept.previous_until) == ("whsec_new", "whsec_old", 1000 + week)
    one = sub.rotated("whsec_new", 1000, 1)
    assert (one.previous_secret, one.previous_until) == ("whsec_old", 1001)
    assert one.signing_secrets(1000) == ("whsec_new", "whsec_old") and one.signing_secrets(1001) == ("whsec_new",)
    assert one.overlap_until(1000) == 1001 and one.overlap_until(1001) is None
    retired = sub.rotated("whsec_new", 1000, 0)
    assert (retired.previous_secret, retired.previous_until) == (None, None)
    assert retired.signing_secrets(0) == ("whsec_new",) and retired.overlap_until(0) is None
    for bad in (-1, week + 1):
        with pytest.raises(Invalid, match="keepPreviousSeconds must be from 0 to 604800"):
            sub.rotated("whsec_new", 1000, bad)


def test_url_edges_the_rules_name() -> None:
    longest = "https://hooks.example.com/" + "a" * (2048 - len("https://hooks.example.com/"))
    assert check_url(longest, allow_private=False).host == "hooks.example.com"  # 2048 characters: allowed
    with pytest.raises(Invalid, match="2048"):
        check_url(longest + "a", allow_private=False)
    assert check_url("https://hooks.example.com./in", allow_private=False).host == "hooks.example.com"
    for url in ("https://localhost./in", "https://api.localhost/in", "https://API.LocalHost./in"):
        with pytest.raises(Invalid, match="this machine"):
            check_url(url, allow_private=False)
        assert check_url(url, allow_private=True).host.endswith("localhost")
    assert check_url("https://notlocalhost.example/in", allow_private=False).host == "notlocalhost.example"
