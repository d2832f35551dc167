"""Inbound webhooks (docs/product.md W5) through the real entry point: each event type applied once,
answered "duplicate" and changing nothing when redelivered with its event id, and the entries each one
writes: who they name as author and that every message gets an id of its own."""

from __future__ import annotations

from typing import Any

import pytest

from chalicelib.domain.timeline import TimelineEntry
from tests.support.world import World

# Tier: from the world fixture's backend (service on memory, integration on moto; tests/conftest.py).


@pytest.fixture
def w(world: World) -> World:
    world.team()
    world.assign("wi-1")
    return world


def entries(w: World, wid: str = "wi-1") -> list[TimelineEntry]:
    return w.services.coaching.store.latest("t1", wid, 100)[0]


EVENTS: list[tuple[str, dict[str, Any]]] = [
    ("workitem.message", {"workitemId": "wi-1", "from": "customer", "text": "where is my order?"}),
    ("workitem.message", {"workitemId": "wi-1", "from": "agent", "text": "on its way"}),
    ("workitem.transferred", {"workitemId": "wi-1", "toAgentId": "agent-2"}),
    ("workitem.ended", {"workitemId": "wi-1", "endedBy": "customer"}),
]


def test_each_event_is_applied_once_and_a_redelivery_is_a_duplicate_that_changes_nothing(w: World) -> None:
    sup = w.connect("sup-1", "supervisor")
    sup.ok("monitor.start", workitemId="wi-1")
    for i, (kind, data) in enumerate(EVENTS):
        assert w.webhook(kind, data, event_id=f"inbound-{i}") == (200, {"status": "applied"}), kind
        after_first = (entries(w), w.services.coaching.store.get("t1", "wi-1"))
        pushed = len(sup.frames())
        assert w.webhook(kind, data, event_id=f"inbound-{i}") == (200, {"status": "duplicate"}), kind
        assert (entries(w), w.services.coaching.store.get("t1", "wi-1")) == after_first, kind
        assert len(sup.frames()) == pushed, kind
    assert [e.kind.value for e in entries(w)] == [
        "supervisor_joined",
        "customer_message",
        "agent_message",
        "coaching_ended",
    ]


def test_an_assignment_redelivered_under_a_new_event_id_is_applied_once_and_another_agent_is_a_conflict(w: World) -> None:
    data = {"workitemId": "wi-1", "channel": "chat", "agentId": "agent-1", "customer": {"id": "cust-wi-1", "name": "Casey"}}
    assert w.webhook("workitem.assigned", data, event_id="evt-again") == (200, {"status": "applied"})
    assert w.webhook("workitem.assigned", data, event_id="evt-again") == (200, {"status": "duplicate"})
    status, body = w.webhook("workitem.assigned", {**data, "agentId": "agent-2"}, event_id="evt-other")
    assert status == 409 and body["error"]["code"] == "conflict", body
    status, body = w.webhook("workitem.assigned", {**data, "channel": "sms"}, event_id="evt-other-channel")
    assert status == 409 and body["error"]["code"] == "conflict", body
    sup = w.connect("sup-1", "supervisor")
    counts = {a["userId"]: a["workitemCount"] for a in sup.ok("agents.list")["agents"]}
    assert counts == {"agent-1": 1, "agent-2": 0}
    stored = w.services.coaching.store.get("t1", "wi-1")
    assert stored is not None and stored.agent_id == "agent-1" and stored.version == 0


def test_reported_messages_name_their_author_and_each_gets_an_id_of_its_own(w: World) -> None:
    for sender, text in [("customer", "one"), ("customer", "two"), ("agent", "three")]:
        assert w.webhook("workitem.message", {"workitemId": "wi-1", "from": sender, "text": text})[0] == 200
    got = entries(w)
    assert [(e.author_id, e.author_role.value, e.text, e.customer_seq) for e in got] == [
        ("cust-wi-1", "customer", "one", 1),
        ("cust-wi-1", "customer", "two", 2),
        ("agent-1", "agent", "three", 3),
    ]
    ids = [e.message_id for e in got]
    assert all(i and i.startswith("msg_") for i in ids) and len(set(ids)) == 3


