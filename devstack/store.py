"""The embedded DynamoDB-compatible store of the local stack: moto's server on a free loopback port.

Set ``DYNAMODB_ENDPOINT`` to use a store that is already running (e.g. DynamoDB Local) instead.
"""

from __future__ import annotations

from typing import Any


class EmbeddedStore:
    """Start/stop an in-memory DynamoDB endpoint; ``endpoint`` wins when given (nothing is started)."""

    def __init__(self, endpoint: str = "") -> None:
        self._given = endpoint.rstrip("/")
        self._server: Any = None
        self.endpoint = self._given

    @property
    def embedded(self) -> bool:
        return not self._given

    def start(self) -> str:
        """Start the store (if embedded) and return its endpoint URL."""
        if self._given:
            return self._given
        # Imported here: moto is a dev-only dependency and takes a moment to load.
        from moto.server import ThreadedMotoServer

        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        self._server.start()
        host, port = self._server.get_host_and_port()
        self.endpoint = f"http://{host}:{port}"
        return self.endpoint

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None

    def __enter__(self) -> EmbeddedStore:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
