"""A local stand-in for API Gateway (REST + WebSocket) in front of any Chalice app.

``chalice local`` serves REST only. This gateway serves both on one port, invoking the same Chalice
handlers Lambda would run, with the event shapes API Gateway sends:

* ``GET /ws`` upgrades to a WebSocket after the REQUEST authorizer (a plain ``lambda_function``) and the
  ``$connect`` handler accept it; each text message becomes a ``$default`` MESSAGE event, run
  concurrently in a thread pool; the close becomes exactly one ``$disconnect`` event.
* ``/@connections/{connectionId}`` is the management API (POST / GET / DELETE) that boto3's
  ``apigatewaymanagementapi`` client talks to, with API Gateway's error shapes (410 ``GoneException``).
  With a ``management_key`` it is not on the public port at all (403 there, like API Gateway without
  IAM credentials): :meth:`Gateway.management_app` serves it on its own loopback port, under the
  secret path prefix ``/{management_key}``, for the stack's own functions only.
* Everything else is REST, through :class:`chalice.local.LocalGateway`.

Like API Gateway, one receiver never slows the others: a post is queued on the connection's bounded
send buffer and answered at once; a client whose buffer fills up or whose socket accepts nothing for
``write_timeout`` seconds is closed with 1008 and its posts answer 410 from then on. Calls that need
no store (the authorizer, ``ping`` frames, ``GET /health``) run on their own small thread pool, so
they never wait behind handlers stuck on a slow store. A request header over 8 KB is answered 431
without echoing it.

API Gateway's WebSocket limits are enforced the way it enforces them: a frame over 32 KB or a message
over 128 KB closes the socket with 1009. It lives outside ``chalicelib/`` so it never enters the Lambda
package.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
import secrets
import socket
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote

from aiohttp import WSCloseCode, WSMsgType, web
from aiohttp.http_exceptions import HttpProcessingError, LineTooLong
from aiohttp.http_websocket import WebSocketError
from aiohttp.web_protocol import RequestHandler
from aiohttp.web_request import BaseRequest
from chalice.app import Chalice
from chalice.config import Config
from chalice.local import ARNMatcher, LambdaContext, LocalChalice, LocalGateway, LocalGatewayException

log = logging.getLogger("devstack.gateway")

Event = dict[str, Any]
Handler = Callable[[Event, Any], Any]

_DATA_OPCODES = frozenset({0x0, 0x1, 0x2})  # continuation, text, binary
_HOP_BY_HOP = frozenset({"content-length", "transfer-encoding", "connection", "keep-alive"})
_REST_BODY_LIMIT = 10 * 1024 * 1024  # API Gateway's REST payload quota
SEND_BUFFER_BYTES = 1024 * 1024  # frames waiting for one client beyond what its socket has taken
SOCKET_SEND_BUFFER_BYTES = 64 * 1024  # the kernel's share (its default grows to megabytes per socket)
WRITE_TIMEOUT_SECONDS = 5.0  # a client that takes no bytes for this long is closed (1008)
CLOSE_GRACE_SECONDS = 1.0  # how long a close handshake may take before the socket is dropped
FAST_FRAME_BYTES = 512  # frames up to this size are checked for a store-free route (``ping``)


class _Refused(Exception):
    """The handshake is answered with an HTTP error instead of an upgrade."""

    def __init__(self, status: int, body: Mapping[str, Any], error_type: str | None = None) -> None:
        super().__init__(status)
        self.status = status
        self.body = body
        self.error_type = error_type

    def response(self) -> web.Response:
        headers = {"x-amzn-ErrorType": self.error_type} if self.error_type else None
        return web.json_response(self.body, status=self.status, headers=headers)


def aws_id() -> str:
    """An id shaped like API Gateway's connection / request / message ids (e.g. ``L0SM9cOFvHcCIhw=``)."""
    return base64.b64encode(secrets.token_bytes(11)).decode("ascii")


def _now_ms() -> int:
    return int(time.time() * 1000)


