"""Running a floor (docs/product.md W18): what a supervisor's floor view needs from the server, end to end
through the real entry points: the workitem's activity, wait and monitors kept live for watchers,
names on the events that name a supervisor, voice modes pushed, pending requests listed, forwards once
and sends that may be repeated.
"""

from __future__ import annotations

from typing import Any

import pytest

from chalicelib.adapters.assist_repository import DynamoAssistStore
from tests.support.world import Client, World

# Tier: from the world fixture's backend (service on memory, integration on moto; tests/conftest.py).


@pytest.fixture
def w(world: World) -> World:
    if world.services.assistance._store is None:
        world.services.assistance.store = DynamoAssistStore(world.settings)
    world.team()
    return world


def customer(w: World, wid: str) -> Client:
    return w.connect(f"cust-{wid}", "customer", wid=wid)


def updates(client: Client) -> list[dict[str, Any]]:
    return [e["data"]["workitem"] for e in client.new_events("workitem.updated")]


# --- W18.1 the workitem's activity, wait and monitors ---------------------------------------------------


def test_watchers_see_the_wait_start_and_end_and_who_monitors(w: World) -> None:
    w.assign("wi-1")
    agent = w.connect("agent-1", "agent")
    sup1 = w.connect("sup-1", "supervisor")
    sup2 = w.connect("sup-2", "supervisor")
    [listed] = sup2.ok("agent.watch", agentId="agent-1")["workitems"]
    assert listed["waitingSince"] is None and listed["monitoredBy"] == [] and listed["lastMessage"] is None
    assert listed["lastActivityAt"] == listed["createdAt"]

    cust = customer(w, "wi-1")
    first = cust.ok("message.send", workitemId="wi-1", text="URGENT: someone changed my password")["entry"]
    cust.ok("message.send", workitemId="wi-1", text="hello?")
    seen = updates(sup2)
    assert seen[-1]["waitingSince"] == first["at"]  # the oldest unanswered message starts the wait
    assert seen[-1]["lastMessage"] == {"author": "customer", "text": "hello?"}

    sup1.ok("monitor.start", workitemId="wi-1")
    [joined] = updates(sup2)
    assert joined["monitoredBy"] == [{"userId": "sup-1", "name": "Sup-1"}]
    assert joined["waitingSince"] == first["at"]

    answer = agent.ok("message.send", workitemId="wi-1", text="x" * 500)["entry"]
    [answered] = updates(sup2)
    assert answered["waitingSince"] is None and answered["lastActivityAt"] == answer["at"]
    assert answered["lastMessage"] == {"author": "agent", "text": "x" * 160}  # cut for list views
    # A coach message is activity but neither answers nor starts a wait.
    w.clock.advance(1)
    sup1.ok("coach.send", workitemId="wi-1", text="well done")
    [coached] = updates(sup2)
    assert coached["waitingSince"] is None and coached["lastMessage"]["author"] == "agent"

    listed = sup2.ok("workitems.list", agentId="agent-1")["workitems"][0]
    assert (
        listed["monitoredBy"] == [{"userId": "sup-1", "name": "Sup-1"}] and listed["lastActivityAt"] == coached["lastActivityAt"]
    )
    sup1.ok("monitor.stop", workitemId="wi-1")
    assert updates(sup2)[-1]["monitoredBy"] == []


def test_a_batch_of_changes_tells_watchers_once(w: World) -> None:
    w.assign("wi-1")
    sup = w.connect("sup-2", "supervisor")
    sup.ok("agent.watch", agentId="agent-1")
    cust = customer(w, "wi-1")
    with w.batched():  # three commits read from the stream in one batch
        for text in ("one", "two", "three"):
            cust.request("message.send", workitemId="wi-1", text=text)
    seen = updates(sup)
    assert len(seen) == 1 and seen[0]["lastMessage"]["text"] == "three"


# --- W18.4 names -------------------------------------------------------------------------------------------


def test_joined_and_left_name_the_supervisor(w: World) -> None:
    w.assign("wi-1")
    agent = w.connect("agent-1", "agent")
    sup1 = w.connect("sup-1", "supervisor")
    sup1.ok("monitor.start", workitemId="wi-1")
    sup1.ok("monitor.stop", workitemId="wi-1")
    joined, left = agent.events("coaching.joined")[0]["data"], agent.events("coaching.left")[0]["data"]
    assert (joined["supervisorId"], joined["supervisorName"]) == ("sup-1", "Sup-1")
    assert (left["supervisorId"], left["supervisorName"]) == ("sup-1", "Sup-1")


# --- W18.3 voice modes ----------------------------------------------------------------------------------------


