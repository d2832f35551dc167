"""Raise hand (docs/product.md S16-S20, B4) through the real local stack, with real WebSocket clients.

The same scenarios as ``tests/integration/test_assistance.py``: templates, recipients by presence and
team, pop-up or unread count per notification setting, replies, a real claim race (two frames sent
back to back, handled concurrently by the gateway) and escalation by the stack's own scheduled sweep
(``DEVSTACK_SWEEP_SECONDS=1`` in the e2e fixture) with a one-second tenant policy.

Each test creates its own tenant:
    team-1: supervisors sup-1, sup-2, sup-3; agents agent-1, agent-2
    team-2: supervisor sup-9;                agent agent-3
    admin-2: a directory admin (the last escalation step goes to the tenant's admins)
    workitem ``chat`` of agent-1
"""

from __future__ import annotations

import itertools
import time
from collections import Counter
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from tests.e2e.conftest import Stack
    from tests.e2e.wsclient import Frame, WsClient

from tests.e2e.tenant import Tenant

pytestmark = pytest.mark.e2e

HELP = "I need help with a refund"
ROUNDS = 5  # claim races per run: the race is real, so give it several chances to go wrong
ESCALATION_WAIT = 10  # seconds: policy 1 s + sweep every 1 s, with a generous margin


@pytest.fixture
def bare(stack: Stack) -> Iterator[Tenant]:
    """A tenant with its team but no template at all."""
    tenant = Tenant(stack)
    tenant.users(
        ("sup-1", "supervisor"),
        ("sup-2", "supervisor"),
        ("sup-3", "supervisor"),
        ("sup-9", "supervisor"),
        ("agent-1", "agent"),
        ("agent-2", "agent"),
        ("agent-3", "agent"),
        ("admin-2", "admin"),
    )
    tenant.team("team-1", ("sup-1", "sup-2", "sup-3"), ("agent-1", "agent-2"))
    tenant.team("team-2", ("sup-9",), ("agent-3",))
    tenant.assign("chat")
    try:
        yield tenant
    finally:
        tenant.close()


@pytest.fixture
def t(bare: Tenant) -> Tenant:
    bare.template("tpl-help", HELP)
    bare.template("tpl-off", "Old template", enabled=False)
    return bare


def about(assist_id: str) -> Callable[[Frame], bool]:
    """A wait_event predicate: the event concerns ``assist_id``."""
    return lambda frame: bool(frame["data"]["assistId"] == assist_id)


def pushed(client: WsClient) -> list[Frame]:
    return [f for f in client.frames if f.get("type") == "event"]


_sentinels = itertools.count(1)


def sentinel(sender: WsClient, to: WsClient, to_user: str) -> Frame:
    """The positive marker before asserting absence: a direct message pushed to ``to`` after the action
    under test has replied (anything that action pushed to ``to`` was posted before it); waits for it."""
    text = f"sentinel {next(_sentinels)}"
    sender.ok("directory.send", toUserId=to_user, text=text)
    return to.wait_event("directory.message", predicate=lambda f: f["data"]["text"] == text)


# --- templates (S17) ----------------------------------------------------------------------------


def test_s17_no_template_means_assistance_is_unavailable_then_templates_are_listed(bare: Tenant) -> None:
    agent = bare.connect("agent-1", "agent")
    assert agent.ok("assist.templates") == {"available": False, "templates": []}
    bare.template("tpl-1", "Help", enabled=False)
    assert agent.ok("assist.templates") == {"available": False, "templates": []}
    agent.error("assist.request", "invalid", templateId="tpl-1", to="supervisors")
    bare.template("tpl-2", "Customer is escalating")
    bare.template("tpl-3", HELP)
    listed = agent.ok("assist.templates")
    assert listed["available"] is True
    assert sorted(listed["templates"], key=lambda x: x["templateId"]) == [
        {"templateId": "tpl-2", "text": "Customer is escalating"},
        {"templateId": "tpl-3", "text": HELP},
    ]
    bare.admin("DELETE", "/admin/templates/tpl-2")
    bare.admin("DELETE", "/admin/templates/tpl-3")
    assert agent.ok("assist.templates") == {"available": False, "templates": []}
    agent.error("assist.request", "not_found", templateId="tpl-3", to="supervisors")


