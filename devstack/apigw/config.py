"""The gateway's settings, grouped by what they describe; every default is what API Gateway does.

:class:`devstack.gateway.Gateway` takes one of each instead of a long list of keyword arguments, so a
test that changes a limit names the group it belongs to and leaves the rest as on AWS.
"""

from __future__ import annotations

from dataclasses import dataclass

SEND_BUFFER_BYTES = 1024 * 1024  # frames waiting for one client beyond what its socket has taken
WRITE_TIMEOUT_SECONDS = 5.0  # a client that takes no bytes for this long is closed (1008)


@dataclass(frozen=True)
class HandlerNames:
    """The keys of ``app.handler_map`` the WebSocket API invokes.

    A name the app does not define is skipped (no authorizer: every connection is accepted; no
    ``$connect`` handler: nothing to ask).
    """

    authorizer: str = "ws_authorizer"
    connect: str = "ws_connect"
    message: str = "ws_message"
    disconnect: str = "ws_disconnect"


@dataclass(frozen=True)
class Stage:
    """Where the API would be deployed: what the events' ``requestContext`` and the ``$connect`` ARN
    say, and the local path of the WebSocket endpoint."""

    api_id: str = "local"
    stage: str = "local"
    region: str = "local"
    account_id: str = "000000000000"
    ws_path: str = "/ws"

    @property
    def connect_arn(self) -> str:
        return f"arn:aws:execute-api:{self.region}:{self.account_id}:{self.api_id}/{self.stage}/$connect"


@dataclass(frozen=True)
class Limits:
    """API Gateway's WebSocket quotas, and how long a client that does not read is waited for."""

    max_message_bytes: int = 128 * 1024
    max_frame_bytes: int | None = 32 * 1024  # None: frames are not limited (only whole messages)
    send_buffer_bytes: int = SEND_BUFFER_BYTES
    write_timeout: float = WRITE_TIMEOUT_SECONDS


@dataclass(frozen=True)
class FastPaths:
    """Calls that need no store: they run on a small thread pool of their own, so they never wait
    behind handlers stuck on a slow store (on AWS each invocation has its own environment)."""

    routes: frozenset[str] = frozenset({"ping"})  # WebSocket actions (``$request.body.action``)
    rest_paths: frozenset[str] = frozenset({"/health"})


# The defaults of :class:`devstack.gateway.Gateway` (instances are immutable, so one of each serves all).
DEFAULT_HANDLERS = HandlerNames()
DEFAULT_STAGE = Stage()
API_GATEWAY_LIMITS = Limits()
DEFAULT_FAST_PATHS = FastPaths()
