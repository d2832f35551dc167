"""Amazon Connect contact events (docs/connectors.md, docs/product.md W14.7-W14.11) through the
``connect_events`` entry point, with EventBridge events in the shapes AWS documents (camelCase and
PascalCase samples), and the instance's claim over REST."""

from __future__ import annotations

import itertools
from typing import Any

import msgspec
import pytest

from chalicelib.entrypoints import events
from tests.support.world import World

# Tier: from the world fixture's backend (service on memory, integration on moto; tests/conftest.py).

ACCOUNT = "123456789012"
INSTANCE = f"arn:aws:connect:us-east-1:{ACCOUNT}:instance/f75946c0-bc38-4252-8174-468f6ac2543d"
OTHER_INSTANCE = f"arn:aws:connect:us-east-1:{ACCOUNT}:instance/0b9bd7c4-1d8c-4a9e-9b1f-3f6b1e0c7a11"
UNLISTED = f"arn:aws:connect:us-east-1:{ACCOUNT}:instance/99999999-1d8c-4a9e-9b1f-3f6b1e0c7a11"
CONNECT_USER = "a3a6b5c2-1111-4222-8333-944455556666"
CONNECT_USER_2 = "b4b7c6d3-1111-4222-8333-944455556666"
SUPERVISOR_USER = "c5c8d7e4-1111-4222-8333-944455556666"
_ids = itertools.count(1)


def contact_event(
    kind: str,
    contact: str,
    initial: str | None = None,
    user: str | None = CONNECT_USER,
    channel: str = "CHAT",
    pascal: bool = False,
    time: str = "2026-12-07T22:50:00Z",
    instance: str = INSTANCE,
    **detail: Any,
) -> dict[str, Any]:
    """An "Amazon Connect Contact Event" as EventBridge delivers it; ``pascal``: AWS's PascalCase sample."""
    body: dict[str, Any] = {"contactId": contact, "channel": channel, "instanceArn": instance, "initiationMethod": "INBOUND"}
    body["eventType"] = kind
    if initial:
        body["initialContactId"] = initial
    if kind == "CONNECTED_TO_AGENT" and user:
        body["agentInfo"] = {"agentArn": f"{instance}/agent/{user}", "connectedToAgentTimestamp": time}
    body.update(detail)
    if pascal:
        body = {k[0].upper() + k[1:]: v for k, v in body.items()}
        body["InstanceARN"] = body.pop("InstanceArn")
        if "AgentInfo" in body:
            body["AgentInfo"] = {"AgentArn": body["AgentInfo"]["agentArn"]}
        body["Channel"] = channel.title()
    return {
        "version": "0",
        "id": f"bc198b12-2a16-c92b-5925-{next(_ids):012d}",
        "detail-type": "Amazon Connect Contact Event",
        "source": "aws.connect",
        "account": ACCOUNT,
        "time": time,
        "region": "us-east-1",
        "resources": [instance, f"{instance}/contact/{contact}"],
        "detail": body,
    }


def send(w: World, event: dict[str, Any]) -> str:
    outcome: str = events.on_connect_event(event)["outcome"]
    w.pump()
    return outcome


def settle(w: World, seconds: float = 6) -> None:
    """Let the 5 s end grace pass and run the end checks it queued."""
    w.deliver(after_seconds=seconds)
    w.pump()


@pytest.fixture
def w(world: World) -> World:
    connect = world.services.amazon_connect
    connect.settings = msgspec.structs.replace(
        world.settings, account_id=ACCOUNT, region="us-east-1", connect_instance_arns=(INSTANCE, OTHER_INSTANCE)
    )
    world.team()
    world.admin(
        "PUT",
        "/admin/connectors/amazon-connect",
        {"instanceArn": INSTANCE, "agents": {CONNECT_USER: "agent-1", CONNECT_USER_2: "agent-2", SUPERVISOR_USER: "sup-1"}},
    )
    return world


def workitem(w: World, wid: str) -> Any:
    return w.services.webhooks.workitems.store.get("t1", wid)


# --- the instance's claim (W14.7) --------------------------------------------------------------------


