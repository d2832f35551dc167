"""Every action's DynamoDB requests, counted with botocore hooks, against docs/data-model.md (on moto;
the same counts in a tenant of 1500 users: tests/ddblocal/test_tenant_size.py)."""

from __future__ import annotations

import pytest

from tests.support.budgets import budgets
from tests.support.ddbcount import count_dynamodb
from tests.support.scenario import SUBSCRIPTION, measure
from tests.support.world import World

pytestmark = [pytest.mark.integration, pytest.mark.moto]


def test_every_action_within_budget(world: World) -> None:
    """Every action's requests in a small tenant, against docs/data-model.md (that they do not grow
    with the tenant's size: tests/ddblocal/test_tenant_size.py, on a tenant of 1500 users)."""
    counts = measure(world, "small", 6)
    budget = budgets()
    for name, count in counts.items():
        assert name in budget, f"{name} has no budget in docs/data-model.md"
        assert count <= budget[name], f"{name}: {count} requests > budget {budget[name]}"
    assert counts["coach.send"] <= 3


def test_coach_send_is_three_requests_with_many_monitors(world: World) -> None:
    sups = tuple(f"sup-{i}" for i in range(12))
    world.team(supervisors=sups, agents=("agent-1",))
    for n in range(3):
        world.admin("PUT", f"/admin/webhook-subscriptions/sub-{n}", SUBSCRIPTION)
    world.assign("wi-1")
    agent = world.connect("agent-1", "agent")
    clients = [world.connect(s, "supervisor") for s in sups]
    for c in clients:
        c.ok("monitor.start", workitemId="wi-1")
    queued = world.queue.pending()
    with count_dynamodb() as log:
        agent.ok("coach.send", workitemId="wi-1", text="thanks all")
    assert log.by_operation() == {"GetItem": 1, "TransactWriteItems": 1, "BatchGetItem": 1}
    assert all(c.events("coach.message") for c in clients)
    assert world.queue.pending() == queued + 3  # the entry queued for each subscription, for no request


def test_rest_requests_read_the_callers_revocation_once(world: World) -> None:
    world.team(supervisors=("sup-1",), agents=("agent-1",))
    with count_dynamodb() as log:
        status, _ = world.rest("GET", "/me/settings", world.token("sup-1", "supervisor"))
    assert status == 200 and log.by_operation() == {"GetItem": 2}  # revocation, then the settings
    with count_dynamodb() as log:
        status, _ = world.rest("GET", "/me/settings", world.token("cust-1", "customer", wid="wi-1"))
    assert status == 403 and log.total == 0  # customers are not directory users: nothing to revoke


def test_attention_rule_routes(world: World) -> None:
    """docs/data-model.md: PUT is Query + PutItem, GET a Query, DELETE a DeleteItem and a Query of the
    tenant's alerts (each after the caller's revocation GetItem); a refused body costs no more than that
    read."""
    admin = world.token("admin-1", "admin")
    rule = {"kind": "keyword", "phrases": ["refund"]}
    with count_dynamodb() as log:
        assert world.rest("PUT", "/admin/attention-rules/r1", admin, rule)[0] == 201
    assert log.by_operation() == {"GetItem": 1, "Query": 1, "PutItem": 1}
    with count_dynamodb() as log:
        assert world.rest("GET", "/admin/attention-rules", admin)[0] == 200
    assert log.by_operation() == {"GetItem": 1, "Query": 1}
    with count_dynamodb() as log:
        assert world.rest("PUT", "/admin/attention-rules/r1", admin, {**rule, "seconds": 30})[0] == 400
    assert log.by_operation() == {"GetItem": 1}
    with count_dynamodb() as log:
        assert world.rest("DELETE", "/admin/attention-rules/r1", admin)[0] == 204
    assert log.by_operation() == {"GetItem": 1, "DeleteItem": 1, "Query": 1}  # + the tenant's alerts, to clear the rule's


def test_delivery_requests_per_event(world: World) -> None:
    """What one event costs in the delivery function (docs/data-model.md): 1 GetItem (the subscription,
    with its receiver's health) per delivery; to a receiver not known to be fast, + 2 UpdateItem taking
    and leaving a slow-lane place, + 1 UpdateItem when the receiver's health changes."""
    world.team()
    world.admin("PUT", "/admin/webhook-subscriptions/sub-1", {**SUBSCRIPTION, "events": ["timeline.entry", "workitem.assigned"]})
    world.assign("wi-1")
    world.queue_time += 10**6
    world.deliver()  # the assignment's delivery (its host does not resolve: it waits for its retry)
    world.queue_time += 10**6
    sup = world.connect("sup-1", "supervisor")
    sup.ok("monitor.start", workitemId="wi-1")
    with count_dynamodb() as log:
        ran = world.deliveries.drain(rounds=1)
    assert ran == 2  # supervisor_joined now, the assignment's retry
    # Both to a receiver that fails (not known to be fast): the lane's place, taken and left, and the
    # failure counted on the subscription.
    assert log.by_operation() == {"GetItem": 2, "UpdateItem": 6}