def test_assistance_is_for_agents(t: Tenant) -> None:
    sup = t.connect("sup-1", "supervisor")
    agent = t.connect("agent-1", "agent")
    sup.error("assist.templates", "forbidden")
    sup.error("assist.recipients", "forbidden")
    sup.error("assist.request", "forbidden", templateId="tpl-help", to="supervisors")
    customer = t.connect("cust-chat", "customer", wid="chat")
    customer.error("assist.templates", "forbidden")
    customer.error("assist.request", "forbidden", templateId="tpl-help", to="supervisors")
    customer.error("directory.send", "forbidden", toUserId="agent-1", text="hi")
    marker = sentinel(agent, sup, "sup-1")
    assert pushed(sup) == [marker]


# --- recipients (S16, S18) ----------------------------------------------------------------------


def test_s16_s18_who_receives_a_request(t: Tenant) -> None:
    t.assign("theirs", agent_id="agent-2")  # before agent-2 connects: no workitem.assigned push to it
    agent = t.connect("agent-1", "agent")
    sup1 = t.connect("sup-1", "supervisor")  # online, available
    sup2 = t.connect("sup-2", "supervisor")
    sup2.ok("presence.set", state="not_ready")  # S16: Not Ready gets no assistance
    # sup-3 stays offline.
    sup9 = t.connect("sup-9", "supervisor")  # online but another team's
    peer = t.connect("agent-2", "agent")
    other_team_agent = t.connect("agent-3", "agent")

    recipients = agent.ok("assist.recipients")
    assert recipients["supervisors"] == [{"userId": "sup-1", "name": "Sup-1"}]
    agents = {a["userId"] for a in recipients["agents"]}
    assert "agent-2" in agents and "agent-1" not in agents and not agents & {"sup-1", "sup-2", "sup-3", "sup-9"}

    ack = agent.ok("assist.request", templateId="tpl-help", workitemId="chat", to="supervisors")
    assert ack["recipients"] == ["sup-1"] and ack["assistId"]
    popup = sup1.wait_event("assist.requested")
    assert popup["data"] == {"assistId": ack["assistId"], "agentId": "agent-1", "text": HELP, "workitemId": "chat"}

    # To one user: an available supervisor of the team, or any logged-in agent of the tenant.
    one = agent.ok("assist.request", templateId="tpl-help", to={"userId": "sup-1"})
    assert one["recipients"] == ["sup-1"]
    assert sup1.wait_event("assist.requested")["data"]["assistId"] == one["assistId"]
    assert (
        "not ready" in agent.error("assist.request", "conflict", templateId="tpl-help", to={"userId": "sup-2"})["message"].lower()
    )
    assert (
        "offline" in agent.error("assist.request", "conflict", templateId="tpl-help", to={"userId": "sup-3"})["message"].lower()
    )
    agent.error("assist.request", "forbidden", templateId="tpl-help", to={"userId": "sup-9"})
    agent.error("assist.request", "forbidden", templateId="tpl-help", to={"userId": "admin-2"})
    agent.error("assist.request", "forbidden", templateId="tpl-help", to={"userId": "agent-1"})
    to_peer = agent.ok("assist.request", templateId="tpl-help", to={"userId": "agent-3"})
    assert to_peer["recipients"] == ["agent-3"]
    assert other_team_agent.wait_event("assist.requested")["data"]["assistId"] == to_peer["assistId"]

    # A request on someone else's workitem is refused and sends nothing.
    agent.error("assist.request", "forbidden", templateId="tpl-help", workitemId="theirs", to="supervisors")
    agent.error("assist.request", "not_found", templateId="tpl-help", workitemId="nope", to="supervisors")
    agent.error("assist.request", "not_found", templateId="tpl-nope", to="supervisors")
    agent.error("assist.request", "invalid", templateId="tpl-off", to="supervisors")
    for silent, user in ((sup2, "sup-2"), (sup9, "sup-9"), (peer, "agent-2")):
        marker = sentinel(agent, silent, user)
        assert pushed(silent) == [marker], silent.frames
    assert pushed(agent) == []  # the caller gets acks, not events
    assert len(sup1.events("assist.requested")) == 2
    # sup-3 was offline when it was sent "to supervisors": not a recipient, no unread count.
    assert t.connect("sup-3", "supervisor").ok("directory.unread.get") == {"count": 0}
    # The request is on the workitem's coaching timeline (staff view).
    kinds = [(e["kind"], e.get("assistId")) for e in sup1.ok("timeline.get", workitemId="chat", after=0)["entries"]]
    assert kinds == [("assist_requested", ack["assistId"])]


