"""The webhook poster in production mode (``HttpPoster(allow_private=False)``, ``webhook_targets`` not
"local"): a host name that resolves to a private, loopback or link-local address is refused before
any connection is made. No packet leaves the machine: names resolve to what each test says, and every
connection attempt is recorded and refused (tests/support/network.py), so a refusal is seen as "no
connection attempted", independently of the filter under test."""

from __future__ import annotations

import pytest

from chalicelib.adapters.http_target import HttpPoster
from tests.support.network import connections, resolving

pytestmark = pytest.mark.unit

URL = "https://hooks.example.test/in"
PUBLIC = "93.184.216.34"  # a global unicast address (never actually connected to: see the module docstring)

# Addresses no tenant may reach from AWS: RFC 1918 private, loopback, link-local (instance metadata).
FORBIDDEN = [
    "10.0.0.7",
    "10.255.255.254",
    "172.16.0.1",
    "192.168.1.10",
    "127.0.0.1",
    "127.1.2.3",
    "169.254.169.254",
    "169.254.0.1",
    "::1",
    "fe80::1",
    "fd00::1",
    "fd00:ec2::254",
    "::ffff:10.0.0.7",
    "::ffff:127.0.0.1",
    "::ffff:169.254.169.254",
]


def post(allow_private: bool, url: str = URL) -> tuple[int | None, str]:
    return HttpPoster(allow_private=allow_private, timeout=2).post(url, b"{}", {"content-type": "application/json"})


@pytest.mark.parametrize("address", FORBIDDEN)
def test_a_name_resolving_to_a_private_loopback_or_link_local_address_is_refused(address: str) -> None:
    with resolving({"hooks.example.test": [address]}), connections() as attempted:
        status, why = post(allow_private=False)
    assert attempted == []
    assert status is None and why


@pytest.mark.parametrize("address", ["10.0.0.7", "127.0.0.1", "169.254.169.254"])
def test_one_forbidden_address_among_public_ones_refuses_the_name(address: str) -> None:
    """Every address the name resolves to is checked, not just the first: the connection could go to any."""
    for order in ([PUBLIC, address], [address, PUBLIC]):
        with resolving({"hooks.example.test": order}), connections() as attempted:
            status, _ = post(allow_private=False)
        assert attempted == [] and status is None


def test_a_public_address_is_connected_to_on_the_https_port() -> None:
    """The control: the same name resolving to a public address is attempted (so the refusals above are
    the filter's doing, not a broken test); the connection goes to the address that was checked."""
    with resolving({"hooks.example.test": [PUBLIC]}), connections() as attempted:
        status, why = post(allow_private=False)
    assert attempted == [(PUBLIC, 443)]
    assert status is None and why.startswith("no answer")


def test_the_local_stack_setting_reaches_loopback_but_never_metadata() -> None:
    with resolving({"hooks.example.test": ["127.0.0.1"]}), connections() as attempted:
        post(allow_private=True, url="http://hooks.example.test:9000/in")
    assert attempted == [("127.0.0.1", 9000)]
    with resolving({"hooks.example.test": ["169.254.169.254"]}), connections() as attempted:
        status, _ = post(allow_private=True, url="http://hooks.example.test/in")
    assert attempted == [] and status is None


@pytest.mark.parametrize(
    "url",
    [
        "http://hooks.example.test/in",  # production takes https only
        "https://10.0.0.7/in",
        "https://127.0.0.1:8443/in",
        "https://[::1]/in",
        "https://169.254.169.254/latest/meta-data/",
        "https://localhost/in",
        "https://api.localhost/in",
    ],
)
def test_urls_refused_before_resolving_in_production(url: str) -> None:
    with resolving({}), connections() as attempted:
        status, why = post(allow_private=False, url=url)
    assert attempted == [] and status is None and why


def test_a_name_that_does_not_resolve_is_not_delivered() -> None:
    import socket

    def fail(*args: object, **kwargs: object) -> None:
        raise socket.gaierror(-2, "Name or service not known")

    with connections() as attempted, pytest.MonkeyPatch.context() as mp:
        mp.setattr(socket, "getaddrinfo", fail)
        status, why = post(allow_private=False)
    assert attempted == [] and status is None and "resolve" in why