@pytest.mark.local_webhooks  # the receiver listens on 127.0.0.1
def test_a_delivery_to_a_fast_receiver_is_one_get_item(world: World) -> None:
    from tests.support.receiver import receiver

    world.team()
    with receiver() as hook:
        world.admin(
            "PUT", "/admin/webhook-subscriptions/sub-1", {"url": hook.url, "events": ["workitem.assigned"], "enabled": True}
        )
        world.assign("wi-1")
        with count_dynamodb() as first:
            world.deliver()
        world.assign("wi-2")
        with count_dynamodb() as then:
            world.deliver()
    assert first.by_operation() == {"GetItem": 1, "UpdateItem": 3}  # the lane, then the receiver turns fast
    assert then.by_operation() == {"GetItem": 1}
    assert len(hook.requests) == 2


def test_an_inbound_text_is_four_requests_at_most(world: World) -> None:
    """docs/data-model.md, "SNS inbound text": the claim, the index, then the workitem and its
    transaction, or the idempotency key alone (and one SQS message) when no workitem is active."""
    from chalicelib.entrypoints import events
    from tests.integration.test_inbound_sms import CUSTOMER, OURS, inbound, sns_event

    world.team()
    world.admin("PUT", "/admin/sms-settings", {"originationIdentity": OURS})
    with count_dynamodb() as routed:
        assert events.on_sms_inbound(sns_event(inbound("hi", message_id="m-1")))["outcomes"] == ["routed"]
    assert routed.by_operation() == {"GetItem": 1, "Query": 1, "PutItem": 1}
    status, _ = world.webhook(
        "workitem.assigned",
        {"workitemId": "wi-sms", "channel": "sms", "agentId": "agent-1", "customer": {"id": CUSTOMER, "name": "Casey"}},
    )
    assert status == 200
    with count_dynamodb() as applied:
        assert events.on_sms_inbound(sns_event(inbound("hello", message_id="m-2")))["outcomes"] == ["applied"]
    assert applied.by_operation() == {"GetItem": 2, "Query": 1, "TransactWriteItems": 1}


def test_an_amazon_connect_event_costs_what_docs_say(world: World) -> None:
    """docs/data-model.md, "Amazon Connect contact event"."""
    import msgspec

    from chalicelib.entrypoints import events
    from tests.integration.test_amazon_connect import ACCOUNT, CONNECT_USER, INSTANCE, contact_event

    world.services.amazon_connect.settings = msgspec.structs.replace(
        world.settings, account_id=ACCOUNT, region="us-east-1", connect_instance_arns=(INSTANCE,)
    )
    world.team()
    world.admin("PUT", "/admin/connectors/amazon-connect", {"instanceArn": INSTANCE, "agents": {CONNECT_USER: "agent-1"}})
    with count_dynamodb() as connected:
        assert events.on_connect_event(contact_event("CONNECTED_TO_AGENT", "c-1"))["outcome"] == "applied"
    # claim, contact (conditional put), policy, workitem, then the assignment: transaction + the agent
    assert connected.by_operation() == {"GetItem": 4, "PutItem": 1, "TransactWriteItems": 1}
    with count_dynamodb() as disconnected:
        assert (
            events.on_connect_event(contact_event("DISCONNECTED", "c-1", time="2026-12-07T22:51:00Z"))["outcome"] == "scheduled"
        )
    assert disconnected.by_operation() == {"GetItem": 2}  # claim, contact (+ 1 SQS message)
    with count_dynamodb() as check:
        world.deliver(after_seconds=6)
    # contact, policy, then workitem.ended: workitem + transaction
    assert check.by_operation() == {"GetItem": 3, "TransactWriteItems": 1}


def test_a_streamed_chat_item_costs_what_docs_say(world: World) -> None:
    """docs/data-model.md, "Amazon Connect chat item": the chat's contact, then the workitem and its
    transaction for a message; the contact alone for what is skipped."""
    import msgspec

    from chalicelib.entrypoints import events
    from tests.integration.test_amazon_connect import ACCOUNT, CONNECT_USER, INSTANCE, contact_event
    from tests.integration.test_connect_chat import CHAT, item, notification

    world.services.amazon_connect.settings = msgspec.structs.replace(
        world.settings, account_id=ACCOUNT, region="us-east-1", connect_instance_arns=(INSTANCE,)
    )
    world.team()
    world.admin("PUT", "/admin/connectors/amazon-connect", {"instanceArn": INSTANCE, "agents": {CONNECT_USER: "agent-1"}})
    assert events.on_connect_event(contact_event("CONNECTED_TO_AGENT", CHAT))["outcome"] == "applied"
    with count_dynamodb() as applied:
        assert events.on_connect_event({"Records": [notification(item("i-1"))]})["outcomes"] == ["applied"]
    assert applied.by_operation() == {"GetItem": 2, "TransactWriteItems": 1}
    with count_dynamodb() as skipped:
        typing = item("i-2", kind="EVENT", content="", ContentType="application/vnd.amazonaws.connect.event.typing")
        assert events.on_connect_event({"Records": [notification(typing)]})["outcomes"] == ["skipped"]
    assert skipped.by_operation() == {"GetItem": 1}
