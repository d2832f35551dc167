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
    assert (status, why) == (None, "no answer: NewConnectionError")  # urllib3's name for a refused connection


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
    assert attempted == [] and (status, why) == (None, "could not resolve the host: Name or service not known")


def test_a_name_with_no_address_is_not_delivered() -> None:
    with resolving({"hooks.example.test": []}), connections() as attempted:
        assert post(allow_private=False) == (None, "the host has no address")
    assert attempted == []


class SpyPool:
    """Stands in for urllib3's connection pools: records how it was built and what it was asked."""

    built: list[tuple[str, tuple[object, ...], dict[str, object]]] = []
    requests: list[tuple[tuple[object, ...], dict[str, object]]] = []
    closed = 0

    def __init__(self, *args: object, **kwargs: object) -> None:
        SpyPool.built.append((type(self).__name__, args, kwargs))

    def urlopen(self, *args: object, **kwargs: object) -> object:
        SpyPool.requests.append((args, kwargs))
        return type("Response", (), {"status": 204})()

    def close(self) -> None:
        SpyPool.closed += 1


class HTTPSConnectionPool(SpyPool):
    pass


class HTTPConnectionPool(SpyPool):
    pass


@pytest.fixture
def spy(monkeypatch: pytest.MonkeyPatch) -> type[SpyPool]:
    import urllib3

    SpyPool.built, SpyPool.requests, SpyPool.closed = [], [], 0
    monkeypatch.setattr(urllib3, "HTTPSConnectionPool", HTTPSConnectionPool)
    monkeypatch.setattr(urllib3, "HTTPConnectionPool", HTTPConnectionPool)
    return SpyPool


def test_https_goes_to_the_checked_address_verifying_the_host_name_without_retries_or_redirects(spy: type[SpyPool]) -> None:
    body = b'{"type":"workitem.ended"}'
    with resolving({"hooks.example.test": [PUBLIC, "93.184.216.35"]}), connections() as attempted:
        status, why = HttpPoster(allow_private=False).post(
            "https://hooks.example.test/in?tenant=t1", body, {"webhook-id": "evt_1", "content-type": "application/json"}
        )
    assert (status, why) == (204, "") and attempted == []
    [(kind, args, kwargs)] = spy.built
    # The connection goes to the first checked address, TLS checks the certificate against the name.
    assert kind == "HTTPSConnectionPool" and args == (PUBLIC, 443)
    assert kwargs["server_hostname"] == kwargs["assert_hostname"] == "hooks.example.test"
    assert kwargs["retries"] is False and kwargs["timeout"].total == 10  # type: ignore[attr-defined]
    [(request_args, request)] = spy.requests
    assert request_args == ("POST", "/in?tenant=t1")
    assert request["body"] == body
    assert request["headers"] == {"webhook-id": "evt_1", "content-type": "application/json", "Host": "hooks.example.test"}
    assert request["redirect"] is False and request["preload_content"] is False  # the answer's body is never read
    assert spy.closed == 1


@pytest.mark.parametrize(
    ("url", "port", "host"),
    [
        ("http://hooks.example.test/in", 80, "hooks.example.test"),
        ("http://hooks.example.test:8080/in", 8080, "hooks.example.test:8080"),
        ("http://hooks.example.test:443/in", 443, "hooks.example.test:443"),  # 443 is https's default, not http's
    ],
)
def test_plain_http_of_the_local_stack_names_a_port_only_when_it_is_not_the_scheme_default(
    spy: type[SpyPool], url: str, port: int, host: str
) -> None:
    with resolving({"hooks.example.test": ["127.0.0.1"]}), connections():
        assert HttpPoster(allow_private=True, timeout=3).post(url, b"{}", {}) == (204, "")
    [(kind, args, kwargs)] = spy.built
    assert kind == "HTTPConnectionPool" and args == ("127.0.0.1", port)
    assert kwargs["retries"] is False and kwargs["timeout"].total == 3  # type: ignore[attr-defined]
    [(_, request)] = spy.requests
    assert request["headers"] == {"Host": host}


def test_an_https_url_on_another_port_names_it_in_the_host_header(spy: type[SpyPool]) -> None:
    with resolving({"hooks.example.test": [PUBLIC]}), connections():
        assert HttpPoster(allow_private=False).post("https://hooks.example.test:8443/", b"{}", {}) == (204, "")
    [(_, args, _)] = spy.built
    [(request_args, request)] = spy.requests
    assert args == (PUBLIC, 8443) and request_args == ("POST", "/") and request["headers"] == {"Host": "hooks.example.test:8443"}
