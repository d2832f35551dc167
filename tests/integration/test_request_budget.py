"""Every action's DynamoDB requests, counted with botocore hooks, against docs/data-model.md."""

from __future__ import annotations

import pytest

from tests.support.budgets import budgets
from tests.support.ddbcount import count_dynamodb
from tests.support.scenario import Cast, actions, bulk_tenant
from tests.support.world import World

pytestmark = pytest.mark.integration


SUBSCRIPTION = {"url": "http://127.0.0.1:9/hook", "events": ["*"], "enabled": True}


def measure(world: World, tid: str, bulk_users: int) -> dict[str, int]:
    bulk_tenant(world, tid, bulk_users)
    # Outbound webhooks must cost no request on any action's path (fan-out reads them once, cached).
    world.admin("PUT", "/admin/webhook-subscriptions/all", SUBSCRIPTION, tid)
    cast = Cast(world, tid)
    counts: dict[str, int] = {}
    for name, call in actions(cast):
        with count_dynamodb() as log:
            call()
        counts[name] = log.total
    with count_dynamodb() as log:
        world.assign("wi-new", tid=tid)
    counts["webhook workitem.assigned"] = log.total
    for kind, data in (
        ("workitem.message", {"workitemId": "wi-new", "from": "customer", "text": "hi"}),
        ("workitem.transferred", {"workitemId": "wi-new", "toAgentId": "agent-2"}),
        ("workitem.ended", {"workitemId": "wi-new", "endedBy": "system"}),
    ):
        with count_dynamodb() as log:
            status, body = world.webhook(kind, data, tid=tid)
        assert status == 200, body
        counts[f"webhook {kind}"] = log.total
    return counts


def test_every_action_within_budget_and_independent_of_tenant_size(world: World) -> None:
    small = measure(world, "small", 6)
    large = measure(world, "large", 1500)
    budget = budgets()
    for name, count in small.items():
        assert name in budget, f"{name} has no budget in docs/data-model.md"
        assert count <= budget[name], f"{name}: {count} requests > budget {budget[name]}"
        assert large[name] == count, f"{name}: {count} requests in a small tenant, {large[name]} in a large one"
    assert small["coach.send"] <= 3


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


def test_the_permission_clean_up_follows_the_change_not_the_tenant(world: World) -> None:
    """Taking a monitoring, watching supervisor off a team costs the same in a small and a large tenant."""
    counts = []
    for tid, users in (("small", 6), ("large", 1500)):
        bulk_tenant(world, tid, users)
        world.team(tid=tid, supervisors=("sup-1", "sup-2"), agents=("agent-1", "agent-2"))
        world.assign("wi-1", tid=tid)
        sup = world.connect("sup-1", "supervisor", tid)
        sup.ok("agent.watch", agentId="agent-1")
        sup.ok("monitor.start", workitemId="wi-1")
        with count_dynamodb() as log:
            world.admin(
                "PUT", "/admin/teams/team-1", {"name": "team-1", "supervisors": ["sup-2"], "agents": ["agent-1", "agent-2"]}, tid
            )
        assert [e["data"]["reason"] for e in sup.events("coaching.ended")] == ["permissions"]
        counts.append(log.by_operation())
    assert counts[0] == counts[1], counts


def test_delivery_requests_per_event(world: World) -> None:
    """What one event costs in the delivery function: 1 GetItem (the subscription) per delivery."""
    world.team()
    world.admin("PUT", "/admin/webhook-subscriptions/sub-1", {**SUBSCRIPTION, "events": ["timeline.entry", "workitem.assigned"]})
    world.assign("wi-1")
    world.queue_time += 10**6
    world.deliver()  # the assignment's delivery (refused by the closed port: it waits for its retry)
    world.queue_time += 10**6
    sup = world.connect("sup-1", "supervisor")
    sup.ok("monitor.start", workitemId="wi-1")
    with count_dynamodb() as log:
        ran = world.deliveries.drain(rounds=1)
    assert ran == 2  # supervisor_joined now, the assignment's retry
    assert log.by_operation() == {"GetItem": 2}
