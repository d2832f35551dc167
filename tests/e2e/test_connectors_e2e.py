"""Connectors on the real local stack (docs/connectors.md): ``POST /_local/sns/sms-inbound`` runs the
``sms_inbound`` function as SNS would, and the text reaches the agent live."""

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