def _iso_ms(epoch_ms: int) -> str:
    return datetime.fromtimestamp(epoch_ms / 1000, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _request_time(epoch_ms: int) -> str:
    return datetime.fromtimestamp(epoch_ms / 1000, tz=UTC).strftime("%d/%b/%Y:%H:%M:%S +0000")


def _single_and_multi(pairs: Iterable[tuple[str, str]]) -> tuple[dict[str, str], dict[str, list[str]]]:
    """API Gateway's two views of repeated keys: last value wins, and every value in order."""
    single: dict[str, str] = {}
    multi: dict[str, list[str]] = {}
    for key, value in pairs:
        single[key] = value
        multi.setdefault(key, []).append(value)
    return single, multi


def _lambda_context(function_name: str) -> LambdaContext:
    return LambdaContext(function_name=function_name, memory_size=1024, max_runtime_ms=29_000)


# --------------------------------------------------------------------------------------------------
# Frame-size guard
# --------------------------------------------------------------------------------------------------


class _FrameGuard:
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


class _GuardedWebSocketResponse(web.WebSocketResponse):
    """A WebSocketResponse whose parser also enforces a per-frame size limit (see :class:`_FrameGuard`)."""

    def __init__(self, *, max_frame_bytes: int | None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._max_frame_bytes = max_frame_bytes

    def _post_start(self, request: Any, protocol: Any, writer: Any) -> None:
        handler = request.protocol
        tail = bytes(getattr(handler, "_message_tail", b"") or b"")
        super()._post_start(request, protocol, writer)
        if not self._max_frame_bytes:
            return
        inner = getattr(handler, "_payload_parser", None)
        if inner is None:  # pragma: no cover - only if aiohttp's internals change
            log.warning("frame size limit not enforced: unexpected aiohttp internals")
            return
        guard = _FrameGuard(inner, self._max_frame_bytes, self._frame_too_big)
        # Bytes that arrived with the handshake were already parsed; read past them to stay in step.
        if tail and guard.scan(tail)[0] is not None:
            self._frame_too_big(0)
        handler._payload_parser = guard

    def _frame_too_big(self, length: int) -> None:
        reader: Any = self._reader
        if reader is not None:
            reader.set_exception(
                WebSocketError(
                    WSCloseCode.MESSAGE_TOO_BIG,
                    f"Frame size {length} exceeds limit {self._max_frame_bytes}",
                )
            )


# --------------------------------------------------------------------------------------------------
# Gateway
# --------------------------------------------------------------------------------------------------


@dataclass(eq=False)
class _Connection:
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


class Gateway:
    """API Gateway (REST + WebSocket + ``@connections``) for one Chalice app, as an aiohttp application.

    Handler names are keys of ``app.handler_map``; a name the app does not define is skipped (no
    authorizer: every connection is accepted; no ``$connect`` handler: nothing to ask).
    """

    def __init__(
        self,
        app: Chalice,
        *,
        authorizer: str = "ws_authorizer",
        connect: str = "ws_connect",
        message: str = "ws_message",
        disconnect: str = "ws_disconnect",
        api_id: str = "local",
        stage: str = "local",
        region: str = "local",
        account_id: str = "000000000000",
        ws_path: str = "/ws",
        max_message_bytes: int = 128 * 1024,
        max_frame_bytes: int | None = 32 * 1024,
        executor_workers: int = 32,
        executor: Executor | None = None,
        connection_id_factory: Callable[[], str] = aws_id,
        after_invoke: Callable[[], None] | None = None,
        middlewares: Iterable[Any] = (),
        management_key: str | None = None,
        send_buffer_bytes: int = SEND_BUFFER_BYTES,
        write_timeout: float = WRITE_TIMEOUT_SECONDS,
        fast_routes: frozenset[str] = frozenset({"ping"}),
        fast_rest_paths: frozenset[str] = frozenset({"/health"}),
    ) -> None:
        _make_current_request_thread_local(app)
        self.app = app
        self.authorizer_name = authorizer
        self.connect_name = connect
        self.message_name = message
        self.disconnect_name = disconnect
        self.api_id = api_id
        self.stage = stage
        self.region = region
        self.account_id = account_id
        self.ws_path = ws_path
        self.max_message_bytes = max_message_bytes
        self.max_frame_bytes = max_frame_bytes
        self._own_executor = executor is None
        self.executor: Executor = executor or ThreadPoolExecutor(max_workers=executor_workers, thread_name_prefix="lambda")
        self._new_connection_id = connection_id_factory
        # Called after every $default and REST invocation (the local stream pump reads then).
        self._after_invoke = after_invoke or (lambda: None)
        self._rest = LocalGateway(app, Config())
        self._middlewares = list(middlewares)  # in front of every route (the local console, devstack/console.py)
        self.connections: dict[str, _Connection] = {}
        self.management_key = management_key
        self.send_buffer_bytes = send_buffer_bytes
        self.write_timeout = write_timeout
        self.fast_routes = fast_routes
        self.fast_rest_paths = fast_rest_paths
        # Calls that need no store get their own threads (on AWS each invocation has its own).
        self.fast_executor: Executor = ThreadPoolExecutor(max_workers=4, thread_name_prefix="lambda-fast")
        # Set by the stack when its store is down: GET /health answers 503 with this reason.
        self.unhealthy: str | None = None
        # Local-only GET routes answered with JSON (what the stack would have sent, e.g. SMS).
        self.local_routes: dict[str, Callable[[], Any]] = {}

    # -- aiohttp wiring ----------------------------------------------------------------------------

    def web_app(self) -> web.Application:
        """The aiohttp application serving REST, WebSocket and ``@connections`` on one port."""
        application = web.Application(client_max_size=_REST_BODY_LIMIT, middlewares=self._middlewares)
        application.router.add_route("*", "/{tail:.*}", self._dispatch)
        application.on_shutdown.append(self._on_shutdown)
        return application

    def management_app(self) -> web.Application:
        """Only the ``@connections`` API, under ``/{management_key}`` (serve it on a loopback port)."""
        application = web.Application(client_max_size=self.max_message_bytes + 1024)
        application.router.add_route("*", "/{tail:.*}", self._dispatch_management)
        return application

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        path = request.raw_path.split("?", 1)[0]
        if path == self.ws_path:
            return await self._websocket(request)
        connection_id = self._management_target(path, self.stage)
        if connection_id is not None:
            if self.management_key is not None:
                return _aws_error(403, "ForbiddenException", "Missing Authentication Token")
            return await self._management(request, connection_id)
        if self.unhealthy is not None and request.method == "GET" and path == "/health":
            return web.json_response({"status": "unavailable", "reason": self.unhealthy}, status=503)
        if path in self.local_routes and request.method == "GET":
            return web.json_response(self.local_routes[path]())
        return await self._rest_request(request)

    async def _dispatch_management(self, request: web.Request) -> web.StreamResponse:
        connection_id = self._management_target(request.raw_path.split("?", 1)[0], self.management_key)
        if connection_id is None or self.management_key is None:
            return _aws_error(403, "ForbiddenException", "Missing Authentication Token")
        return await self._management(request, connection_id)

    def _management_target(self, raw_path: str, prefix: str | None) -> str | None:
        """The connection id of an ``@connections`` URL (``/@connections/{id}`` or ``/{prefix}/…``).

        botocore percent-encodes the id (``=`` → ``%3D``, ``/`` → ``%2F``); segments are decoded one by one.
        """
        segments = [unquote(part) for part in raw_path.split("/")]
        if len(segments) == 4 and prefix is not None and segments[1] == prefix:
            segments = [segments[0], *segments[2:]]
        elif self.management_key is not None and prefix == self.management_key:
            return None  # the private port takes only prefixed paths
        if len(segments) == 3 and segments[0] == "" and segments[1] == "@connections" and segments[2]:
            return segments[2]
        return None

    async def _on_shutdown(self, _application: web.Application) -> None:
        await self.close_all(WSCloseCode.GOING_AWAY)

    async def close_all(self, code: int = WSCloseCode.GOING_AWAY) -> None:
        """Close every live socket (each then gets its ``$disconnect``); a client that does not
        answer the close within CLOSE_GRACE_SECONDS is dropped."""
        await asyncio.gather(*(self._close(connection, code) for connection in list(self.connections.values())))

    async def _close(self, connection: _Connection, code: int, reason: str = "") -> None:
        if connection.close_code is None:
            connection.close_code = code
        connection.wakeup.set()
        with contextlib.suppress(TimeoutError, ConnectionError, RuntimeError):
            await asyncio.wait_for(connection.ws.close(code=code, message=reason.encode()), CLOSE_GRACE_SECONDS)
        if not connection.ws.closed or connection.evicted:
            _abort(connection)

    def shutdown_executor(self, wait: bool = True) -> None:
        if self._own_executor:
            self.executor.shutdown(wait=wait, cancel_futures=True)
        self.fast_executor.shutdown(wait=wait, cancel_futures=True)

    # -- invoking handlers -------------------------------------------------------------------------

    def _handler(self, name: str) -> Handler | None:
        handler: Handler | None = self.app.handler_map.get(name)
        return handler

    async def _invoke(self, name: str, handler: Handler, event: Event, executor: Executor | None = None) -> Any:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(executor or self.executor, handler, event, _lambda_context(name))

    # -- events ------------------------------------------------------------------------------------

    def _request_context(self, connection: _Connection, route_key: str, event_type: str) -> dict[str, Any]:
        """``requestContext`` of a WebSocket event; ``authorizer`` only once the authorizer has answered."""
        now = _now_ms()
        context: dict[str, Any] = {
            "routeKey": route_key,
            "eventType": event_type,
            "extendedRequestId": aws_id(),
            "requestTime": _request_time(now),
            "messageDirection": "IN",
            "stage": self.stage,
            "connectedAt": connection.connected_at,
            "requestTimeEpoch": now,
            "identity": {"sourceIp": connection.source_ip, "userAgent": connection.user_agent},
            "requestId": aws_id(),
            "domainName": connection.domain_name,
            "connectionId": connection.connection_id,
            "apiId": self.api_id,
        }
        if connection.authorizer is not None:
            context["authorizer"] = dict(connection.authorizer)
        return context

    @property
    def connect_arn(self) -> str:
        return f"arn:aws:execute-api:{self.region}:{self.account_id}:{self.api_id}/{self.stage}/$connect"

    # -- WebSocket ---------------------------------------------------------------------------------

    async def _websocket(self, request: web.Request) -> web.StreamResponse:
        ws = _GuardedWebSocketResponse(
            max_frame_bytes=self.max_frame_bytes,
            # aiohttp refuses a message whose size is >= max_msg_size; API Gateway allows exactly 128 KB.
            max_msg_size=self.max_message_bytes + 1,
            compress=False,  # API Gateway does not negotiate permessage-deflate
            autoping=True,
        )
        if not ws.can_prepare(request).ok:
            return web.json_response({"message": "Upgrade Required"}, status=426)

        connected_at = _now_ms()
        connection = _Connection(
            connection_id=self._unused_connection_id(),
            ws=ws,
            connected_at=connected_at,
            source_ip=request.remote or "127.0.0.1",
            user_agent=request.headers.get("User-Agent", ""),
            domain_name=request.host,
            authorizer=None,
            last_active_at=connected_at,
        )
        headers, multi_headers = _single_and_multi(request.headers.items())
        query, multi_query = _single_and_multi(request.query.items())
        base: Event = {
            "headers": headers,
            "multiValueHeaders": multi_headers,
            "queryStringParameters": query or None,
            "multiValueQueryStringParameters": multi_query or None,
        }
        try:
            connection.authorizer = await self._authorize(
                {
                    "type": "REQUEST",
                    "methodArn": self.connect_arn,
                    **base,
                    "stageVariables": {},
                    "requestContext": self._request_context(connection, "$connect", "CONNECT"),
                },
                connection.connection_id,
            )
            await self._connect(
                {
                    **base,
                    "requestContext": self._request_context(connection, "$connect", "CONNECT"),
                    "isBase64Encoded": False,
                },
                connection.connection_id,
            )
        except _Refused as refused:
            log.info("connect %s refused: HTTP %d", connection.connection_id, refused.status)
            return refused.response()

        await ws.prepare(request)
        connection.transport = request.transport
        _bound_socket_buffer(request.transport)
        connection.writer = asyncio.create_task(self._write_loop(connection), name=f"ws-writer-{connection.connection_id}")
        self.connections[connection.connection_id] = connection
        log.info("connect %s principal=%s", connection.connection_id, (connection.authorizer or {}).get("principalId", "-"))
        try:
            await self._read_messages(connection)
        finally:
            self.connections.pop(connection.connection_id, None)
            connection.wakeup.set()
            await self._disconnect(connection)
        return ws

    async def _write_loop(self, connection: _Connection) -> None:
        """Write the connection's queued frames in order; close (1008) a client that takes none."""
        while not connection.ws.closed and connection.close_code is None:
            if not connection.outbox:
                connection.wakeup.clear()
                await connection.wakeup.wait()
                continue
            frame = connection.outbox.popleft()
            connection.outbox_bytes -= len(frame)
            try:
                send = connection.ws.send_str(frame) if isinstance(frame, str) else connection.ws.send_bytes(frame)
                await asyncio.wait_for(send, self.write_timeout)
            except TimeoutError:
                self._evict(connection, f"the client read nothing for {self.write_timeout:g} s")
                return
            except (ConnectionError, RuntimeError):
                return

    def _evict(self, connection: _Connection, why: str) -> None:
        """Close a client that does not read, as API Gateway does: 1008, then its posts answer 410."""
        if connection.evicted:
            return
        connection.evicted = True
        connection.outbox.clear()
        connection.outbox_bytes = 0
        log.warning("closing connection %s with 1008: %s", connection.connection_id, why)
        asyncio.get_running_loop().create_task(self._close(connection, WSCloseCode.POLICY_VIOLATION, "client not reading"))

    def _unused_connection_id(self) -> str:
        while True:
            candidate = self._new_connection_id()
            if candidate not in self.connections:
                return candidate

    async def _authorize(self, event: Event, connection_id: str) -> dict[str, Any] | None:
        """Run the REQUEST authorizer; return the ``requestContext.authorizer`` map or refuse."""
        handler = self._handler(self.authorizer_name)
        if handler is None:
            return None
        try:
            # The HS256 authorizer needs no store: it never waits behind handlers stuck on one.
            result = await self._invoke(self.authorizer_name, handler, event, self.fast_executor)
        except Exception as exc:
            if str(exc) == "Unauthorized":
                raise _Refused(401, {"message": "Unauthorized"}, "UnauthorizedException") from None
            log.exception("authorizer %s failed for connection %s", self.authorizer_name, connection_id)
            raise _Refused(500, {"message": None}, "AuthorizerConfigurationException") from None
        try:
            principal_id, context, allowed = self._evaluate_policy(result)
        except ValueError as bad:
            log.error("authorizer %s returned an invalid response: %s", self.authorizer_name, bad)
            raise _Refused(500, {"message": None}, "AuthorizerConfigurationException") from None
        if not allowed:
            raise _Refused(403, {"message": "Forbidden"}, "AccessDeniedException")
        return {**context, "principalId": principal_id}

    def _evaluate_policy(self, result: Any) -> tuple[str, dict[str, Any], bool]:
        """Check an authorizer response like API Gateway does: (principalId, context, allowed)."""
        if not isinstance(result, Mapping):
            raise ValueError(f"expected a dict, got {type(result).__name__}")
        principal_id = result.get("principalId")
        policy = result.get("policyDocument")
        if not isinstance(principal_id, str) or not isinstance(policy, Mapping):
            raise ValueError("principalId (str) and policyDocument are required")
        statements = policy.get("Statement")
        if isinstance(statements, Mapping):
            statements = [statements]
        if not isinstance(statements, list):
            raise ValueError("policyDocument.Statement must be a list")
        matcher = ARNMatcher(self.connect_arn)
        allowed = False
        for statement in statements:
            if not isinstance(statement, Mapping):
                raise ValueError("policy statements must be objects")
            actions = statement.get("Action", [])
            actions = [actions] if isinstance(actions, str) else list(actions)
            if not any(a in ("execute-api:Invoke", "execute-api:*", "*") for a in actions):
                continue
            resources = statement.get("Resource", [])
            resources = [resources] if isinstance(resources, str) else list(resources)
            if not matcher.does_any_resource_match(resources):
                continue
            if statement.get("Effect") == "Deny":
                return principal_id, {}, False  # an explicit Deny wins
            allowed = allowed or statement.get("Effect") == "Allow"
        return principal_id, _authorizer_context(result.get("context")), allowed

    async def _connect(self, event: Event, connection_id: str) -> None:
        handler = self._handler(self.connect_name)
        if handler is None:
            return
        try:
            result = await self._invoke(self.connect_name, handler, event)
        except Exception:
            log.exception("$connect handler %s failed for connection %s", self.connect_name, connection_id)
            raise _Refused(500, {"message": "Internal server error"}) from None
        status = result.get("statusCode", 200) if isinstance(result, Mapping) else 200
        if isinstance(status, int) and status >= 400:
            body: dict[str, Any] = {"message": "Forbidden"}
            raw = result.get("body") if isinstance(result, Mapping) else None
            if isinstance(raw, str):
                try:
                    parsed = json.loads(raw)
                except ValueError:
                    parsed = None
                if isinstance(parsed, dict):
                    body = parsed
            raise _Refused(status, body)

    async def _read_messages(self, connection: _Connection) -> None:
        handler = self._handler(self.message_name)
        loop = asyncio.get_running_loop()
        async for msg in connection.ws:
            if msg.type == WSMsgType.TEXT:
                body, is_base64 = msg.data, False
            elif msg.type == WSMsgType.BINARY:
                body, is_base64 = base64.b64encode(msg.data).decode("ascii"), True
            else:
                # aiohttp has already closed the socket (e.g. with 1009 for an oversized frame/message).
                if msg.type == WSMsgType.ERROR:
                    if isinstance(msg.data, WebSocketError):
                        connection.close_code = msg.data.code
                    log.info("connection %s closed on error: %s", connection.connection_id, msg.data)
                break
            connection.last_active_at = _now_ms()
            connection.messages += 1
            if handler is None:
                log.warning("no %s handler: message on %s dropped", self.message_name, connection.connection_id)
                continue
            event: Event = {
                "requestContext": {
                    **self._request_context(connection, "$default", "MESSAGE"),
                    "messageId": aws_id(),
                },
                "body": body,
                "isBase64Encoded": is_base64,
            }
            # Like API Gateway, do not wait for one invocation before reading the next frame.
            executor = self.fast_executor if self._fast_route(body) else self.executor
            loop.run_in_executor(executor, self._run_message_handler, handler, event)

    def _fast_route(self, body: str) -> bool:
        """API Gateway's route selection (``$request.body.action``), for store-free routes only."""
        if not self.fast_routes or len(body) > FAST_FRAME_BYTES:
            return False
        try:
            frame = json.loads(body)
        except ValueError:
            return False
        return isinstance(frame, dict) and frame.get("action") in self.fast_routes

    def _run_message_handler(self, handler: Handler, event: Event) -> None:
        """Thread-pool body of one ``$default`` invocation; failures are logged, never sent to the client."""
        connection_id = event["requestContext"]["connectionId"]
        try:
            handler(event, _lambda_context(self.message_name))
        except Exception:
            log.exception("$default handler %s failed for connection %s", self.message_name, connection_id)
        finally:
            self._after_invoke()
        # A route response ({"statusCode", "body"}) would be sent back by API Gateway only with a
        # two-way route; the app answers through @connections, so the return value is dropped.

    async def _disconnect(self, connection: _Connection) -> None:
        code = next((c for c in (connection.close_code, connection.ws.close_code) if c is not None), WSCloseCode.ABNORMAL_CLOSURE)
        duration = (_now_ms() - connection.connected_at) / 1000
        log.info("disconnect %s code=%d messages=%d after %.1fs", connection.connection_id, code, connection.messages, duration)
        handler = self._handler(self.disconnect_name)
        if handler is None:
            return
        event: Event = {
            "headers": {"Host": connection.domain_name, "X-Forwarded-For": connection.source_ip},
            "multiValueHeaders": {"Host": [connection.domain_name], "X-Forwarded-For": [connection.source_ip]},
            "requestContext": {
                **self._request_context(connection, "$disconnect", "DISCONNECT"),
                "disconnectStatusCode": int(code),
                "disconnectReason": "",
            },
            "isBase64Encoded": False,
        }
        try:
            # Shielded: during shutdown the read loop is cancelled, the disconnect must still happen.
            await asyncio.shield(self._invoke(self.disconnect_name, handler, event))
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("$disconnect handler %s failed for connection %s", self.disconnect_name, connection.connection_id)

    # -- @connections ------------------------------------------------------------------------------

    async def _management(self, request: web.Request, connection_id: str) -> web.StreamResponse:
        connection = self.connections.get(connection_id)
        if connection is None or connection.ws.closed or connection.close_code is not None:
            return _aws_error(410, "GoneException", "Gone")
        if request.method == "POST":
            data = await request.read()
            if len(data) > self.max_message_bytes:
                return _aws_error(413, "PayloadTooLargeException", "Request entity too large")
            if connection.outbox_bytes + len(data) > self.send_buffer_bytes:
                self._evict(connection, f"over {self.send_buffer_bytes} bytes waiting: the client does not read")
                return _aws_error(410, "GoneException", "Gone")
            try:
                frame: str | bytes = data.decode("utf-8")
            except UnicodeDecodeError:
                frame = data
            connection.outbox.append(frame)
            connection.outbox_bytes += len(frame)
            connection.wakeup.set()
            return web.Response(status=200)
        if request.method == "DELETE":
            await self._close(connection, WSCloseCode.OK)
            return web.Response(status=204)
        if request.method == "GET":
            return web.json_response(
                {
                    "connectedAt": _iso_ms(connection.connected_at),
                    "identity": {"sourceIp": connection.source_ip, "userAgent": connection.user_agent},
                    "lastActiveAt": _iso_ms(connection.last_active_at),
                }
            )
        return _aws_error(403, "ForbiddenException", "Missing Authentication Token")

    # -- REST --------------------------------------------------------------------------------------

    async def _rest_request(self, request: web.Request) -> web.StreamResponse:
        started = time.perf_counter()
        headers, _ = _single_and_multi(request.headers.items())
        body = await request.read() if request.can_read_body else b""
        path = _rest_path(request.raw_path)
        loop = asyncio.get_running_loop()
        executor = self.fast_executor if path.split("?", 1)[0] in self.fast_rest_paths else self.executor
        try:
            result = await loop.run_in_executor(executor, self._rest.handle_request, request.method, path, headers, body or None)
            self._after_invoke()
            response = _to_aiohttp(result)
        except LocalGatewayException as exc:
            response = _gateway_response(exc)
        except Exception:
            log.exception("REST %s %s failed", request.method, request.path)
            response = _error_response(500, "internal", "internal error")
        elapsed = (time.perf_counter() - started) * 1000
        log.info("%s %s -> %d (%.1f ms)", request.method, request.path, response.status, elapsed)
        return response


def _rest_path(raw_path: str) -> str:
    """The request target with path segments decoded, as API Gateway decodes path parameters.

    A segment whose decoded form would change the route (an encoded ``/``, ``?`` or ``#``, which the
    local router would read as a fragment: ``tpl-1%23evil`` must not become ``tpl-1``) stays encoded,
    so the handler sees (and refuses) the ``%``.
    """
    path, sep, query = raw_path.partition("?")
    segments = []
    for segment in path.split("/"):
        decoded = unquote(segment)
        segments.append(segment if any(c in decoded for c in "/?#") else decoded)
    return "/".join(segments) + sep + query


# The answers API Gateway itself gives (no route, no such method, a failed integration), in the
# product's error shape, as the stack's gateway responses configure them on AWS. Never echoes a header.
_GATEWAY_CODES = {400: "invalid", 401: "unauthorized", 403: "forbidden", 404: "not_found", 413: "too_large", 429: "rate_limited"}


def _error_response(status: int, code: str, message: str) -> web.Response:
    return web.json_response({"error": {"code": code, "message": message}}, status=status)


def _gateway_response(exc: LocalGatewayException) -> web.Response:
    error_type = (exc.headers or {}).get("x-amzn-ErrorType", "")
    if exc.CODE == 403 and error_type == "UnauthorizedException":  # API Gateway's "Missing Authentication Token"
        return _error_response(404, "not_found", "no such route")
    status = exc.CODE if exc.CODE in _GATEWAY_CODES else 500
    return _error_response(status, _GATEWAY_CODES.get(status, "internal"), "refused by the gateway")


def _to_aiohttp(result: Mapping[str, Any]) -> web.Response:
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


def _bound_socket_buffer(transport: Any) -> None:
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


def _abort(connection: _Connection) -> None:
    """Drop the TCP connection (a client that does not read cannot receive a close frame)."""
    transport = connection.transport
    if transport is not None and not transport.is_closing():
        transport.abort()


def _aws_error(status: int, error_type: str, message: str) -> web.Response:
    return web.json_response({"message": message}, status=status, headers={"x-amzn-ErrorType": error_type})


def _authorizer_context(raw: Any) -> dict[str, Any]:
    """API Gateway passes only string/number/boolean context values, as strings; anything else is a 500."""
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise ValueError("context must be an object")
    context: dict[str, Any] = {}
    for key, value in raw.items():
        if isinstance(value, bool):
            context[key] = "true" if value else "false"
        elif isinstance(value, str | int | float):
            context[key] = str(value)
        elif value is None:
            continue
        else:
            raise ValueError(f"context value {key!r} must be a string, number or boolean")
    return context


def _make_current_request_thread_local(app: Chalice) -> None:
    """Handlers run in a thread pool; make ``app.current_request`` per thread, as ``chalice local`` does."""
    if isinstance(app, LocalChalice):
        return
    app.__class__ = type(f"Local{type(app).__name__}", (LocalChalice, type(app)), {})


# --------------------------------------------------------------------------------------------------
# Running it
# --------------------------------------------------------------------------------------------------


def bind_socket(host: str = "127.0.0.1", port: int = 0) -> socket.socket:
    """A listening-ready TCP socket (``port=0`` picks a free port), so the URL is known before serving."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    return sock


class _QuietRequestHandler(RequestHandler):
    """aiohttp's connection handler, with API Gateway's answers to requests it cannot parse: a header
    over 8 KB is 431 and anything else malformed 400, as JSON, without echoing the offending bytes
    (aiohttp's own text/plain answer quotes part of the header, e.g. a token) and without a traceback."""

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


class _QuietServer(web.Server):
    def __call__(self) -> RequestHandler:
        return _QuietRequestHandler(self, loop=self._loop, **self._kwargs)


class _Runner(web.AppRunner):
    async def _make_server(self) -> web.Server:
        server = await super()._make_server()
        server.__class__ = _QuietServer
        return server


async def start_site(gateway: Gateway, sock: socket.socket) -> web.AppRunner:
    """Serve ``gateway`` on ``sock``; the caller owns ``runner.cleanup()``."""
    runner = _Runner(gateway.web_app(), access_log=None, handle_signals=False, shutdown_timeout=1)
    await runner.setup()
    await web.SockSite(runner, sock).start()
    return runner


async def start_management_site(gateway: Gateway, sock: socket.socket) -> web.AppRunner:
    """Serve only the ``@connections`` API of a gateway with a ``management_key`` on ``sock`` (a
    loopback port of its own); the caller owns ``runner.cleanup()``."""
    runner = _Runner(gateway.management_app(), access_log=None, handle_signals=False, shutdown_timeout=1)
    await runner.setup()
    await web.SockSite(runner, sock).start()
    return runner


class GatewayThread:
    """Runs a :class:`Gateway` on its own event loop in a background thread (tests, benchmarks).

    >>> with GatewayThread(Gateway(app)) as server:
    ...     server.base_url  # 'http://127.0.0.1:<port>'
    """

    def __init__(self, gateway: Gateway, host: str = "127.0.0.1", port: int = 0) -> None:
        self.gateway = gateway
        self._sock = bind_socket(host, port)
        self.host, self.port = self._sock.getsockname()[:2]
        self._loop = asyncio.new_event_loop()
        self._runner: web.AppRunner | None = None
        self._thread = threading.Thread(target=self._loop.run_forever, name=f"gateway-{uuid.uuid4().hex[:6]}", daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://{self.host}:{self.port}{self.gateway.ws_path}"

    def start(self) -> GatewayThread:
        self._thread.start()
        self._runner = asyncio.run_coroutine_threadsafe(start_site(self.gateway, self._sock), self._loop).result(10)
        return self

    def call(self, coro: Any, timeout: float = 10) -> Any:
        """Run a coroutine on the gateway's loop and wait for its result."""
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    def stop(self) -> None:
        if self._runner is not None:
            self.call(self._runner.cleanup(), timeout=30)
            self._runner = None
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()
        self.gateway.shutdown_executor()

    def __enter__(self) -> GatewayThread:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