def test_s18_nobody_available_is_a_valid_request(t: Tenant) -> None:
    agent = t.connect("agent-1", "agent")
    sup9 = t.connect("sup-9", "supervisor")  # another team's supervisor does not count
    ack = agent.ok("assist.request", templateId="tpl-help", to="supervisors")
    assert ack["recipients"] == [] and ack["assistId"]
    sup9.no_event("assist.requested", after=sentinel(agent, sup9, "sup-9"))


# --- pop-up or unread count (S19), replies (S20) ---------------------------------------------------


def test_s19_popup_or_unread_count_per_notification_setting(t: Tenant) -> None:
    assert t.stack.rest("GET", "/me/settings", t.token("sup-2", "supervisor"))[1] == {"agentMessageNotification": True}
    t.notify("sup-2", "supervisor", on=False)
    agent = t.connect("agent-1", "agent")
    sup1 = t.connect("sup-1", "supervisor")
    sup2 = t.connect("sup-2", "supervisor")

    ack = agent.ok("assist.request", templateId="tpl-help", to="supervisors")
    assert sorted(ack["recipients"]) == ["sup-1", "sup-2"]
    assert sup1.wait_event("assist.requested")["data"]["assistId"] == ack["assistId"]
    assert sup2.wait_event("directory.unread")["data"] == {"count": 1}
    agent.ok("assist.request", templateId="tpl-help", to={"userId": "sup-2"})
    # The second count came from the last request's own push: the first request's pushes came before it.
    assert sup2.wait_event("directory.unread")["data"] == {"count": 2}
    sentinel(agent, sup1, "sup-1")
    assert [f["event"] for f in pushed(sup1)] == ["assist.requested", "directory.message"]
    assert [f["event"] for f in pushed(sup2)] == ["directory.unread", "directory.unread"]  # nothing pops up

    # The count survives a reconnect; nothing is pushed at connect.
    sup2.close()
    again = t.connect("sup-2", "supervisor")
    assert again.ok("directory.unread.get") == {"count": 2}
    assert [f["type"] for f in again.frames] == ["ack"]
    assert again.ok("directory.read", withUserId="agent-1") == {"count": 0}
    assert again.ok("directory.unread.get") == {"count": 0}


