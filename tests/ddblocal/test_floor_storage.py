"""The floor's storage on DynamoDB Local (docs/product.md W18): pending requests' marks in the assistance
table, the workitem's conversation fields and a resend racing its first send, on the real engine."""

from __future__ import annotations

import threading
from typing import Any

import pytest

pytestmark = pytest.mark.ddblocal


def test_pending_requests_are_marked_per_recipient_and_cleared_by_a_claim(ddb_world: Any) -> None:
    w = ddb_world
    w.team()
    w.admin("PUT", "/admin/templates/tpl-1", {"text": "Help", "enabled": True})
    w.assign("wi-1")
    agent = w.connect("agent-1", "agent")
    sup1, sup2 = w.connect("sup-1", "supervisor"), w.connect("sup-2", "supervisor")
    assist_id = agent.ok("assist.request", templateId="tpl-1", workitemId="wi-1", to="supervisors")["assistId"]
    [pending] = sup2.ok("assist.pending")["requests"]
    assert (pending["assistId"], pending["agentName"], pending["workitemId"]) == (assist_id, "Agent-1", "wi-1")
    sup1.ok("assist.claim", assistId=assist_id)
    assert sup1.ok("assist.pending")["requests"] == [] and sup2.ok("assist.pending")["requests"] == []


def test_the_conversation_fields_read_back_and_racing_resends_write_one_message(ddb_world: Any) -> None:
    w = ddb_world
    w.team()
    w.assign("wi-1")
    sup = w.connect("sup-1", "supervisor")
    sup.ok("monitor.start", workitemId="wi-1")
    # The same send over three sockets at once (a resend from a reconnected tab racing the first).
    sockets = [w.connect("cust-wi-1", "customer", wid="wi-1") for _ in range(3)]
    replies: list[dict[str, Any]] = []

    def send(customer: Any) -> None:
        replies.append(customer.request("message.send", workitemId="wi-1", text="hello?", clientMessageId="k-1"))

    threads = [threading.Thread(target=send, args=(c,)) for c in sockets]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert len(replies) == 3 and {r["type"] for r in replies} == {"ack"}
    assert len({r["data"]["entry"]["seq"] for r in replies}) == 1
    stored = w.store.get(w.tid, "wi-1")
    assert (stored.last_author, stored.last_text, stored.monitor_names) == ("customer", "hello?", {"sup-1": "Sup-1"})
    assert stored.waiting_since == replies[0]["data"]["entry"]["at"]
    kinds = [e.kind.value for e in w.store.timeline(w.tid, "wi-1", after=0, limit=50, customer=False)[0]]
    assert kinds == ["supervisor_joined", "customer_message"]


def test_a_supervisor_watching_a_15_agent_floor_at_once_discards_no_store_connection(
    ddb_world: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """The console watches every agent at once; the local stack runs those handlers side by side on one
    shared DynamoDB client, whose connection pool must hold them all (urllib3 warns when it discards)."""
    w = ddb_world
    agents = tuple(f"agent-{n}" for n in range(1, 16))
    w.team(agents=agents)
    sockets = [w.connect("sup-1", "supervisor") for _ in agents]
    caplog.set_level("WARNING", logger="urllib3.connectionpool")
    threads = [
        threading.Thread(target=lambda s=s, a=a: s.request("agent.watch", agentId=a))
        for s, a in zip(sockets, agents, strict=True)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert [r.getMessage() for r in caplog.records if "pool is full" in r.getMessage()] == []
