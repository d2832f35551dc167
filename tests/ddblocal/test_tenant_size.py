"""Request counts that must not grow with the tenant: a tenant of 6 users and one of 1500, on AWS's
DynamoDB Local engine (filling a large tenant is quick there; the per-action budgets themselves are
checked on moto by tests/integration/test_request_budget.py)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.budgets import budgets
from tests.support.ddbcount import count_dynamodb
from tests.support.scenario import bulk_tenant, measure

pytestmark = [pytest.mark.ddblocal, pytest.mark.slow]

LARGE = 1500


def test_every_action_within_budget_and_independent_of_tenant_size(ddb_world: Any) -> None:
    w = ddb_world
    small = measure(w, f"{w.tid}-small", 6)
    large = measure(w, f"{w.tid}-large", LARGE)
    budget = budgets()
    for name, count in small.items():
        assert name in budget, f"{name} has no budget in docs/data-model.md"
        assert count <= budget[name], f"{name}: {count} requests > budget {budget[name]}"
        assert large[name] == count, f"{name}: {count} requests in a small tenant, {large[name]} in a large one"
    assert small["coach.send"] <= 3


def test_the_permission_clean_up_follows_the_change_not_the_tenant(ddb_world: Any) -> None:
    """Taking a monitoring, watching supervisor off a team costs the same in a small and a large tenant."""
    w = ddb_world
    counts = []
    for tid, users in ((f"{w.tid}-small", 6), (f"{w.tid}-large", LARGE)):
        bulk_tenant(w, tid, users)
        w.team(tid=tid, supervisors=("sup-1", "sup-2"), agents=("agent-1", "agent-2"))
        w.assign("wi-1", tid=tid)
        sup = w.connect("sup-1", "supervisor", tid)
        sup.ok("agent.watch", agentId="agent-1")
        sup.ok("monitor.start", workitemId="wi-1")
        with count_dynamodb() as log:
            w.admin(
                "PUT", "/admin/teams/team-1", {"name": "team-1", "supervisors": ["sup-2"], "agents": ["agent-1", "agent-2"]}, tid
            )
        assert [e["data"]["reason"] for e in sup.events("coaching.ended")] == ["permissions"]
        counts.append(log.by_operation())
    assert counts[0] == counts[1], counts
