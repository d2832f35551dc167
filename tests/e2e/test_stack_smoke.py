"""Smoke tests of the local stack: it serves REST and WebSocket on one port and guards the door."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

import pytest

from devstack.tokens import mint
from tests.e2e.wsclient import WsRefused

if TYPE_CHECKING:
    from tests.e2e.conftest import Stack

pytestmark = pytest.mark.e2e


def _b64(obj: dict[str, object]) -> str:
    return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()


def _unsigned_token(claims: dict[str, object]) -> str:
    """An ``alg: none`` token: header and claims, empty signature."""
    return f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{_b64(claims)}."


def test_health(stack: Stack) -> None:
    assert stack.rest("GET", "/health") == (200, {"status": "ok"})


@pytest.mark.parametrize(
    "make_token",
    [
        pytest.param(lambda s: None, id="missing"),
        pytest.param(lambda s: "not-a-jwt", id="garbage"),
        pytest.param(lambda s: mint("wrong-secret-0123456789abcdef0123456", sub="agent-1", role="agent"), id="bad-signature"),
        pytest.param(
            lambda s: _unsigned_token({"sub": "agent-1", "tid": "demo", "role": "agent", "exp": int(time.time()) + 3600}),
            id="alg-none",
        ),
        pytest.param(lambda s: s.token("agent-1", "agent", exp_in=-60), id="expired"),
    ],
)
def test_bad_tokens_are_refused_at_connect(stack: Stack, make_token: Callable[[Stack], str | None]) -> None:
    token = make_token(stack)
    with pytest.raises(WsRefused) as refused:
        stack.connect(token)
    assert refused.value.status == 401


def test_agent_connects_and_pings(stack: Stack) -> None:
    with stack.connect(stack.token("agent-1", "agent", name="Alex Agent")) as ws:
        frame = ws.request("ping")
        assert frame["type"] == "ack", frame
        assert isinstance(frame.get("data"), dict)


def test_nothing_is_pushed_unasked_at_connect(stack: Stack) -> None:
    with stack.connect(stack.token("sup-1", "supervisor")) as ws:
        time.sleep(0.5)
        assert ws.frames == []


@pytest.mark.parametrize("raw", ["this is not json", "[1, 2, 3]", '"a string"', '{"requestId": "no-action"}'])
def test_malformed_frame_gets_invalid_and_the_socket_survives(stack: Stack, raw: str) -> None:
    with stack.connect(stack.token("agent-1", "agent")) as ws:
        ws.send_raw(raw)
        error = ws.wait_frame(lambda f: f.get("type") == "error", what="error frame")
        assert error["error"]["code"] == "invalid"
        assert "Traceback" not in json.dumps(error)
        assert ws.ok("ping") is not None


def test_unknown_action_is_invalid(stack: Stack) -> None:
    with stack.connect(stack.token("agent-1", "agent")) as ws:
        error = ws.error("no.such.action", "invalid")
        assert error["message"]
        assert ws.ok("ping") is not None


def test_message_over_128kb_closes_with_1009(stack: Stack) -> None:
    ws = stack.connect(stack.token("agent-1", "agent"))
    try:
        ws.send_raw(json.dumps({"action": "ping", "requestId": "big", "pad": "x" * (128 * 1024)}))
        assert ws.wait_closed(timeout=5) == 1009
    finally:
        ws.close()
