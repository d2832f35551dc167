"""Product rules S1-S14 and B1-B3 (docs/product.md) through the real Lambda entry points, on moto."""

from __future__ import annotations

import json
import time

import pytest

from devstack.tokens import webhook_signature
from tests.support.world import WEBHOOK_SECRET, World

# Tier: from the world fixture's backend (service on memory, integration on moto; tests/conftest.py).

COACHING_KINDS = {
    "coach_message",
    "supervisor_joined",
    "supervisor_left",
    "coaching_ended",
    "reaction",
    "voice_mode",
    "assist_requested",
    "assist_claimed",
}


@pytest.fixture
def w(world: World) -> World:
    world.team()
    world.team(team_id="team-2", supervisors=("sup-3",), agents=("agent-3",))
    world.assign("wi-1")
    return world


def test_s1_supervisor_sees_all_workitems_of_their_agent(w: World) -> None:
    w.assign("wi-voice", channel="voice")
    w.assign("wi-mail", channel="email")
    sup = w.connect("sup-1", "supervisor")
    listed = sup.ok("workitems.list", agentId="agent-1")["workitems"]
    assert {x["workitemId"] for x in listed} == {"wi-1", "wi-voice", "wi-mail"}
    assert {x["channel"] for x in listed} == {"chat", "voice", "email"}
    agents = {a["userId"]: a for a in sup.ok("agents.list")["agents"]}
    assert agents["agent-1"]["workitemCount"] == 3
    status, body = w.rest("GET", "/agents/agent-1/workitems", w.token("sup-1", "supervisor"))
    assert status == 200 and len(body["workitems"]) == 3


def test_s2_only_supervisors_of_the_agents_team(w: World) -> None:
    other = w.connect("sup-3", "supervisor")
    other.fails("workitems.list", "forbidden", agentId="agent-1")
    other.fails("monitor.start", "forbidden", workitemId="wi-1")
    other.fails("timeline.get", "forbidden", workitemId="wi-1", after=0)
    assert {a["userId"] for a in other.ok("agents.list")["agents"]} == {"agent-3"}


def test_s2_tenants_are_isolated(w: World) -> None:
    w.team(tid="t2")
    foreign = w.connect("sup-1", "supervisor", tid="t2")
    foreign.fails("monitor.start", "not_found", workitemId="wi-1")
    foreign.fails("timeline.get", "not_found", workitemId="wi-1", after=0)
    assert foreign.ok("workitems.list", agentId="agent-1")["workitems"] == []


def test_s3_text_coaching_refused_on_voice_and_email_but_visible(w: World) -> None:
    for wid, channel in (("wi-v", "voice"), ("wi-e", "email")):
        w.assign(wid, channel=channel)
        sup = w.connect("sup-1", "supervisor")
        started = sup.ok("monitor.start", workitemId=wid)
        assert started["workitem"]["channel"] == channel
        sup.fails("coach.send", "forbidden", workitemId=wid, text="psst")
        w.connect("agent-1", "agent").fails("coach.send", "forbidden", workitemId=wid, text="help")


def test_s4_monitor_start_shows_details_and_timeline(w: World) -> None:
    customer = w.connect("cust-wi-1", "customer", wid="wi-1")
    customer.ok("message.send", workitemId="wi-1", text="my order is late")
    agent = w.connect("agent-1", "agent")
    agent.ok("message.send", workitemId="wi-1", text="let me check")
    sup = w.connect("sup-1", "supervisor")
    data = sup.ok("monitor.start", workitemId="wi-1")
    assert data["workitem"]["customer"] == {"id": "cust-wi-1", "name": "Casey Customer"}
    assert [e["kind"] for e in data["entries"]] == ["customer_message", "agent_message", "supervisor_joined"]
    assert [e["seq"] for e in data["entries"]] == [1, 2, 3]
    assert data["hasMore"] is False


