"""One WebSocket's lifecycle, with the events API Gateway sends for it.

``GET {ws_path}`` upgrades only after the REQUEST authorizer and the ``$connect`` handler accept it (a
refusal is their HTTP answer, never an upgrade); each text or binary message becomes a ``$default``
MESSAGE event, run concurrently in the thread pool without waiting for the previous one; the close
becomes exactly one ``$disconnect`` event. A frame over 32 KB or a message over 128 KB closes the
socket with 1009 (``frames.py`` and aiohttp's message limit).
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
from collections.abc import Mapping
from typing import Any

from aiohttp import WSCloseCode, WSMsgType, web
from aiohttp.http_websocket import WebSocketError

from devstack.apigw.authorizer import Refused, RequestAuthorizer
from devstack.apigw.config import HandlerNames, Limits, Stage
from devstack.apigw.connections import Connection, ConnectionTable
from devstack.apigw.frames import GuardedWebSocketResponse
from devstack.apigw.lambdas import Event, Handler, Invoker, aws_id, lambda_context, now_ms, request_time, single_and_multi

log = logging.getLogger("devstack.gateway")  # one logger for every part of the gateway

FAST_FRAME_BYTES = 512  # frames up to this size are checked for a store-free route (``ping``)


class WebSocketApi:
    """``$connect``, ``$default`` and ``$disconnect`` for the sockets of :class:`ConnectionTable`."""

    def __init__(
        self,
        invoker: Invoker,
        connections: ConnectionTable,
        *,
        names: HandlerNames,
        stage: Stage,
        limits: Limits,
        fast_routes: frozenset[str],
    ) -> None:
        self.invoker = invoker
        self.connections = connections
        self.names = names
        self.stage = stage
        self.limits = limits
        self.fast_routes = fast_routes
        self.authorizer = RequestAuthorizer(invoker, names.authorizer, stage.connect_arn)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        ws = GuardedWebSocketResponse(
            max_frame_bytes=self.limits.max_frame_bytes,
            # aiohttp refuses a message whose size is >= max_msg_size; API Gateway allows exactly 128 KB.
            max_msg_size=self.limits.max_message_bytes + 1,
            compress=False,  # API Gateway does not negotiate permessage-deflate
            autoping=True,
        )
        if not ws.can_prepare(request).ok:
            return web.json_response({"message": "Upgrade Required"}, status=426)

        connected_at = now_ms()
        connection = Connection(
            connection_id=self.connections.unused_id(),
            ws=ws,
            connected_at=connected_at,
            source_ip=request.remote or "127.0.0.1",
            user_agent=request.headers.get("User-Agent", ""),
            domain_name=request.host,
            authorizer=None,
            last_active_at=connected_at,
        )
        headers, multi_headers = single_and_multi(request.headers.items())
        query, multi_query = single_and_multi(request.query.items())
        base: Event = {
            "headers": headers,
            "multiValueHeaders": multi_headers,
            "queryStringParameters": query or None,
            "multiValueQueryStringParameters": multi_query or None,
        }
        try:
            connection.authorizer = await self.authorizer.authorize(
                {
                    "type": "REQUEST",
                    "methodArn": self.stage.connect_arn,
                    **base,
                    "stageVariables": {},
                    "requestContext": self.request_context(connection, "$connect", "CONNECT"),
                },
                connection.connection_id,
            )
            await self._connect(
                {
                    **base,
                    "requestContext": self.request_context(connection, "$connect", "CONNECT"),
                    "isBase64Encoded": False,
                },
                connection.connection_id,
            )
        except Refused as refused:
            log.info("connect %s refused: HTTP %d", connection.connection_id, refused.status)
            return refused.response()

        await ws.prepare(request)
        self.connections.attach(connection, request.transport)
        log.info("connect %s principal=%s", connection.connection_id, (connection.authorizer or {}).get("principalId", "-"))
        try:
            await self._read_messages(connection)
        finally:
            self.connections.detach(connection)
            await self._disconnect(connection)
        return ws

    def request_context(self, connection: Connection, route_key: str, event_type: str) -> dict[str, Any]:
        """``requestContext`` of a WebSocket event; ``authorizer`` only once the authorizer has answered."""
        now = now_ms()
        context: dict[str, Any] = {
            "routeKey": route_key,
            "eventType": event_type,
            "extendedRequestId": aws_id(),
            "requestTime": request_time(now),
            "messageDirection": "IN",
            "stage": self.stage.stage,
            "connectedAt": connection.connected_at,
            "requestTimeEpoch": now,
            "identity": {"sourceIp": connection.source_ip, "userAgent": connection.user_agent},
            "requestId": aws_id(),
            "domainName": connection.domain_name,
            "connectionId": connection.connection_id,
            "apiId": self.stage.api_id,
        }
        if connection.authorizer is not None:
            context["authorizer"] = dict(connection.authorizer)
        return context

    async def _connect(self, event: Event, connection_id: str) -> None:
        name = self.names.connect
        handler = self.invoker.handler(name)
        if handler is None:
            return
        try:
            result = await self.invoker.invoke(name, handler, event)
        except Exception:
            log.exception("$connect handler %s failed for connection %s", name, connection_id)
            raise Refused(500, {"message": "Internal server error"}) from None
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
            raise Refused(status, body)

    async def _read_messages(self, connection: Connection) -> None:
        handler = self.invoker.handler(self.names.message)
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
            connection.last_active_at = now_ms()
            connection.messages += 1
            if handler is None:
                log.warning("no %s handler: message on %s dropped", self.names.message, connection.connection_id)
                continue
            event: Event = {
                "requestContext": {
                    **self.request_context(connection, "$default", "MESSAGE"),
                    "messageId": aws_id(),
                },
                "body": body,
                "isBase64Encoded": is_base64,
            }
            # Like API Gateway, do not wait for one invocation before reading the next frame.
            executor = self.invoker.fast_executor if self._fast_route(body) else self.invoker.executor
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
            handler(event, lambda_context(self.names.message))
        except Exception:
            log.exception("$default handler %s failed for connection %s", self.names.message, connection_id)
        finally:
            self.invoker.after_invoke()
        # A route response ({"statusCode", "body"}) would be sent back by API Gateway only with a
        # two-way route; the app answers through @connections, so the return value is dropped.

    async def _disconnect(self, connection: Connection) -> None:
        code = next((c for c in (connection.close_code, connection.ws.close_code) if c is not None), WSCloseCode.ABNORMAL_CLOSURE)
        duration = (now_ms() - connection.connected_at) / 1000
        log.info("disconnect %s code=%d messages=%d after %.1fs", connection.connection_id, code, connection.messages, duration)
        name = self.names.disconnect
        handler = self.invoker.handler(name)
        if handler is None:
            return
        event: Event = {
            "headers": {"Host": connection.domain_name, "X-Forwarded-For": connection.source_ip},
            "multiValueHeaders": {"Host": [connection.domain_name], "X-Forwarded-For": [connection.source_ip]},
            "requestContext": {
                **self.request_context(connection, "$disconnect", "DISCONNECT"),
                "disconnectStatusCode": int(code),
                "disconnectReason": "",
            },
            "isBase64Encoded": False,
        }
        try:
            # Shielded: during shutdown the read loop is cancelled, the disconnect must still happen.
            await asyncio.shield(self.invoker.invoke(name, handler, event))
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("$disconnect handler %s failed for connection %s", name, connection.connection_id)
