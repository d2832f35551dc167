"""Which IP addresses an outbound delivery may reach (docs/product.md W8.5, docs/webhooks.md).

The answer comes from one explicit table of prefixes (IANA's special-purpose address registries,
RFC 6890 and its updates), looked up by longest prefix, never from ``ipaddress``'s ``is_global`` /
``is_private``: their answers have changed between Python releases (3.11 and 3.13 disagree on
``::169.254.169.254`` and on NAT64 addresses), and a security rule must not move with the interpreter.

Each prefix says how far it may be reached:

* ``PUBLIC``: from any stack;
* ``PRIVATE``: only from the local stack (loopback, private networks, ranges that are not routed on
  the internet), refused on AWS;
* ``NEVER``: from no stack, ever (link-local and the instance metadata service, the EC2 services'
  IPv6 addresses, multicast, reserved and deprecated forms).

An IPv6 address that carries an IPv4 address and delivers to it (IPv4-mapped, SIIT, NAT64 with the
well-known prefix, 6to4, Teredo) reaches what its IPv4 address reaches, so it is judged by that
address: ``64:ff9b::a9fe:a9fe`` is the metadata service through a NAT64 gateway, and refused as it is.
Forms whose IPv4 address cannot be told, or that no receiver uses any more, are ``NEVER``:
IPv4-compatible addresses (``::a.b.c.d``, deprecated by RFC 4291), the NAT64 local-use prefix
``64:ff9b:1::/48`` (RFC 8215: where its IPv4 address sits is each operator's choice) and site-local
``fec0::/10`` (deprecated by RFC 3879). An IPv6 address outside the global unicast space ``2000::/3``
that no row names is ``NEVER`` too.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_address, ip_network

from .errors import Invalid


class Reach(enum.IntEnum):
    """How far an address may be reached; a larger value is more restrictive."""

    PUBLIC = 0
    PRIVATE = 1
    NEVER = 2


Embedded = Callable[[IPv6Address], tuple[IPv4Address, ...]]


def _low32(ip: IPv6Address) -> tuple[IPv4Address, ...]:
    """The IPv4 address in the last 32 bits (IPv4-mapped, SIIT, NAT64 /96)."""
    return (IPv4Address(int(ip) & 0xFFFFFFFF),)


def _sixtofour(ip: IPv6Address) -> tuple[IPv4Address, ...]:
    """6to4 (RFC 3056): ``2002:AABB:CCDD::/48`` is relayed to ``AA.BB.CC.DD``."""
    return (IPv4Address((int(ip) >> 80) & 0xFFFFFFFF),)


def _teredo(ip: IPv6Address) -> tuple[IPv4Address, ...]:
    """Teredo (RFC 4380): the server in bits 32-63, the client's address inverted in the last 32 bits."""
    return (IPv4Address((int(ip) >> 64) & 0xFFFFFFFF), IPv4Address(~int(ip) & 0xFFFFFFFF))


@dataclass(frozen=True)
class Prefix:
    network: IPv4Network | IPv6Network
    reach: Reach
    what: str
    # For a form that carries an IPv4 address: the address(es) it delivers to; the form reaches what they reach.
    embedded: Embedded | None = None


def _row(cidr: str, reach: Reach, what: str, embedded: Embedded | None = None) -> Prefix:
    return Prefix(ip_network(cidr), reach, what, embedded)


PUBLIC, PRIVATE, NEVER = Reach.PUBLIC, Reach.PRIVATE, Reach.NEVER

