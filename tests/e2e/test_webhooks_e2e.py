"""Outbound webhooks and channel delivery on the real local stack: a receiver on 127.0.0.1 gets signed
deliveries through the same queue-driven delivery function as on AWS (retries after 1 s here)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import datetime
from typing import TYPE_CHECKING

import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from tests.e2e.tenant import Tenant
from tests.support.receiver import Receiver, blackhole, receiver

if TYPE_CHECKING:
    from tests.e2e.conftest import Stack

pytestmark = pytest.mark.e2e


@pytest.fixture
def tenant(stack: Stack) -> Iterator[Tenant]:
    t = Tenant(stack)
    t.teams(("team-1", ("sup-1",), ("agent-1", "agent-2")))
    yield t
    t.close()


@pytest.fixture
def hook() -> Iterator[Receiver]:
    with receiver() as r:
        yield r


def subscribe(tenant: Tenant, url: str, events: list[str], sub: str = "crm") -> str:
    status, body = tenant.stack.rest(
        "PUT", f"/admin/webhook-subscriptions/{sub}", tenant.admin_token, {"url": url, "events": events, "enabled": True}
    )
    assert status == 201, body
    secret: str = body["secret"]
    return secret


def test_coaching_reaches_a_local_receiver_signed(tenant: Tenant, hook: Receiver) -> None:
    secret = subscribe(tenant, hook.url, ["timeline.entry", "workitem.ended"])
    tenant.assign("wi-1")
    sup = tenant.connect("sup-1", "supervisor")
    sup.ok("monitor.start", workitemId="wi-1")
    entry = sup.ok("coach.send", workitemId="wi-1", text="Offer the refund")["entry"]
    assert tenant.webhook("workitem.ended", {"workitemId": "wi-1", "endedBy": "system"})[0] == 200
    got = hook.wait_for(5)
    kinds = [(r.json["type"], r.json["data"].get("entry", {}).get("kind")) for r in got]
    assert ("timeline.entry", "coach_message") in kinds and ("workitem.ended", None) in kinds, kinds
    for r in got:
        Webhook(secret).verify(r.body, r.headers)
    coach = next(r for r in got if r.json["data"].get("entry", {}).get("seq") == entry["seq"])
    assert coach.json["data"]["entry"]["text"] == "Offer the refund"
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(coach.body.replace(b"refund", b"rebate"), coach.headers)
    assert all(r.json["type"] != "workitem.assigned" for r in got)  # not subscribed


def test_a_500_is_retried_with_the_same_webhook_id(tenant: Tenant, hook: Receiver) -> None:
    secret = subscribe(tenant, hook.url, ["workitem.assigned"])
    hook.script.extend([500, 502])
    tenant.assign("wi-2")
    got = hook.wait_for(3, timeout=15)
    assert len(got) == 3, [r.headers.get("webhook-id") for r in got]
    assert len({r.headers["webhook-id"] for r in got}) == 1
    assert got[2].at - got[1].at >= 1.5  # backoff doubles: 1 s, then 2 s
    for r in got:
        assert Webhook(secret).verify(r.body, r.headers)["data"]["workitem"]["workitemId"] == "wi-2"


def test_other_tenants_and_other_types_are_not_delivered(stack: Stack, tenant: Tenant, hook: Receiver) -> None:
    subscribe(tenant, hook.url, ["workitem.ended"])
    other = Tenant(stack)
    try:
        other.teams(("team-1", ("sup-1",), ("agent-1",)))
        other.assign("wi-x")
        assert other.webhook("workitem.ended", {"workitemId": "wi-x", "endedBy": "system"})[0] == 200
        tenant.assign("wi-3")
        assert tenant.webhook("workitem.ended", {"workitemId": "wi-3", "endedBy": "agent"})[0] == 200
        got = hook.wait_for(1)
        time.sleep(1.0)
        assert [(r.json["type"], r.json["data"]["workitem"]["workitemId"]) for r in hook.requests] == [("workitem.ended", "wi-3")]
        assert got
    finally:
        other.close()


def test_only_admins_and_only_allowed_targets(stack: Stack, tenant: Tenant, hook: Receiver) -> None:
    body = {"url": hook.url, "events": ["*"], "enabled": True}
    status, answer = stack.rest("PUT", "/admin/webhook-subscriptions/x", tenant.token("sup-1", "supervisor"), body)
    assert (status, answer["error"]["code"]) == (403, "forbidden")
    refused = (
        "http://169.254.169.254/latest/meta-data/",
        "http://[fe80::1]/",
        "ftp://127.0.0.1/x",
        "http://[64:ff9b::a9fe:a9fe]/",  # the metadata service through NAT64, 6to4, IPv4-compatible
        "http://[2002:a9fe:a9fe::1]/",
        "http://[::169.254.169.254]/",
        "http://[fec0::1]/",
        "http://[fd00:ec2::254]/",
    )
    for url in refused:
        status, answer = stack.rest("PUT", "/admin/webhook-subscriptions/x", tenant.admin_token, {**body, "url": url})
        assert (status, answer["error"]["code"]) == (400, "invalid"), url
    assert tenant.admin("GET", "/admin/webhook-subscriptions") == {"subscriptions": []}


def test_sms_messages_are_recorded_locally_and_reported_sent(stack: Stack, tenant: Tenant) -> None:
    tenant.admin("PUT", "/admin/sms-settings", {"originationIdentity": "+15550001111"})
    tenant.assign("wi-sms", channel="sms")
    agent = tenant.connect("agent-1", "agent")
    entry = agent.ok("message.send", workitemId="wi-sms", text="Your parcel ships today")["entry"]
    status = agent.wait_event("message.delivery", timeout=10)
    assert (status["data"]["messageId"], status["data"]["delivery"]) == (entry["messageId"], "sent")
    code, recorded = stack.rest("GET", "/_local/outbound")
    assert code == 200
    mine = [s for s in recorded["sms"] if s["tenantId"] == tenant.tid]
    assert [(s["from"], s["to"], s["text"]) for s in mine] == [("+15550001111", "cust-wi-sms", "Your parcel ships today")]
    assert any("would send SMS" in line for line in stack.output)


def test_a_tenant_whose_receivers_never_answer_delays_no_other_tenant(stack: Stack, hook: Receiver) -> None:
    """W8.7: a delivery to a responsive receiver starts within 5 s of its event, whatever other tenants'
    receivers do. The noisy tenant has 20 subscriptions to a receiver that accepts connections and never
    answers, and 10 presence changes: 200 deliveries that each hold a post for 10 s."""
    noisy, quiet = Tenant(stack), Tenant(stack)
    try:
        noisy.teams(("team-1", ("sup-1",), ("agent-1",)))
        quiet.teams(("team-1", ("sup-1",), ("agent-1",)))
        with blackhole() as hole:
            for i in range(20):
                subscribe(noisy, hole.url, ["presence.changed"], sub=f"dead-{i}")
            subscribe(quiet, hook.url, ["presence.changed"])
            loud = noisy.connect("sup-1", "supervisor")
            calm = quiet.connect("sup-1", "supervisor")
            for i in range(10):
                loud.ok("presence.set", state=("not_ready", "available")[i % 2])
            sent = 8
            for i in range(sent):
                calm.ok("presence.set", state=("not_ready", "available")[i % 2])
                time.sleep(0.5)
            got = hook.wait_for(sent, timeout=30)
            assert hole.accepted > 0  # the noise was real: posts to the receiver that never answers were underway
            late = sorted(
                round(r.at - datetime.fromisoformat(r.json["timestamp"].replace("Z", "+00:00")).timestamp(), 2) for r in got
            )
            assert len(got) >= sent and late[-1] < 5.0, late
    finally:
        for i in range(20):  # what the noisy tenant still has queued is dropped at its next attempt
            noisy.stack.rest("DELETE", f"/admin/webhook-subscriptions/dead-{i}", noisy.admin_token)
        noisy.close()
        quiet.close()