def test_s20_reply_round_trip(t: Tenant) -> None:
    agent = t.connect("agent-1", "agent")
    sup1 = t.connect("sup-1", "supervisor")
    assist_id = agent.ok("assist.request", templateId="tpl-help", to="supervisors")["assistId"]
    sup1.wait_event("assist.requested")

    # The supervisor answers in place, from the pop-up; the agent answers back in place.
    reply = sup1.ok("directory.send", toUserId="agent-1", text="On my way", replyTo=assist_id)
    assert agent.wait_event("directory.message")["data"] == {
        "messageId": reply["messageId"],
        "fromUserId": "sup-1",
        "text": "On my way",
        "replyTo": assist_id,
    }
    answer = agent.ok("directory.send", toUserId="sup-1", text="Thanks!", replyTo=reply["messageId"])
    assert sup1.wait_event("directory.message")["data"] == {
        "messageId": answer["messageId"],
        "fromUserId": "agent-1",
        "text": "Thanks!",
        "replyTo": reply["messageId"],
    }

    # With notifications off the agent gets only the count, and reading clears it.
    t.notify("agent-1", "agent", on=False)
    sup1.ok("directory.send", toUserId="agent-1", text="ping")
    sup1.ok("directory.send", toUserId="agent-1", text="ping again")
    assert agent.wait_event("directory.unread")["data"] == {"count": 1}
    last = agent.wait_event("directory.unread")
    assert last["data"] == {"count": 2}
    agent.no_event("directory.message", after=last)  # the count is that send's whole push
    assert agent.ok("directory.unread.get") == {"count": 2}
    assert agent.ok("directory.read", withUserId="sup-1") == {"count": 0}
    agent.error("directory.send", "invalid", toUserId="sup-1", text="   ")
    agent.error("directory.send", "not_found", toUserId="nobody", text="hi")


# --- claims (B4) ------------------------------------------------------------------------------------


def test_b4_two_supervisors_claiming_at_once_exactly_one_wins(t: Tenant) -> None:
    agent = t.connect("agent-1", "agent")
    sups = {user: t.connect(user, "supervisor") for user in ("sup-1", "sup-2", "sup-3")}
    sup9 = t.connect("sup-9", "supervisor")
    for round_ in range(ROUNDS):  # a few rounds: the race is real, so give it several chances to go wrong
        assist_id = agent.ok("assist.request", templateId="tpl-help", workitemId="chat", to="supervisors")["assistId"]
        for client in sups.values():
            client.wait_event("assist.requested", predicate=about(assist_id))
        # Both claim frames go out back to back, before either reply: the gateway runs them concurrently.
        request_ids = {user: sups[user].send("assist.claim", assistId=assist_id) for user in ("sup-1", "sup-2")}
        replies = {user: sups[user].reply(rid) for user, rid in request_ids.items()}
        outcomes = Counter(r["type"] if r["type"] == "ack" else r["error"]["code"] for r in replies.values())
        assert outcomes == Counter({"ack": 1, "conflict": 1}), (round_, replies)
        winner = next(user for user, r in replies.items() if r["type"] == "ack")
        loser = next(user for user in replies if user != winner)
        assert replies[winner]["data"] == {"assistId": assist_id}
        assert "claimed" in replies[loser]["error"]["message"]

        claimed = {"assistId": assist_id, "supervisorId": winner, "supervisorName": winner.title()}
        of_this = about(assist_id)
        for client in (agent, sups[loser], sups["sup-3"]):  # every other recipient and the agent
            assert client.wait_event("assist.claimed", predicate=of_this)["data"] == claimed
        sentinel(agent, sups[winner], winner)
        assert [f for f in sups[winner].events("assist.claimed") if of_this(f)] == []
        for client in (agent, sups[loser], sups["sup-3"]):
            assert len([f for f in client.events("assist.claimed") if of_this(f)]) == 1
        sups["sup-3"].error("assist.claim", "conflict", assistId=assist_id)

    sup9.error("assist.claim", "forbidden", assistId=assist_id)  # not a recipient
    agent.error("assist.claim", "forbidden", assistId=assist_id)
    assert pushed(sup9) == []
    entries = sups["sup-1"].ok("timeline.get", workitemId="chat", after=0)["entries"]
    assert [e["kind"] for e in entries] == ["assist_requested", "assist_claimed"] * ROUNDS


# --- escalation (B4) ----------------------------------------------------------------------------------


