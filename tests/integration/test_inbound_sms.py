"""Two-way SMS in (docs/connectors.md, docs/product.md W14.1-W14.5): the ``sms_inbound`` function's entry
point with SNS events in the shape Lambda delivers, the number's claim over REST, and what the agent,
the supervisors and the routing engine see."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import msgspec
import pytest

from chalicelib.entrypoints import events
from tests.support.receiver import Receiver, receiver
from tests.support.world import World

# Tier: from the world fixture's backend (service on memory, integration on moto; tests/conftest.py).
# The receivers listen on 127.0.0.1: the world checks targets as the local stack does.
pytestmark = pytest.mark.local_webhooks

TOPIC = "arn:aws:sns:us-east-1:123456789012:coaching-InboundSmsTopic-1A2B3C"
OURS = "+12065550100"
CUSTOMER = "+14255550182"


def inbound(
    body: str = "Is my order on its way?", message_id: str = "cae173d2-66b9-564c-8309-21f858e9fb84", **fields: Any
) -> dict[str, Any]:
    """The SNS message AWS End User Messaging SMS publishes (its documented example's fields)."""
    return {
        "originationNumber": CUSTOMER,
        "destinationNumber": OURS,
        "messageKeyword": "KEYWORD_123456789012",
        "messageBody": body,
        "inboundMessageId": message_id,
        "previousPublishedMessageId": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        **fields,
    }


def sns_event(
    message: Any, topic: str = TOPIC, timestamp: str = "2026-12-07T22:50:01.150Z", sns_id: str = "52ed5e3d-aaaa"
) -> dict[str, Any]:
    """A Lambda event from SNS, as Lambda spells it (``SigningCertUrl``, ``UnsubscribeUrl``)."""
    return {
        "Records": [
            {
                "EventSource": "aws:sns",
                "EventVersion": "1.0",
                "EventSubscriptionArn": f"{topic}:fdaa4474-5e5f-4ac4-9d10-5a4a0b1e6a3c",
                "Sns": {
                    "Type": "Notification",
                    "MessageId": sns_id,
                    "TopicArn": topic,
                    "Subject": None,
                    "Message": message if isinstance(message, str) else json.dumps(message),
                    "Timestamp": timestamp,
                    "SignatureVersion": "1",
                    "Signature": "EXAMPLE",
                    "SigningCertUrl": "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-0000.pem",
                    "UnsubscribeUrl": "https://sns.us-east-1.amazonaws.com/?Action=Unsubscribe",
                    "MessageAttributes": {},
                },
            }
        ]
    }


def text(w: World, event: dict[str, Any]) -> list[str]:
    outcomes: list[str] = events.on_sms_inbound(event)["outcomes"]
    w.pump()
    return outcomes


@pytest.fixture
def w(world: World) -> World:
    world.services.settings = msgspec.structs.replace(world.services.settings, sms_inbound_topic_arn=TOPIC)
    world.team()
    world.admin("PUT", "/admin/sms-settings", {"originationIdentity": OURS})
    return world


@pytest.fixture
def hook() -> Iterator[Receiver]:
    with receiver() as r:
        yield r


def assign_sms(w: World, workitem_id: str, customer: str = "0014255550182", agent: str = "agent-1", tid: str = "t1") -> None:
    status, body = w.webhook(
        "workitem.assigned",
        {"workitemId": workitem_id, "channel": "sms", "agentId": agent, "customer": {"id": customer, "name": "Casey"}},
        tid,
    )
    assert status == 200, body


def subscribe(w: World, url: str, events_: list[str], tid: str = "t1") -> str:
    status, body = w.rest(
        "PUT", "/admin/webhook-subscriptions/router", w.token("admin-1", "admin", tid), {"url": url, "events": events_}
    )
    assert status == 201, body
    return str(body["secret"])


def timeline(w: World, workitem_id: str) -> list[dict[str, Any]]:
    sup = w.connect("sup-1", "supervisor")
    return list(sup.ok("timeline.get", workitemId=workitem_id, after=0)["entries"])


# --- the number's claim (W14.1) ---------------------------------------------------------------------


def test_a_number_belongs_to_one_tenant_and_a_second_claim_is_409(w: World) -> None:
    assert w.admin("GET", "/admin/sms-settings") == {"originationIdentity": OURS, "phoneNumber": OURS}
    status, body = w.rest("PUT", "/admin/sms-settings", w.token("admin-9", "admin", "t2"), {"originationIdentity": OURS})
    assert status == 409 and body["error"]["code"] == "conflict", body
    assert w.admin("GET", "/admin/sms-settings", tid="t2") == {"originationIdentity": None}  # nothing saved
    # A pool sends, the number is named; the old number is free for the other tenant then.
    assert w.admin("PUT", "/admin/sms-settings", {"originationIdentity": "pool-abc", "phoneNumber": "+12065550199"}) == {
        "originationIdentity": "pool-abc",
        "phoneNumber": "+12065550199",
    }
    assert w.admin("PUT", "/admin/sms-settings", {"originationIdentity": OURS}, tid="t2")["phoneNumber"] == OURS
    assert w.services.integrations.store.claimant("sms", OURS) == "t2"
    assert w.services.integrations.store.claimant("sms", "+12065550199") == "t1"


@pytest.mark.parametrize(
    "body",
    [
        {"originationIdentity": "pool-abc", "phoneNumber": "2065550100"},
        {"originationIdentity": "pool-abc", "phoneNumber": "+0206555"},
        {"originationIdentity": "pool-abc", "phoneNumber": "+1206555010012345"},
        {"originationIdentity": "pool-abc", "phoneNumber": "+1\u0662\u0660\u0666"},  # Arabic-Indic digits
        {"originationIdentity": "pool-abc", "phoneNumber": "+12065550100\n"},
        {"originationIdentity": "pool-abc", "phoneNumber": 12065550100},
        {"originationIdentity": "pool-abc", "phoneNumber": None},  # optional, not nullable
    ],
)
def test_a_phone_number_that_is_not_e164_is_400_and_saves_nothing(w: World, body: dict[str, Any]) -> None:
    status, answer = w.rest("PUT", "/admin/sms-settings", w.token("admin-1", "admin"), body)
    assert status == 400 and answer["error"]["code"] == "invalid", answer
    assert w.admin("GET", "/admin/sms-settings") == {"originationIdentity": OURS, "phoneNumber": OURS}


def test_only_admins_claim_numbers(w: World) -> None:
    status, body = w.rest("PUT", "/admin/sms-settings", w.token("sup-1", "supervisor"), {"originationIdentity": "+12065550111"})
    assert status == 403, body
    assert w.services.integrations.store.claimant("sms", "+12065550111") is None


# --- texts in (W14.2, W14.3) ------------------------------------------------------------------------


def test_a_text_joins_the_customers_active_sms_workitem_live(w: World) -> None:
    assign_sms(w, "wi-sms")  # the routing engine spelled the number with the 00 prefix
    agent = w.connect("agent-1", "agent")
    sup = w.connect("sup-1", "supervisor")
    sup.ok("monitor.start", workitemId="wi-sms")
    assert text(w, sns_event(inbound("Is my order on its way?"))) == ["applied"]
    for client in (agent, sup):
        (pushed,) = client.events("message.received")
        assert pushed["data"]["entry"]["kind"] == "customer_message"
        assert pushed["data"]["entry"]["text"] == "Is my order on its way?"
        assert pushed["data"]["entry"]["authorId"] == CUSTOMER
    entry = timeline(w, "wi-sms")[-1]
    assert (entry["kind"], entry["at"]) == ("customer_message", "2026-12-07T22:50:01.150Z")  # SNS's time


def test_each_inbound_message_id_is_applied_once(w: World) -> None:
    assign_sms(w, "wi-sms")
    first = sns_event(inbound("Hello?"))
    assert text(w, first) == ["applied"]
    # SNS delivers again (same MessageId), and once more under another notification id.
    assert text(w, first) == ["duplicate"]
    assert text(w, sns_event(inbound("Hello?"), sns_id="another")) == ["duplicate"]
    assert [e["text"] for e in timeline(w, "wi-sms") if e["kind"] == "customer_message"] == ["Hello?"]


def test_the_most_recently_active_of_several_workitems_gets_the_text(w: World) -> None:
    assign_sms(w, "wi-old")
    w.clock.advance(60)
    assign_sms(w, "wi-new", agent="agent-2")
    w.clock.advance(60)
    agent = w.connect("agent-1", "agent")
    agent.ok("message.send", workitemId="wi-old", text="Anything else?")  # wi-old is the latest activity now
    assert text(w, sns_event(inbound("Yes, one more thing"))) == ["applied"]
    assert timeline(w, "wi-old")[-1]["text"] == "Yes, one more thing"
    assert all(e["kind"] != "customer_message" for e in timeline(w, "wi-new"))


def test_another_customers_or_tenants_workitem_never_gets_the_text(w: World, hook: Receiver) -> None:
    assign_sms(w, "wi-other", customer="+14255550999")
    w.team(tid="t2")
    assign_sms(w, "wi-t2", tid="t2")  # the same customer number, at another tenant
    subscribe(w, hook.url, ["sms.received"])
    assert text(w, sns_event(inbound())) == ["routed"]
    assert all(e["kind"] != "customer_message" for e in timeline(w, "wi-other"))
    w.deliver()
    assert [r.json["type"] for r in hook.requests] == ["sms.received"]


def test_with_no_active_workitem_the_routing_engine_gets_sms_received_once(w: World, hook: Receiver) -> None:
    from standardwebhooks.webhooks import Webhook

    secret = subscribe(w, hook.url, ["sms.received"])
    assign_sms(w, "wi-ended")
    status, _ = w.webhook("workitem.ended", {"workitemId": "wi-ended", "endedBy": "agent"})
    assert status == 200
    event = sns_event(inbound("Hi, I need help"))
    assert text(w, event) == ["routed"]
    assert text(w, event) == ["duplicate"]
    w.deliver()
    (post,) = hook.requests
    Webhook(secret).verify(post.body, post.headers)
    assert post.json["type"] == "sms.received"
    assert post.json["timestamp"] == "2026-12-07T22:50:01.150Z"
    assert post.json["data"] == {
        "from": CUSTOMER,
        "to": OURS,
        "text": "Hi, I need help",
        "inboundMessageId": "cae173d2-66b9-564c-8309-21f858e9fb84",
    }
    # The routing engine assigns one; the next text joins it.
    assign_sms(w, "wi-next", customer=CUSTOMER)
    assert text(w, sns_event(inbound("Still there?", message_id="b-2"))) == ["applied"]
    assert timeline(w, "wi-next")[-1]["text"] == "Still there?"


# --- what is refused (W14.4) ------------------------------------------------------------------------


def test_a_text_to_a_number_nobody_claimed_is_ignored(w: World, hook: Receiver) -> None:
    subscribe(w, hook.url, ["*"])
    assign_sms(w, "wi-sms")
    assert text(w, sns_event(inbound(destinationNumber="+12065550177"))) == ["ignored"]
    w.deliver()
    assert [r.json["type"] for r in hook.requests] == ["workitem.assigned"]
    assert all(e["kind"] != "customer_message" for e in timeline(w, "wi-sms"))


@pytest.mark.parametrize(
    ("message", "why"),
    [
        ("not json", "not JSON"),
        ("[1, 2]", "object"),
        (inbound(originationNumber="4255550182"), "originationNumber"),
        (inbound(destinationNumber=None), "destinationNumber"),
        (inbound(body="   \u200b "), "visible"),
        (inbound(body="x" * 8001), "longer"),
        (inbound(message_id="has spaces in it"), "inboundMessageId"),
        (inbound(message_id=""), "inboundMessageId"),
        (inbound(messageBody=7), "messageBody"),
    ],
)
def test_a_malformed_text_is_dropped_with_a_log_line_and_writes_nothing(
    w: World, message: Any, why: str, caplog: pytest.LogCaptureFixture
) -> None:
    assign_sms(w, "wi-sms")
    with caplog.at_level("WARNING", logger="chalicelib.entrypoints.events"):
        assert text(w, sns_event(message)) == ["invalid"]
    assert why in caplog.text
    assert "x" * 100 not in caplog.text  # the body is never logged
    assert all(e["kind"] != "customer_message" for e in timeline(w, "wi-sms"))


@pytest.mark.parametrize(
    "event",
    [
        {},
        {"Records": []},
        {"Records": "x"},
        sns_event(inbound(), topic="arn:aws:sns:us-east-1:999999999999:someone-elses-topic"),
        sns_event(inbound(), timestamp="yesterday"),
        {"Records": [{"EventSource": "aws:sqs", "Sns": {}}]},
        {"Records": [{"EventSource": "aws:sns", "Sns": {"Type": "SubscriptionConfirmation"}}]},
    ],
)
def test_what_is_not_a_notification_of_the_stacks_topic_is_refused(w: World, event: dict[str, Any]) -> None:
    assign_sms(w, "wi-sms")
    assert text(w, event) == ["invalid"]
    assert all(e["kind"] != "customer_message" for e in timeline(w, "wi-sms"))


def test_a_keyword_text_is_shown_like_any_other_and_never_answered(w: World) -> None:
    assign_sms(w, "wi-sms")
    assert text(w, sns_event(inbound("STOP", messageKeyword="STOP"))) == ["applied"]
    assert timeline(w, "wi-sms")[-1]["text"] == "STOP"
    w.deliver()
    assert w.sms.snapshot() == []  # nothing texted back
