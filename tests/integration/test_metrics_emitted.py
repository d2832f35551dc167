"""The product's metrics (docs/operations.md) through the real entry points: what each path records, read
back from the EMF lines as CloudWatch would, and never a tenant, user or workitem id as a dimension."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from chalicelib import metrics
from chalicelib.entrypoints import events, ws
from tests.support import emf
from tests.support.receiver import Receiver, receiver
from tests.support.world import World

# Tier: from the world fixture's backend (service on memory, integration on moto; tests/conftest.py).


@pytest.fixture
def w(world: World) -> World:
    world.team()
    world.assign("wi-1")
    return world


@pytest.fixture
def captured() -> Iterator[emf.Capture]:
    with emf.capture() as c:
        yield c


@pytest.fixture
def hook() -> Iterator[Receiver]:
    with receiver() as r:
        yield r


IDS = {"t1", "sup-1", "sup-2", "agent-1", "agent-2", "admin-1", "wi-1", "cust-wi-1", "crm"}


def _no_ids_as_dimensions(captured: emf.Capture) -> None:
    values = {v for p in captured.points() for _, v in p.dimensions}
    assert not values & IDS, sorted(values & IDS)
    assert all(name in metrics.CATALOGUE for name in {p.name for p in captured.points()})


def test_each_action_is_counted_and_timed_and_its_refusals_and_errors_told_apart(
    w: World, captured: emf.Capture, monkeypatch: pytest.MonkeyPatch
) -> None:
    sup = w.connect("sup-1", "supervisor")
    sup.ok("monitor.start", workitemId="wi-1")
    sup.ok("coach.send", workitemId="wi-1", text="Offer the refund")
    sup.fails("coach.send", "invalid", workitemId="wi-1", text="")
    sup.fails("no.such.action", "invalid")
    assert sup.send_raw("not json")["error"]["code"] == "invalid"

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("a bug")

    monkeypatch.setattr(w.services.coaching, "coach_react", broken)
    sup.fails("coach.react", "internal", workitemId="wi-1", messageId="m1", reaction="thumbs_up")

    assert captured.total("Actions", Action="coach.send") == 2
    assert captured.total("ActionRefusals", Action="coach.send") == 1
    assert captured.total("ActionErrors", Action="coach.send") == 0
    assert captured.total("ActionErrors", Action="coach.react") == 1
    # What no action handled is counted under one fixed name, never the client's text.
    assert captured.total("ActionRefusals", Action=ws.UNROUTED) == 2
    assert not captured.points("Actions", Action="no.such.action")
    latencies = captured.samples("ActionLatency", Action="monitor.start")
    assert len(latencies) == 1 and 0 <= latencies[0] < 10_000
    assert captured.total("Actions") == 6  # the stack-wide total an alarm reads
    assert captured.total("ActionErrors") == 1
    _no_ids_as_dimensions(captured)


def test_rest_requests_are_counted_by_route_template(w: World, captured: emf.Capture) -> None:
    assert w.rest("GET", "/admin/policy", w.token("admin-1", "admin"))[0] == 200
    assert w.rest("GET", "/admin/policy", w.token("sup-1", "supervisor"))[0] == 403
    assert w.rest("PUT", "/admin/users/sup-9", w.token("admin-1", "admin"), {"name": "S", "role": "supervisor"})[0] < 300
    assert captured.total("Actions", Action="GET /admin/policy") == 2
    assert captured.total("ActionRefusals", Action="GET /admin/policy") == 1
    assert captured.total("Actions", Action="PUT /admin/users/{userId}") == 1
    assert not [p for p in captured.points() if "sup-9" in json.dumps(p.dimensions)]
    _no_ids_as_dimensions(captured)


def test_fanout_records_how_late_each_change_was_posted(w: World, captured: emf.Capture) -> None:
    sup = w.connect("sup-1", "supervisor")
    agent = w.connect("agent-1", "agent")
    fast = w.connect("agent-1", "agent", delivery="fast")
    sup.ok("monitor.start", workitemId="wi-1")
    captured.samples("CommitToPostDelay")  # what came before
    captured.lines.clear()
    on_time = w.pump

    def two_seconds_late() -> int:
        w.clock.advance(2.0)  # the stream hands the change over two seconds after its commit
        return on_time()

    w.pump = two_seconds_late  # type: ignore[method-assign]
    sup.ok("coach.send", workitemId="wi-1", text="Offer the refund")
    assert agent.events("coach.message")
    [delay] = captured.samples("CommitToPostDelay", Path="stream")
    assert 2000 <= delay < 2000 + 5_000, delay
    # The fast connection got it from the handler, before the stream's two seconds (W15.2).
    [fast_delay] = captured.samples("CommitToPostDelay", Path="fast")
    assert 0 <= fast_delay < 2000 and len(fast.events("coach.message")) == 2  # then the stream's copy


@pytest.mark.local_webhooks  # the receiver listens on 127.0.0.1
def test_webhook_deliveries_are_counted_by_outcome(w: World, captured: emf.Capture, hook: Receiver) -> None:
    w.rest(
        "PUT",
        "/admin/webhook-subscriptions/crm",
        w.token("admin-1", "admin"),
        {"url": hook.url, "events": ["timeline.entry"], "enabled": True},
    )
    hook.script.append(500)
    sup = w.connect("sup-1", "supervisor")
    sup.ok("monitor.start", workitemId="wi-1")
    w.deliver()
    assert captured.total("WebhookDeliveries", Outcome="failed") == 1
    w.deliver(after_seconds=3600)
    assert captured.total("WebhookDeliveries", Outcome="delivered") == 1
    w.admin("DELETE", "/admin/webhook-subscriptions/crm")
    sup.ok("coach.send", workitemId="wi-1", text="Offer the refund")
    w.deliver()
    # The subscription is gone: whatever was queued for it is dropped and counted so, never posted.
    assert captured.total("WebhookDeliveries", Outcome="delivered") == 1
    _no_ids_as_dimensions(captured)


def test_a_delivery_the_queue_refuses_is_counted(w: World, captured: emf.Capture, monkeypatch: pytest.MonkeyPatch) -> None:
    w.rest(
        "PUT",
        "/admin/webhook-subscriptions/crm",
        w.token("admin-1", "admin"),
        {"url": "https://crm.example.com/hooks", "events": ["timeline.entry", "presence.changed"], "enabled": True},
    )

    def refused(messages: list[Any]) -> list[Any]:
        raise RuntimeError("SQS refused 2 webhook deliveries: KMS.ThrottlingException")

    sup = w.connect("sup-1", "supervisor")
    monkeypatch.setattr(w.queue, "send", refused)
    sup.ok("monitor.start", workitemId="wi-1")  # its timeline entry is one delivery for the subscription
    assert captured.total("WebhookEnqueueFailures") == 1
    sup.ok("presence.set", state="not_ready")  # presence.changed: one event message for the delivery function
    assert captured.total("WebhookEnqueueFailures") == 2
    assert len(w.queue.dead) == 2  # not dropped: kept in the dead-letter queue for a replay


def test_the_authorizer_counts_accepted_refused_and_failed_connects(
    w: World, captured: emf.Capture, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert w.connect_token(w.token("sup-1", "supervisor"))[0] == 200
    assert w.connect_token("not-a-token")[0] == 401
    assert w.connect_token(w.token("sup-1", "supervisor", ttl_seconds=-3600))[0] == 401

    def unreadable(token: str | None) -> Any:
        raise PermissionError("AccessDeniedException: ssm:GetParameter")  # what a missing grant looks like

    monkeypatch.setattr(w.services.tokens, "verify", unreadable)
    with pytest.raises(PermissionError):
        ws.authorize({"queryStringParameters": {"token": "x"}, "methodArn": "arn:test"})
    assert captured.total("Connects", Outcome="accepted") == 1
    assert captured.total("Connects", Outcome="refused") == 2
    assert captured.total("Connects", Outcome="failed") == 1


def test_the_escalation_sweep_counts_escalations_and_failures(
    w: World, captured: emf.Capture, monkeypatch: pytest.MonkeyPatch
) -> None:
    w.admin("PUT", "/admin/templates/tpl-help", {"text": "Help", "enabled": True})
    w.admin("PUT", "/admin/policy", {"recordCoaching": False, "escalationSeconds": 30, "retentionDays": 30})
    agent = w.connect("agent-1", "agent")
    w.connect("sup-1", "supervisor")
    agent.ok("assist.request", templateId="tpl-help", to="supervisors")
    w.clock.advance(31)
    assert events.escalate()["escalated"] == 1
    assert captured.total("Escalations") == 1
    store = w.services.assistance.store

    def down(*args: Any, **kwargs: Any) -> Any:
        raise ConnectionError("the store did not answer")

    monkeypatch.setattr(store, "due", down)
    with pytest.raises(ConnectionError):
        events.escalate()
    assert captured.total("EscalationFailures") == 1