def test_s5_must_monitor_before_coaching(w: World) -> None:
    sup = w.connect("sup-1", "supervisor")
    sup.fails("coach.send", "conflict", workitemId="wi-1", text="hi")
    w.connect("agent-1", "agent").fails("coach.send", "conflict", workitemId="wi-1", text="anyone?")
    w.connect("sup-2", "supervisor").ok("monitor.start", workitemId="wi-1")
    sup.fails("coach.send", "conflict", workitemId="wi-1", text="not monitoring myself")


def test_s6_s12_join_and_leave_lines_and_notifications(w: World) -> None:
    agent = w.connect("agent-1", "agent")
    sup = w.connect("sup-1", "supervisor")
    sup.ok("monitor.start", workitemId="wi-1")
    joined = agent.events("coaching.joined")
    assert len(joined) == 1 and joined[0]["data"]["supervisorId"] == "sup-1"
    assert joined[0]["data"]["entry"]["kind"] == "supervisor_joined" and joined[0]["data"]["entry"]["at"].endswith("Z")
    sup.ok("monitor.stop", workitemId="wi-1")
    left = agent.events("coaching.left")
    assert len(left) == 1 and left[0]["data"]["entry"]["kind"] == "supervisor_left"
    assert sup.events() == []  # the caller's results come in acks, not events
    sup.fails("monitor.stop", "conflict", workitemId="wi-1")


def test_s7_b3_coach_messages_both_ways_reach_every_monitor(w: World) -> None:
    agent = w.connect("agent-1", "agent")
    s1, s2 = w.connect("sup-1", "supervisor"), w.connect("sup-2", "supervisor")
    s1.ok("monitor.start", workitemId="wi-1")
    s2.ok("monitor.start", workitemId="wi-1")
    assert [e["data"]["supervisorId"] for e in s1.events("coaching.joined")] == ["sup-2"]
    entry = s1.ok("coach.send", workitemId="wi-1", text="offer the voucher")["entry"]
    assert entry["authorRole"] == "supervisor" and entry["kind"] == "coach_message"
    reply = agent.ok("coach.send", workitemId="wi-1", text="which one?")["entry"]
    assert reply["authorRole"] == "agent"
    assert [e["data"]["entry"]["text"] for e in agent.events("coach.message")] == ["offer the voucher"]
    assert [e["data"]["entry"]["text"] for e in s2.events("coach.message")] == ["offer the voucher", "which one?"]
    assert [e["data"]["entry"]["text"] for e in s1.events("coach.message")] == ["which one?"]
    view = agent.ok("timeline.get", workitemId="wi-1", after=0)["entries"]
    assert [e["kind"] for e in view] == ["supervisor_joined", "supervisor_joined", "coach_message", "coach_message"]


def test_s8_customer_never_sees_coaching(w: World) -> None:
    customer = w.connect("cust-wi-1", "customer", wid="wi-1")
    agent = w.connect("agent-1", "agent")
    sup = w.connect("sup-1", "supervisor")
    customer.ok("message.send", workitemId="wi-1", text="hello")
    sup.ok("monitor.start", workitemId="wi-1")
    tip = sup.ok("coach.send", workitemId="wi-1", text="be kind")["entry"]
    agent.ok("coach.react", workitemId="wi-1", messageId=tip["messageId"], reaction="thumbs_up")
    agent.ok("message.send", workitemId="wi-1", text="hi there")
    agent.ok("coach.forward", workitemId="wi-1", messageId=tip["messageId"])
    sup.ok("monitor.stop", workitemId="wi-1")
    frames = json.dumps(customer.frames())
    for word in ("sup-1", "coach", "supervisor", "forwardedFrom", "reaction"):
        assert word not in frames
    history = customer.ok("timeline.get", workitemId="wi-1", after=0)["entries"]
    assert [(e["seq"], e["kind"], e["text"]) for e in history] == [
        (1, "customer_message", "hello"),
        (2, "agent_message", "hi there"),
        (3, "agent_message", "be kind"),
    ]
    assert [e["data"]["entry"]["seq"] for e in customer.events("message.received")] == [2, 3]
    customer.fails("monitor.start", "forbidden", workitemId="wi-1")
    customer.fails("coach.send", "forbidden", workitemId="wi-1", text="x")


