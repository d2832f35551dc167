"""Pushes to WebSocket connections through API Gateway's ``@connections`` management API.

Works from any handler (WebSocket, REST, webhook, schedule): the endpoint comes from settings, not
from the event. A connection that answers 410 Gone is reported back so its owner record is cleaned.
A connection whose posts time out or are throttled is skipped, never waited for (docs/faults.md).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError, HTTPClientError
from botocore.exceptions import ConnectionError as SdkConnectionError

from chalicelib import metrics
from chalicelib.adapters.sdk_budget import PUSH

if TYPE_CHECKING:
    from mypy_boto3_apigatewaymanagementapi import ApiGatewayManagementApiClient

log = logging.getLogger(__name__)


# How long post_many waits for its frames, and after how long a post in flight counts as stuck (a
# healthy post takes milliseconds; the client's own timeouts end a stuck one, see sdk_budget.PUSH).
BATCH_WAIT_SECONDS = 1.0
STALLED_SECONDS = 0.25
# Frames queued for one connection beyond which new ones are skipped (a receiver that cannot keep up).
MAX_QUEUED_FRAMES = 200
# @connections answers these when posts to a connection are throttled.
_THROTTLED = frozenset({"LimitExceededException", "ThrottlingException", "TooManyRequestsException"})


class ApiGatewayPusher:
    """Posts frames to connections: several connections in parallel, one connection's frames one
    after another in the order given (so a receiver sees a change's entries in ``seq`` order)."""

    def __init__(
        self, endpoint: str, region: str, client: ApiGatewayManagementApiClient | None = None, max_workers: int = 16
    ) -> None:
        self._endpoint = endpoint
        self._region = region
        self._client = client
        self._lock = threading.Lock()
        self._cond = threading.Condition(threading.Lock())
        self._lanes: dict[str, _Lane] = {}
        self._pool: ThreadPoolExecutor | None = None
        self._max_workers = max_workers

    @property
    def client(self) -> ApiGatewayManagementApiClient:
        if self._client is None:
            with self._lock:
                if self._client is None:
                    if not self._endpoint:
                        raise RuntimeError("no WebSocket management endpoint is configured (WEBSOCKET_API_ID)")
                    import boto3

                    self._client = boto3.client(
                        "apigatewaymanagementapi",
                        endpoint_url=self._endpoint,
                        region_name=self._region,
                        config=PUSH.config(max_pool_connections=self._max_workers),
                    )
        return self._client

    def post(self, connection_id: str, data: bytes) -> bool:
        """Send one frame; False when the connection is gone (410), True when delivered."""
        try:
            self.client.post_to_connection(ConnectionId=connection_id, Data=data)
            return True
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            if code == "GoneException" or status == 410:
                return False
            raise

    def close(self, connection_id: str) -> None:
        """``DeleteConnection``: close a connection from the server side (gone already is fine)."""
        try:
            self.client.delete_connection(ConnectionId=connection_id)
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            if code == "GoneException" or status == 410:
                return
            raise

    def post_many(self, frames: list[tuple[str, bytes]]) -> list[str]:
        """Send each (connection, frame); returns the connections found gone (410) by the time it returns.

        Each connection has a *lane*: its frames go out one after another, in the order given across
        calls, while lanes run side by side. This call waits for its frames at most
        BATCH_WAIT_SECONDS, and not at all for a lane that is stuck on a slow post (one taking over
        STALLED_SECONDS): a slow or throttled receiver never holds up the others or the next change.
        A post that times out or is throttled drops the frames queued behind it, as does a lane
        whose backlog is full: that client sees a gap in ``seq`` and catches up with
        ``timeline.get`` (the timeline is the source of truth). Any other failure is logged and does
        not stop the others.
        """
        if not frames:
            return []
        ticket = _Ticket()
        dropped: list[str] = []
        with self._cond:
            for connection_id, data in frames:
                lane = self._lanes.get(connection_id)
                if lane is None:
                    lane = self._lanes[connection_id] = _Lane()
                if len(lane.queue) >= MAX_QUEUED_FRAMES:
                    dropped.append(connection_id)
                    continue
                lane.queue.append((data, ticket))
                ticket.pending[connection_id] = ticket.pending.get(connection_id, 0) + 1
                if not lane.running:
                    lane.running = True
                    self._executor().submit(self._drain, connection_id, lane)
            deadline = time.monotonic() + BATCH_WAIT_SECONDS
            while True:
                now = time.monotonic()
                waiting = [c for c, n in ticket.pending.items() if n and not self._lanes[c].stalled(now)]
                if not waiting or now >= deadline:
                    break
                self._cond.wait(min(0.05, deadline - now))
            late = sorted(c for c, n in ticket.pending.items() if n)
        if dropped:
            metrics.PUSH_FAILURES.add(len(dropped))
            log.warning(
                "push backlog full for %d connection(s); frames skipped (clients catch up by seq): %s",
                len(set(dropped)),
                ", ".join(sorted(set(dropped))),
            )
        if late:
            log.info("pushes to %s still in flight; not waited for", ", ".join(late))
        return sorted(ticket.gone)

    def _executor(self) -> ThreadPoolExecutor:
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=self._max_workers, thread_name_prefix="push")
        return self._pool

    def _drain(self, connection_id: str, lane: _Lane) -> None:
        """Post a lane's frames in order until it is empty (one worker per lane at a time)."""
        while True:
            with self._cond:
                if not lane.queue:
                    lane.running = False
                    lane.posting_since = None
                    if self._lanes.get(connection_id) is lane:
                        del self._lanes[connection_id]
                    self._cond.notify_all()
                    return
                data, ticket = lane.queue.popleft()
                lane.posting_since = time.monotonic()
            outcome = self._attempt(connection_id, data)
            with self._cond:
                lane.posting_since = None
                ticket.done(connection_id, gone=outcome == "gone")
                if outcome in ("gone", "slow"):
                    skipped = len(lane.queue)
                    while lane.queue:  # the rest would be refused too, or would wait behind a slow receiver
                        _, other = lane.queue.popleft()
                        other.done(connection_id, gone=outcome == "gone")
                    metrics.PUSH_FAILURES.add(skipped)
                    if outcome == "slow" and skipped:
                        log.warning(
                            "push to %s timed out or was throttled; %d queued frame(s) skipped (the client catches up by seq)",
                            connection_id,
                            skipped,
                        )
                self._cond.notify_all()

    def _attempt(self, connection_id: str, data: bytes) -> str:
        outcome = self._post_once(connection_id, data)
        (metrics.PUSHES if outcome == "sent" else metrics.GONE_CONNECTIONS if outcome == "gone" else metrics.PUSH_FAILURES).add()
        return outcome

    def _post_once(self, connection_id: str, data: bytes) -> str:
        try:
            return "sent" if self.post(connection_id, data) else "gone"
        except (HTTPClientError, SdkConnectionError) as exc:  # read/connect timeout, cut or refused connection
            log.warning("push to %s failed: %s", connection_id, _describe(exc))
            return "slow"
        except ClientError as exc:
            log.warning("push to %s failed: %s", connection_id, _describe(exc))
            code = exc.response.get("Error", {}).get("Code", "")
            return "slow" if code in _THROTTLED else "failed"
        except Exception as exc:  # noqa: BLE001 - one failed post must not fail the others; logged
            log.warning("push to %s failed: %s", connection_id, _describe(exc))
            return "failed"


class _Ticket:
    """One post_many call: how many of its frames each connection still has to go, and who is gone."""

    def __init__(self) -> None:
        self.pending: dict[str, int] = {}
        self.gone: set[str] = set()

    def done(self, connection_id: str, *, gone: bool) -> None:
        self.pending[connection_id] -= 1
        if gone:
            self.gone.add(connection_id)


class _Lane:
    """The frames waiting for one connection, and whether a worker is posting them."""

    def __init__(self) -> None:
        self.queue: deque[tuple[bytes, _Ticket]] = deque()
        self.running = False
        self.posting_since: float | None = None

    def stalled(self, now: float) -> bool:
        return self.posting_since is not None and now - self.posting_since > STALLED_SECONDS


def _describe(exc: Exception) -> str:
    if isinstance(exc, ClientError):
        err: Any = exc.response.get("Error", {})
        return f"{err.get('Code')}: {err.get('Message')}"
    return type(exc).__name__
