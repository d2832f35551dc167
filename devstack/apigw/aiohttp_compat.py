"""Every use of aiohttp's internals by the local gateway, in one place (written for aiohttp 3.14.5).

aiohttp has no public hook for two things API Gateway does:

* a per-frame size limit (32 KB): the gateway wraps the WebSocket parser aiohttp's connection
  handler keeps in ``RequestHandler._payload_parser`` (the bytes that came with the handshake are in
  ``_message_tail``), from ``WebSocketResponse._post_start``;
* API Gateway's answers to requests it cannot parse (431, 400): the connection handler's class is
  chosen by ``web.Server.__call__`` (from its private ``_loop`` and ``_kwargs``), and the runner's
  server is made by ``AppRunner._make_server``; the gateway swaps the server's class.

``tests/unit/test_compat_pins.py`` fails on any other aiohttp version: check these names against the
new version's ``web_protocol.py``, ``web_ws.py``, ``web_server.py`` and ``web_runner.py`` (the gateway
tests then show whether the limits still hold), then move the pin.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web
from aiohttp.web_protocol import RequestHandler

WRITTEN_FOR = "3.14.5"


def handshake_tail(handler: Any) -> bytes:
    """The bytes that arrived with the WebSocket handshake (already handed to the parser)."""
    return bytes(getattr(handler, "_message_tail", b"") or b"")


def payload_parser(handler: Any) -> Any | None:
    """The WebSocket parser of the connection (None if aiohttp keeps it elsewhere)."""
    return getattr(handler, "_payload_parser", None)


def replace_payload_parser(handler: Any, parser: Any) -> None:
    handler._payload_parser = parser


def with_handler_class(server: web.Server, handler_class: type[RequestHandler]) -> web.Server:
    """``server``, now making its connection handlers of ``handler_class``."""

    class Server(type(server)):  # type: ignore[misc]
        def __call__(self) -> RequestHandler:
            return handler_class(self, loop=self._loop, **self._kwargs)

    server.__class__ = Server
    return server
