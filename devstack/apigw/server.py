"""Listening sockets, and aiohttp's connection handler with API Gateway's answers to bad requests.

A request aiohttp cannot parse is answered like API Gateway answers it: a header over 8 KB is 431 and
anything else malformed 400, as JSON, without echoing the offending bytes (aiohttp's own text/plain
answer quotes part of the header, e.g. a token) and without a traceback. aiohttp has no setting for
this, so :class:`Runner` swaps the class of the server it makes for one that builds
:class:`QuietRequestHandler`.
"""

from __future__ import annotations

import logging
import socket

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError, LineTooLong
from aiohttp.web_protocol import RequestHandler
from aiohttp.web_request import BaseRequest

from devstack.apigw import aiohttp_compat

log = logging.getLogger("devstack.gateway")  # one logger for every part of the gateway


def bind_socket(host: str = "127.0.0.1", port: int = 0) -> socket.socket:
    """A listening-ready TCP socket (``port=0`` picks a free port), so the URL is known before serving."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    return sock


class QuietRequestHandler(RequestHandler):
    """aiohttp's connection handler, with API Gateway's answers to requests it cannot parse (431, 400)."""

    def handle_error(
        self, request: BaseRequest, status: int = 500, exc: BaseException | None = None, message: str | None = None
    ) -> web.StreamResponse:
        if status >= 500 or not isinstance(exc, HttpProcessingError):
            return super().handle_error(request, status, exc, message)
        too_long = (
            isinstance(exc, LineTooLong) or "too long" in str(exc.message).lower() or "too large" in str(exc.message).lower()
        )
        status, text = (431, "Request Header Fields Too Large") if too_long else (400, "Bad Request")
        log.info("HTTP request from %s refused: %d %s", request.remote, status, text)
        response = web.json_response({"message": text}, status=status)
        response.force_close()
        return response


class Runner(web.AppRunner):
    async def _make_server(self) -> web.Server:
        return aiohttp_compat.with_handler_class(await super()._make_server(), QuietRequestHandler)


async def serve(application: web.Application, sock: socket.socket) -> web.AppRunner:
    """Serve ``application`` on ``sock``; the caller owns ``runner.cleanup()``."""
    runner = Runner(application, access_log=None, handle_signals=False, shutdown_timeout=1)
    await runner.setup()
    await web.SockSite(runner, sock).start()
    return runner