def test_an_instance_belongs_to_one_tenant_and_must_be_the_stacks(w: World) -> None:
    body = {"instanceArn": INSTANCE, "agents": {}}
    status, answer = w.rest("PUT", "/admin/connectors/amazon-connect", w.token("admin-9", "admin", "t2"), body)
    assert status == 409 and answer["error"]["code"] == "conflict", answer
    for arn, code in (
        (UNLISTED, "conflict"),  # not in ConnectInstanceArns
        (INSTANCE.replace("us-east-1", "eu-west-2"), "conflict"),  # another Region
        (INSTANCE.replace(ACCOUNT, "210987654321"), "conflict"),  # another account
        ("arn:aws:connect:us-east-1:123456789012:queue/x", "invalid"),
        ("not an arn", "invalid"),
    ):
        status, answer = w.rest(
            "PUT", "/admin/connectors/amazon-connect", w.token("admin-9", "admin", "t2"), {**body, "instanceArn": arn}
        )
        assert answer["error"]["code"] == code and status == {"conflict": 409, "invalid": 400}[code], (arn, answer)
    status, answer = w.rest("PUT", "/admin/connectors/amazon-connect", w.token("sup-1", "supervisor"), body)
    assert status == 403, answer
    # Moving to another listed instance frees the first.
    assert w.admin("PUT", "/admin/connectors/amazon-connect", {"instanceArn": OTHER_INSTANCE, "agents": {}}) == {
        "instanceArn": OTHER_INSTANCE,
        "agents": {},
    }
    assert w.admin("PUT", "/admin/connectors/amazon-connect", body, tid="t2")["instanceArn"] == INSTANCE


# --- contact events (W14.8, W14.9) ---------------------------------------------------------------------


@pytest.mark.parametrize("pascal", [False, True], ids=["camelCase", "PascalCase"])
def test_connected_to_agent_assigns_the_contact_to_the_mapped_agent(w: World, pascal: bool) -> None:
    agent = w.connect("agent-1", "agent")
    sup = w.connect("sup-1", "supervisor")
    sup.ok("agent.watch", agentId="agent-1")
    assert send(w, contact_event("CONNECTED_TO_AGENT", "c-1", pascal=pascal)) == "applied"
    (assigned,) = agent.events("workitem.assigned")
    assert assigned["data"]["workitem"]["workitemId"] == "connect-c-1"
    assert assigned["data"]["workitem"]["channel"] == "chat"
    assert sup.events("workitem.assigned")
    # EventBridge delivers it again: nothing more.
    event = contact_event("CONNECTED_TO_AGENT", "c-1", pascal=pascal)
    assert send(w, event) == "duplicate"
    assert len(agent.events("workitem.assigned")) == 1


def test_voice_contacts_are_voice_workitems_without_chime(w: World) -> None:
    assert send(w, contact_event("CONNECTED_TO_AGENT", "v-1", channel="VOICE", pascal=True)) == "applied"
    assert workitem(w, "connect-v-1").channel.value == "voice"
    sup = w.connect("sup-1", "supervisor")
    sup.ok("monitor.start", workitemId="connect-v-1")
    for action in ("voice.monitor", "voice.whisper", "voice.barge"):
        error = sup.fails(action, "conflict", workitemId="connect-v-1")
        assert "Amazon Connect" in error["message"]
    agent = w.connect("agent-1", "agent")
    agent.fails("voice.join", "conflict", workitemId="connect-v-1")
    assert w.meetings.calls == []  # no Chime meeting for a Connect call


def test_a_transfer_follows_the_new_agent_and_the_old_contacts_disconnect_ends_nothing(w: World) -> None:
    old = w.connect("agent-1", "agent")
    new = w.connect("agent-2", "agent")
    assert send(w, contact_event("CONNECTED_TO_AGENT", "c-1", time="2026-12-07T22:50:00Z")) == "applied"
    # The usual order: the old contact's DISCONNECTED, then the new contact connects within 5 s.
    assert (
        send(w, contact_event("DISCONNECTED", "c-1", time="2026-12-07T22:51:00Z", disconnectReason="AGENT_DISCONNECT"))
        == "scheduled"
    )
    assert (
        send(w, contact_event("CONNECTED_TO_AGENT", "c-2", initial="c-1", user=CONNECT_USER_2, time="2026-12-07T22:51:02Z"))
        == "applied"
    )
    settle(w)
    item = workitem(w, "connect-c-1")
    assert (item.agent_id, item.status.value) == ("agent-2", "active")
    assert [e["data"]["workitem"]["workitemId"] for e in new.events("workitem.assigned")] == ["connect-c-1"]
    assert old.events("workitem.ended") == []
    # The old contact's late COMPLETED ends nothing either.
    assert send(w, contact_event("COMPLETED", "c-1", time="2026-12-07T22:52:00Z")) == "duplicate"
    assert workitem(w, "connect-c-1").status.value == "active"
    # The new contact's end does.
    assert (
        send(
            w,
            contact_event(
                "DISCONNECTED", "c-2", initial="c-1", time="2026-12-07T22:55:00Z", disconnectReason="CUSTOMER_DISCONNECT"
            ),
        )
        == "scheduled"
    )
    settle(w)
    item = workitem(w, "connect-c-1")
    assert (item.status.value, item.ended_by.value) == ("ended", "customer")


