"""SMS to customers through End User Messaging SMS (``pinpoint-sms-voice-v2``), checked with botocore's
Stubber: the exact request, and a refusal that becomes a ``failed`` status pushed to the agent."""

from __future__ import annotations

from collections.abc import Iterator

import boto3
import pytest
from botocore.stub import Stubber

from chalicelib.adapters.sms import EndUserMessagingSms
from chalicelib.services.ports import ChannelFailed, SmsContext
from tests.support.world import World

# Tier: from the world fixture's backend (service on memory, integration on moto; tests/conftest.py).


@pytest.fixture
def stubbed() -> Iterator[tuple[EndUserMessagingSms, Stubber]]:
    client = boto3.client("pinpoint-sms-voice-v2", region_name="us-east-1")
    with Stubber(client) as stub:
        yield EndUserMessagingSms("us-east-1", client=client), stub
        stub.assert_no_pending_responses()


@pytest.mark.integration
def test_send_text_message_exact_parameters(stubbed: tuple[EndUserMessagingSms, Stubber]) -> None:
    sms, stub = stubbed
    stub.add_response(
        "send_text_message",
        {"MessageId": "m-123"},
        {
            "DestinationPhoneNumber": "+15551234567",
            "OriginationIdentity": "pool-abc",
            "MessageBody": "On its way",
            "MessageType": "TRANSACTIONAL",
            "Context": {"tenantId": "t1", "workitemId": "wi-1", "messageId": "msg_1"},
        },
    )
    assert sms.send_text("pool-abc", "+15551234567", "On its way", SmsContext("t1", "wi-1", "msg_1")) == "m-123"


@pytest.mark.integration
def test_a_refusal_is_a_channel_failure(stubbed: tuple[EndUserMessagingSms, Stubber]) -> None:
    sms, stub = stubbed
    stub.add_client_error("send_text_message", service_error_code="ValidationException", http_status_code=400)
    with pytest.raises(ChannelFailed) as failure:
        sms.send_text("pool-abc", "not-a-number", "hi", SmsContext("t1", "wi-1", "msg_2"))
    assert failure.value.reason == "ValidationException"


def _world_with(world: World, sms: EndUserMessagingSms) -> World:
    from chalicelib import bootstrap
    from chalicelib.entrypoints.wire import WIRE

    world.services = bootstrap.build(
        world.settings,
        wire=WIRE,
        pusher=world.pusher,
        clock=world.clock,
        meetings=world.meetings,
        queue=world.queue,
        sms=sms,
        storage=world.storage,
        sms_queue=world.sms_queue,
    )
    bootstrap.install(world.services)
    return world


def test_an_sms_agent_message_is_sent_and_marked_sent(world: World, stubbed: tuple[EndUserMessagingSms, Stubber]) -> None:
    sms, stub = stubbed
    w = _world_with(world, sms)
    w.team()
    w.admin("PUT", "/admin/sms-settings", {"originationIdentity": "+15550000001"})
    w.assign("wi-sms", channel="sms")
    agent = w.connect("agent-1", "agent")
    entry = agent.ok("message.send", workitemId="wi-sms", text="Your refund is on its way")["entry"]
    stub.add_response(
        "send_text_message",
        {"MessageId": "m-1"},
        {
            "DestinationPhoneNumber": "cust-wi-sms",
            "OriginationIdentity": "+15550000001",
            "MessageBody": "Your refund is on its way",
            "MessageType": "TRANSACTIONAL",
            "Context": {"tenantId": "t1", "workitemId": "wi-sms", "messageId": entry["messageId"]},
        },
    )
    w.deliver()
    assert [(e["data"]["messageId"], e["data"]["delivery"]) for e in agent.events("message.delivery")] == [
        (entry["messageId"], "sent")
    ]


def test_a_refused_sms_becomes_a_failed_status_pushed_to_the_agent(
    world: World, stubbed: tuple[EndUserMessagingSms, Stubber]
) -> None:
    sms, stub = stubbed
    w = _world_with(world, sms)
    w.team()
    w.admin("PUT", "/admin/sms-settings", {"originationIdentity": "+15550000001"})
    w.assign("wi-sms", channel="sms")
    agent = w.connect("agent-1", "agent")
    sup = w.connect("sup-1", "supervisor")
    sup.ok("monitor.start", workitemId="wi-sms")
    agent.ok("message.send", workitemId="wi-sms", text="hello")
    stub.add_client_error("send_text_message", service_error_code="ConflictException", http_status_code=409)
    w.deliver()
    pushed = agent.events("message.delivery")
    assert [(e["data"]["seq"], e["data"]["delivery"], e["data"]["reason"]) for e in pushed] == [
        (2, "failed", "ConflictException")
    ]
    assert pushed[0]["data"]["entry"]["delivery"] == "failed"
    entries = sup.ok("timeline.get", workitemId="wi-sms", after=0)["entries"]
    assert entries[-1]["kind"] == "agent_message" and entries[-1]["delivery"] == "failed"
    # Not retried on its own (a retry could text the customer twice): the agent sees it and resends.
    w.deliver(after_seconds=3600)
    assert len(agent.events("message.delivery")) == 1
