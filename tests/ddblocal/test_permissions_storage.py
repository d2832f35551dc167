"""Live permissions and revocation on AWS's DynamoDB Local engine: the suspended-edge filter (with
``Limit 1``, applied before the filter), the previous role from ``ALL_OLD`` and the revocation stamp."""

from __future__ import annotations

from typing import Any

import pytest

from chalicelib.domain.identity import Principal, Role
from chalicelib.services.ports import Connection

pytestmark = pytest.mark.ddblocal


def test_demotion_suspends_every_edge_and_promotion_restores_them(ddb_world: Any) -> None:
    w, d = ddb_world, ddb_world.directory
    w.team(supervisors=("sup-1", "sup-2"), agents=("agent-1", "agent-2"))
    w.admin("PUT", "/admin/teams/team-2", {"name": "t2", "supervisors": ["sup-1"], "agents": ["agent-1"]})
    assert d.supervises(w.tid, "sup-1", "agent-1")

    old, _ = d.put_user(w.tid, "sup-1", "Sup", Role.AGENT, "2026-01-01T00:00:00.000Z")
    assert old is Role.SUPERVISOR
    assert sorted(d.role_changed(w.tid, "sup-1", Role.AGENT)) == ["agent-1", "agent-2"]
    assert not d.supervises(w.tid, "sup-1", "agent-1")
    assert d.agents_of(w.tid, "sup-1") == []
    assert d.supervisors_of(w.tid, "agent-1") == ["sup-2"]
    assert d.supervises(w.tid, "sup-2", "agent-1")

    old, _ = d.put_user(w.tid, "sup-1", "Sup", Role.SUPERVISOR, "2026-01-01T00:00:01.000Z")
    assert old is Role.AGENT and d.role_changed(w.tid, "sup-1", Role.SUPERVISOR) == []
    assert d.supervises(w.tid, "sup-1", "agent-1")
    assert sorted(d.agents_of(w.tid, "sup-1")) == ["agent-1", "agent-2"]


def test_revocation_is_stamped_and_returns_the_connections(ddb_world: Any) -> None:
    w, d = ddb_world, ddb_world.directory
    principal = Principal(w.tid, "sup-1", Role.SUPERVISOR)
    d.connect(principal, Connection("c1=", 1_700_000_000_000))
    endpoint = d.revoke(w.tid, "sup-1", 1_700_000_100)
    assert endpoint.revoked_at == 1_700_000_100
    assert [c.connection_id for c in endpoint.connections] == ["c1="]
    again = d.connect(principal, Connection("c2=", 1_700_000_200_000))
    assert again.revoked_at == 1_700_000_100  # $connect reads it back from its own update