def test_b4_an_unclaimed_request_escalates_to_the_team_then_to_admins(t: Tenant) -> None:
    policy = {"recordCoaching": False, "escalationSeconds": 1, "retentionDays": 30}
    assert t.admin("PUT", "/admin/policy", policy) == {**policy, "sentimentLanguage": "en", "transcribeCalls": False}
    agent = t.connect("agent-1", "agent")
    sup1 = t.connect("sup-1", "supervisor")
    sup2 = t.connect("sup-2", "supervisor")
    sup2.ok("presence.set", state="not_ready")
    sup9 = t.connect("sup-9", "supervisor")
    admin = t.connect("admin-2", "admin")
    peer = t.connect("agent-2", "agent")

    ack = agent.ok("assist.request", templateId="tpl-help", workitemId="chat", to="supervisors")
    assist_id = ack["assistId"]
    assert ack["recipients"] == ["sup-1"]
    # Two requests that must never escalate: one claimed at once, one addressed to a fellow agent.
    claimed_id = agent.ok("assist.request", templateId="tpl-help", to="supervisors")["assistId"]
    sup1.ok("assist.claim", assistId=claimed_id)
    to_peer_id = agent.ok("assist.request", templateId="tpl-help", to={"userId": "agent-2"})["assistId"]
    started = time.monotonic()

    mine = about(assist_id)
    base = {"assistId": assist_id, "agentId": "agent-1", "text": HELP, "workitemId": "chat"}
    # Stage "team": every supervisor of the agent's teams, whatever their presence (Not Ready too).
    assert sup1.wait_event("assist.escalated", timeout=ESCALATION_WAIT, predicate=mine)["data"] == {**base, "stage": "team"}
    assert sup2.wait_event("assist.escalated", timeout=ESCALATION_WAIT, predicate=mine)["data"] == {**base, "stage": "team"}
    # Stage "admins", after the delay again.
    assert admin.wait_event("assist.escalated", timeout=ESCALATION_WAIT, predicate=mine)["data"] == {**base, "stage": "admins"}
    assert time.monotonic() - started < ESCALATION_WAIT

    # sup-3 was offline: the escalation waits for them as an unread count (checked now: connected from
    # here on, sup-3 gets the marker below as a push, not as another unread).
    sup3 = t.connect("sup-3", "supervisor")
    assert sup3.ok("directory.unread.get") == {"count": 1}

    # Nothing else escalated, nothing went twice, another team heard nothing. The positive marker: a
    # request made now, escalated to the team and then to the admins. Sweeps run one after another and
    # push before they end, so a whole sweep that started after the one above has pushed by then.
    marker_id = agent.ok("assist.request", templateId="tpl-help", to="supervisors")["assistId"]
    marker = admin.wait_event("assist.escalated", timeout=2 * ESCALATION_WAIT, predicate=about(marker_id))
    assert marker["data"]["stage"] == "admins"
    for client in (sup1, sup2, admin, peer, agent):
        assert [f["data"]["assistId"] for f in client.events("assist.escalated")] == (
            [assist_id, marker_id] if client in (sup1, sup2, admin) else []
        ), client.frames
    assert [f["data"]["stage"] for f in admin.events("assist.escalated")] == ["admins", "admins"]
    assert pushed(sup9) == []
    assert claimed_id != to_peer_id
    # Any recipient so far may claim it, an admin included; everybody else hears of it.
    assert admin.ok("assist.claim", assistId=assist_id) == {"assistId": assist_id}
    claimed = {"assistId": assist_id, "supervisorId": "admin-2", "supervisorName": "Admin-2"}
    for client in (agent, sup1, sup2):
        assert client.wait_event("assist.claimed", predicate=mine)["data"] == claimed
    sup3.error("assist.claim", "conflict", assistId=assist_id)
    escalations = [
        e.get("escalation")
        for e in sup1.ok("timeline.get", workitemId="chat", after=0)["entries"]
        if e["kind"] == "assist_requested"
    ]
    assert escalations == [None, "team", "admins"]
