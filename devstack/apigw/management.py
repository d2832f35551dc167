"""The ``@connections`` management API: what boto3's ``apigatewaymanagementapi`` client talks to.

``POST /@connections/{connectionId}`` queues a frame (answered at once, see ``connections.py``),
``GET`` describes the connection, ``DELETE`` closes it; a connection that is gone answers 410
``GoneException``, with API Gateway's error shapes throughout. With a ``key`` it is not on the public
port at all (403 there, like API Gateway without IAM credentials): :meth:`ManagementApi.web_app`
serves it on a loopback port of its own, under the secret path prefix ``/{key}``, for the stack's
own functions only.
"""

from __future__ import annotations

from urllib.parse import unquote

from aiohttp import WSCloseCode, web

from devstack.apigw.config import Limits
from devstack.apigw.connections import ConnectionTable
from devstack.apigw.lambdas import iso_ms


def aws_error(status: int, error_type: str, message: str) -> web.Response:
    return web.json_response({"message": message}, status=status, headers={"x-amzn-ErrorType": error_type})


def missing_authentication_token() -> web.Response:
    """API Gateway's answer to a path it does not serve (or one that needs credentials)."""
    return aws_error(403, "ForbiddenException", "Missing Authentication Token")


class ManagementApi:
    """``@connections`` over the gateway's :class:`ConnectionTable`; ``key`` moves it to a private port."""

    def __init__(self, connections: ConnectionTable, limits: Limits, key: str | None) -> None:
        self.connections = connections
        self.limits = limits
        self.key = key

    def web_app(self) -> web.Application:
        """Only the ``@connections`` API, under ``/{key}`` (serve it on a loopback port)."""
        application = web.Application(client_max_size=self.limits.max_message_bytes + 1024)
        application.router.add_route("*", "/{tail:.*}", self._dispatch_private)
        return application

    async def _dispatch_private(self, request: web.Request) -> web.StreamResponse:
        connection_id = self.target(request.raw_path.split("?", 1)[0], self.key)
        if connection_id is None or self.key is None:
            return missing_authentication_token()
        return await self.handle(request, connection_id)

    def target(self, raw_path: str, prefix: str | None) -> str | None:
        """The connection id of an ``@connections`` URL (``/@connections/{id}`` or ``/{prefix}/…``).

        botocore percent-encodes the id (``=`` → ``%3D``, ``/`` → ``%2F``); segments are decoded one by one.
        """
        segments = [unquote(part) for part in raw_path.split("/")]
        if len(segments) == 4 and prefix is not None and segments[1] == prefix:
            segments = [segments[0], *segments[2:]]
        elif self.key is not None and prefix == self.key:
            return None  # the private port takes only prefixed paths
        if len(segments) == 3 and segments[0] == "" and segments[1] == "@connections" and segments[2]:
            return segments[2]
        return None

    async def handle(self, request: web.Request, connection_id: str) -> web.StreamResponse:
        connection = self.connections.get(connection_id)
        if connection is None or connection.ws.closed or connection.close_code is not None:
            return aws_error(410, "GoneException", "Gone")
        if request.method == "POST":
            data = await request.read()
            if len(data) > self.limits.max_message_bytes:
                return aws_error(413, "PayloadTooLargeException", "Request entity too large")
            if not self.connections.post(connection, data):
                return aws_error(410, "GoneException", "Gone")
            return web.Response(status=200)
        if request.method == "DELETE":
            await self.connections.close(connection, WSCloseCode.OK)
            return web.Response(status=204)
        if request.method == "GET":
            return web.json_response(
                {
                    "connectedAt": iso_ms(connection.connected_at),
                    "identity": {"sourceIp": connection.source_ip, "userAgent": connection.user_agent},
                    "lastActiveAt": iso_ms(connection.last_active_at),
                }
            )
        return missing_authentication_token()
