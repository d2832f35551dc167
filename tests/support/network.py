"""Name resolution and outbound connections under a test's control.

``resolving`` makes chosen host names resolve to chosen addresses (every other name resolves as
usual), and ``connections`` records every TCP connection the code under test attempts and refuses
it, so a test can assert where a request *would* have gone without any packet leaving the machine,
even when the code under test is wrong (a private address is never actually reached).
"""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Iterator
from typing import Any


@contextlib.contextmanager
def resolving(names: dict[str, list[str]]) -> Iterator[None]:
    """``socket.getaddrinfo`` answers ``names[host]`` (IPv4 or IPv6 literals) for the hosts named."""
    real = socket.getaddrinfo

    def resolve(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if host in names:
            out = []
            for address in names[host]:
                family = socket.AF_INET6 if ":" in address else socket.AF_INET
                sockaddr: tuple[Any, ...] = (address, port, 0, 0) if family == socket.AF_INET6 else (address, port)
                out.append((family, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", sockaddr))
            return out
        return real(host, port, *args, **kwargs)

    with _patched(socket, "getaddrinfo", resolve):
        yield


@contextlib.contextmanager
def connections() -> Iterator[list[tuple[str, int]]]:
    """Every ``connect`` attempted inside the block, as (address, port); each is refused."""
    attempted: list[tuple[str, int]] = []

    def connect(self: socket.socket, address: Any) -> None:
        attempted.append((str(address[0]), int(address[1])))
        raise ConnectionRefusedError(111, "refused by the test (tests/support/network.py)")

    def connect_ex(self: socket.socket, address: Any) -> int:
        attempted.append((str(address[0]), int(address[1])))
        return 111

    with _patched(socket.socket, "connect", connect), _patched(socket.socket, "connect_ex", connect_ex):
        yield attempted


@contextlib.contextmanager
def _patched(owner: Any, name: str, value: Any) -> Iterator[None]:
    original = getattr(owner, name)
    setattr(owner, name, value)
    try:
        yield
    finally:
        setattr(owner, name, original)
