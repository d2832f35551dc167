"""Sessions and live permissions (`W6`) over real sockets against the local stack.

A connection never outlives its token (frames after ``exp`` are refused and the server closes the
socket through ``DELETE @connections``), ``auth.refresh`` extends it, an admin's revocation closes a
user's sockets and refuses their older tokens, and a supervisor taken off a team loses their
monitors and watches at once.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

from devstack.tokens import mint
from tests.e2e.tenant import Tenant
from tests.e2e.wsclient import WsRefused

if TYPE_CHECKING:
    from tests.e2e.conftest import Stack

pytestmark = pytest.mark.e2e

LEEWAY = 30


@pytest.fixture
def t(stack: Stack) -> Iterator[Tenant]:
    tenant = Tenant(stack)
    tenant.teams(("team-1", ("sup-1", "sup-2"), ("agent-1",)))
    tenant.assign("chat")
    try:
        yield tenant
    finally:
        tenant.close()


def token(t: Tenant, sub: str, role: str, exp_in: int, now: float | None = None) -> str:
    return mint(t.stack.jwt_secret, sub=sub, role=role, tid=t.tid, ttl_seconds=exp_in, now=now)


def test_a_socket_does_not_outlive_its_token(t: Tenant) -> None:
    # Issued 26 s past its exp: still inside the leeway at $connect, out of it a few seconds later.
    client = t.stack.connect(token(t, "agent-1", "agent", exp_in=-26))
    t.clients.append(client)
    client.ok("ping")
    time.sleep(5)
    error = client.error("ping", "unauthorized")
    assert "expired" in error["message"]
    assert client.wait_closed(timeout=5) is not None


def test_refresh_keeps_the_socket_alive(t: Tenant) -> None:
    client = t.stack.connect(token(t, "agent-1", "agent", exp_in=-26))
    t.clients.append(client)
    fresh = token(t, "agent-1", "agent", exp_in=3600)
    assert client.ok("auth.refresh", token=fresh)["exp"] > time.time() + 3000
    time.sleep(5)
    client.ok("ping")
    client.error("auth.refresh", "forbidden", token=token(t, "agent-2", "agent", exp_in=3600))
    client.error("auth.refresh", "unauthorized", token="not.a.token")
    assert not client.closed


def test_tokens_too_far_ahead_or_with_string_claims_are_refused(t: Tenant) -> None:
    import jwt

    far = token(t, "agent-1", "agent", exp_in=25 * 3600)
    stringy = jwt.encode(
        {"sub": "agent-1", "tid": t.tid, "role": "agent", "exp": str(int(time.time()) + 600)},
        t.stack.jwt_secret,
        algorithm="HS256",
    )
    for raw in (far, stringy):
        with pytest.raises(WsRefused) as refused:
            t.stack.connect(raw)
        assert refused.value.status == 401
        assert t.stack.rest("GET", "/me/settings", raw)[0] == 401


def test_revocation_closes_sockets_and_refuses_older_tokens(t: Tenant) -> None:
    old = token(t, "sup-1", "supervisor", exp_in=3600)
    first, second = t.stack.connect(old), t.stack.connect(old)
    other = t.connect("sup-2", "supervisor")
    t.clients += [first, second]
    first.ok("agents.list")

    status, body = t.stack.rest("POST", "/admin/users/sup-1/revoke", t.admin_token)
    assert (status, body) == (204, None)
    assert first.wait_closed(timeout=5) is not None and second.wait_closed(timeout=5) is not None
    assert not other.closed
    other.ok("ping")

    assert t.stack.rest("GET", "/me/settings", old)[0] == 401
    with pytest.raises(WsRefused) as refused:
        t.stack.connect(old)
    assert refused.value.status == 401
    # The console's local token helper does not renew a revoked token into a working one.
    status, body = t.stack.rest("POST", "/console/token", body={"token": old})
    assert (status, body["error"]["code"]) == (401, "unauthorized"), body

    later = token(t, "sup-1", "supervisor", exp_in=3600, now=time.time() + 1)  # issued after the revocation
    assert t.stack.rest("GET", "/me/settings", later)[0] == 200
    fresh = t.stack.connect(later)
    t.clients.append(fresh)
    fresh.ok("agents.list")


def test_taken_off_the_team_ends_monitoring_and_watching(t: Tenant) -> None:
    sup = t.connect("sup-1", "supervisor")
    agent = t.connect("agent-1", "agent")
    customer = t.customer("chat")
    sup.ok("agent.watch", agentId="agent-1")
    sup.ok("monitor.start", workitemId="chat")
    agent.wait_event("coaching.joined")

    t.team("team-1", ("sup-2",), ("agent-1",))

    ended = sup.wait_event("coaching.ended", timeout=5)
    assert ended["data"]["workitemId"] == "chat" and ended["data"]["reason"] == "permissions"
    assert ended["data"]["entry"]["kind"] == "coaching_ended"
    assert agent.wait_event("coaching.left", timeout=5)["data"]["supervisorId"] == "sup-1"

    customer.ok("message.send", workitemId="chat", text="hello?")
    t.assign("chat-2")
    agent.wait_event("message.received")
    agent.wait_event("workitem.assigned")
    # Markers: a later change of the chat (its pushes follow those of "hello?") and a later assignment
    # (pushed by its handler after chat-2's), both reaching the agent.
    customer.ok("message.send", workitemId="chat", text="marker")
    t.assign("chat-3")
    sup.no_event(
        "message.received", after=agent.wait_event("message.received", predicate=lambda f: f["data"]["entry"]["text"] == "marker")
    )
    sup.no_event(
        "workitem.assigned",
        after=agent.wait_event("workitem.assigned", predicate=lambda f: f["data"]["workitem"]["workitemId"] == "chat-3"),
    )

    sup.error("coach.send", "forbidden", workitemId="chat", text="still here?")
    sup.error("timeline.get", "forbidden", workitemId="chat", after=0)
    sup_token = t.token("sup-1", "supervisor")
    assert t.stack.rest("GET", "/workitems/chat/timeline", sup_token)[0] == 403
    assert t.stack.rest("GET", "/workitems/chat/export", sup_token)[0] == 403


def test_a_demoted_supervisor_cannot_monitor_with_an_old_token(t: Tenant) -> None:
    old = t.token("sup-2", "supervisor")
    t.admin("PUT", "/admin/users/sup-2", {"name": "Sup-2", "role": "agent"})
    client = t.stack.connect(old)
    t.clients.append(client)
    client.error("monitor.start", "forbidden", workitemId="chat")
    assert client.ok("agents.list") == {"agents": [], "nextCursor": None}
