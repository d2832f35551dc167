"""REST: every request that is neither the WebSocket endpoint nor ``@connections``.

Chalice's :class:`chalice.local.LocalGateway` routes it and builds the Lambda proxy event, exactly as
``chalice local`` does; this module runs it on the handlers' thread pool, decodes the path as API
Gateway decodes path parameters, and answers what API Gateway itself answers (no route, no such
method, a failed integration) in the product's error shape, as the stack's gateway responses
configure them on AWS. It never echoes a request header.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import unquote

from aiohttp import web
from chalice.config import Config
from chalice.local import LocalGateway, LocalGatewayException

from devstack.apigw.lambdas import Invoker, single_and_multi

log = logging.getLogger("devstack.gateway")  # one logger for every part of the gateway

REST_BODY_LIMIT = 10 * 1024 * 1024  # API Gateway's REST payload quota
_HOP_BY_HOP = frozenset({"content-length", "transfer-encoding", "connection", "keep-alive"})
# The codes of the statuses API Gateway itself answers with (any other becomes 500 "internal").
_GATEWAY_CODES = {400: "invalid", 401: "unauthorized", 403: "forbidden", 404: "not_found", 413: "too_large", 429: "rate_limited"}


class RestProxy:
    """REST through ``LocalGateway``; paths in ``fast_paths`` (``/health``) run on the store-free pool."""

    def __init__(self, invoker: Invoker, fast_paths: frozenset[str]) -> None:
        self.invoker = invoker
        self.fast_paths = fast_paths
        self._local = LocalGateway(invoker.app, Config())

    async def handle(self, request: web.Request) -> web.StreamResponse:
        started = time.perf_counter()
        headers, _ = single_and_multi(request.headers.items())
        body = await request.read() if request.can_read_body else b""
        path = rest_path(request.raw_path)
        loop = asyncio.get_running_loop()
        executor = self.invoker.fast_executor if path.split("?", 1)[0] in self.fast_paths else self.invoker.executor
        try:
            result = await loop.run_in_executor(executor, self._local.handle_request, request.method, path, headers, body or None)
            self.invoker.after_invoke()
            response = to_aiohttp(result)
        except LocalGatewayException as exc:
            response = gateway_response(exc)
        except Exception:
            log.exception("REST %s %s failed", request.method, request.path)
            response = error_response(500, "internal", "internal error")
        elapsed = (time.perf_counter() - started) * 1000
        log.info("%s %s -> %d (%.1f ms)", request.method, request.path, response.status, elapsed)
        return response


def rest_path(raw_path: str) -> str:
    """The request target with path segments decoded, as API Gateway decodes path parameters.

    A segment whose decoded form the local router would not pass on as it is (an encoded ``/``, ``?`` or
    ``#``, read as a fragment: ``tpl-1%23evil`` must not become ``tpl-1``; a tab or line break, which
    Python's URL parsing drops: ``a%0Ab`` must not become ``ab``) stays encoded, so the handler sees
    (and refuses) the ``%``.
    """
    path, sep, query = raw_path.partition("?")
    segments = []
    for segment in path.split("/"):
        decoded = unquote(segment)
        segments.append(segment if any(c in decoded for c in "/?#\t\r\n") else decoded)
    return "/".join(segments) + sep + query


def is_utf8(raw: bytes) -> bool:
    """Strict UTF-8 (the product refuses other bodies: docs/product.md W7.3)."""
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def error_response(status: int, code: str, message: str) -> web.Response:
    return web.json_response({"error": {"code": code, "message": message}}, status=status)


def gateway_response(exc: LocalGatewayException) -> web.Response:
    error_type = (exc.headers or {}).get("x-amzn-ErrorType", "")
    if exc.CODE == 403 and error_type == "UnauthorizedException":  # API Gateway's "Missing Authentication Token"
        return error_response(404, "not_found", "no such route")
    status = exc.CODE if exc.CODE in _GATEWAY_CODES else 500
    return error_response(status, _GATEWAY_CODES.get(status, "internal"), "refused by the gateway")


def to_aiohttp(result: Mapping[str, Any]) -> web.Response:
    """Translate a Lambda proxy response into an HTTP response."""
    response = web.Response(status=int(result.get("statusCode", 200)))
    content_type = "application/json"
    for name, value in (result.get("headers") or {}).items():
        if name.lower() == "content-type":
            content_type = str(value)
        elif name.lower() not in _HOP_BY_HOP:
            response.headers[name] = str(value)
    for name, values in (result.get("multiValueHeaders") or {}).items():
        if name.lower() in _HOP_BY_HOP or name.lower() == "content-type":
            continue
        response.headers.popall(name, None)
        for value in values:
            response.headers.add(name, str(value))
    body = result.get("body")
    if body is None:
        payload = b""
    elif result.get("isBase64Encoded"):
        payload = base64.b64decode(body)
    elif isinstance(body, bytes):
        payload = body
    else:
        payload = str(body).encode("utf-8")
    response.body = payload
    if payload:
        response.headers["Content-Type"] = content_type
    return response
