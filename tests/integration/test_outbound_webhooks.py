"""Outbound webhooks (docs/webhooks.md, docs/product.md W8) through the real entry points: subscriptions
over REST, deliveries queued by the ``fanout`` entry point from the workitems stream, run by the
``deliver_webhooks`` entry point on the queue, to a real receiver on 127.0.0.1."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from tests.support.receiver import Receiver, receiver
from tests.support.world import World

# Tier: from the world fixture's backend (service on memory, integration on moto; tests/conftest.py).
# The receivers listen on 127.0.0.1: the world checks targets as the local stack does.
pytestmark = pytest.mark.local_webhooks


@pytest.fixture
def w(world: World) -> World:
    world.team()
    world.assign("wi-1")
    return world


@pytest.fixture
def hook() -> Iterator[Receiver]:
    with receiver() as r:
        yield r


def subscribe(w: World, url: str, events: list[str], sub: str = "crm", tid: str = "t1") -> dict[str, Any]:
    status, body = w.rest(
        "PUT",
        f"/admin/webhook-subscriptions/{sub}",
        w.token("admin-1", "admin", tid),
        {"url": url, "events": events, "enabled": True},
    )
    assert status == 201, body
    return body


def coach(w: World, text: str = "Offer the refund") -> None:
    sup = w.connect("sup-1", "supervisor")
    sup.ok("monitor.start", workitemId="wi-1")
    sup.ok("coach.send", workitemId="wi-1", text=text)


def test_deliveries_are_signed_per_standard_webhooks_and_a_tampered_body_fails(w: World, hook: Receiver) -> None:
    secret = subscribe(w, hook.url, ["timeline.entry"])["secret"]
    assert secret.startswith("whsec_")
    coach(w)
    assert w.deliver() >= 2
    got = hook.of_type("timeline.entry")
    assert [r.json["data"]["entry"]["kind"] for r in got] == ["supervisor_joined", "coach_message"]
    for r in got:
        payload = Webhook(secret).verify(r.body, r.headers)
        assert payload["type"] == "timeline.entry" and payload["timestamp"].endswith("Z")
        assert r.headers["webhook-id"].startswith("evt_") and r.headers["content-type"] == "application/json"
    message = got[1]
    assert message.json["data"]["entry"]["text"] == "Offer the refund"
    assert message.json["data"]["workitem"]["workitemId"] == "wi-1"
    tampered = message.body.replace(b"Offer the refund", b"Offer a discount")
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(tampered, message.headers)
    with pytest.raises(WebhookVerificationError):  # another subscription's secret
        Webhook("whsec_" + "A" * 43 + "=").verify(message.body, message.headers)
    assert len({r.headers["webhook-id"] for r in got}) == 2


def test_a_500_is_retried_after_the_backoff_with_the_same_webhook_id(w: World, hook: Receiver) -> None:
    secret = subscribe(w, hook.url, ["workitem.ended"])["secret"]
    hook.script.extend([500, 503])
    assert w.webhook("workitem.ended", {"workitemId": "wi-1", "endedBy": "system"})[0] == 200
    w.deliver()
    assert len(hook.requests) == 1
    w.deliver(after_seconds=29)  # the first retry comes 30 s later
    assert len(hook.requests) == 1
    w.deliver(after_seconds=2)
    assert len(hook.requests) == 2
    w.deliver(after_seconds=59)  # then 60 s
    assert len(hook.requests) == 2
    w.deliver(after_seconds=2)
    assert len(hook.requests) == 3
    w.deliver(after_seconds=3600)
    assert len(hook.requests) == 3  # answered 200: done
    assert len({r.headers["webhook-id"] for r in hook.requests}) == 1
    for r in hook.requests:
        assert Webhook(secret).verify(r.body, r.headers)["data"]["workitem"]["status"] == "ended"


def test_subscriptions_get_only_the_event_types_they_name(w: World, hook: Receiver) -> None:
    subscribe(w, hook.url, ["workitem.transferred"], sub="wfm")
    with receiver() as everything:
        subscribe(w, everything.url, ["*"], sub="lake")
        coach(w)
        assert w.webhook("workitem.transferred", {"workitemId": "wi-1", "toAgentId": "agent-2"})[0] == 200
        w.deliver()
        assert {r.json["type"] for r in hook.requests} == {"workitem.transferred"}
        transferred = hook.requests[0].json["data"]
        assert transferred["workitem"]["agentId"] == "agent-2" and transferred["fromAgentId"] == "agent-1"
        assert {r.json["type"] for r in everything.requests} == {"timeline.entry", "workitem.transferred", "presence.changed"}
        w.assign("wi-2")
        w.deliver()
        assert [r.json["data"]["workitem"]["workitemId"] for r in everything.of_type("workitem.assigned")] == ["wi-2"]


def test_receivers_order_timeline_entries_by_seq(w: World, hook: Receiver) -> None:
    subscribe(w, hook.url, ["timeline.entry"])
    coach(w)
    agent = w.connect("agent-1", "agent")
    for i in range(3):
        agent.ok("message.send", workitemId="wi-1", text=f"reply {i}")
    w.deliver()
    seqs = [r.json["data"]["entry"]["seq"] for r in hook.requests]
    assert sorted(seqs) == list(range(1, 6))


def test_subscriptions_are_tenant_scoped(w: World, hook: Receiver) -> None:
    subscribe(w, hook.url, ["*"], sub="other", tid="t2")
    coach(w)
    w.deliver()
    assert hook.requests == []
    t2 = w.token("admin-1", "admin", "t2")
    t1 = w.token("admin-1", "admin", "t1")
    assert w.rest("GET", "/admin/webhook-subscriptions", t1)[1] == {"subscriptions": []}
    assert [s["subscriptionId"] for s in w.rest("GET", "/admin/webhook-subscriptions", t2)[1]["subscriptions"]] == ["other"]
    assert w.rest("DELETE", "/admin/webhook-subscriptions/other", t1)[0] == 404
    assert w.rest("POST", "/admin/webhook-subscriptions/other/rotate-secret", t1)[0] == 404
    assert w.rest("DELETE", "/admin/webhook-subscriptions/other", t2)[0] == 204


def test_only_admins_manage_subscriptions(w: World, hook: Receiver) -> None:
    body = {"url": hook.url, "events": ["*"], "enabled": True}
    for role, sub in (("supervisor", "sup-1"), ("agent", "agent-1")):
        token = w.token(sub, role)
        status, answer = w.rest("PUT", "/admin/webhook-subscriptions/x", token, body)
        assert (status, answer["error"]["code"]) == (403, "forbidden")
        assert w.rest("GET", "/admin/webhook-subscriptions", token)[0] == 403
        assert w.rest("POST", "/admin/webhook-deliveries/replay", token)[0] == 403
    assert w.rest("PUT", "/admin/webhook-subscriptions/x", None, body)[0] == 401
    assert w.admin("GET", "/admin/webhook-subscriptions") == {"subscriptions": []}


def test_secret_only_on_create_and_rotate(w: World, hook: Receiver) -> None:
    created = subscribe(w, hook.url, ["*"])
    assert set(created) == {"subscriptionId", "url", "events", "enabled", "secret"}
    status, updated = w.rest(
        "PUT",
        "/admin/webhook-subscriptions/crm",
        w.token("admin-1", "admin"),
        {"url": hook.url, "events": ["timeline.entry"], "enabled": True},
    )
    assert status == 200 and "secret" not in updated and updated["events"] == ["timeline.entry"]
    listed = w.admin("GET", "/admin/webhook-subscriptions")["subscriptions"]
    assert listed == [{"subscriptionId": "crm", "url": hook.url, "events": ["timeline.entry"], "enabled": True}]
    rotated = w.admin("POST", "/admin/webhook-subscriptions/crm/rotate-secret", {"keepPreviousSeconds": 0})
    assert rotated["secret"].startswith("whsec_") and rotated["secret"] != created["secret"]
    assert "previousSecretUntil" not in rotated
    coach(w)
    w.deliver()
    for r in hook.requests:
        Webhook(rotated["secret"]).verify(r.body, r.headers)
        with pytest.raises(WebhookVerificationError):
            Webhook(created["secret"]).verify(r.body, r.headers)


def signers(request: Any, *secrets: str) -> list[str]:
    """Which of ``secrets`` signed the delivery (read from its headers, whatever the clock says now)."""
    headers = {k.lower(): v for k, v in request.headers.items()}
    sent = set(headers["webhook-signature"].split(" "))
    moment = datetime.fromtimestamp(int(headers["webhook-timestamp"]), UTC)
    body = request.body.decode()
    return [s for s in secrets if Webhook(s).sign(headers["webhook-id"], moment, body) in sent]


def test_a_rotated_secret_keeps_signing_beside_the_new_one_for_a_day_by_default(w: World, hook: Receiver) -> None:
    created = subscribe(w, hook.url, ["timeline.entry"])
    before = w.clock.now()
    rotated = w.admin("POST", "/admin/webhook-subscriptions/crm/rotate-secret")
    until = datetime.fromisoformat(rotated["previousSecretUntil"].replace("Z", "+00:00"))
    assert abs((until - before).total_seconds() - 24 * 3600) < 5
    listed = w.admin("GET", "/admin/webhook-subscriptions")["subscriptions"]
    assert listed[0]["previousSecretUntil"] == rotated["previousSecretUntil"] and "secret" not in listed[0]
    coach(w)
    assert w.deliver() >= 2
    for r in hook.requests:  # a receiver that still has the old secret accepts every delivery, as does one with the new
        Webhook(created["secret"]).verify(r.body, r.headers)
        Webhook(rotated["secret"]).verify(r.body, r.headers)
        assert len(r.headers["webhook-signature"].split(" ")) == 2


def test_the_overlap_ends_on_time_and_zero_retires_the_old_secret_at_once(w: World, hook: Receiver) -> None:
    first = subscribe(w, hook.url, ["timeline.entry"])["secret"]
    second = w.admin("POST", "/admin/webhook-subscriptions/crm/rotate-secret", {"keepPreviousSeconds": 3600})["secret"]
    sup = w.connect("sup-1", "supervisor")
    sup.ok("monitor.start", workitemId="wi-1")
    w.deliver()
    assert [signers(r, first, second) for r in hook.requests] == [[first, second]]
    w.clock.advance(3601)
    sup.ok("coach.send", workitemId="wi-1", text="after the overlap")
    w.deliver()
    assert signers(hook.requests[-1], first, second) == [second]
    assert "previousSecretUntil" not in w.admin("GET", "/admin/webhook-subscriptions")["subscriptions"][0]
    third = w.admin("POST", "/admin/webhook-subscriptions/crm/rotate-secret", {"keepPreviousSeconds": 0})["secret"]
    sup.ok("coach.send", workitemId="wi-1", text="a leaked secret is retired at once")
    w.deliver()
    assert signers(hook.requests[-1], first, second, third) == [third]
    # Editing the subscription keeps its secrets (and an overlap in progress).
    fourth = w.admin("POST", "/admin/webhook-subscriptions/crm/rotate-secret")["secret"]
    w.admin("PUT", "/admin/webhook-subscriptions/crm", {"url": hook.url, "events": ["*"], "enabled": True})
    sup.ok("coach.send", workitemId="wi-1", text="after an edit")
    w.deliver()
    assert signers(hook.requests[-1], third, fourth) == [third, fourth]


@pytest.mark.parametrize(
    "body",
    [
        {"keepPreviousSeconds": -1},
        {"keepPreviousSeconds": 604801},
        {"keepPreviousSeconds": "60"},
        {"keepPreviousSeconds": True},
        {"keepPreviousSeconds": 1.5},
        [],
        "not json",
    ],
)
def test_a_bad_rotation_body_is_400_and_changes_nothing(w: World, hook: Receiver, body: Any) -> None:
    secret = subscribe(w, hook.url, ["timeline.entry"])["secret"]
    token = w.token("admin-1", "admin")
    status, reply = w.rest("POST", "/admin/webhook-subscriptions/crm/rotate-secret", token, body)
    assert status == 400 and reply["error"]["code"] == "invalid", reply
    coach(w)
    w.deliver()
    assert hook.requests and all(signers(r, secret) == [secret] for r in hook.requests)
    assert all(" " not in r.headers["webhook-signature"] for r in hook.requests)


def test_a_disabled_or_deleted_subscription_gets_nothing(w: World, hook: Receiver) -> None:
    subscribe(w, hook.url, ["*"])
    w.admin("PUT", "/admin/webhook-subscriptions/crm", {"url": hook.url, "events": ["*"], "enabled": False})
    coach(w)
    w.deliver()
    assert hook.requests == []
    w.admin("PUT", "/admin/webhook-subscriptions/crm", {"url": hook.url, "events": ["*"], "enabled": True})
    w.connect("agent-1", "agent").ok("message.send", workitemId="wi-1", text="queued before the delete")
    w.admin("DELETE", "/admin/webhook-subscriptions/crm")
    w.deliver()
    assert hook.requests == []


@pytest.mark.parametrize(
    "url",
    [
        "ftp://127.0.0.1/hook",
        "file:///etc/passwd",
        "gopher://127.0.0.1/",
        "javascript:alert(1)",
        "http://169.254.169.254/latest/meta-data/",
        "http://[fe80::1]/hook",
        "http://[::ffff:169.254.169.254]/",
        "http://[fd00:ec2::254]/",
        "http://0.0.0.0:80/",
        # IPv6 forms that reach the metadata service, and deprecated ones: refused on the local stack too
        "http://[64:ff9b::a9fe:a9fe]/",
        "http://[2002:a9fe:a9fe::1]/",
        "http://[::169.254.169.254]/",
        "http://[::127.0.0.1]/",
        "http://[fec0::1]/",
        "http://[2001:0:4136:e378:8000:63bf:5601:5601]/",
        "http://user:pw@127.0.0.1/hook",
        "not a url",
        "https://",
    ],
)
def test_refused_targets_are_400_and_nothing_is_saved(w: World, url: str) -> None:
    status, body = w.rest(
        "PUT", "/admin/webhook-subscriptions/bad", w.token("admin-1", "admin"), {"url": url, "events": ["*"], "enabled": True}
    )
    assert status == 400 and body["error"]["code"] == "invalid", body
    assert w.admin("GET", "/admin/webhook-subscriptions") == {"subscriptions": []}


def test_a_delivery_to_an_ipv6_literal_sends_a_bracketed_host(w: World) -> None:
    with receiver("::1") as v6:
        subscribe(w, v6.url, ["workitem.ended"])
        assert w.webhook("workitem.ended", {"workitemId": "wi-1", "endedBy": "system"})[0] == 200
        w.deliver()
        [got] = v6.wait_for(1)
    port = v6.url.split("]:", 1)[1].split("/", 1)[0]
    assert got.headers["host"] == f"[::1]:{port}"


@pytest.mark.parametrize(
    "body",
    [
        {"url": "http://127.0.0.1:9/h", "events": []},
        {"url": "http://127.0.0.1:9/h", "events": ["coach.secret"]},
        {"url": "http://127.0.0.1:9/h", "events": ["*", "timeline.entry"]},
        {"events": ["*"]},
    ],
)
def test_bad_subscription_bodies_are_400(w: World, body: dict[str, Any]) -> None:
    status, answer = w.rest("PUT", "/admin/webhook-subscriptions/bad", w.token("admin-1", "admin"), body)
    assert status == 400 and answer["error"]["code"] == "invalid", answer


def test_a_name_resolving_to_a_metadata_address_is_refused_at_delivery(
    w: World, monkeypatch: pytest.MonkeyPatch, hook: Receiver
) -> None:
    import socket

    subscribe(w, "http://hooks.example.test/in", ["workitem.ended"])
    real = socket.getaddrinfo

    def resolve(host: str, *args: Any, **kwargs: Any) -> Any:
        if host == "hooks.example.test":
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("169.254.169.254", 80))]
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", resolve)
    assert w.webhook("workitem.ended", {"workitemId": "wi-1", "endedBy": "system"})[0] == 200
    w.deliver()
    assert w.queue.pending() == 1  # not delivered: it waits for its retry (and the address is checked again)


def test_dead_letters_are_replayed_by_an_admin_of_their_tenant(w: World, hook: Receiver) -> None:
    subscribe(w, hook.url, ["workitem.ended"])
    hook.script.extend([500] * 14)
    assert w.webhook("workitem.ended", {"workitemId": "wi-1", "endedBy": "system"})[0] == 200
    w.deliver_for_a_day()
    assert len(hook.requests) == 14 and w.queue.pending() == 0 and len(w.queue.dead) == 1
    assert w.rest("POST", "/admin/webhook-deliveries/replay", w.token("admin-1", "admin", "t2"))[1] == {"replayed": 0}
    assert len(w.queue.dead) == 1
    assert w.admin("POST", "/admin/webhook-deliveries/replay") == {"replayed": 1}
    w.deliver()
    assert len(hook.requests) == 15 and len({r.headers["webhook-id"] for r in hook.requests}) == 1
    assert w.queue.pending() == 0 and len(w.queue.dead) == 0


def test_a_replay_reaches_its_letters_behind_another_tenants_backlog(w: World, hook: Receiver) -> None:
    """Another tenant's 12 dead letters (more than one read of 10) lie in front of this tenant's one: every call of this tenant's
    replay must still find it (and leave the other tenant's letters where they are)."""
    w.team(tid="t2")
    t2 = w.token("admin-1", "admin", "t2")
    for i in range(12):
        w.assign(f"wi-t2-{i}", tid="t2")
    subscribe(w, "http://127.0.0.1:9/refused", ["workitem.ended"], sub="gone", tid="t2")
    for i in range(12):
        assert w.webhook("workitem.ended", {"workitemId": f"wi-t2-{i}", "endedBy": "system"}, tid="t2")[0] == 200
    w.deliver_for_a_day()
    assert len(w.queue.dead) == 12
    subscribe(w, hook.url, ["workitem.ended"])
    hook.script.extend([500] * 14)
    assert w.webhook("workitem.ended", {"workitemId": "wi-1", "endedBy": "system"})[0] == 200
    w.deliver_for_a_day()
    assert len(w.queue.dead) == 13 and len(hook.requests) == 14
    assert w.admin("POST", "/admin/webhook-deliveries/replay") == {"replayed": 1}
    w.deliver()
    assert len(hook.requests) == 15 and len(w.queue.dead) == 12
    assert w.rest("POST", "/admin/webhook-deliveries/replay", t2)[1] == {"replayed": 12}
    assert len(w.queue.dead) == 0


# --- agent messages to customers on social and SMS workitems -----------------------------------


def test_social_agent_messages_go_out_as_timeline_entries_and_report_their_status(w: World, hook: Receiver) -> None:
    w.assign("wi-social", channel="social")
    agent = w.connect("agent-1", "agent")
    agent.ok("message.send", workitemId="wi-social", text="no connector yet")
    w.deliver()
    failed = agent.new_events("message.delivery")
    assert [(e["data"]["seq"], e["data"]["delivery"]) for e in failed] == [(1, "failed")]
    assert "no connector" in failed[0]["data"]["reason"]

    subscribe(w, hook.url, ["timeline.entry"], sub="social-connector")
    hook.script.append(500)
    agent.ok("message.send", workitemId="wi-social", text="Here is your tracking link")
    w.deliver()
    first = agent.new_events("message.delivery")
    assert [(e["data"]["seq"], e["data"]["delivery"]) for e in first] == [(2, "failed")]
    w.deliver(after_seconds=31)
    retried = agent.new_events("message.delivery")
    assert [(e["data"]["seq"], e["data"]["delivery"], e["data"]["entry"]["delivery"]) for e in retried] == [(2, "sent", "sent")]
    out = [r.json["data"] for r in hook.requests]
    assert out[-1]["entry"]["text"] == "Here is your tracking link" and out[-1]["workitem"]["channel"] == "social"
    assert out[-1]["workitem"]["customer"]["id"] == "cust-wi-social"
    entries = agent.ok("timeline.get", workitemId="wi-social", after=0)["entries"]
    assert [(e["seq"], e.get("delivery")) for e in entries] == [(1, "failed"), (2, "sent")]


def test_an_sms_without_an_origination_identity_is_failed_not_silent(w: World) -> None:
    w.assign("wi-sms", channel="sms")
    agent = w.connect("agent-1", "agent")
    agent.ok("message.send", workitemId="wi-sms", text="hello")
    w.deliver()
    assert w.sms.snapshot() == []
    status = agent.events("message.delivery")
    assert [e["data"]["delivery"] for e in status] == ["failed"]
    assert "origination" in status[0]["data"]["reason"]


def test_sms_settings_are_admin_only_and_validated(w: World) -> None:
    assert w.rest("PUT", "/admin/sms-settings", w.token("sup-1", "supervisor"), {"originationIdentity": "+15550000001"})[0] == 403
    assert w.rest("PUT", "/admin/sms-settings", w.token("admin-1", "admin"), {"originationIdentity": ""})[0] == 400
    assert w.rest("PUT", "/admin/sms-settings", w.token("admin-1", "admin"), {"originationIdentity": 5})[0] == 400
    assert w.admin("PUT", "/admin/sms-settings", {"originationIdentity": "pool-abc"}) == {"originationIdentity": "pool-abc"}
    assert w.admin("GET", "/admin/sms-settings") == {"originationIdentity": "pool-abc"}
    assert w.admin("GET", "/admin/sms-settings", tid="t2") == {"originationIdentity": None}


def test_coaching_is_never_delayed_by_a_slow_receiver(w: World, hook: Receiver) -> None:
    """The action answers without waiting for any delivery: deliveries only run from the queue."""
    subscribe(w, hook.url, ["*"])
    hook.delay = 5.0
    import time

    started = time.monotonic()
    coach(w)
    assert time.monotonic() - started < 4.0
    assert hook.requests == [] and w.queue.pending() >= 2
    hook.delay = 0.0
    w.deliver()
    assert json.loads(hook.requests[0].body)["type"] == "timeline.entry"


# --- assistance and presence events (queued by their handlers, expanded by the delivery function) ---


def test_assistance_and_presence_events_reach_their_subscribers(w: World, hook: Receiver) -> None:
    secret = subscribe(w, hook.url, ["assist.requested", "assist.claimed", "presence.changed"])["secret"]
    w.admin("PUT", "/admin/templates/tpl-help", {"text": "Need help", "enabled": True})
    agent = w.connect("agent-1", "agent")
    sup = w.connect("sup-1", "supervisor")
    assist_id = agent.ok("assist.request", templateId="tpl-help", to="supervisors", workitemId="wi-1")["assistId"]
    sup.ok("assist.claim", assistId=assist_id)
    sup.ok("presence.set", state="not_ready")
    w.deliver()
    got = {r.json["type"]: r for r in hook.requests}
    for r in hook.requests:
        Webhook(secret).verify(r.body, r.headers)
    assert got["assist.requested"].json["data"]["assistId"] == assist_id
    assert got["assist.claimed"].json["data"]["supervisorId"] == "sup-1"
    states = [(r.json["data"]["userId"], r.json["data"]["state"]) for r in hook.requests if r.json["type"] == "presence.changed"]
    assert ("sup-1", "not_ready") in states
    assert "timeline.entry" not in got  # not subscribed


@pytest.mark.moto
def test_assistance_events_cost_no_dynamodb_request_on_the_handler(w: World, hook: Receiver) -> None:
    from tests.support.ddbcount import count_dynamodb

    subscribe(w, hook.url, ["presence.changed"])
    sup = w.connect("sup-1", "supervisor")
    with count_dynamodb() as log:
        sup.ok("presence.set", state="not_ready")
    assert log.total == 1  # the endpoint UpdateItem, as before subscriptions existed
    assert w.queue.pending() >= 1