def test_s8_one_stream_batch_of_conversation_and_coaching_reaches_the_customer_as_conversation_only(w: World) -> None:
    """On AWS the stream is read in batches: one batch holds the customer's and the agent's messages
    beside the coaching, so the customer is among the recipients looked up for it."""
    customer = w.connect("cust-wi-1", "customer", wid="wi-1")
    agent = w.connect("agent-1", "agent")
    sup = w.connect("sup-1", "supervisor")
    with w.batched():
        customer.ok("message.send", workitemId="wi-1", text="hello")
        sup.ok("monitor.start", workitemId="wi-1")
        tip = sup.ok("coach.send", workitemId="wi-1", text="be kind")["entry"]
        agent.ok("message.send", workitemId="wi-1", text="hi there")
        agent.ok("coach.react", workitemId="wi-1", messageId=tip["messageId"], reaction="thumbs_up")
        agent.ok("coach.send", workitemId="wi-1", text="will do")
        agent.ok("coach.forward", workitemId="wi-1", messageId=tip["messageId"])
        sup.ok("monitor.stop", workitemId="wi-1")
        assert customer.events() == [] and agent.events() == []  # held: nothing pushed yet
    received = customer.events()
    assert [(f["event"], f["data"]["entry"]["seq"], f["data"]["entry"]["text"]) for f in received] == [
        ("message.received", 2, "hi there"),
        ("message.received", 3, "be kind"),
    ]
    frames = json.dumps(customer.frames())
    for word in ("sup-1", "coach", "supervisor", "forwardedFrom", "reaction", "will do", "thumbs_up"):
        assert word not in frames, word
    # The same batch told the staff everything (so the customer was not left out by chance).
    assert [f["event"] for f in agent.events()] == ["message.received", "coaching.joined", "coach.message", "coaching.left"]
    assert "coach.message" in [f["event"] for f in sup.events()]


def test_s9_reactions_set_change_and_clear(w: World) -> None:
    agent = w.connect("agent-1", "agent")
    sup = w.connect("sup-1", "supervisor")
    sup.ok("monitor.start", workitemId="wi-1")
    mid = sup.ok("coach.send", workitemId="wi-1", text="ask for the order id")["entry"]["messageId"]
    for reaction in ("thumbs_up", "thumbs_down", None):
        entry = agent.ok("coach.react", workitemId="wi-1", messageId=mid, reaction=reaction)["entry"]
        assert entry["kind"] == "reaction" and entry["messageId"] == mid and entry["reaction"] == reaction
    assert [e["data"]["entry"]["reaction"] for e in sup.events("coach.reaction")] == ["thumbs_up", "thumbs_down", None]
    agent.fails("coach.react", "invalid", workitemId="wi-1", messageId=mid, reaction="heart")
    own = agent.ok("coach.send", workitemId="wi-1", text="ok")["entry"]["messageId"]
    agent.fails("coach.react", "invalid", workitemId="wi-1", messageId=own, reaction="thumbs_up")
    sup.fails("coach.react", "forbidden", workitemId="wi-1", messageId=mid, reaction="thumbs_up")
    agent.fails("coach.react", "not_found", workitemId="wi-1", messageId="msg_nope", reaction="thumbs_up")


def test_s10_forward_is_verbatim_immediate_and_linked(w: World) -> None:
    customer = w.connect("cust-wi-1", "customer", wid="wi-1")
    agent = w.connect("agent-1", "agent")
    sup = w.connect("sup-1", "supervisor")
    sup.ok("monitor.start", workitemId="wi-1")
    text = "We can refund 20 € today — would that help?"
    mid = sup.ok("coach.send", workitemId="wi-1", text=text)["entry"]["messageId"]
    entry = agent.ok("coach.forward", workitemId="wi-1", messageId=mid)["entry"]
    assert entry["kind"] == "agent_message" and entry["text"] == text and entry["forwardedFrom"] == mid
    received = customer.events("message.received")
    assert received[-1]["data"]["entry"]["text"] == text and "forwardedFrom" not in received[-1]["data"]["entry"]
    assert sup.events("coach.forwarded")[-1]["data"]["entry"]["forwardedFrom"] == mid


