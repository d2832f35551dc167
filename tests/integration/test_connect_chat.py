"""Amazon Connect chat message streaming (docs/connectors.md, docs/product.md W14.12-W14.14): the
connector starts Connect's streaming when a chat reaches a mapped agent (StartContactStreaming through
botocore's Stubber, every request checked against the service model's limits), and the chat items
Connect publishes to the stack's SNS topic, in the shape AWS documents, become the workitem's messages
once each."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import boto3
import msgspec
import pytest
from botocore.stub import Stubber

from chalicelib.adapters.connect_api import ConnectClient
from chalicelib.entrypoints import events
from tests.integration.test_amazon_connect import ACCOUNT, CONNECT_USER, CONNECT_USER_2, INSTANCE, UNLISTED, contact_event, send
from tests.support.model_validator import enforce_model
from tests.support.world import World

TOPIC = f"arn:aws:sns:us-east-1:{ACCOUNT}:coaching-ConnectChatTopic-1A2B3C"
INSTANCE_ID = INSTANCE.rsplit("/", 1)[-1]
CHAT = "33333333-abc5-46db-9ad5-d772559ab556"


def item(item_id: str, role: str = "CUSTOMER", content: str = "help", kind: str = "MESSAGE", **extra: Any) -> dict[str, Any]:
    """A Connect Participant Item as Connect streams it (the SNS message; docs.aws.amazon.com/connect/
    latest/adminguide/sns-payload.html)."""
    return {
        "AbsoluteTime": "2026-12-07T22:50:05.656Z",
        "Content": content,
        "ContentType": "text/plain",
        "Id": item_id,
        "Type": kind,
        "ParticipantId": "bbbbbbbb-c562-4d95-b76c-dcbca8b4b5f7",
        "DisplayName": "Jane",
        "ParticipantRole": role,
        "InitialContactId": CHAT,
        "ContactId": CHAT,
        **extra,
    }


def notification(body: dict[str, Any], topic: str = TOPIC, instance: str = INSTANCE_ID) -> dict[str, Any]:
    """An SNS record of the chat topic as Lambda delivers it, with Connect's message attributes."""
    attributes = {
        "InitialContactId": CHAT,
        "MessageVisibility": "ALL",
        "Type": body["Type"],
        "AccountId": ACCOUNT,
        "ContentType": body.get("ContentType", ""),
        "InstanceId": instance,
        "ContactId": CHAT,
        "ParticipantRole": body.get("ParticipantRole", ""),
    }
    return {
        "EventSource": "aws:sns",
        "EventVersion": "1.0",
        "EventSubscriptionArn": f"{topic}:22222222-aaaa-bbbb-cccc-333333333333",
        "Sns": {
            "Type": "Notification",
            "MessageId": f"ccccccccc-cccc-cccc-cccc-{abs(hash(body['Id'])) % 10**12:012d}",
            "TopicArn": topic,
            "Subject": None,
            "Message": json.dumps(body),
            "Timestamp": "2026-12-07T22:50:05.860Z",
            "SignatureVersion": "1",
            "Signature": "EXAMPLE",
            "SigningCertUrl": "",
            "UnsubscribeUrl": "",
            "MessageAttributes": {k: {"Type": "String", "Value": v} for k, v in attributes.items()},
        },
    }


def stream(w: World, *records: dict[str, Any]) -> list[str]:
    outcomes: list[str] = events.on_connect_event({"Records": list(records)})["outcomes"]
    w.pump()
    return outcomes


