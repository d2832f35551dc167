"""Webhook receivers on 127.0.0.1 for the benchmarks: one that records when each coach message arrived,
and one that accepts connections and never answers."""

from __future__ import annotations

import json
import socket
import threading
import time
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


def epoch(iso: str) -> float:
    """The wire's timestamp (``2026-12-01T12:00:00.000Z``) as epoch seconds."""
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


class CoachReceiver:
    """Answers 204 at once; ``arrivals`` maps each coach message entry's ``seq`` to when it arrived."""

    def __init__(self) -> None:
        self.arrivals: dict[int, float] = {}
        arrivals = self.arrivals

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                at = time.time()
                entry = json.loads(body)["data"].get("entry") or {}
                if entry.get("kind") == "coach_message":
                    arrivals[int(entry["seq"])] = at
                self.send_response(204)
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class SilentReceiver:
    """Accepts every connection, reads nothing, answers nothing: each post to it waits for its timeout."""

    def __init__(self) -> None:
        self.server = socket.create_server(("127.0.0.1", 0), backlog=1024)
        self.server.settimeout(0.2)
        self.held: list[socket.socket] = []
        self.stop = threading.Event()
        self.url = f"http://127.0.0.1:{self.server.getsockname()[1]}/hook"
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self.stop.is_set():
            try:
                self.held.append(self.server.accept()[0])
            except OSError:
                continue

    def close(self) -> None:
        self.stop.set()
        for conn in self.held:
            conn.close()
        self.server.close()