PREFIXES: tuple[Prefix, ...] = (
    # IPv4 (RFC 6890 and IANA's IPv4 special-purpose registry)
    _row("0.0.0.0/8", NEVER, "this-network"),
    _row("10.0.0.0/8", PRIVATE, "private (RFC 1918)"),
    _row("100.64.0.0/10", PRIVATE, "shared (carrier-grade NAT)"),
    _row("127.0.0.0/8", PRIVATE, "loopback"),
    _row("169.254.0.0/16", NEVER, "link-local (the instance metadata service is 169.254.169.254)"),
    _row("172.16.0.0/12", PRIVATE, "private (RFC 1918)"),
    _row("192.0.0.0/24", PRIVATE, "IETF protocol assignment"),
    _row("192.0.2.0/24", PRIVATE, "documentation"),
    _row("192.88.99.0/24", PRIVATE, "6to4 relay anycast (deprecated)"),
    _row("192.168.0.0/16", PRIVATE, "private (RFC 1918)"),
    _row("198.18.0.0/15", PRIVATE, "benchmarking"),
    _row("198.51.100.0/24", PRIVATE, "documentation"),
    _row("203.0.113.0/24", PRIVATE, "documentation"),
    _row("224.0.0.0/4", NEVER, "multicast"),
    _row("240.0.0.0/4", NEVER, "reserved or broadcast"),
    # IPv6 (RFC 6890 and IANA's IPv6 special-purpose registry)
    _row("::/128", NEVER, "unspecified"),
    _row("::1/128", PRIVATE, "loopback"),
    _row("::/96", NEVER, "IPv4-compatible (deprecated)"),
    _row("::ffff:0:0/96", PUBLIC, "IPv4-mapped", _low32),
    _row("::ffff:0:0:0/96", PUBLIC, "IPv4-translated (SIIT)", _low32),
    _row("64:ff9b::/96", PUBLIC, "NAT64", _low32),
    _row("64:ff9b:1::/48", NEVER, "NAT64 local-use"),
    _row("100::/64", NEVER, "discard-only"),
    _row("2001::/23", PRIVATE, "IETF protocol assignment"),
    _row("2001::/32", PUBLIC, "Teredo", _teredo),
    _row("2001:db8::/32", PRIVATE, "documentation"),
    _row("2002::/16", PUBLIC, "6to4", _sixtofour),
    _row("3fff::/20", PRIVATE, "documentation"),
    _row("5f00::/16", PRIVATE, "segment routing (SRv6)"),
    _row("fc00::/7", PRIVATE, "unique local"),
    _row("fd00:ec2::/32", NEVER, "EC2 services (instance metadata at fd00:ec2::254, DNS, time)"),
    _row("fe80::/10", NEVER, "link-local"),
    _row("fec0::/10", NEVER, "site-local (deprecated)"),
    _row("ff00::/8", NEVER, "multicast"),
)
GLOBAL_UNICAST = ip_network("2000::/3")

# Longest prefix first: the first row that holds an address is the one that decides.
_BY_LENGTH = sorted(PREFIXES, key=lambda p: -p.network.prefixlen)


@dataclass(frozen=True)
class Verdict:
    reach: Reach
    what: str  # the kind of address that decided, for the refusal's message


def reach_of(ip: IPv4Address | IPv6Address) -> Verdict:
    """How far ``ip`` may be reached, and what kind of address decided it."""
    row = next((p for p in _BY_LENGTH if p.network.version == ip.version and ip in p.network), None)
    if row is None:
        if isinstance(ip, IPv6Address) and ip not in GLOBAL_UNICAST:
            return Verdict(NEVER, "reserved IPv6")
        return Verdict(PUBLIC, "public")
    if row.embedded is None or not isinstance(ip, IPv6Address):
        return Verdict(row.reach, row.what)
    inner = max((reach_of(v4) for v4 in row.embedded(ip)), key=lambda v: v.reach)
    if inner.reach <= row.reach:
        return Verdict(row.reach, row.what)
    return Verdict(inner.reach, f"{row.what} form of {inner.what}")


def check_address(address: str, allow_private: bool) -> None:
    """Refuse an address no delivery may reach: ``NEVER`` rows always; ``PRIVATE`` ones unless
    ``allow_private`` (the local stack's setting). ``address`` is an IP address, maybe with a zone."""
    ip = ip_address(address.split("%", 1)[0])
    verdict = reach_of(ip)
    if verdict.reach is NEVER:
        raise Invalid(f"url points at an address no delivery may reach ({verdict.what})")
    if verdict.reach is PRIVATE and not allow_private:
        raise Invalid(f"url points at an address that is not public ({verdict.what}); only the local stack delivers there")