def test_s11_no_consult_while_coaching(w: World) -> None:
    agent = w.connect("agent-1", "agent")
    peer = w.connect("agent-2", "agent")
    data = agent.ok("consult.start", workitemId="wi-1", userId="agent-2")
    assert peer.events("consult.requested")[0]["data"] == {
        "consultId": data["consultId"],
        "workitemId": "wi-1",
        "agentId": "agent-1",
    }
    w.connect("sup-1", "supervisor").ok("monitor.start", workitemId="wi-1")
    agent.fails("consult.start", "conflict", workitemId="wi-1", userId="agent-2")


def test_s12_agent_ends_coaching_for_every_supervisor(w: World) -> None:
    agent = w.connect("agent-1", "agent")
    s1, s2 = w.connect("sup-1", "supervisor"), w.connect("sup-2", "supervisor")
    s1.ok("monitor.start", workitemId="wi-1")
    s2.ok("monitor.start", workitemId="wi-1")
    agent.ok("coaching.end", workitemId="wi-1")
    for sup in (s1, s2):
        ended = sup.events("coaching.ended")
        assert len(ended) == 1 and ended[0]["data"]["reason"] == "agent"
        assert ended[0]["data"]["entry"]["kind"] == "coaching_ended"
    s1.fails("coach.send", "conflict", workitemId="wi-1", text="still there?")
    agent.ok("message.send", workitemId="wi-1", text="the agent carries on with the customer")


def test_s13_transfer_ends_coaching_and_assigns(w: World) -> None:
    new_agent = w.connect("agent-2", "agent")
    agent = w.connect("agent-1", "agent")
    sup = w.connect("sup-1", "supervisor")
    sup.ok("monitor.start", workitemId="wi-1")
    moved = agent.ok("workitem.transfer", workitemId="wi-1", toAgentId="agent-2")["workitem"]
    assert moved["agentId"] == "agent-2" and moved["coaching"] == {"active": False, "supervisors": []}
    assert sup.events("coaching.ended")[0]["data"]["reason"] == "transferred"
    assert new_agent.events("workitem.assigned")[0]["data"]["workitem"]["workitemId"] == "wi-1"
    agent.fails("message.send", "forbidden", workitemId="wi-1", text="not mine anymore")
    agents = {a["userId"]: a["workitemCount"] for a in sup.ok("agents.list")["agents"]}
    assert agents == {"agent-1": 0, "agent-2": 1}


def test_s13_transfer_to_an_offline_agent(w: World) -> None:
    agent = w.connect("agent-1", "agent")
    assert agent.ok("workitem.transfer", workitemId="wi-1", toAgentId="agent-2")["workitem"]["agentId"] == "agent-2"
    agent2 = w.connect("agent-2", "agent")
    assert [x["workitemId"] for x in agent2.ok("workitems.list", agentId="agent-2")["workitems"]] == ["wi-1"]


def test_s13_agent_ends_the_interaction(w: World) -> None:
    agent = w.connect("agent-1", "agent")
    sup = w.connect("sup-1", "supervisor")
    sup.ok("monitor.start", workitemId="wi-1")
    assert agent.ok("workitem.end", workitemId="wi-1")["workitem"]["status"] == "ended"
    assert sup.events("coaching.ended")[0]["data"]["reason"] == "ended"
    assert agent.ok("workitems.list", agentId="agent-1")["workitems"] == []


def test_s14_customer_ending_chat_keeps_coaching(w: World) -> None:
    agent = w.connect("agent-1", "agent")
    sup = w.connect("sup-1", "supervisor")
    sup.ok("monitor.start", workitemId="wi-1")
    status, _ = w.webhook("workitem.ended", {"workitemId": "wi-1", "endedBy": "customer"})
    assert status == 200
    assert sup.events("coaching.ended") == []
    sup.ok("coach.send", workitemId="wi-1", text="wrap up notes please")
    listed = agent.ok("workitems.list", agentId="agent-1")["workitems"]
    assert listed[0]["status"] == "ended" and listed[0]["coaching"]["active"] is True
    agent.ok("coaching.end", workitemId="wi-1")
    assert agent.ok("workitems.list", agentId="agent-1")["workitems"] == []


