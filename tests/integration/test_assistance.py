"""Raise hand end to end on moto, through the real Lambda entry points (docs/product.md S16-S20, B4).

Each test drives WebSocket frames through ``chalicelib.entrypoints.ws`` with the ``world`` fixture and
checks what every party receives: acks, pop-ups, unread counts, claims and escalation steps.
"""

from __future__ import annotations

import itertools
import threading
from collections import Counter
from typing import Any

import pytest

from chalicelib.adapters import dynamo
from chalicelib.adapters.assist_repository import DynamoAssistStore
from chalicelib.adapters.dynamo import DirectoryEdge, RecipientItem, TeamItem
from chalicelib.entrypoints.wire import WIRE
from tests.support.world import World

# Tier: from the world fixture's backend (service on memory, integration on moto; tests/conftest.py).

ESCALATION_SECONDS = 30
LARGE_TENANT = 200
# moto's page for the tenant-size test, in bytes (DynamoDB's is 1 MB): a few of the table's items a
# page, so 200 users span more pages than 5,000 would of 1 MB, in seconds instead of minutes.
SMALL_PAGE = 8_000


@pytest.fixture
def w(world: World, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The world with two teams, templates and a short escalation delay.

    team-1: supervisors sup-1, sup-2, sup-3; agents agent-1, agent-2
    team-2: supervisor sup-9; agents agent-3, agent-4
    admin-2 is a directory admin (the last escalation step goes to the tenant's admins).
    """
    if world.services.assistance._store is None:  # until bootstrap wires it (see test_bootstrap_wires_the_store)
        world.services.assistance.store = DynamoAssistStore(world.settings)
    # Time moves only when a test advances it, so delays are exact however slow the machine is.
    frozen = world.clock.now()
    monkeypatch.setattr(world.clock, "now", lambda: frozen + world.clock.offset)
    world.team(supervisors=("sup-1", "sup-2", "sup-3"), agents=("agent-1", "agent-2"))
    world.team(team_id="team-2", supervisors=("sup-9",), agents=("agent-3", "agent-4"))
    world.admin("PUT", "/admin/users/admin-2", {"name": "Ada Admin", "role": "admin"})
    world.admin("PUT", "/admin/templates/tpl-help", {"text": "I need help with a refund", "enabled": True})
    world.admin("PUT", "/admin/templates/tpl-off", {"text": "Old template", "enabled": False})
    world.admin("PUT", "/admin/policy", {"recordCoaching": False, "escalationSeconds": ESCALATION_SECONDS, "retentionDays": 30})
    world.assign("wi-1")
    return world


def notify(world: World, user: str, role: str, on: bool) -> None:
    status, body = world.rest("PUT", "/me/settings", world.token(user, role), {"agentMessageNotification": on})
    assert status == 200, body


def names(events: list[dict[str, Any]]) -> list[str]:
    return [e["event"] for e in events]


def timeline(world: World, workitem_id: str = "wi-1") -> list[dict[str, Any]]:
    entries: list[dict[str, Any]] = WIRE.plain(world.services.coaching.export(_principal("admin-1", "admin"), workitem_id))[
        "entries"
    ]
    return entries


def _principal(user: str, role: str, tid: str = "t1") -> Any:
    from chalicelib.domain.identity import Principal, Role

    return Principal(tid, user, Role(role))


# --- wiring --------------------------------------------------------------------------------------


@pytest.mark.moto  # the production wiring
def test_bootstrap_wires_the_store(world: World) -> None:
    """bootstrap.build must hand AssistanceService a DynamoAssistStore (services cannot import adapters)."""
    assert isinstance(world.services.assistance._store, DynamoAssistStore)


# --- templates (S17) --------------------------------------------------------------------------


def test_no_enabled_template_means_assistance_is_hidden(world: World) -> None:
    agent = world.connect("agent-1", "agent")
    assert agent.ok("assist.templates") == {"available": False, "templates": []}
    world.admin("PUT", "/admin/templates/tpl-1", {"text": "Help", "enabled": False})
    assert agent.ok("assist.templates") == {"available": False, "templates": []}
    world.admin("PUT", "/admin/templates/tpl-2", {"text": "Customer is escalating", "enabled": True})
    assert agent.ok("assist.templates") == {
        "available": True,
        "templates": [{"templateId": "tpl-2", "text": "Customer is escalating"}],
    }
    world.admin("DELETE", "/admin/templates/tpl-2")
    assert agent.ok("assist.templates")["available"] is False


def test_templates_and_requests_are_for_agents(w: Any) -> None:
    sup = w.connect("sup-1", "supervisor")
    sup.fails("assist.templates", "forbidden")
    sup.fails("assist.recipients", "forbidden")
    sup.fails("assist.request", "forbidden", templateId="tpl-help", to="supervisors")
    customer = w.connect("cust-wi-1", "customer", wid="wi-1")
    customer.fails("assist.request", "forbidden", templateId="tpl-help", to="supervisors")
    customer.fails("directory.send", "forbidden", toUserId="agent-1", text="hi")


def test_unknown_or_disabled_template_is_refused(w: Any) -> None:
    agent = w.connect("agent-1", "agent")
    sup = w.connect("sup-1", "supervisor")
    agent.fails("assist.request", "not_found", templateId="tpl-nope", to="supervisors")
    agent.fails("assist.request", "invalid", templateId="tpl-off", to="supervisors")
    assert sup.events() == []


# --- recipients (S16, S18) --------------------------------------------------------------------


def test_recipients_are_available_supervisors_and_logged_in_colleagues(w: Any) -> None:
    agent = w.connect("agent-1", "agent")
    w.connect("sup-1", "supervisor")
    w.connect("sup-2", "supervisor").ok("presence.set", state="not_ready")
    # sup-3 is offline; sup-9 is online but supervises another team.
    w.connect("sup-9", "supervisor")
    w.connect("agent-2", "agent")
    w.connect("agent-3", "agent")
    data = agent.ok("assist.recipients")
    assert data["supervisors"] == [{"userId": "sup-1", "name": "Sup-1"}]
    # Colleagues under the same supervisors (docs/assistance.md); agent-3 is reachable by id.
    assert data["agents"] == [{"userId": "agent-2", "name": "Agent-2"}]


def test_request_to_supervisors_reaches_only_online_available_supervisors_of_the_team(w: Any) -> None:
    agent = w.connect("agent-1", "agent")
    sup1 = w.connect("sup-1", "supervisor")
    sup2 = w.connect("sup-2", "supervisor")
    sup2.ok("presence.set", state="not_ready")
    sup9 = w.connect("sup-9", "supervisor")
    peer = w.connect("agent-2", "agent")

    ack = agent.ok("assist.request", templateId="tpl-help", workitemId="wi-1", to="supervisors")

    assert ack["recipients"] == ["sup-1"]
    popups = sup1.events("assist.requested")
    assert [e["data"] for e in popups] == [
        {"assistId": ack["assistId"], "agentId": "agent-1", "text": "I need help with a refund", "workitemId": "wi-1"}
    ]
    assert sup2.events() == [] and sup9.events() == [] and peer.events() == []
    assert agent.events() == []  # the caller gets the ack, not an event
    # sup-3 is offline: not a recipient, no unread count either.
    assert w.connect("sup-3", "supervisor").ok("directory.unread.get") == {"count": 0}
    entry = timeline(w)[-1]
    assert entry["kind"] == "assist_requested" and entry["authorId"] == "agent-1"
    assert entry["assistId"] == ack["assistId"] and entry["recipients"] == ["sup-1"]
    assert entry["text"] == "I need help with a refund"


def test_request_without_workitem_and_with_nobody_available_is_valid(w: Any) -> None:
    agent = w.connect("agent-1", "agent")
    w.connect("sup-9", "supervisor")  # another team's supervisor does not count
    ack = agent.ok("assist.request", templateId="tpl-help", to="supervisors")
    assert ack["recipients"] == [] and ack["assistId"].startswith("as_")


def test_request_to_one_user(w: Any) -> None:
    agent = w.connect("agent-1", "agent")
    sup1 = w.connect("sup-1", "supervisor")
    w.connect("sup-2", "supervisor").ok("presence.set", state="not_ready")
    w.connect("sup-9", "supervisor")
    other_team_agent = w.connect("agent-3", "agent")
    w.connect("intruder", "agent", tid="t2")

    ack = agent.ok("assist.request", templateId="tpl-help", to={"userId": "sup-1"})
    assert ack["recipients"] == ["sup-1"] and len(sup1.events("assist.requested")) == 1

    assert "not ready" in agent.fails("assist.request", "conflict", templateId="tpl-help", to={"userId": "sup-2"})["message"]
    assert "offline" in agent.fails("assist.request", "conflict", templateId="tpl-help", to={"userId": "sup-3"})["message"]
    agent.fails("assist.request", "forbidden", templateId="tpl-help", to={"userId": "sup-9"})  # other team
    agent.fails("assist.request", "forbidden", templateId="tpl-help", to={"userId": "admin-2"})
    agent.fails("assist.request", "forbidden", templateId="tpl-help", to={"userId": "nobody"})
    agent.fails("assist.request", "forbidden", templateId="tpl-help", to={"userId": "intruder"})  # other tenant
    agent.fails("assist.request", "forbidden", templateId="tpl-help", to={"userId": "agent-1"})  # self
    agent.fails("assist.request", "conflict", templateId="tpl-help", to={"userId": "agent-4"})  # not logged in

    # Any logged-in agent of the tenant, whatever their team.
    ack = agent.ok("assist.request", templateId="tpl-help", to={"userId": "agent-3"})
    assert ack["recipients"] == ["agent-3"]
    assert [e["data"]["assistId"] for e in other_team_agent.events("assist.requested")] == [ack["assistId"]]
    agent.fails("assist.request", "invalid", templateId="tpl-help", to={"userId": "sup-1", "x": 1})


def test_request_on_someone_elses_workitem_is_refused_and_sends_nothing(w: Any) -> None:
    w.assign("wi-2", agent_id="agent-2")
    agent = w.connect("agent-1", "agent")
    sup1 = w.connect("sup-1", "supervisor")
    agent.fails("assist.request", "forbidden", templateId="tpl-help", workitemId="wi-2", to="supervisors")
    agent.fails("assist.request", "not_found", templateId="tpl-help", workitemId="wi-nope", to="supervisors")
    assert sup1.events() == []
    assert [e["kind"] for e in timeline(w, "wi-2")] == []


# --- pop-up or unread count (S19) ------------------------------------------------------------


def test_popup_or_unread_count_per_notification_setting(w: Any) -> None:
    notify(w, "sup-2", "supervisor", on=False)
    agent = w.connect("agent-1", "agent")
    sup1 = w.connect("sup-1", "supervisor")
    sup2 = w.connect("sup-2", "supervisor")

    ack = agent.ok("assist.request", templateId="tpl-help", to="supervisors")

    assert sorted(ack["recipients"]) == ["sup-1", "sup-2"]
    assert names(sup1.events()) == ["assist.requested"]
    assert [(e["event"], e["data"]) for e in sup2.events()] == [("directory.unread", {"count": 1})]
    agent.ok("assist.request", templateId="tpl-help", to={"userId": "sup-2"})
    assert [e["data"] for e in sup2.events("directory.unread")][-1] == {"count": 2}
    assert sup2.events("assist.requested") == []

    # The count survives a reconnect; nothing is pushed at connect.
    sup2.disconnect()
    again = w.connect("sup-2", "supervisor")
    assert again.frames() == []
    assert again.ok("directory.unread.get") == {"count": 2}
    assert again.ok("directory.read", withUserId="agent-1") == {"count": 0}
    assert again.ok("directory.unread.get") == {"count": 0}


def test_reply_round_trip(w: Any) -> None:
    notify(w, "agent-1", "agent", on=True)
    agent = w.connect("agent-1", "agent")
    sup1 = w.connect("sup-1", "supervisor")
    assist_id = agent.ok("assist.request", templateId="tpl-help", to="supervisors")["assistId"]

    # The supervisor answers in place, from the pop-up.
    reply = sup1.ok("directory.send", toUserId="agent-1", text="On my way", replyTo=assist_id)
    got = agent.events("directory.message")
    assert [e["data"] for e in got] == [
        {"messageId": reply["messageId"], "fromUserId": "sup-1", "text": "On my way", "replyTo": assist_id}
    ]
    # The agent answers back.
    answer = agent.ok("directory.send", toUserId="sup-1", text="Thanks!", replyTo=reply["messageId"])
    assert [e["data"] for e in sup1.events("directory.message")] == [
        {"messageId": answer["messageId"], "fromUserId": "agent-1", "text": "Thanks!", "replyTo": reply["messageId"]}
    ]

    # With notifications off the agent gets only the count, and reading clears it.
    notify(w, "agent-1", "agent", on=False)
    sup1.ok("directory.send", toUserId="agent-1", text="ping")
    sup1.ok("directory.send", toUserId="agent-1", text="ping again")
    assert [e["data"] for e in agent.new_events("directory.unread")] == [{"count": 1}, {"count": 2}]
    assert len(agent.events("directory.message")) == 1
    assert agent.ok("directory.unread.get") == {"count": 2}
    assert agent.ok("directory.read", withUserId="sup-1") == {"count": 0}

    # An offline recipient (notifications on) finds the count when they come back.
    notify(w, "agent-1", "agent", on=True)
    agent.disconnect()
    sup1.ok("directory.send", toUserId="agent-1", text="are you there?")
    assert w.connect("agent-1", "agent").ok("directory.unread.get") == {"count": 1}


def test_directory_send_refusals(w: Any) -> None:
    sup1 = w.connect("sup-1", "supervisor")
    sup1.fails("directory.send", "not_found", toUserId="nobody", text="hi")
    w.connect("stranger", "agent", tid="t2")
    sup1.fails("directory.send", "not_found", toUserId="stranger", text="hi")
    sup1.fails("directory.send", "invalid", toUserId="sup-1", text="hi")
    sup1.fails("directory.send", "invalid", toUserId="agent-1", text="   ")
    sup1.fails("directory.send", "invalid", toUserId="agent-1", text="")
    # An admin need not be a directory user, but can be answered once they have connected.
    admin = w.connect("admin-1", "admin")
    admin.ok("directory.send", toUserId="agent-1", text="hello")
    w.connect("agent-1", "agent").ok("directory.send", toUserId="admin-1", text="hello back")
    assert [e["data"]["text"] for e in admin.events("directory.message")] == ["hello back"]


# --- claims (B4) ---------------------------------------------------------------------------------


def test_first_claim_wins_and_withdraws_the_popups(w: Any) -> None:
    agent = w.connect("agent-1", "agent")
    sup1 = w.connect("sup-1", "supervisor")
    sup2 = w.connect("sup-2", "supervisor")
    sup9 = w.connect("sup-9", "supervisor")
    assist_id = agent.ok("assist.request", templateId="tpl-help", workitemId="wi-1", to="supervisors")["assistId"]

    agent.fails("assist.claim", "forbidden", assistId=assist_id)
    sup9.fails("assist.claim", "forbidden", assistId=assist_id)  # not a recipient
    sup1.fails("assist.claim", "not_found", assistId="as_unknown")

    assert sup1.ok("assist.claim", assistId=assist_id) == {"assistId": assist_id}
    claimed = {"assistId": assist_id, "supervisorId": "sup-1", "supervisorName": "Sup-1"}
    assert [e["data"] for e in agent.events("assist.claimed")] == [claimed]
    assert [e["data"] for e in sup2.events("assist.claimed")] == [claimed]
    assert sup1.events("assist.claimed") == [] and sup9.events() == []
    assert "sup-1" in sup2.fails("assist.claim", "conflict", assistId=assist_id)["message"]
    sup1.fails("assist.claim", "conflict", assistId=assist_id)

    kinds = [(e["kind"], e["authorId"], e.get("assistId")) for e in timeline(w)]
    assert kinds == [("assist_requested", "agent-1", assist_id), ("assist_claimed", "sup-1", assist_id)]

    # A request from another tenant is not found, whatever its id.
    other = w.connect("sup-1", "supervisor", tid="t2")
    other.fails("assist.claim", "not_found", assistId=assist_id)


def test_two_supervisors_claiming_at_once_exactly_one_wins(w: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from moto.dynamodb.models import DynamoDBBackend

    agent = w.connect("agent-1", "agent")
    sup1 = w.connect("sup-1", "supervisor")
    sup2 = w.connect("sup-2", "supervisor")
    assist_id = agent.ok("assist.request", templateId="tpl-help", workitemId="wi-1", to="supervisors")["assistId"]

    # DynamoDB applies a conditional write atomically per item; moto has no lock, so model that.
    lock = threading.RLock()
    for name in ("update_item", "put_item", "transact_write_items"):
        original = getattr(DynamoDBBackend, name)

        def atomic(self: Any, *args: Any, _original: Any = original, **kwargs: Any) -> Any:
            with lock:
                return _original(self, *args, **kwargs)

        monkeypatch.setattr(DynamoDBBackend, name, atomic)
    # Both claims read the request as pending before either writes: only the condition decides.
    store = w.services.assistance.store
    both_read = threading.Barrier(2)
    real_get = store.get
    reads = itertools.count()

    def get_then_wait(*args: Any, **kwargs: Any) -> Any:
        found = real_get(*args, **kwargs)
        if next(reads) < 2:  # the two claims' first reads; the loser reads once more to name the winner
            both_read.wait(timeout=10)
        return found

    monkeypatch.setattr(store, "get", get_then_wait)

    replies: dict[str, dict[str, Any]] = {}

    def claim(client: Any) -> None:
        replies[client.claims["sub"]] = client.request("assist.claim", assistId=assist_id)

    threads = [threading.Thread(target=claim, args=(c,)) for c in (sup1, sup2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)

    outcomes = Counter(r["type"] if r["type"] == "ack" else r["error"]["code"] for r in replies.values())
    assert outcomes == Counter({"ack": 1, "conflict": 1})
    winner = next(u for u, r in replies.items() if r["type"] == "ack")
    loser = next(r for r in replies.values() if r["type"] == "error")
    assert loser["error"]["message"] == f"the assistance request was already claimed by {winner}"
    named = {"assistId": assist_id, "supervisorId": winner, "supervisorName": winner.capitalize()}
    assert [e["data"] for e in agent.events("assist.claimed")] == [named]
    assert [e["kind"] for e in timeline(w)].count("assist_claimed") == 1


# --- escalation (B4) -------------------------------------------------------------------------------


def test_unclaimed_request_escalates_to_the_whole_team_then_to_admins(w: Any) -> None:
    agent = w.connect("agent-1", "agent")
    sup1 = w.connect("sup-1", "supervisor")
    sup2 = w.connect("sup-2", "supervisor")
    sup2.ok("presence.set", state="not_ready")
    sup9 = w.connect("sup-9", "supervisor")
    admin = w.connect("admin-2", "admin")
    assistance = w.services.assistance
    ack = agent.ok("assist.request", templateId="tpl-help", workitemId="wi-1", to="supervisors")
    assist_id = ack["assistId"]
    assert ack["recipients"] == ["sup-1"]
    sup2.new_events()

    w.clock.advance(ESCALATION_SECONDS - 1)
    assert assistance.escalate_due()["escalated"] == 0

    # Stage "team": every supervisor of the agent's teams, whatever their presence.
    w.clock.advance(2)
    assert assistance.escalate_due()["escalated"] == 1
    team = {
        "assistId": assist_id,
        "agentId": "agent-1",
        "text": "I need help with a refund",
        "workitemId": "wi-1",
        "stage": "team",
    }
    assert [e["data"] for e in sup1.events("assist.escalated")] == [team]
    assert [e["data"] for e in sup2.new_events("assist.escalated")] == [team]  # Not Ready, still reached
    assert sup9.events() == [] and admin.events() == []
    assert assistance.escalate_due()["escalated"] == 0  # nothing twice
    # sup-3 was offline: the request waits for them as an unread count.
    sup3 = w.connect("sup-3", "supervisor")
    assert sup3.ok("directory.unread.get") == {"count": 1}

    # Stage "admins", after the same delay again.
    w.clock.advance(ESCALATION_SECONDS + 1)
    assert assistance.escalate_due()["escalated"] == 1
    assert [e["data"] for e in admin.events("assist.escalated")] == [{**team, "stage": "admins"}]
    # Exhausted: it left the due index.
    w.clock.advance(10 * ESCALATION_SECONDS)
    assert assistance.escalate_due() == {"escalated": 0, "skipped": 0, "failed": 0}

    escalations = [e.get("escalation") for e in timeline(w) if e["kind"] == "assist_requested"]
    assert escalations == [None, "team", "admins"]

    # Any recipient so far may claim it, an admin included.
    assert admin.ok("assist.claim", assistId=assist_id) == {"assistId": assist_id}
    claimed = {"assistId": assist_id, "supervisorId": "admin-2", "supervisorName": "Ada Admin"}
    for client in (agent, sup1, sup2, sup3):
        assert [e["data"] for e in client.events("assist.claimed")] == [claimed]
    sup3.fails("assist.claim", "conflict", assistId=assist_id)


def test_a_claimed_request_never_escalates(w: Any) -> None:
    agent = w.connect("agent-1", "agent")
    sup1 = w.connect("sup-1", "supervisor")
    sup2 = w.connect("sup-2", "supervisor")
    assist_id = agent.ok("assist.request", templateId="tpl-help", to="supervisors")["assistId"]
    sup2.ok("assist.claim", assistId=assist_id)
    w.clock.advance(ESCALATION_SECONDS * 5)
    assert w.services.assistance.escalate_due()["escalated"] == 0
    assert sup1.events("assist.escalated") == []


def test_escalation_after_a_claim_raced_it_is_skipped(w: Any) -> None:
    """The sweep read the request as due, but a claim committed first: the conditional write loses."""
    agent = w.connect("agent-1", "agent")
    sup1 = w.connect("sup-1", "supervisor")
    assist_id = agent.ok("assist.request", templateId="tpl-help", to="supervisors")["assistId"]
    w.clock.advance(ESCALATION_SECONDS + 1)
    store = w.services.assistance.store
    due_now = [r for shard in range(w.settings.escalation_shards) for r in store.due(shard, int(w.clock.now().timestamp()), 10)]
    assert [r.assist_id for r in due_now] == [assist_id]
    sup1.ok("assist.claim", assistId=assist_id)
    assert w.services.assistance._escalate(due_now[0], int(w.clock.now().timestamp())) is False
    assert sup1.events("assist.escalated") == []


def test_a_claim_that_read_before_an_escalation_still_withdraws_every_popup(w: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """The claim read the request, then the sweep added the whole team, then the claim committed:
    the claim's own write returns the recipients, so the newly reached supervisors hear of it too."""
    agent = w.connect("agent-1", "agent")
    sup1 = w.connect("sup-1", "supervisor")
    sup2 = w.connect("sup-2", "supervisor")
    sup2.ok("presence.set", state="not_ready")
    assist_id = agent.ok("assist.request", templateId="tpl-help", to="supervisors")["assistId"]
    w.clock.advance(ESCALATION_SECONDS + 1)
    store = w.services.assistance.store
    real_get = store.get

    def get_then_sweep(*args: Any, **kwargs: Any) -> Any:
        found = real_get(*args, **kwargs)
        assert w.services.assistance.escalate_due()["escalated"] == 1
        return found

    monkeypatch.setattr(store, "get", get_then_sweep)
    sup1.ok("assist.claim", assistId=assist_id)
    assert len(sup2.events("assist.escalated")) == 1
    named = {"assistId": assist_id, "supervisorId": "sup-1", "supervisorName": "Sup-1"}
    assert [e["data"] for e in sup2.events("assist.claimed")] == [named]


def test_a_request_to_a_fellow_agent_does_not_escalate(w: Any) -> None:
    agent = w.connect("agent-1", "agent")
    peer = w.connect("agent-2", "agent")
    sup1 = w.connect("sup-1", "supervisor")
    assist_id = agent.ok("assist.request", templateId="tpl-help", to={"userId": "agent-2"})["assistId"]
    peer.fails("assist.claim", "forbidden", assistId=assist_id)  # peers answer with directory.send
    w.clock.advance(ESCALATION_SECONDS * 3)
    assert w.services.assistance.escalate_due()["escalated"] == 0
    assert sup1.events() == []


def test_escalation_delay_is_tenant_policy(w: Any) -> None:
    w.admin("PUT", "/admin/policy", {"recordCoaching": False, "escalationSeconds": 300, "retentionDays": 30})
    agent = w.connect("agent-1", "agent")
    sup1 = w.connect("sup-1", "supervisor")
    agent.ok("assist.request", templateId="tpl-help", to="supervisors")
    w.clock.advance(299)
    assert w.services.assistance.escalate_due()["escalated"] == 0
    w.clock.advance(2)
    assert w.services.assistance.escalate_due()["escalated"] == 1
    assert len(sup1.events("assist.escalated")) == 1


def test_scheduled_handler_runs_the_sweep(w: Any) -> None:
    from app import escalate_assistance

    agent = w.connect("agent-1", "agent")
    w.connect("sup-1", "supervisor")
    agent.ok("assist.request", templateId="tpl-help", to="supervisors")
    w.clock.advance(ESCALATION_SECONDS + 1)
    event = {
        "version": "0",
        "id": "e-1",
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": "123456789012",
        "time": "2026-01-01T00:00:00Z",
        "region": "us-east-1",
        "resources": ["arn:aws:events:us-east-1:123456789012:rule/escalate"],
        "detail": {},
    }
    result = escalate_assistance(event, None)
    assert result == {"escalated": 1, "skipped": 0, "failed": 0}


# --- DynamoDB request counts -----------------------------------------------------------------------


class DynamoCalls:
    """Counts DynamoDB API calls on every PynamoDB client (``before-call`` hook)."""

    def __init__(self) -> None:
        self.calls: list[str] = []
        self._emitters: dict[int, Any] = {}

    def _hook(self, model: Any, **_: Any) -> None:
        self.calls.append(model.name)

    def __enter__(self) -> DynamoCalls:
        for models in dynamo._MODELS_BY_TABLE.values():
            for model in models:
                events = model._get_connection().connection.client.meta.events
                self._emitters.setdefault(id(events), events)
        for events in self._emitters.values():
            events.register("before-call.dynamodb", self._hook, unique_id="test-assistance-count")
        return self

    def __exit__(self, *exc: object) -> None:
        for events in self._emitters.values():
            events.unregister("before-call.dynamodb", unique_id="test-assistance-count")

    def __len__(self) -> int:
        return len(self.calls)

    @property
    def scanned(self) -> bool:
        return "Scan" in self.calls


def _populate(world: World, tid: str, others: int) -> None:
    """A tenant whose asking agent sits in the same-size team as everywhere, plus ``others`` users in
    teams of four (two supervisors, two agents), written straight to the table."""
    world.team(tid=tid, supervisors=("sup-1", "sup-2"), agents=("agent-1", "agent-2"))
    world.admin("PUT", "/admin/users/admin-2", {"name": "Ada", "role": "admin"}, tid)
    world.admin("PUT", "/admin/templates/tpl-help", {"text": "Help", "enabled": True}, tid)
    with RecipientItem.batch_write() as batch:
        for i in range(others):
            role = "supervisor" if i % 4 < 2 else "agent"
            batch.save(
                RecipientItem(
                    f"T#{tid}#U#u{i}",
                    "U",
                    tenant_id=tid,
                    user_id=f"u{i}",
                    role=role,
                    name=f"User {i}",
                    in_directory=True,
                    conns={f"cx{i}|{10**12}"},
                )
            )
    with DirectoryEdge.batch_write() as batch:
        for team in range(others // 4):
            sups, agents = [f"u{4 * team}", f"u{4 * team + 1}"], [f"u{4 * team + 2}", f"u{4 * team + 3}"]
            for s in sups:
                for a in agents:
                    batch.save(
                        DirectoryEdge(
                            pk=f"T#{tid}#A#{a}",
                            sk=f"S#{s}#T#x{team}",
                            gsi1pk=f"T#{tid}#S#{s}",
                            gsi1sk=f"A#{a}#T#x{team}",
                            tenant_id=tid,
                            agent_id=a,
                            supervisor_id=s,
                            team_id=f"x{team}",
                        )
                    )
    with TeamItem.batch_write() as batch:
        for team in range(others // 4):
            batch.save(
                TeamItem(
                    f"T#{tid}#TEAM#x{team}",
                    "TEAM",
                    tenant_id=tid,
                    team_id=f"x{team}",
                    name=f"x{team}",
                    supervisors=[f"u{4 * team}", f"u{4 * team + 1}"],
                    agents=[f"u{4 * team + 2}", f"u{4 * team + 3}"],
                )
            )


def _measure(world: World, tid: str) -> dict[str, int]:
    counts: dict[str, int] = {}
    agent = world.connect("agent-1", "agent", tid=tid)
    peer = world.connect("agent-2", "agent", tid=tid)
    sup1 = world.connect("sup-1", "supervisor", tid=tid)
    sup2 = world.connect("sup-2", "supervisor", tid=tid)
    world.connect("admin-2", "admin", tid=tid)
    status, _ = world.rest("PUT", "/me/settings", world.token("sup-2", "supervisor", tid), {"agentMessageNotification": False})
    assert status == 200
    world.assign("wi-1", tid=tid)

    def count(label: str, client: Any, action: str, **fields: Any) -> dict[str, Any]:
        with DynamoCalls() as c:
            data: dict[str, Any] = client.ok(action, **fields)
        assert not c.scanned, (label, c.calls)
        counts[label] = len(c)
        return data

    count("assist.templates", agent, "assist.templates")
    count("assist.recipients", agent, "assist.recipients")
    first = count("assist.request", agent, "assist.request", templateId="tpl-help", to="supervisors")
    assert sorted(first["recipients"]) == ["sup-1", "sup-2"]
    count("assist.request+workitem", agent, "assist.request", templateId="tpl-help", workitemId="wi-1", to="supervisors")
    count("assist.request to one", agent, "assist.request", templateId="tpl-help", to={"userId": "sup-1"})
    count("assist.request to a peer", agent, "assist.request", templateId="tpl-help", to={"userId": "agent-2"})
    count("assist.claim", sup1, "assist.claim", assistId=first["assistId"])
    count("directory.send", sup1, "directory.send", toUserId="agent-1", text="hi", replyTo=first["assistId"])
    count("directory.send (unread)", agent, "directory.send", toUserId="sup-2", text="hi")
    count("directory.unread.get", sup2, "directory.unread.get")
    count("directory.read", sup2, "directory.read", withUserId="agent-1")
    del peer
    world.clock.advance(3600)
    with DynamoCalls() as c:
        summary = world.services.assistance.escalate_due()
    assert not c.scanned, c.calls
    counts["escalate_due"] = len(c)
    counts["escalated"] = summary["escalated"]
    # Exhaust this tenant's escalations so the next tenant's sweep sees only its own requests.
    world.clock.advance(3600)
    assert world.services.assistance.escalate_due()["escalated"] == summary["escalated"]
    world.clock.advance(-7200)
    return counts


@pytest.mark.moto
def test_request_counts_do_not_grow_with_tenant_size(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    import boto3
    from moto.dynamodb.models import table as moto_table

    if world.services.assistance._store is None:
        world.services.assistance.store = DynamoAssistStore(world.settings)
    monkeypatch.setattr(moto_table, "RESULT_SIZE_LIMIT", SMALL_PAGE)
    world.admin("PUT", "/admin/policy", {"recordCoaching": False, "escalationSeconds": 30, "retentionDays": 30}, tid="small")
    world.admin("PUT", "/admin/policy", {"recordCoaching": False, "escalationSeconds": 30, "retentionDays": 30}, tid="large")
    _populate(world, "small", 8)
    # 200 more users: the directory table then spans more than 5 pages, so a Scan or an unbounded
    # read would show in the counts (and a Scan is refused outright above).
    _populate(world, "large", LARGE_TENANT)
    scan = boto3.client("dynamodb", region_name=dynamo.DirectoryEdge.Meta.region).get_paginator("scan")
    assert sum(1 for _ in scan.paginate(TableName=dynamo.DirectoryEdge.Meta.table_name)) > 5, "the table fits a page"
    small = _measure(world, "small")
    large = _measure(world, "large")
    assert small == large, (small, large)
    # The documented budgets (docs/assistance.md).
    assert small == {
        "assist.templates": 1,
        "assist.recipients": 4,  # 1 Query + 1 per supervisor (two here) + 1 BatchGetItem
        # a hand raised to supervisors is counted (coaching analytics) in the request's own write, a
        # TransactWriteItems instead of the PutItem; + 1 BatchWriteItem of the recipients' pending marks
        # (assist.pending, W18.2)
        "assist.request": 6 + 2,  # sup-2 has notifications off: +2 UpdateItem for the unread count
        "assist.request+workitem": 6 + 2 + 2,  # + GetItem and TransactWriteItems on the workitem
        "assist.request to one": 6,  # a hand raised to one supervisor is counted too
        "assist.request to a peer": 6,
        "assist.claim": 4 + 1,  # + 1 BatchWriteItem deleting the pending marks, + 1 TransactWriteItems counting the claim
        "directory.send": 3,
        "directory.send (unread)": 3 + 2,
        "directory.unread.get": 1,
        "directory.read": 2,
        # 4 shard Queries; two requests (each + its new recipients' marks), one with a workitem (+2); + 1
        # TransactWriteItems each counting its first escalation
        "escalate_due": 4 + 6 + 8 + 2,
        "escalated": 2,
    }
    print("DynamoDB requests per action:", small)
