"""A small synchronous WebSocket client for end-to-end tests, speaking the contract's frame protocol.

A background thread reads every frame in order into a list, so a test can send actions and then wait
for the ack or the events it expects, whichever arrives first.
"""

from __future__ import annotations

import itertools
import json
import threading
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import ClientConnection, connect

Frame = dict[str, Any]
_request_ids = itertools.count(1)


class WsRefused(Exception):
    """The server answered the upgrade with an HTTP error (e.g. 401 at ``$connect``)."""

    def __init__(self, status: int, body: bytes) -> None:
        super().__init__(f"WebSocket connection refused: HTTP {status} {body[:200]!r}")
        self.status = status
        self.body = body


class WsClient:
    """One connection. Frames that are not JSON objects are kept as ``{"type": "raw", "text": ...}``."""

    def __init__(self, ws: ClientConnection) -> None:
        self._ws = ws
        self._frames: list[Frame] = []
        self._consumed: set[int] = set()  # indices of events already returned by wait_event
        self._changed = threading.Condition()
        self.close_code: int | None = None
        self.close_reason: str | None = None
        self.closed = False
        self._reader = threading.Thread(target=self._read, name="wsclient-reader", daemon=True)
        self._reader.start()

    @classmethod
    def connect(cls, url: str, token: str | None, *, timeout: float = 5) -> WsClient:
        """Open ``url?token=...``; raise :class:`WsRefused` with the HTTP status if the upgrade is refused."""
        target = url if token is None else f"{url}{'&' if '?' in url else '?'}token={quote(token, safe='')}"
        try:
            # legacy=True: the connection outlives this call (websockets' explicit opt-in, no DeprecationWarning).
            ws = connect(target, open_timeout=timeout, compression=None, max_size=None, close_timeout=2, legacy=True)
        except InvalidStatus as refused:
            raise WsRefused(refused.response.status_code, bytes(refused.response.body or b"")) from None
        return cls(ws)

    # -- reading -----------------------------------------------------------------------------------

    def _read(self) -> None:
        try:
            for message in self._ws:
                text = message if isinstance(message, str) else message.decode("utf-8", "replace")
                try:
                    frame = json.loads(text)
                except ValueError:
                    frame = None
                if not isinstance(frame, dict):
                    frame = {"type": "raw", "text": text}
                with self._changed:
                    self._frames.append(frame)
                    self._changed.notify_all()
        except ConnectionClosed:
            pass
        finally:
            with self._changed:
                self.closed = True
                self.close_code = self._ws.close_code
                self.close_reason = self._ws.close_reason
                self._changed.notify_all()

    @property
    def frames(self) -> list[Frame]:
        """Every frame received so far, in order (a copy)."""
        with self._changed:
            return list(self._frames)

    def wait_frame(self, predicate: Callable[[Frame], bool], timeout: float = 5, what: str = "frame") -> Frame:
        """The first received frame (old or new) that matches ``predicate``."""
        index = self._wait_index(lambda _i, f: predicate(f), timeout, what)
        with self._changed:
            return self._frames[index]

    def _wait_index(self, match: Callable[[int, Frame], bool], timeout: float, what: str) -> int:
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                for index, frame in enumerate(self._frames):
                    if match(index, frame):
                        return index
                remaining = deadline - time.monotonic()
                if remaining <= 0 or self.closed:  # a closed connection will not bring it any more
                    state = f"closed with {self.close_code}" if self.closed else "open"
                    raise AssertionError(f"no {what} within {timeout}s (connection {state}); last frames: {self._frames[-5:]}")
                self._changed.wait(remaining)

    # -- actions -----------------------------------------------------------------------------------

    def send_raw(self, text: str | bytes) -> None:
        self._ws.send(text)

    def send(self, action: str, request_id: str | None = None, **fields: Any) -> str:
        """Send an action without waiting; return its requestId."""
        request_id = request_id or f"r{next(_request_ids)}"
        self._ws.send(json.dumps({"action": action, "requestId": request_id, **fields}))
        return request_id

    def reply(self, request_id: str, timeout: float = 5) -> Frame:
        """The ack or error frame for ``request_id``."""
        return self.wait_frame(
            lambda f: f.get("type") in ("ack", "error") and f.get("requestId") == request_id,
            timeout,
            what=f"reply to {request_id}",
        )

    def request(self, action: str, *, timeout: float = 5, **fields: Any) -> Frame:
        """Send an action and return its whole reply frame (ack or error)."""
        return self.reply(self.send(action, **fields), timeout)

    def ok(self, action: str, *, timeout: float = 5, **fields: Any) -> Any:
        """Send an action, assert it was acked, and return the ack's ``data``."""
        frame = self.request(action, timeout=timeout, **fields)
        assert frame["type"] == "ack", f"{action} {fields} was refused: {frame}"
        return frame.get("data")

    def error(self, action: str, code: str | None = None, *, timeout: float = 5, **fields: Any) -> Frame:
        """Send an action, assert it was refused (with ``code`` if given), and return the ``error`` object."""
        frame = self.request(action, timeout=timeout, **fields)
        assert frame["type"] == "error", f"{action} {fields} was not refused: {frame}"
        if code is not None:
            assert frame["error"]["code"] == code, f"{action}: expected {code}, got {frame['error']}"
        error: Frame = frame["error"]
        return error

    # -- events ------------------------------------------------------------------------------------

    def wait_event(self, name: str, timeout: float = 5, predicate: Callable[[Frame], bool] | None = None) -> Frame:
        """The oldest not yet returned ``event`` frame named ``name`` (matching ``predicate``)."""

        def match(index: int, frame: Frame) -> bool:
            return (
                index not in self._consumed
                and frame.get("type") == "event"
                and frame.get("event") == name
                and (predicate is None or predicate(frame))
            )

        index = self._wait_index(match, timeout, what=f"event {name!r}")
        with self._changed:
            self._consumed.add(index)
            return self._frames[index]

    def events(self, name: str) -> list[Frame]:
        """Every ``event`` frame named ``name`` received so far, returned by wait_event or not."""
        return [f for f in self.frames if f.get("type") == "event" and f.get("event") == name]

    def no_event(self, name: str, *, after: Frame) -> None:
        """Assert that no event ``name`` has arrived that ``wait_event`` did not return already. ``after``
        is the positive marker the caller waited for instead of a clock: a frame the server sent after
        anything the action under test could have sent here (a later change of the same workitem, whose
        pushes follow the earlier ones', or a direct push made after the action's reply), received by this
        client or another one."""
        assert after, "absence is asserted after a positive marker"
        with self._changed:
            pending = [
                f
                for i, f in enumerate(self._frames)
                if i not in self._consumed and f.get("type") == "event" and f.get("event") == name
            ]
        assert not pending, f"unexpected {name!r} event(s): {pending}"

    # -- closing -----------------------------------------------------------------------------------

    def wait_closed(self, timeout: float = 5) -> int | None:
        """Wait until the server closes the connection; return the close code it sent."""
        self._reader.join(timeout)
        assert self.closed, f"connection still open after {timeout}s"
        return self.close_code

    def close(self) -> None:
        self._ws.close()
        self._reader.join(5)

    def __enter__(self) -> WsClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
