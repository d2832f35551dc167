"""A webhook receiver on 127.0.0.1 for tests: records every request and answers with scripted statuses."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    at: float

    @property
    def json(self) -> Any:
        return json.loads(self.body)


class _IPv6Server(ThreadingHTTPServer):
    address_family = socket.AF_INET6


class Receiver:
    def __init__(self, host: str = "127.0.0.1") -> None:
        self.requests: list[Received] = []
        self.script: deque[int] = deque()  # statuses to answer, in order; 200 once it is empty
        self.delay = 0.0
        self._lock = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length)
                if receiver.delay:
                    time.sleep(receiver.delay)
                with receiver._lock:
                    receiver.requests.append(
                        Received(self.path, {k.lower(): v for k, v in self.headers.items()}, body, time.time())
                    )
                    status = receiver.script.popleft() if receiver.script else 200
                    receiver._lock.notify_all()
                self.send_response(status)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                return

        server = _IPv6Server if ":" in host else ThreadingHTTPServer
        self.server = server((host, 0), Handler)
        authority = f"[{host}]" if ":" in host else host
        self.url = f"http://{authority}:{self.server.server_address[1]}/hook"

    def of_type(self, kind: str) -> list[Received]:
        with self._lock:
            return [r for r in self.requests if r.json["type"] == kind]

    def wait_for(self, count: int, timeout: float = 10.0) -> list[Received]:
        deadline = time.monotonic() + timeout
        with self._lock:
            while len(self.requests) < count and time.monotonic() < deadline:
                self._lock.wait(0.05)
            return list(self.requests)


@contextmanager
def receiver(host: str = "127.0.0.1") -> Iterator[Receiver]:
    r = Receiver(host)
    # shutdown() waits for the loop's next poll: a short interval keeps each test's teardown short.
    thread = threading.Thread(target=r.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    try:
        yield r
    finally:
        r.server.shutdown()
        r.server.server_close()


class Blackhole:
    """A receiver that accepts every TCP connection and never answers (nor reads): each delivery to
    it waits for the sender's timeout."""

    def __init__(self) -> None:
        self._server = socket.create_server(("127.0.0.1", 0), backlog=512)
        self._server.settimeout(0.2)
        self._held: list[socket.socket] = []
        self._stop = threading.Event()
        self.accepted = 0
        self.url = f"http://127.0.0.1:{self._server.getsockname()[1]}/hook"
        self._thread = threading.Thread(target=self._accept, name="blackhole", daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._server.accept()
            except OSError:  # the timeout: look at the stop flag again
                continue
            self._held.append(conn)
            self.accepted += 1

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        for conn in self._held:
            conn.close()
        self._server.close()


@contextmanager
def blackhole() -> Iterator[Blackhole]:
    hole = Blackhole()
    try:
        yield hole
    finally:
        hole.close()
