"""Two-way SMS storage on DynamoDB Local (docs/connectors.md): the number's claim is a conditional
transaction whose refusal names the claim, and the sparse active-SMS index (``gsi2``) finds the
customer's most recently active workitem, and forgets it once it ends."""

from __future__ import annotations

import uuid

import pytest

from chalicelib.entrypoints import events
from tests.ddblocal.conftest import TenantWorld
from tests.integration.test_inbound_sms import inbound, sns_event

pytestmark = pytest.mark.ddblocal


def _number() -> str:
    return "+1206" + str(uuid.uuid4().int)[:7]


def _assign(w: TenantWorld, workitem_id: str, customer: str, agent: str = "agent-1") -> None:
    status, body = w.webhook(
        "workitem.assigned",
        {"workitemId": workitem_id, "channel": "sms", "agentId": agent, "customer": {"id": customer, "name": "Casey"}},
    )
    assert status == 200, body


def test_claims_and_the_active_sms_index_on_the_real_engine(ddb_world: TenantWorld) -> None:
    w = ddb_world
    ours, other, customer = _number(), _number(), _number()
    w.team()
    assert w.admin("PUT", "/admin/sms-settings", {"originationIdentity": ours})["phoneNumber"] == ours
    status, body = w.rest(
        "PUT", "/admin/sms-settings", w.token("admin-1", "admin", tid=w.tid + "-b"), {"originationIdentity": ours}
    )
    assert status == 409, body
    # Moving to another number frees the first: the other tenant may take it then.
    w.admin("PUT", "/admin/sms-settings", {"originationIdentity": "pool-1", "phoneNumber": other})
    assert w.admin("PUT", "/admin/sms-settings", {"originationIdentity": ours}, tid=w.tid + "-b")["phoneNumber"] == ours
    store = w.services.integrations.store
    assert (store.claimant("sms", ours), store.claimant("sms", other)) == (w.tid + "-b", w.tid)

    _assign(w, "wi-a", customer)
    w.clock.advance(5)
    _assign(w, "wi-b", customer, agent="agent-2")
    found = w.store.active_sms(w.tid, customer)
    assert found is not None and found.workitem_id == "wi-b"
    w.clock.advance(5)
    agent = w.connect("agent-1", "agent")
    agent.ok("message.send", workitemId="wi-a", text="Anything else?")
    assert events.on_sms_inbound(sns_event(inbound("one more thing", destinationNumber=other, originationNumber=customer)))[
        "outcomes"
    ] == ["applied"]
    w.pump()
    entries = w.connect("sup-1", "supervisor").ok("timeline.get", workitemId="wi-a", after=0)["entries"]
    assert entries[-1]["text"] == "one more thing"
    # Ended workitems leave the index.
    for wid in ("wi-a", "wi-b"):
        assert w.webhook("workitem.ended", {"workitemId": wid, "endedBy": "customer"})[0] == 200
    assert w.store.active_sms(w.tid, customer) is None