def test_voice_modes_are_pushed_to_the_agent_the_other_monitors_and_the_actors_other_tabs(w: World) -> None:
    w.assign("wi-v", channel="voice")
    agent = w.connect("agent-1", "agent")
    sup1 = w.connect("sup-1", "supervisor")
    sup1_other_tab = w.connect("sup-1", "supervisor")
    sup2 = w.connect("sup-2", "supervisor")
    agent.ok("voice.join", workitemId="wi-v")
    sup1.ok("monitor.start", workitemId="wi-v")
    sup2.ok("monitor.start", workitemId="wi-v")
    for action in ("voice.monitor", "voice.whisper", "voice.barge", "voice.listen"):
        sup1.ok(action, workitemId="wi-v")

    def modes(client: Client) -> list[tuple[str, str, str]]:
        return [(e["data"]["supervisorId"], e["data"]["supervisorName"], e["data"]["mode"]) for e in client.events("voice.mode")]

    expected = [("sup-1", "Sup-1", m) for m in ("listen", "whisper", "barge", "listen")]
    assert modes(agent) == expected
    assert modes(sup2) == expected
    assert modes(sup1_other_tab) == expected
    assert modes(sup1) == []  # the acting connection has the ack
    assert agent.events("voice.mode")[1]["data"]["entry"]["kind"] == "voice_mode"


# --- W18.2 pending requests --------------------------------------------------------------------------------


def test_pending_requests_are_listed_until_claimed_by_anyone(w: World) -> None:
    w.admin("PUT", "/admin/templates/tpl-help", {"text": "I need help with a refund", "enabled": True})
    w.assign("wi-1")
    agent = w.connect("agent-1", "agent")
    sup1 = w.connect("sup-1", "supervisor")
    sup2 = w.connect("sup-2", "supervisor")
    first = agent.ok("assist.request", templateId="tpl-help", workitemId="wi-1", to="supervisors")["assistId"]
    w.clock.advance(1)  # oldest first: the second is a second later
    second = agent.ok("assist.request", templateId="tpl-help", to="supervisors")["assistId"]

    # A console that reloads: a new connection lists both, oldest first.
    reloaded = w.connect("sup-2", "supervisor")
    pending = reloaded.ok("assist.pending")["requests"]
    assert [p["assistId"] for p in pending] == [first, second]
    assert pending[0]["agentName"] == "Agent-1" and pending[0]["workitemId"] == "wi-1" and not pending[0]["escalated"]
    assert pending[0]["text"] == "I need help with a refund" and pending[0]["requestedAt"]
    assert "workitemId" not in pending[1]

    sup1.ok("assist.claim", assistId=first)
    assert [p["assistId"] for p in sup2.ok("assist.pending")["requests"]] == [second]
    assert [p["assistId"] for p in sup1.ok("assist.pending")["requests"]] == [second]
    assert w.connect("sup-9", "supervisor").ok("assist.pending")["requests"] == []  # delivered to nobody else
    agent.fails("assist.pending", "forbidden")


# --- W18.5 forward once, W18.6 repeatable sends -------------------------------------------------------------


def test_a_coach_message_is_forwarded_once(w: World) -> None:
    w.assign("wi-1")
    agent = w.connect("agent-1", "agent")
    sup = w.connect("sup-1", "supervisor")
    cust = customer(w, "wi-1")
    sup.ok("monitor.start", workitemId="wi-1")
    tip = sup.ok("coach.send", workitemId="wi-1", text="Offer the refund")["entry"]
    agent.ok("coach.forward", workitemId="wi-1", messageId=tip["messageId"])
    agent.fails("coach.forward", "conflict", workitemId="wi-1", messageId=tip["messageId"])
    assert [e["data"]["entry"]["text"] for e in cust.events("message.received")] == ["Offer the refund"]


@pytest.mark.parametrize("action", ["coach.send", "message.send"])
def test_a_resend_with_the_same_client_message_id_writes_nothing_new(w: World, action: str) -> None:
    w.assign("wi-1")
    agent = w.connect("agent-1", "agent")
    sup = w.connect("sup-1", "supervisor")
    sup.ok("monitor.start", workitemId="wi-1")
    first = agent.ok(action, workitemId="wi-1", text="On it", clientMessageId="c-1")["entry"]
    again = agent.ok(action, workitemId="wi-1", text="On it", clientMessageId="c-1")["entry"]
    assert again == first
    other = agent.ok(action, workitemId="wi-1", text="On it", clientMessageId="c-2")["entry"]
    assert other["seq"] == first["seq"] + 1
    # The id is the sender's own: the supervisor's c-1 is another message.
    if action == "coach.send":
        assert sup.ok(action, workitemId="wi-1", text="On it", clientMessageId="c-1")["entry"]["seq"] == other["seq"] + 1
    kinds = [e["data"]["entry"]["text"] for e in sup.events("message.received" if action == "message.send" else "coach.message")]
    assert kinds == ["On it", "On it"]  # pushed once per message, not per send
    agent.fails(action, "invalid", workitemId="wi-1", text="x", clientMessageId="c" * 65)
    agent.fails(action, "invalid", workitemId="wi-1", text="x", clientMessageId="")


def test_a_customer_resend_answers_the_customer_view(w: World) -> None:
    w.assign("wi-1")
    sup = w.connect("sup-1", "supervisor")
    sup.ok("monitor.start", workitemId="wi-1")
    cust = customer(w, "wi-1")
    first = cust.ok("message.send", workitemId="wi-1", text="hi", clientMessageId="k")["entry"]
    assert cust.ok("message.send", workitemId="wi-1", text="hi", clientMessageId="k")["entry"] == first
    assert first["seq"] == 1 and "forwardedFrom" not in first
