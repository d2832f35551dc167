"""The open sockets, each with a bounded send buffer and one writer task: API Gateway's backpressure.

Like API Gateway, one receiver never slows the others: a post is queued on the connection's send
buffer and answered at once; one task per connection writes its frames in order. A client whose
buffer fills up (``Limits.send_buffer_bytes``) or whose socket accepts nothing for
``Limits.write_timeout`` seconds is closed with 1008 (then dropped if it does not answer the close),
and its posts answer 410 from then on.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import WSCloseCode, web

from devstack.apigw.config import Limits

log = logging.getLogger("devstack.gateway")  # one logger for every part of the gateway

SOCKET_SEND_BUFFER_BYTES = 64 * 1024  # the kernel's share (its default grows to megabytes per socket)
CLOSE_GRACE_SECONDS = 1.0  # how long a close handshake may take before the socket is dropped


@dataclass(eq=False)
class Connection:
    connection_id: str
    ws: web.WebSocketResponse
    connected_at: int
    source_ip: str
    user_agent: str
    domain_name: str
    authorizer: dict[str, Any] | None
    last_active_at: int = 0
    messages: int = 0
    close_code: int | None = None  # the code the gateway closed with, when the gateway closed it
    transport: Any = None
    # Frames waiting to be written, their size, and the task writing them (one per connection).
    outbox: deque[str | bytes] = field(default_factory=deque)
    outbox_bytes: int = 0
    wakeup: asyncio.Event = field(default_factory=asyncio.Event)
    writer: asyncio.Task[None] | None = None
    evicted: bool = False


class ConnectionTable:
    """The live connections by id, and what is done to one: queue a frame, write, evict, close."""

    def __init__(self, new_connection_id: Callable[[], str], limits: Limits) -> None:
        self._new_connection_id = new_connection_id
        self.limits = limits
        self.live: dict[str, Connection] = {}

    def get(self, connection_id: str) -> Connection | None:
        return self.live.get(connection_id)

    def unused_id(self) -> str:
        while True:
            candidate = self._new_connection_id()
            if candidate not in self.live:
                return candidate

    def attach(self, connection: Connection, transport: Any) -> None:
        """Register an upgraded socket and start its writer."""
        connection.transport = transport
        bound_socket_buffer(transport)
        connection.writer = asyncio.create_task(self.write_loop(connection), name=f"ws-writer-{connection.connection_id}")
        self.live[connection.connection_id] = connection

    def detach(self, connection: Connection) -> None:
        """Forget a socket whose read loop has ended (its writer then stops)."""
        self.live.pop(connection.connection_id, None)
        connection.wakeup.set()

    def post(self, connection: Connection, data: bytes) -> bool:
        """Queue one frame (text when it is UTF-8); False when the buffer is full and the client evicted."""
        if connection.outbox_bytes + len(data) > self.limits.send_buffer_bytes:
            self.evict(connection, f"over {self.limits.send_buffer_bytes} bytes waiting: the client does not read")
            return False
        try:
            frame: str | bytes = data.decode("utf-8")
        except UnicodeDecodeError:
            frame = data
        connection.outbox.append(frame)
        connection.outbox_bytes += len(frame)
        connection.wakeup.set()
        return True

    async def write_loop(self, connection: Connection) -> None:
        """Write the connection's queued frames in order; close (1008) a client that takes none."""
        write_timeout = self.limits.write_timeout
        while not connection.ws.closed and connection.close_code is None:
            if not connection.outbox:
                connection.wakeup.clear()
                await connection.wakeup.wait()
                continue
            frame = connection.outbox.popleft()
            connection.outbox_bytes -= len(frame)
            try:
                send = connection.ws.send_str(frame) if isinstance(frame, str) else connection.ws.send_bytes(frame)
                await asyncio.wait_for(send, write_timeout)
            except TimeoutError:
                self.evict(connection, f"the client read nothing for {write_timeout:g} s")
                return
            except (ConnectionError, RuntimeError):
                return

    def evict(self, connection: Connection, why: str) -> None:
        """Close a client that does not read, as API Gateway does: 1008, then its posts answer 410."""
        if connection.evicted:
            return
        connection.evicted = True
        connection.outbox.clear()
        connection.outbox_bytes = 0
        log.warning("closing connection %s with 1008: %s", connection.connection_id, why)
        asyncio.get_running_loop().create_task(self.close(connection, WSCloseCode.POLICY_VIOLATION, "client not reading"))

    async def close(self, connection: Connection, code: int, reason: str = "") -> None:
        if connection.close_code is None:
            connection.close_code = code
        connection.wakeup.set()
        with contextlib.suppress(TimeoutError, ConnectionError, RuntimeError):
            await asyncio.wait_for(connection.ws.close(code=code, message=reason.encode()), CLOSE_GRACE_SECONDS)
        if not connection.ws.closed or connection.evicted:
            abort(connection)

    async def close_all(self, code: int = WSCloseCode.GOING_AWAY) -> None:
        """Close every live socket (each then gets its ``$disconnect``); a client that does not
        answer the close within CLOSE_GRACE_SECONDS is dropped."""
        await asyncio.gather(*(self.close(connection, code) for connection in list(self.live.values())))


def bound_socket_buffer(transport: Any) -> None:
    """Cap what the kernel and the transport hold for one client, so a client that stops reading is
    noticed within the write timeout instead of after megabytes."""
    if transport is None:
        return
    sock = transport.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SOCKET_SEND_BUFFER_BYTES)
    with contextlib.suppress(AttributeError, ValueError):
        transport.set_write_buffer_limits(high=SOCKET_SEND_BUFFER_BYTES)


def abort(connection: Connection) -> None:
    """Drop the TCP connection (a client that does not read cannot receive a close frame)."""
    transport = connection.transport
    if transport is not None and not transport.is_closing():
        transport.abort()
