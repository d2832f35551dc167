"""The per-frame size limit API Gateway enforces and aiohttp does not.

aiohttp limits whole messages (128 KB here, set on the response); API Gateway also closes a socket
whose single frame is over 32 KB, with 1009. :class:`FrameGuard` sits between the socket and aiohttp's
WebSocket parser and reads only the frame headers. It reaches aiohttp's parser through
``aiohttp_compat`` (the one module that knows where aiohttp keeps it); if that changes, the limit is
not enforced and a warning says so.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from aiohttp import WSCloseCode, web
from aiohttp.http_websocket import WebSocketError

from devstack.apigw import aiohttp_compat

log = logging.getLogger("devstack.gateway")  # one logger for every part of the gateway

_DATA_OPCODES = frozenset({0x0, 0x1, 0x2})  # continuation, text, binary


class FrameGuard:
    """Wraps aiohttp's WebSocket parser and rejects any data frame larger than ``limit`` with 1009.

    aiohttp only limits whole messages; API Gateway also limits single frames (32 KB). The guard reads
    just the frame headers of the byte stream and skips payloads, so it costs a few operations per frame.
    """

    def __init__(self, inner: Any, limit: int, on_violation: Callable[[int], None]) -> None:
        self._inner = inner
        self._limit = limit
        self._on_violation = on_violation
        self._header = bytearray()  # the frame header being read (it may span reads)
        self._held = b""  # its bytes, kept back until the header is complete and judged
        self._to_skip = 0
        self._tripped = False

    def feed_eof(self) -> None:
        self._inner.feed_eof()

    def feed_data(self, data: bytes | bytearray | memoryview) -> tuple[bool, bytes]:
        if self._tripped:
            return True, b""
        chunk = bytes(data)
        bad_at, frame_len = self.scan(chunk)
        pending = self._held + chunk
        if bad_at is None:
            keep = min(len(self._header), len(pending))  # header bytes from the handshake tail are already sent
            self._held = pending[len(pending) - keep :] if keep else b""
            forward = pending[: len(pending) - keep]
            result: tuple[bool, bytes] = self._inner.feed_data(forward) if forward else (False, b"")
            return result
        forward = pending[: max(0, len(self._held) + bad_at)]
        if forward:
            eof, _ = self._inner.feed_data(forward)
            if eof:
                return True, b""
        self._tripped = True
        self._on_violation(frame_len)
        return True, b""

    def scan(self, data: bytes) -> tuple[int | None, int]:
        """Advance over ``data``; return (offset of an oversized frame's header, its length) or (None, 0).

        The offset is relative to ``data`` and negative when the header began in an earlier read.
        """
        i, n = 0, len(data)
        while i < n:
            if self._to_skip:
                step = min(self._to_skip, n - i)
                self._to_skip -= step
                i += step
                continue
            self._header.append(data[i])
            i += 1
            needed = self._header_size()
            if needed is None or len(self._header) < needed:
                continue
            opcode, length = self._parse_header()
            start = i - len(self._header)
            self._header.clear()
            if opcode in _DATA_OPCODES and length > self._limit:
                return start, length
            self._to_skip = length
        return None, 0

    def _header_size(self) -> int | None:
        if len(self._header) < 2:
            return None
        second = self._header[1]
        flag = second & 0x7F
        extended = 2 if flag == 126 else 8 if flag == 127 else 0
        return 2 + extended + (4 if second & 0x80 else 0)

    def _parse_header(self) -> tuple[int, int]:
        opcode = self._header[0] & 0x0F
        flag = self._header[1] & 0x7F
        if flag == 126:
            return opcode, int.from_bytes(self._header[2:4], "big")
        if flag == 127:
            return opcode, int.from_bytes(self._header[2:10], "big")
        return opcode, flag


class GuardedWebSocketResponse(web.WebSocketResponse):
    """A WebSocketResponse whose parser also enforces a per-frame size limit (see :class:`FrameGuard`)."""

    def __init__(self, *, max_frame_bytes: int | None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._max_frame_bytes = max_frame_bytes

    def _post_start(self, request: Any, protocol: Any, writer: Any) -> None:
        handler = request.protocol
        tail = aiohttp_compat.handshake_tail(handler)
        super()._post_start(request, protocol, writer)
        if not self._max_frame_bytes:
            return
        inner = aiohttp_compat.payload_parser(handler)
        if inner is None:  # pragma: no cover - only if aiohttp's internals change
            log.warning("frame size limit not enforced: unexpected aiohttp internals")
            return
        guard = FrameGuard(inner, self._max_frame_bytes, self._frame_too_big)
        # Bytes that arrived with the handshake were already parsed; read past them to stay in step.
        if tail and guard.scan(tail)[0] is not None:
            self._frame_too_big(0)
        aiohttp_compat.replace_payload_parser(handler, guard)

    def _frame_too_big(self, length: int) -> None:
        reader: Any = self._reader
        if reader is not None:
            reader.set_exception(
                WebSocketError(
                    WSCloseCode.MESSAGE_TOO_BIG,
                    f"Frame size {length} exceeds limit {self._max_frame_bytes}",
                )
            )