@pytest.mark.parametrize(
    ("ended_by", "author", "role"),
    [("agent", "agent-1", "agent"), ("system", "system", "admin")],
)
def test_an_end_that_stops_coaching_names_who_ended_it(w: World, ended_by: str, author: str, role: str) -> None:
    sup = w.connect("sup-1", "supervisor")
    sup.ok("monitor.start", workitemId="wi-1")
    assert w.webhook("workitem.ended", {"workitemId": "wi-1", "endedBy": ended_by})[0] == 200
    ended = entries(w)[-1]
    assert (ended.kind.value, ended.author_id, ended.author_role.value, ended.extra.get("reason")) == (
        "coaching_ended",
        author,
        role,
        "ended",
    )
    stored = w.services.coaching.store.get("t1", "wi-1")
    assert stored is not None and stored.status.value == "ended" and stored.ended_by is not None
    assert stored.ended_by.value == ended_by
    assert [e["data"]["reason"] for e in sup.events("coaching.ended")] == ["ended"]


def test_a_customer_hanging_up_a_call_ends_coaching_in_the_customers_name(w: World) -> None:
    w.assign("wi-v", channel="voice")
    sup = w.connect("sup-1", "supervisor")
    sup.ok("monitor.start", workitemId="wi-v")
    assert w.webhook("workitem.ended", {"workitemId": "wi-v", "endedBy": "customer"})[0] == 200
    ended = entries(w, "wi-v")[-1]
    assert (ended.author_id, ended.author_role.value, ended.extra.get("reason")) == ("cust-wi-v", "customer", "customer_hangup")


def test_a_transfer_is_made_by_the_system_and_ends_coaching_with_its_reason(w: World) -> None:
    sup = w.connect("sup-1", "supervisor")
    sup.ok("monitor.start", workitemId="wi-1")
    assert w.webhook("workitem.transferred", {"workitemId": "wi-1", "toAgentId": "agent-2"})[0] == 200
    ended = entries(w)[-1]
    assert (ended.kind.value, ended.author_id, ended.author_role.value, ended.extra.get("reason")) == (
        "coaching_ended",
        "system",
        "admin",
        "transferred",
    )
    stored = w.services.coaching.store.get("t1", "wi-1")
    assert stored is not None and stored.agent_id == "agent-2"
    # Transferring to the agent who has it already changes nothing; to someone who is not an agent is refused.
    assert w.webhook("workitem.transferred", {"workitemId": "wi-1", "toAgentId": "agent-2"}) == (200, {"status": "applied"})
    status, body = w.webhook("workitem.transferred", {"workitemId": "wi-1", "toAgentId": "sup-2"})
    assert status == 409 and "not an agent" in body["error"]["message"], body
    status, body = w.webhook("workitem.transferred", {"workitemId": "wi-1", "toAgentId": "nobody"})
    assert status == 409 and "not an agent" in body["error"]["message"], body
    assert w.services.coaching.store.get("t1", "wi-1") == stored


def test_what_each_event_writes_is_dated_now_pushed_and_counted(w: World) -> None:
    from datetime import UTC, datetime, timedelta

    sup = w.connect("sup-1", "supervisor")
    sup.ok("monitor.start", workitemId="wi-1")
    before = datetime.now(UTC) - timedelta(seconds=5)

    def dated(entry: TimelineEntry) -> bool:
        at = datetime.fromisoformat(entry.at.replace("Z", "+00:00"))
        return entry.at.endswith("Z") and before <= at <= datetime.now(UTC) + timedelta(seconds=5)

    def counts() -> dict[str, int]:
        return {a["userId"]: a["workitemCount"] for a in sup.ok("agents.list")["agents"]}

    assert w.webhook("workitem.message", {"workitemId": "wi-1", "from": "customer", "text": "hello"})[0] == 200
    assert [f["data"]["entry"]["text"] for f in sup.events("message.received")] == ["hello"]  # pushed to the monitor
    assert w.webhook("workitem.transferred", {"workitemId": "wi-1", "toAgentId": "agent-2"})[0] == 200
    assert counts() == {"agent-1": 0, "agent-2": 1}
    assert w.webhook("workitem.ended", {"workitemId": "wi-1", "endedBy": "agent"})[0] == 200
    assert counts() == {"agent-1": 0, "agent-2": 0}
    written = entries(w)
    assert [e.kind.value for e in written] == ["supervisor_joined", "customer_message", "coaching_ended"]
    assert all(dated(e) for e in written), [e.at for e in written]
    ended = w.services.coaching.store.get("t1", "wi-1")
    assert ended is not None and ended.ended_at is not None and ended.ended_at.endswith("Z")