def test_s14_customer_hanging_up_voice_ends_coaching(w: World) -> None:
    w.assign("wi-v", channel="voice")
    sup = w.connect("sup-1", "supervisor")
    sup.ok("monitor.start", workitemId="wi-v")
    status, _ = w.webhook("workitem.ended", {"workitemId": "wi-v", "endedBy": "customer"})
    assert status == 200
    assert sup.events("coaching.ended")[0]["data"]["reason"] == "customer_hangup"


def test_b1_watching_dashboards_update_live(w: World) -> None:
    sup = w.connect("sup-1", "supervisor")
    watched = sup.ok("agent.watch", agentId="agent-1")["workitems"]
    assert [x["workitemId"] for x in watched] == ["wi-1"]
    w.assign("wi-2")
    assert sup.events("workitem.assigned")[0]["data"]["workitem"]["workitemId"] == "wi-2"
    agent = w.connect("agent-1", "agent")
    agent.ok("presence.set", state="not_ready")
    assert sup.events("presence.changed")[-1]["data"] == {"userId": "agent-1", "state": "not_ready"}
    w.connect("sup-2", "supervisor").ok("monitor.start", workitemId="wi-2")
    updated = sup.events("workitem.updated")[-1]["data"]["workitem"]
    assert updated["workitemId"] == "wi-2" and updated["coaching"]["supervisors"] == ["sup-2"]
    agent.ok("workitem.end", workitemId="wi-1")
    assert sup.events("workitem.ended")[-1]["data"]["workitem"]["workitemId"] == "wi-1"
    sup.ok("agent.unwatch", agentId="agent-1")
    before = len(sup.events())
    w.assign("wi-3")
    assert len(sup.events()) == before
    w.connect("sup-3", "supervisor").fails("agent.watch", "forbidden", agentId="agent-1")


def test_b2_catch_up_returns_exactly_the_missing_entries(w: World) -> None:
    agent = w.connect("agent-1", "agent")
    sup = w.connect("sup-1", "supervisor")
    sup.ok("monitor.start", workitemId="wi-1")
    for i in range(7):
        sup.ok("coach.send", workitemId="wi-1", text=f"tip {i}")
    page = agent.ok("timeline.get", workitemId="wi-1", after=3, limit=2)
    assert [e["seq"] for e in page["entries"]] == [4, 5] and page["hasMore"] is True
    rest = agent.ok("timeline.get", workitemId="wi-1", after=5)
    assert [e["seq"] for e in rest["entries"]] == [6, 7, 8] and rest["hasMore"] is False
    status, body = w.rest("GET", "/workitems/wi-1/timeline?after=6", w.token("agent-1", "agent"))
    assert status == 200 and [e["seq"] for e in body["entries"]] == [7, 8]


def test_presence_follows_connections(w: World) -> None:
    sup = w.connect("sup-1", "supervisor")
    sup.ok("agent.watch", agentId="agent-2")
    presence = lambda: {a["userId"]: a["presence"] for a in sup.ok("agents.list")["agents"]}  # noqa: E731
    assert presence()["agent-2"] == "offline"
    agent = w.connect("agent-2", "agent")
    assert presence()["agent-2"] == "available"
    agent.ok("presence.set", state="not_ready")
    assert presence()["agent-2"] == "not_ready"
    agent.disconnect()
    assert presence()["agent-2"] == "offline"
    assert [e["data"]["state"] for e in sup.events("presence.changed")] == ["available", "not_ready", "offline"]
    w.connect("agent-2", "agent")
    assert presence()["agent-2"] == "available"


