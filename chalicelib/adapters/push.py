"""Pushes to WebSocket connections through API Gateway's ``@connections`` management API.

Works from any handler (WebSocket, REST, webhook, schedule): the endpoint comes from settings, not
from the event. A connection that answers 410 Gone is reported back so its owner record is cleaned.
"""

from __future__ import annotations

import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from botocore.config import Config
from botocore.exceptions import ClientError

if TYPE_CHECKING:
    from mypy_boto3_apigatewaymanagementapi import ApiGatewayManagementApiClient

log = logging.getLogger(__name__)


class ApiGatewayPusher:
    """Posts frames to connections: several connections in parallel, one connection's frames one
    after another in the order given (so a receiver sees a change's entries in ``seq`` order)."""

    def __init__(self, endpoint: str, region: str, client: ApiGatewayManagementApiClient | None = None,
                 max_workers: int = 16) -> None:
        self._endpoint = endpoint
        self._region = region
        self._client = client
        self._lock = threading.Lock()
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
                        config=Config(connect_timeout=2, read_timeout=5, retries={"max_attempts": 2}),
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
        """Send each (connection, frame); returns the connections that are gone.

        A failure other than Gone is logged and does not stop the others: the timeline is the
        source of truth and clients catch up with ``timeline.get``.
        """
        if not frames:
            return []
        by_connection: dict[str, list[bytes]] = {}
        for connection_id, data in frames:
            by_connection.setdefault(connection_id, []).append(data)
        if len(by_connection) == 1:
            return self._post_in_order(*next(iter(by_connection.items())))
        if self._pool is None:
            with self._lock:
                if self._pool is None:
                    self._pool = ThreadPoolExecutor(max_workers=self._max_workers, thread_name_prefix="push")
        gone: list[str] = []
        for result in self._pool.map(lambda item: self._post_in_order(*item), by_connection.items()):
            gone.extend(result)
        return gone

    def _post_in_order(self, connection_id: str, frames: list[bytes]) -> list[str]:
        for data in frames:
            try:
                if not self.post(connection_id, data):
                    return [connection_id]  # gone: the rest would be refused too
            except Exception as exc:  # noqa: BLE001 - one failed post must not fail the others; logged
                log.warning("push to %s failed: %s", connection_id, _describe(exc))
        return []


def _describe(exc: Exception) -> str:
    if isinstance(exc, ClientError):
        err: Any = exc.response.get("Error", {})
        return f"{err.get('Code')}: {err.get('Message')}"
    return type(exc).__name__
