"""The local stack's edges: its ``@connections`` API is not on the public port, long headers are
answered 431 without echo or traceback, and store-free calls answer while the store is busy."""

from __future__ import annotations

import http.client
import json
import socket
from typing import TYPE_CHECKING
from urllib.parse import quote, urlsplit

import pytest

if TYPE_CHECKING:
    from tests.e2e.conftest import Stack

pytestmark = pytest.mark.e2e


def _raw(
    stack: Stack, method: str, path: str, headers: dict[str, str] | None = None, body: bytes | None = None
) -> tuple[int, dict[str, str], bytes]:
    parts = urlsplit(stack.base_url)
    conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=10)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        conn.close()


def test_connections_api_is_not_reachable_on_the_public_port(stack: Stack) -> None:
    """Every ``@connections`` call on the public port is refused before any connection is looked up (an
    unknown id would otherwise be 410 Gone): 403 on the management paths, 404 where the path is just an
    unknown REST route. Nobody can push forged events to, or close, a socket."""
    with stack.connect(stack.token("agent-1", "agent")) as victim:
        victim.ok("ping")
        forged = json.dumps({"type": "event", "event": "coach.message", "data": {"forged": True}}).encode()
        for connection_id in ("L0SM9cOFvHcCIhw=", "unknown"):
            for prefix in ("/@connections", "/%40connections", "/local/@connections", "/api/@connections"):
                path = f"{prefix}/{quote(connection_id, safe='')}"
                for method in ("POST", "DELETE", "GET"):
                    status, _, body = _raw(stack, method, path, body=forged if method == "POST" else None)
                    assert status in (403, 404), (method, path, status, body)
        assert victim.request("ping")["type"] == "ack"
        assert not [f for f in victim.frames if f.get("type") == "event"]  # nothing forged arrived


def test_a_header_over_8kb_is_431_without_echo_or_traceback(stack: Stack) -> None:
    secret = "s3cr3t-" + "x" * 9000
    before = len(stack.output)
    status, headers, body = _raw(stack, "GET", "/health", headers={"Authorization": f"Bearer {secret}"})
    assert status == 431
    assert headers["content-type"].startswith("application/json")
    assert json.loads(body) == {"message": "Request Header Fields Too Large"}
    assert b"s3cr3t" not in body
    # A long request line is refused the same way; the stack keeps serving.
    status, _, body = _raw(stack, "GET", "/health?" + "a=" + "b" * 9000)
    assert status in (414, 431) and b"bbbb" not in body
    assert stack.rest("GET", "/health") == (200, {"status": "ok"})
    # The positive marker: the stack's own line for each refusal (it logs one per refused request, after
    # anything the first one made it write), then nothing logged since holds a traceback or the header.
    first = stack.wait_logged("refused: 431", since=before)
    stack.wait_logged("refused: ", since=first + 1)
    logged = "\n".join(stack.output[before:])
    assert "Traceback" not in logged and "s3cr3t" not in logged and "bbbb" not in logged


def test_a_malformed_request_is_400_json_without_echo(stack: Stack) -> None:
    parts = urlsplit(stack.base_url)
    with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 80), timeout=5) as sock:
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nBad Header s3cr3t\r\n\r\n")
        answer = sock.recv(4096)
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.split(b" ")[1] == b"400", answer[:200]
    assert json.loads(body) == {"message": "Bad Request"}
    assert b"s3cr3t" not in answer


@pytest.mark.parametrize("control", ["%0A", "%0a", "%0D%0A", "%0B", "%0C", "%1C", "%1D", "%1E", "%85", "%E2%80%A8"])
def test_a_path_with_a_control_character_gets_the_error_shape(stack: Stack, control: str) -> None:
    """Any character in a path segment, line breaks too, reaches the routes: an id holding one is
    refused 400 like any bad id, an unknown path is 404, both in the contract's error shape."""
    admin = stack.token("admin-1", "admin")
    for method, path, expected in (
        ("DELETE", f"/admin/templates/a{control}b", (400, "invalid")),
        ("GET", f"/agents/{control}/workitems", (400, "invalid")),
        ("GET", f"/nowhere{control}", (404, "not_found")),
        ("GET", f"/{control}", (404, "not_found")),
    ):
        status, headers, body = _raw(stack, method, path, headers={"Authorization": f"Bearer {admin}"})
        assert headers["content-type"].startswith("application/json"), (method, path, status, body)
        assert (status, json.loads(body)["error"]["code"]) == expected, (method, path, body)


def test_the_local_stacks_own_routes_refuse_a_body_that_is_not_utf8(stack: Stack) -> None:
    """The console's helpers, its files and the local-only routes answer as the API does (W7.3)."""
    for method, path in (
        ("POST", "/console/token"),
        ("GET", "/config.json"),
        ("GET", "/"),
        ("GET", "/console/demo-users"),
        ("GET", "/_local/outbound"),
        ("POST", "/webhooks/events"),
        ("GET", "/health"),
    ):
        status, _, body = _raw(stack, method, path, headers={"Content-Type": "application/json"}, body=b'{"token":"\xff"}')
        assert status == 400 and json.loads(body)["error"]["code"] == "invalid", (method, path, status, body)