def test_webhook_signature_and_idempotency(w: World) -> None:
    body = json.dumps(
        {
            "eventId": "e-1",
            "tenantId": "t1",
            "type": "workitem.assigned",
            "data": {"workitemId": "wi-9", "channel": "sms", "agentId": "agent-1", "customer": {"id": "c9", "name": "N"}},
        }
    ).encode()
    from chalice.test import Client

    from app import app

    def post(signature: str | None) -> int:
        headers = {"Content-Type": "application/json"}
        if signature:
            headers["X-Coaching-Signature"] = signature
        with Client(app) as client:
            return client.http.post("/webhooks/events", body=body, headers=headers).status_code

    now = int(time.time())
    assert post(None) == 401
    assert post(webhook_signature("wrong-secret-wrong-secret", body, now)) == 401
    assert post(webhook_signature(WEBHOOK_SECRET, body, now - 301)) == 401
    assert post(webhook_signature(WEBHOOK_SECRET, body, now + 3600)) == 401  # dated in the future: refused too
    assert w.services.coaching.store.get("t1", "wi-9") is None
    assert post(webhook_signature(WEBHOOK_SECRET, body, now)) == 200
    assert post(webhook_signature(WEBHOOK_SECRET, body, now)) == 200
    sup = w.connect("sup-1", "supervisor")
    assert {a["userId"]: a["workitemCount"] for a in sup.ok("agents.list")["agents"]}["agent-1"] == 2


def test_webhook_tenant_secret_message_order_and_unknown(w: World) -> None:
    assert w.webhook("workitem.message", {"workitemId": "wi-new", "from": "customer", "text": "hi"})[0] == 409
    assert w.webhook("workitem.transferred", {"workitemId": "wi-new", "toAgentId": "agent-2"})[0] == 404
    assert w.webhook("workitem.ended", {"workitemId": "wi-new", "endedBy": "system"})[0] == 404
    status, body = w.webhook("workitem.message", {"workitemId": "wi-1", "from": "nobody", "text": "hi"})
    assert status == 400 and body["error"]["code"] == "invalid"
    w.admin("PUT", "/admin/webhook-secret", {"secret": "tenant-own-secret-123456"})
    assert w.webhook("workitem.message", {"workitemId": "wi-1", "from": "customer", "text": "hi"})[0] == 401
    status, _ = w.webhook(
        "workitem.message", {"workitemId": "wi-1", "from": "customer", "text": "hi"}, secret="tenant-own-secret-123456"
    )
    assert status == 200
    entries = w.connect("agent-1", "agent").ok("timeline.get", workitemId="wi-1", after=0)["entries"]
    assert [(e["kind"], e["text"]) for e in entries] == [("customer_message", "hi")]


def test_sms_agent_messages_go_out_through_the_outbound_channel(w: World) -> None:
    w.admin("PUT", "/admin/sms-settings", {"originationIdentity": "+15550000001"})
    w.assign("wi-sms", channel="sms")
    agent = w.connect("agent-1", "agent")
    agent.ok("message.send", workitemId="wi-sms", text="Your refund is on its way")
    assert w.deliver() >= 1
    sent = w.sms.snapshot()
    assert [(s["to"], s["from"], s["text"], s["workitemId"]) for s in sent] == [
        ("cust-wi-sms", "+15550000001", "Your refund is on its way", "wi-sms")
    ]
    status = agent.events("message.delivery")
    assert [(e["data"]["seq"], e["data"]["delivery"]) for e in status] == [(1, "sent")]
    entries = agent.ok("timeline.get", workitemId="wi-sms", after=0)["entries"]
    assert entries[-1]["delivery"] == "sent"


def test_a_forwarded_coach_message_on_sms_goes_out_to_the_customer(w: World) -> None:
    w.assign("wi-sms", channel="sms")
    agent = w.connect("agent-1", "agent")
    sup = w.connect("sup-1", "supervisor")
    sup.ok("monitor.start", workitemId="wi-sms")
    w.admin("PUT", "/admin/sms-settings", {"originationIdentity": "+15550000001"})
    tip = sup.ok("coach.send", workitemId="wi-sms", text="We can waive the fee")["entry"]
    w.deliver()
    assert w.sms.snapshot() == []  # a coach message never reaches the customer

    forwarded = agent.ok("coach.forward", workitemId="wi-sms", messageId=tip["messageId"])["entry"]

    w.deliver()
    sent = w.sms.snapshot()
    # Only the text goes out: no coaching trace.
    assert [(s["workitemId"], s["text"]) for s in sent] == [("wi-sms", "We can waive the fee")]
    assert set(sent[0]) == {"channel", "messageId", "from", "to", "text", "tenantId", "workitemId"}
    assert [e["data"]["entry"]["seq"] for e in sup.events("coach.forwarded")] == [forwarded["seq"]]


