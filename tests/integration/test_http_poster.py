"""The webhook poster against real HTTP servers on 127.0.0.1 (the local stack's setting, ``allow_private``):
what a receiver gets, that an answer's status comes back as it is, that a redirect is not followed and
that a receiver that does not answer in time costs the attempt, not the delivery function."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from chalicelib.adapters.http_target import HttpPoster
from tests.support.receiver import receiver

pytestmark = pytest.mark.integration


def test_a_receiver_gets_the_body_the_headers_and_the_path_and_its_status_comes_back() -> None:
    with receiver() as hook:
        hook.script.extend([202, 503])
        body = '{"type":"timeline.entry","text":"caf\u00e9"}'.encode()
        url = hook.url + "?tenant=t1"
        assert HttpPoster(allow_private=True).post(url, body, {"webhook-id": "evt_1", "content-type": "application/json"}) == (
            202,
            "",
        )
        assert HttpPoster(allow_private=True).post(url, body, {}) == (503, "")
        first = hook.requests[0]
    port = url.split(":")[2].split("/")[0]
    assert first.path == "/hook?tenant=t1" and first.body == body
    assert first.headers["webhook-id"] == "evt_1" and first.headers["content-type"] == "application/json"
    assert first.headers["host"] == f"127.0.0.1:{port}"


@contextmanager
def redirecting() -> Iterator[tuple[str, list[str]]]:
    """A server that answers every POST with 307 to another path of its own, recording each path asked."""
    paths: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            paths.append(self.path)
            self.rfile.read(int(self.headers.get("content-length") or 0))
            self.send_response(307)
            self.send_header("location", "/elsewhere")
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/hook", paths
    finally:
        server.shutdown()
        server.server_close()


def test_a_redirect_is_an_answer_not_followed() -> None:
    """A receiver must not steer a delivery to another address (one the address check never saw)."""
    with redirecting() as (url, paths):
        assert HttpPoster(allow_private=True).post(url, b"{}", {}) == (307, "")
    assert paths == ["/hook"]


def test_a_receiver_slower_than_the_timeout_costs_the_attempt() -> None:
    with receiver() as hook:
        hook.delay = 5.0
        started = time.monotonic()
        status, why = HttpPoster(allow_private=True, timeout=0.5).post(hook.url, b"{}", {})
        waited = time.monotonic() - started
    assert status is None and why.startswith("no answer")
    assert waited < 4.5  # given up on well before the receiver answered (generous: a loaded machine)