@pytest.mark.parametrize(
    ("reason", "ended_by"),
    [("CUSTOMER_DISCONNECT", "customer"), ("AGENT_DISCONNECT", "agent"), ("TELECOM_PROBLEM", "system"), (None, "system")],
)
def test_a_disconnect_ends_after_the_grace_with_who_ended_it(w: World, reason: str | None, ended_by: str) -> None:
    send(w, contact_event("CONNECTED_TO_AGENT", "c-1"))
    extra: dict[str, Any] = {"disconnectReason": reason} if reason else {}
    assert send(w, contact_event("DISCONNECTED", "c-1", time="2026-12-07T22:51:00Z", **extra)) == "scheduled"
    w.deliver(after_seconds=2)  # within the grace: still on
    assert workitem(w, "connect-c-1").status.value == "active"
    settle(w, 4)
    item = workitem(w, "connect-c-1")
    assert (item.status.value, item.ended_by.value) == ("ended", ended_by)


def test_a_customer_leaving_a_chat_keeps_coaching_and_completed_ends_as_agent(w: World) -> None:
    send(w, contact_event("CONNECTED_TO_AGENT", "c-1"))
    sup = w.connect("sup-1", "supervisor")
    sup.ok("monitor.start", workitemId="connect-c-1")
    send(w, contact_event("DISCONNECTED", "c-1", time="2026-12-07T22:51:00Z", disconnectReason="CUSTOMER_DISCONNECT"))
    settle(w)
    assert sup.events("coaching.ended") == []  # the agent is still there to coach (S14)
    sup.ok("coach.send", workitemId="connect-c-1", text="Summarise the refund before you close")
    w2 = contact_event("COMPLETED", "c-1", time="2026-12-07T22:53:00Z")
    assert send(w, w2) in ("applied", "duplicate")
    assert workitem(w, "connect-c-1").status.value == "ended"


def test_completed_without_disconnect_ends_as_agent(w: World) -> None:
    send(w, contact_event("CONNECTED_TO_AGENT", "c-1"))
    assert send(w, contact_event("COMPLETED", "c-1", time="2026-12-07T22:53:00Z")) == "applied"
    item = workitem(w, "connect-c-1")
    assert (item.status.value, item.ended_by.value) == ("ended", "agent")


# --- what is ignored or refused (W14.11) ---------------------------------------------------------------


def test_unmapped_agents_monitors_other_channels_and_event_types_are_ignored(w: World) -> None:
    assert send(w, contact_event("CONNECTED_TO_AGENT", "c-1", user="ffffffff-0000-4000-8000-000000000000")) == "ignored"
    assert send(w, contact_event("CONNECTED_TO_AGENT", "c-2", initiationMethod="MONITOR")) == "ignored"
    assert send(w, contact_event("CONNECTED_TO_AGENT", "c-3", channel="TASK")) == "ignored"
    assert send(w, contact_event("QUEUED", "c-4")) == "ignored"
    assert send(w, contact_event("DISCONNECTED", "c-5")) == "scheduled"  # never assigned: the check finds nothing
    settle(w)
    for wid in ("connect-c-1", "connect-c-2", "connect-c-3", "connect-c-4", "connect-c-5"):
        assert workitem(w, wid) is None


def test_an_instance_no_tenant_connected_is_ignored(w: World) -> None:
    assert send(w, contact_event("CONNECTED_TO_AGENT", "c-1", instance=OTHER_INSTANCE)) == "ignored"


@pytest.mark.parametrize(
    "change",
    [
        {"account": "210987654321"},
        {"region": "eu-west-2"},
        {"source": "aws.events"},
        {"detail-type": "Amazon Connect Agent Event"},
        {"detail": {"eventType": "CONNECTED_TO_AGENT"}},
        {"detail": []},
        {"time": "now"},
    ],
)
def test_events_from_elsewhere_or_malformed_are_refused_and_write_nothing(w: World, change: dict[str, Any]) -> None:
    event = {**contact_event("CONNECTED_TO_AGENT", "c-1"), **change}
    assert send(w, event) == "invalid"
    assert workitem(w, "connect-c-1") is None


def test_an_unlisted_instance_is_refused(w: World) -> None:
    assert send(w, contact_event("CONNECTED_TO_AGENT", "c-1", instance=UNLISTED)) == "invalid"


def test_the_routing_engine_cannot_take_a_connect_workitem_id(w: World) -> None:
    status, body = w.webhook(
        "workitem.assigned",
        {"workitemId": "connect-c-9", "channel": "chat", "agentId": "agent-1", "customer": {"id": "c", "name": "C"}},
    )
    assert status == 400 and body["error"]["code"] == "invalid", body