def test_admin_rest(w: World) -> None:
    admin = w.token("admin-1", "admin")
    assert w.rest("GET", "/health")[0] == 200
    assert w.rest("PUT", "/admin/users/u1", admin, {"name": "U", "role": "wizard"})[0] == 400
    assert w.rest("PUT", "/admin/users/u1", w.token("sup-1", "supervisor"), {"name": "U", "role": "agent"})[0] == 403
    assert w.rest("PUT", "/admin/users/u1", None, {"name": "U", "role": "agent"})[0] == 401
    status, body = w.rest("PUT", "/admin/teams/t-x", admin, {"name": "X", "supervisors": ["ghost"], "agents": []})
    assert status == 409 and "ghost" in body["error"]["message"]
    assert w.rest("PUT", "/admin/policy", admin, {"recordCoaching": True, "escalationSeconds": 30, "retentionDays": 7})[0] == 200
    policy = {
        "recordCoaching": True,
        "escalationSeconds": 30,
        "retentionDays": 7,
        "sentimentLanguage": "en",
        "transcribeCalls": False,
    }
    assert w.rest("GET", "/admin/policy", admin)[1] == policy
    assert w.rest("GET", "/me/settings", w.token("agent-1", "agent"))[1] == {"agentMessageNotification": True}
    assert w.rest("PUT", "/me/settings", w.token("agent-1", "agent"), {"agentMessageNotification": False})[1] == {
        "agentMessageNotification": False
    }
    assert w.rest("PUT", "/admin/templates/tp1", admin, {"text": "Help", "enabled": True})[0] == 200
    assert w.rest("GET", "/admin/templates", admin)[1]["templates"] == [{"templateId": "tp1", "text": "Help", "enabled": True}]
    assert w.rest("DELETE", "/admin/templates/tp1", admin)[0] == 204
    assert w.rest("DELETE", "/admin/templates/tp1", admin)[0] == 404


def test_team_membership_changes_move_supervision(w: World) -> None:
    w.admin("PUT", "/admin/teams/team-1", {"name": "Front", "supervisors": ["sup-2"], "agents": ["agent-1"]})
    w.connect("sup-1", "supervisor").fails("monitor.start", "forbidden", workitemId="wi-1")
    assert {a["userId"] for a in w.connect("sup-2", "supervisor").ok("agents.list")["agents"]} == {"agent-1"}


def test_export_gives_the_full_audit_trail(w: World) -> None:
    sup = w.connect("sup-1", "supervisor")
    sup.ok("monitor.start", workitemId="wi-1")
    sup.ok("coach.send", workitemId="wi-1", text="tip")
    status, body = w.rest("GET", "/workitems/wi-1/export", w.token("admin-1", "admin"))
    assert status == 200 and [e["kind"] for e in body["entries"]] == ["supervisor_joined", "coach_message"]
    assert w.rest("GET", "/workitems/wi-1/export", w.token("agent-1", "agent"))[0] == 403


def test_permission_is_checked_before_state(w: World) -> None:
    w.assign("wi-v", channel="voice")
    outsider = w.connect("sup-3", "supervisor")
    outsider.fails("coach.send", "forbidden", workitemId="wi-1", text="not my team")
    outsider.fails("monitor.stop", "forbidden", workitemId="wi-1")
    w.connect("sup-1", "supervisor").ok("monitor.start", workitemId="wi-1")
    outsider.fails("coach.send", "forbidden", workitemId="wi-1", text="still not my team")
    w.connect("agent-1", "agent").ok("workitem.end", workitemId="wi-1")
    w.connect("agent-2", "agent").fails("workitem.end", "forbidden", workitemId="wi-1")
    w.connect("sup-2", "supervisor").fails("monitor.stop", "conflict", workitemId="wi-1")
