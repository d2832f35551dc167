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
``Limits.write_timeout`` seconds is closed with 1008 and its posts answer 410 from then on. Calls that need
no store (the authorizer, ``ping`` frames, ``GET /health``) run on their own small thread pool, so
they never wait behind handlers stuck on a slow store. A request header over 8 KB is answered 431
without echoing it.

API Gateway's WebSocket limits are enforced the way it enforces them: a frame over 32 KB or a message
over 128 KB closes the socket with 1009. It lives outside ``chalicelib/`` so it never enters the Lambda
package.

This module only puts the parts together (one module each in ``devstack/apigw/``: the WebSocket
lifecycle, the authorizer, the frame guard, the connections and their backpressure, ``@connections``,
REST, the server) and routes each request to its part; it also runs the result (:func:`start_site`,
:class:`GatewayThread`).
"""

from __future__ import annotations

import asyncio
import functools
import re
import socket
import threading
import uuid
from collections.abc import Callable, Iterable
from concurrent.futures import Executor
from typing import Any

from aiohttp import WSCloseCode, web
from chalice.app import Chalice

from devstack.apigw.config import (
    API_GATEWAY_LIMITS,
    DEFAULT_FAST_PATHS,
    DEFAULT_HANDLERS,
    DEFAULT_STAGE,
    FastPaths,
    HandlerNames,
    Limits,
    Stage,
)
from devstack.apigw.connections import ConnectionTable
from devstack.apigw.lambdas import Invoker, aws_id
from devstack.apigw.management import ManagementApi, missing_authentication_token
from devstack.apigw.rest import REST_BODY_LIMIT, RestProxy, error_response, is_utf8
from devstack.apigw.server import bind_socket, serve
from devstack.apigw.websocket import WebSocketApi


class Gateway:
    """API Gateway (REST + WebSocket + ``@connections``) for one Chalice app, as an aiohttp application.

    Settings come in groups (``devstack/apigw/config.py``), each defaulting to API Gateway's values:
    ``handlers`` names the WebSocket API's handlers in ``app.handler_map`` (a name the app does not
    define is skipped), ``stage`` says where the API is, ``limits`` holds the message and frame quotas
    and the backpressure, ``fast`` the store-free calls. Handlers run on ``executor`` (or a pool of
    ``executor_workers`` threads); ``after_invoke`` is called after every ``$default`` and REST
    invocation; ``middlewares`` stand in front of every route (the local console, devstack/console.py);
    a ``management_key`` moves ``@connections`` to :meth:`management_app`.
    """

    def __init__(
        self,
        app: Chalice,
        *,
        handlers: HandlerNames = DEFAULT_HANDLERS,
        stage: Stage = DEFAULT_STAGE,
        limits: Limits = API_GATEWAY_LIMITS,
        fast: FastPaths = DEFAULT_FAST_PATHS,
        executor: Executor | None = None,
        executor_workers: int = 32,
        connection_id_factory: Callable[[], str] = aws_id,
        after_invoke: Callable[[], None] | None = None,
        middlewares: Iterable[Any] = (),
        management_key: str | None = None,
    ) -> None:
        self.invoker = Invoker(app, executor=executor, executor_workers=executor_workers, after_invoke=after_invoke)
        self.app = app
        self.stage = stage
        self.limits = limits
        self.connections = ConnectionTable(connection_id_factory, limits)
        self.websocket = WebSocketApi(
            self.invoker, self.connections, names=handlers, stage=stage, limits=limits, fast_routes=fast.routes
        )
        self.management = ManagementApi(self.connections, limits, management_key)
        self.rest = RestProxy(self.invoker, fast.rest_paths)
        self._middlewares = list(middlewares)
        # Set by the stack when its store is down: GET /health answers 503 with this reason.
        self.unhealthy: str | None = None
        # Local-only GET routes answered with JSON (what the stack would have sent, e.g. SMS).
        self.local_routes: dict[str, Callable[[], Any]] = {}
        # Local-only POST routes that stand in for AWS invoking a function (SNS, EventBridge): each
        # takes the raw body and answers (status, JSON body); run on the handlers' pool.
        self.local_posts: dict[str, Callable[[bytes], tuple[int, Any]]] = {}
        # Local POST routes with path parameters: (pattern, handler of the body and the pattern's groups).
        self.local_post_patterns: list[tuple[re.Pattern[str], Callable[[bytes, tuple[str, ...]], tuple[int, Any]]]] = []

    @property
    def ws_path(self) -> str:
        return self.stage.ws_path

    @property
    def executor(self) -> Executor:
        """The handlers' thread pool (the stack's scheduled sweep runs there too)."""
        return self.invoker.executor

    @property
    def fast_executor(self) -> Executor:
        """The store-free calls' thread pool (the stack's store probe runs there too)."""
        return self.invoker.fast_executor

    def web_app(self) -> web.Application:
        """The aiohttp application serving REST, WebSocket and ``@connections`` on one port."""
        application = web.Application(client_max_size=REST_BODY_LIMIT, middlewares=self._middlewares)
        # Every path, line breaks in it too (a regex "." would leave a decoded %0A to aiohttp's plain 404).
        application.router.add_route("*", r"/{tail:[\s\S]*}", self._dispatch)
        application.on_shutdown.append(self._on_shutdown)
        return application

    def management_app(self) -> web.Application:
        """Only the ``@connections`` API, under ``/{management_key}`` (serve it on a loopback port)."""
        return self.management.web_app()

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        path = request.raw_path.split("?", 1)[0]
        if path == self.stage.ws_path:
            return await self.websocket.handle(request)
        connection_id = self.management.target(path, self.stage.stage)
        if connection_id is not None:
            if self.management.key is not None:
                return missing_authentication_token()
            return await self.management.handle(request, connection_id)
        if self.unhealthy is not None and request.method == "GET" and path == "/health":
            return web.json_response({"status": "unavailable", "reason": self.unhealthy}, status=503)
        if path in self.local_routes and request.method == "GET":
            if request.can_read_body and not is_utf8(await request.read()):  # bytes are input (W7.3)
                return error_response(400, "invalid", "the body is not valid UTF-8 text")
            return web.json_response(self.local_routes[path]())
        if request.method == "POST":
            post = self._local_post(path)
            if post is not None:
                body = await request.read()
                loop = asyncio.get_running_loop()
                status, answer = await loop.run_in_executor(self.executor, post, body)
                self.invoker.after_invoke()
                return web.json_response(answer, status=status)
        return await self.rest.handle(request)

    def _local_post(self, path: str) -> Callable[[bytes], tuple[int, Any]] | None:
        if path in self.local_posts:
            return self.local_posts[path]
        for pattern, handler in self.local_post_patterns:
            found = pattern.match(path)
            if found is not None:
                return functools.partial(_with_params, handler, found.groups())
        return None

    async def _on_shutdown(self, _application: web.Application) -> None:
        await self.close_all(WSCloseCode.GOING_AWAY)

    async def close_all(self, code: int = WSCloseCode.GOING_AWAY) -> None:
        """Close every live socket (each then gets its ``$disconnect``); a client that does not
        answer the close within ``CLOSE_GRACE_SECONDS`` (``connections.py``) is dropped."""
        await self.connections.close_all(code)

    def shutdown_executor(self, wait: bool = True) -> None:
        self.invoker.shutdown(wait=wait)


# --------------------------------------------------------------------------------------------------
# Running it
# --------------------------------------------------------------------------------------------------


async def start_site(gateway: Gateway, sock: socket.socket) -> web.AppRunner:
    """Serve ``gateway`` on ``sock``; the caller owns ``runner.cleanup()``."""
    return await serve(gateway.web_app(), sock)


async def start_management_site(gateway: Gateway, sock: socket.socket) -> web.AppRunner:
    """Serve only the ``@connections`` API of a gateway with a ``management_key`` on ``sock`` (a
    loopback port of its own); the caller owns ``runner.cleanup()``."""
    return await serve(gateway.management_app(), sock)


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


def _with_params(
    handler: Callable[[bytes, tuple[str, ...]], tuple[int, Any]], params: tuple[str, ...], body: bytes
) -> tuple[int, Any]:
    return handler(body, params)
