"""Connectors on the real local stack (docs/connectors.md): ``POST /_local/sns/sms-inbound`` runs the
``sms_inbound`` function as SNS would, and the text reaches the agent live; ``POST /_local/events`` and
``POST /_local/sns/connect-chat`` run ``connect_events`` with a contact event and a streamed chat item."""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest

from tests.e2e.tenant import Tenant

if TYPE_CHECKING:
    from tests.e2e.conftest import Stack

pytestmark = pytest.mark.e2e


@pytest.fixture
def tenant(stack: Stack) -> Iterator[Tenant]:
    t = Tenant(stack)
    t.teams(("team-1", ("sup-1",), ("agent-1",)))
    yield t
    t.close()


def number() -> str:
    return "+1206" + "".join(secrets.choice("0123456789") for _ in range(7))


def sms(ours: str, customer: str, body: str, message_id: str | None = None) -> dict[str, Any]:
    return {
        "originationNumber": customer,
        "destinationNumber": ours,
        "messageBody": body,
        "inboundMessageId": message_id or str(uuid.uuid4()),
        "messageKeyword": "KEYWORD_000000000000",
    }


def test_a_text_to_the_tenants_number_reaches_the_agent_live(tenant: Tenant) -> None:
    ours, customer = number(), number()
    status, body = tenant.stack.rest("PUT", "/admin/sms-settings", tenant.admin_token, {"originationIdentity": ours})
    assert status == 200 and body["phoneNumber"] == ours, body
    status, body = tenant.webhook(
        "workitem.assigned",
        {"workitemId": "wi-sms", "channel": "sms", "agentId": "agent-1", "customer": {"id": customer, "name": "Casey"}},
    )
    assert status == 200, body
    agent = tenant.connect("agent-1", "agent")
    message = sms(ours, customer, "Is my order on its way?")
    assert tenant.stack.rest("POST", "/_local/sns/sms-inbound", None, message) == (202, {"outcome": "applied"})
    pushed = agent.wait_event("message.received")
    assert pushed["data"]["entry"]["text"] == "Is my order on its way?"
    assert tenant.stack.rest("POST", "/_local/sns/sms-inbound", None, message) == (202, {"outcome": "duplicate"})


def test_a_body_that_is_not_an_inbound_text_is_400(stack: Stack) -> None:
    status, body = stack.rest("POST", "/_local/sns/sms-inbound", None, {"originationNumber": "+14255550100"})
    assert status == 400 and body["error"]["code"] == "invalid", body
    status, body = stack.rest("POST", "/_local/sns/sms-inbound", None, ["not", "an", "object"])
    assert status == 400 and body["error"]["code"] == "invalid", body


DEMO_INSTANCE = "arn:aws:connect:us-east-1:000000000000:instance/00000000-0000-4000-8000-000000000001"


def contact_event(kind: str, contact: str, connect_user: str, **detail: Any) -> dict[str, Any]:
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Amazon Connect Contact Event",
        "source": "aws.connect",
        "account": "000000000000",
        "time": "2026-12-07T22:50:00Z",
        "region": "us-east-1",
        "resources": [DEMO_INSTANCE],
        "detail": {
            "eventType": kind,
            "contactId": contact,
            "channel": "CHAT",
            "instanceArn": DEMO_INSTANCE,
            "initiationMethod": "API",
            "agentInfo": {"agentArn": f"{DEMO_INSTANCE}/agent/{connect_user}"},
            **detail,
        },
    }


def test_a_connect_chat_is_assigned_and_ends_after_the_grace(tenant: Tenant) -> None:
    connect_user = str(uuid.uuid4())
    status, body = tenant.stack.rest(
        "PUT",
        "/admin/connectors/amazon-connect",
        tenant.admin_token,
        {"instanceArn": DEMO_INSTANCE, "agents": {connect_user: "agent-1"}},
    )
    if status == 409:  # another run's tenant holds the demo instance on a long-lived stack
        pytest.skip("the demo instance belongs to another tenant of this stack")
    assert status == 200, body
    agent = tenant.connect("agent-1", "agent")
    sup = tenant.connect("sup-1", "supervisor")
    sup.ok("agent.watch", agentId="agent-1")  # a watching dashboard learns of the end (B1)
    contact = str(uuid.uuid4())
    assert tenant.stack.rest("POST", "/_local/events", None, contact_event("CONNECTED_TO_AGENT", contact, connect_user)) == (
        202,
        {"outcome": "applied"},
    )
    assigned = agent.wait_event("workitem.assigned")
    assert assigned["data"]["workitem"]["workitemId"] == f"connect-{contact}"
    # The chat's items, as Connect streams them: the customer's line reaches the agent live, once.
    line = {
        "AbsoluteTime": "2026-12-07T22:50:05.656Z",
        "Content": "my parcel never came",
        "ContentType": "text/plain",
        "Id": str(uuid.uuid4()),
        "Type": "MESSAGE",
        "ParticipantRole": "CUSTOMER",
        "DisplayName": "Jane",
        "InitialContactId": contact,
        "ContactId": contact,
    }
    typing = {
        **line,
        "Id": str(uuid.uuid4()),
        "Type": "EVENT",
        "Content": "",
        "ContentType": "application/vnd.amazonaws.connect.event.typing",
    }
    assert tenant.stack.rest("POST", "/_local/sns/connect-chat", None, typing) == (202, {"outcome": "skipped"})
    assert tenant.stack.rest("POST", "/_local/sns/connect-chat", None, line) == (202, {"outcome": "applied"})
    assert tenant.stack.rest("POST", "/_local/sns/connect-chat", None, line) == (202, {"outcome": "duplicate"})
    received = agent.wait_event("message.received")
    assert received["data"]["entry"]["text"] == "my parcel never came"
    status, body = tenant.stack.rest("POST", "/_local/sns/connect-chat", None, {**line, "Id": "not an id"})
    assert status == 400 and body["error"]["code"] == "invalid", body
    event = contact_event("DISCONNECTED", contact, connect_user, disconnectReason="AGENT_DISCONNECT")
    assert tenant.stack.rest("POST", "/_local/events", None, event) == (202, {"outcome": "scheduled"})
    ended = sup.wait_event("workitem.ended", timeout=15)
    assert ended["data"]["workitem"]["workitemId"] == f"connect-{contact}"
    assert ended["data"]["workitem"]["status"] == "ended"


def test_an_event_that_is_not_a_contact_event_is_400(stack: Stack) -> None:
    status, body = stack.rest("POST", "/_local/events", None, {"source": "aws.connect"})
    assert status == 400 and body["error"]["code"] == "invalid", body
