"""Replies within limits and input at the edges, over real sockets against the local stack.

An ack that would exceed 128 KB used to be dropped by ``@connections`` (no ack, no error): now the list
actions page so every reply fits, a message the router cannot take is answered ``too_large``, and odd
input is answered 4xx / ``invalid`` in the contract's error shape.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

import pytest

from tests.e2e.tenant import Tenant

if TYPE_CHECKING:
    from tests.e2e.conftest import Stack

pytestmark = pytest.mark.e2e

LONG_SUBJECT = "\U0001f600" * 1000  # 4,000 bytes of UTF-8


@pytest.fixture
def tenant(stack: Stack) -> Any:
    t = Tenant(stack)
    t.teams(("team-1", ("sup-1",), ("agent-1",)))
    yield t
    t.close()


def test_a_list_of_110_long_workitems_is_answered_in_pages_never_silence(tenant: Tenant) -> None:
    def assign(i: int) -> None:
        status, body = tenant.webhook(
            "workitem.assigned",
            {
                "workitemId": f"wi-{i:03d}",
                "channel": "chat",
                "agentId": "agent-1",
                "customer": {"id": f"c-{i}", "name": "N" * 256},
                "subject": LONG_SUBJECT,
            },
        )
        assert status == 200, body

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(assign, range(110)))
    sup = tenant.connect("sup-1", "supervisor")
    for action in ("workitems.list", "agent.watch"):
        seen: list[str] = []
        cursor = None
        pages = 0
        while True:
            fields: dict[str, Any] = {"agentId": "agent-1"}
            if cursor:
                fields["cursor"] = cursor
            data = sup.ok(action, timeout=10, **fields)  # an ack arrives: nothing over 128 KB was dropped
            pages += 1
            seen += [w["workitemId"] for w in data["workitems"]]
            cursor = data["nextCursor"]
            if cursor is None:
                break
        assert sorted(seen) == [f"wi-{i:03d}" for i in range(110)] and pages > 1, (action, pages)
    for frame in sup.frames:
        assert frame.get("type") != "raw"
    # the watch is live
    tenant.assign("wi-late")
    sup.wait_event("workitem.assigned", timeout=10)


def test_a_message_over_the_frame_limit_is_answered_too_large(tenant: Tenant) -> None:
    agent = tenant.connect("agent-1", "agent")
    big = '{"action":"ping","requestId":"big","pad":"' + "x" * (40 * 1024) + '"}'
    # in fragments of 16 KB (API Gateway closes a socket on a single frame over 32 KB)
    agent._ws.send([big[i : i + 16 * 1024] for i in range(0, len(big), 16 * 1024)])
    reply = agent.reply("big", timeout=10)
    assert reply["type"] == "error" and reply["error"]["code"] == "too_large", reply
    assert agent.ok("ping") == {}


@pytest.mark.parametrize(
    "body",
    [
        "[" * 1000 + "]" * 1000,
        '{"action":"timeline.get","requestId":"r","workitemId":"wi-1","after":' + "9" * 4400 + "}",
        '{"action":"ping","requestId":"\\ud800"}',
    ],
)
def test_odd_frames_get_exactly_one_invalid_reply(tenant: Tenant, body: str) -> None:
    agent = tenant.connect("agent-1", "agent")
    before = len(agent.frames)
    agent.send_raw(body)
    reply = agent.wait_frame(lambda f: f.get("type") == "error", timeout=10, what="error")
    assert reply["error"]["code"] == "invalid", reply
    assert agent.ok("ping") == {}
    assert len([f for f in agent.frames[before:] if f.get("type") in ("ack", "error")]) == 2


def test_an_encoded_hash_in_a_path_never_reaches_another_id(tenant: Tenant, stack: Stack) -> None:
    tenant.template("tpl-1", "original")
    for path in ("/admin/templates/tpl-1%23evil", "/admin/templates/tpl-1%2523evil", "/admin/templates/tpl-1%2Fx"):
        status, payload = stack.rest("PUT", path, tenant.admin_token, {"text": "evil", "enabled": True})
        assert status in (400, 404) and set(payload) == {"error"}, (path, status, payload)
    templates = tenant.admin("GET", "/admin/templates")["templates"]
    assert [(t["templateId"], t["text"]) for t in templates] == [("tpl-1", "original")]


def test_gateway_and_framework_refusals_are_in_the_error_shape(tenant: Tenant, stack: Stack) -> None:
    status, payload = stack.rest("GET", "/no/such/route", tenant.admin_token)
    assert status == 404 and payload["error"]["code"] == "not_found", payload
    assert tenant.admin_token not in str(payload)
    status, payload = stack.rest("POST", "/health", None, {})
    assert status == 405 and payload["error"]["code"] == "method_not_allowed", payload
    status, payload = stack._http(
        "PUT", "/admin/policy", b"{}", {"Content-Type": "text/plain", "Authorization": f"Bearer {tenant.admin_token}"}
    )
    assert status == 415 and payload["error"]["code"] == "unsupported_media_type", payload
    status, payload = stack._http(
        "POST", "/webhooks/events", ("[" * 2000 + "]" * 2000).encode(), {"Content-Type": "application/json"}
    )
    assert status == 401 and set(payload) == {"error"}, payload
