"""Many real WebSocket clients on one asyncio event loop (the ``websockets`` library).

Each :class:`Conn` has a reader task that timestamps every frame the moment it is read
(``time.perf_counter``), keeps it, resolves the waiter of an ``ack``/``error`` by ``requestId`` and
hands events to an optional callback.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import time
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import quote

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

Frame = dict[str, Any]
EventCallback = Callable[["Conn", float, Frame], None]

_ids = itertools.count(1)


class Conn:
    def __init__(self, name: str, role: str, ws: ClientConnection, workitem: str | None = None) -> None:
        self.name = name
        self.role = role
        self.workitem = workitem
        self.ws = ws
        self.frames: list[tuple[float, Frame]] = []
        self.on_event: EventCallback | None = None
        self._pending: dict[str, asyncio.Future[tuple[float, Frame]]] = {}
        self.closed = False
        self._reader = asyncio.get_running_loop().create_task(self._read())

    async def _read(self) -> None:
        try:
            async for message in self.ws:
                at = time.perf_counter()
                try:
                    frame = json.loads(message)
                except ValueError:
                    frame = {"type": "raw", "text": str(message)[:200]}
                if not isinstance(frame, dict):
                    frame = {"type": "raw", "text": str(frame)[:200]}
                self.frames.append((at, frame))
                kind = frame.get("type")
                if kind in ("ack", "error"):
                    waiter = self._pending.pop(str(frame.get("requestId")), None)
                    if waiter is not None and not waiter.done():
                        waiter.set_result((at, frame))
                elif kind == "event" and self.on_event is not None:
                    self.on_event(self, at, frame)
        except ConnectionClosed:
            pass
        finally:
            self.closed = True
            for waiter in self._pending.values():
                if not waiter.done():
                    waiter.set_exception(ConnectionError(f"{self.name}: connection closed"))

    async def send(self, action: str, **fields: Any) -> tuple[str, float, asyncio.Future[tuple[float, Frame]]]:
        """Send one action; return (requestId, send time, future of (reply time, reply frame))."""
        request_id = f"b{next(_ids)}"
        waiter: asyncio.Future[tuple[float, Frame]] = asyncio.get_running_loop().create_future()
        self._pending[request_id] = waiter
        payload = json.dumps({"action": action, "requestId": request_id, **fields})
        sent_at = time.perf_counter()
        await self.ws.send(payload)
        return request_id, sent_at, waiter

    async def request(self, action: str, timeout: float = 30, **fields: Any) -> tuple[float, float, Frame]:
        """Send and wait for the reply: (send time, reply time, reply frame)."""
        _, sent_at, waiter = await self.send(action, **fields)
        replied_at, frame = await asyncio.wait_for(waiter, timeout)
        return sent_at, replied_at, frame

    async def ok(self, action: str, timeout: float = 30, **fields: Any) -> Any:
        _, _, frame = await self.request(action, timeout, **fields)
        if frame.get("type") != "ack":
            raise RuntimeError(f"{self.name}: {action} refused: {frame}")
        return frame.get("data")

    def events(self, name: str | None = None) -> list[tuple[float, Frame]]:
        return [(t, f) for t, f in self.frames if f.get("type") == "event" and (name is None or f.get("event") == name)]

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.ws.close(), 10)
        self._reader.cancel()


async def open_all(
    ws_url: str, people: Iterable[tuple[str, str, str | None, str]], concurrency: int = 16, query: str = ""
) -> list[Conn]:
    """Open one connection per (name, role, workitem, token), ``concurrency`` handshakes at a time;
    ``query`` is appended to each URL's query string (``&delivery=fast``)."""
    gate = asyncio.Semaphore(concurrency)

    async def one(name: str, role: str, workitem: str | None, token: str) -> Conn:
        async with gate:
            ws = await connect(
                f"{ws_url}?token={quote(token, safe='')}{query}",
                compression=None,
                max_size=None,
                ping_interval=None,
                open_timeout=60,
                close_timeout=5,
                max_queue=None,
            )
            return Conn(name, role, ws, workitem)

    return list(await asyncio.gather(*(one(*p) for p in people)))


async def close_all(conns: Iterable[Conn]) -> None:
    await asyncio.gather(*(c.close() for c in conns))