@pytest.fixture
def stubbed() -> Iterator[Stubber]:
    client = enforce_model(boto3.client("connect", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x"))
    with Stubber(client) as stubber:
        yield stubber


@pytest.fixture
def w(world: World, stubbed: Stubber) -> World:
    connect = world.services.amazon_connect
    connect.settings = msgspec.structs.replace(
        world.settings, account_id=ACCOUNT, region="us-east-1", connect_instance_arns=(INSTANCE,), connect_chat_topic_arn=TOPIC
    )
    connect.api = ConnectClient("us-east-1", stubbed.client)
    world.services.settings = connect.settings
    world.team()
    world.admin(
        "PUT",
        "/admin/connectors/amazon-connect",
        {"instanceArn": INSTANCE, "agents": {CONNECT_USER: "agent-1", CONNECT_USER_2: "agent-2"}},
    )
    return world


def agent_of(w: World) -> str | None:
    found = w.services.webhooks.workitems.store.get("t1", f"connect-{CHAT}")
    return found.agent_id if found is not None else None


def expect_start(stubbed: Stubber, streaming_id: str = "stream-1") -> None:
    stubbed.add_response(
        "start_contact_streaming",
        {"StreamingId": streaming_id},
        {
            "InstanceId": INSTANCE_ID,
            "ContactId": CHAT,
            "ChatStreamingConfiguration": {"StreamingEndpointArn": TOPIC},
            "ClientToken": CHAT,
        },
    )


def test_a_chat_reaching_a_mapped_agent_streams_and_its_messages_join_the_workitem(w: World, stubbed: Stubber) -> None:
    expect_start(stubbed)
    assert send(w, contact_event("CONNECTED_TO_AGENT", CHAT)) == "applied"
    stubbed.assert_no_pending_responses()
    agent = w.connect("agent-1", "agent")
    sup = w.connect("sup-1", "supervisor")
    sup.ok("monitor.start", workitemId=f"connect-{CHAT}")
    customer_line = item("item-1", content="My card was charged twice")
    agent_line = item("item-2", role="AGENT", content="Let me check that for you", DisplayName="Alex")
    assert stream(w, notification(customer_line), notification(agent_line)) == ["applied", "applied"]
    # Redelivered (SNS delivers at least once): applied once.
    assert stream(w, notification(customer_line)) == ["duplicate"]
    entries = agent.ok("timeline.get", workitemId=f"connect-{CHAT}", after=0)["entries"]
    said = [(e["kind"], e["authorId"], e["text"], e["at"]) for e in entries if e["kind"].endswith("_message")]
    assert said == [
        ("customer_message", f"connect-{CHAT}", "My card was charged twice", "2026-12-07T22:50:05.656Z"),
        ("agent_message", "agent-1", "Let me check that for you", "2026-12-07T22:50:05.656Z"),
    ]
    assert [e["data"]["entry"]["text"] for e in sup.events("message.received")][-2:] == [
        "My card was charged twice",
        "Let me check that for you",
    ]


def test_events_bots_and_interactive_messages_are_skipped_and_attachments_named(w: World, stubbed: Stubber) -> None:
    expect_start(stubbed)
    send(w, contact_event("CONNECTED_TO_AGENT", CHAT))
    typing = item("e-1", kind="EVENT", content="", ContentType="application/vnd.amazonaws.connect.event.typing")
    joined = item(
        "e-2", role="AGENT", kind="EVENT", content="", ContentType="application/vnd.amazonaws.connect.event.participant.joined"
    )
    bot = item("b-1", role="CUSTOM_BOT", content="How can I help?")
    system = item("s-1", role="SYSTEM", content="You are now chatting with Alex")
    picker = item(
        "i-1", ContentType="application/vnd.amazonaws.connect.message.interactive", content='{"templateType":"ListPicker"}'
    )
    unknown_role = item("u-1", role="SOMEONE_NEW", content="hi")
    attachment = item(
        "a-1",
        kind="ATTACHMENT",
        content="",
        ContentType="image/png",
        Attachments=[
            {"ContentType": "image/png", "AttachmentId": "att-1", "AttachmentName": "receipt.png", "Status": "APPROVED"}
        ],
    )
    outcomes = stream(w, *(notification(i) for i in (typing, joined, bot, system, picker, unknown_role, attachment)))
    assert outcomes == ["skipped"] * 6 + ["applied"]
    entries = w.connect("agent-1", "agent").ok("timeline.get", workitemId=f"connect-{CHAT}", after=0)["entries"]
    assert [e["text"] for e in entries if e["kind"] == "customer_message"] == ["[attachment: receipt.png]"]


def test_items_of_chats_no_tenant_follows_or_other_topics_or_instances_are_refused(w: World, stubbed: Stubber) -> None:
    # Never connected to a mapped agent: the contact is unknown.
    assert stream(w, notification(item("x-1"))) == ["ignored"]
    expect_start(stubbed)
    send(w, contact_event("CONNECTED_TO_AGENT", CHAT))
    unlisted = UNLISTED.rsplit("/", 1)[-1]
    other_topic = TOPIC.replace("ConnectChatTopic", "SomeoneElsesTopic")
    malformed = [
        notification(item("x-2"), topic=other_topic),
        notification(item("x-3"), instance=unlisted),
        notification({**item("x-4"), "Id": "not an id"}),
        notification({**item("x-5"), "AbsoluteTime": "yesterday"}),
        notification({**item("x-6"), "Content": "x" * 16385}),
        notification({**item("x-7"), "InitialContactId": "../etc", "ContactId": "../etc"}),
    ]
    assert stream(w, *malformed) == ["invalid"] * len(malformed)
    entries = w.connect("agent-1", "agent").ok("timeline.get", workitemId=f"connect-{CHAT}", after=0)["entries"]
    assert not [e for e in entries if e["kind"] == "customer_message"]


def test_a_refused_stream_leaves_the_assignment_and_a_transfer_asks_again(w: World, stubbed: Stubber) -> None:
    stubbed.add_client_error("start_contact_streaming", "LimitExceededException", "two topics already")
    assert send(w, contact_event("CONNECTED_TO_AGENT", CHAT)) == "applied"
    assert agent_of(w) == "agent-1"
    # The transferred contact (same initial contact, another agent) asks again, with the same token.
    expect_start(stubbed)
    transfer = contact_event("CONNECTED_TO_AGENT", "c-2", initial=CHAT, user=CONNECT_USER_2, time="2026-12-07T22:51:00Z")
    assert send(w, transfer) == "applied"
    stubbed.assert_no_pending_responses()
    assert agent_of(w) == "agent-2"


def test_voice_contacts_are_not_streamed(w: World, stubbed: Stubber) -> None:
    assert send(w, contact_event("CONNECTED_TO_AGENT", "v-1", channel="VOICE")) == "applied"
    stubbed.assert_no_pending_responses()  # no call was made: Stubber would have refused it


def test_a_workitem_whose_end_events_were_lost_ends_at_its_reconcile_check(w: World, stubbed: Stubber) -> None:
    expect_start(stubbed)
    assert send(w, contact_event("CONNECTED_TO_AGENT", CHAT)) == "applied"
    ask = {"InstanceId": INSTANCE_ID, "ContactId": CHAT}
    # 15 minutes on, Connect says the chat goes on: the workitem stays, and is asked about again.
    stubbed.add_response("describe_contact", {"Contact": {"Id": CHAT, "Channel": "CHAT"}}, ask)
    w.deliver(after_seconds=901)
    w.pump()
    assert status_of(w) == "active"
    # Its DISCONNECTED and COMPLETED never came; the next check finds the contact over.
    ended_at = datetime(2026, 12, 7, 23, 20, tzinfo=UTC)
    stubbed.add_response(
        "describe_contact",
        {"Contact": {"Id": CHAT, "DisconnectTimestamp": ended_at, "DisconnectReason": "CUSTOMER_DISCONNECT"}},
        ask,
    )
    w.deliver(after_seconds=901)
    w.pump()
    stubbed.assert_no_pending_responses()
    found = w.services.webhooks.workitems.store.get("t1", f"connect-{CHAT}")
    assert (
        found is not None and found.status.value == "ended" and found.ended_by is not None and found.ended_by.value == "customer"
    )
    # The check that ended it armed no other: nothing more is asked.
    assert w.deliver(after_seconds=901) == 0


def test_a_workitem_that_ended_normally_asks_connect_nothing(w: World, stubbed: Stubber) -> None:
    expect_start(stubbed)
    send(w, contact_event("CONNECTED_TO_AGENT", CHAT))
    assert send(w, contact_event("COMPLETED", CHAT, time="2026-12-07T22:55:00Z")) == "applied"
    w.deliver(after_seconds=901)
    w.pump()
    stubbed.assert_no_pending_responses()
    assert status_of(w) == "ended"


def status_of(w: World) -> str | None:
    found = w.services.webhooks.workitems.store.get("t1", f"connect-{CHAT}")
    return found.status.value if found is not None else None
