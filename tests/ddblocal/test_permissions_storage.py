"""Live permissions and revocation on AWS's DynamoDB Local engine: the suspended-edge filter (with
``Limit 1``, applied before the filter), the previous role from ``ALL_OLD`` and the revocation stamp."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from chalicelib.domain.errors import Conflict
from chalicelib.domain.identity import Principal, Role, user_key
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
    recipient = d.revoke(w.tid, "sup-1", 1_700_000_100)
    assert recipient.revoked_at == 1_700_000_100
    assert [c.connection_id for c in recipient.connections] == ["c1="]
    again = d.connect(principal, Connection("c2=", 1_700_000_200_000))
    assert again.revoked_at == 1_700_000_100  # $connect reads it back from its own update


def test_a_demotion_conditional_on_another_admin_is_refused_once_that_admin_is_gone(ddb_world: Any) -> None:
    """The last-admin rule's transaction on the real engine (docs/product.md W3.8): each demotion
    depends on the other admin's index entry, so two crossing demotions cannot both commit."""
    w, d = ddb_world, ddb_world.directory
    for user in ("ann", "bob"):
        d.put_user(w.tid, user, user.title(), Role.ADMIN, "2026-01-01T00:00:00.000Z")
    assert d.admins(w.tid, limit=2) == ["ann", "bob"]
    assert d.put_user(w.tid, "bob", "Bob", Role.AGENT, "2026-01-01T00:00:01.000Z", keep_admin="ann")[0] is Role.ADMIN
    with pytest.raises(Conflict):
        d.put_user(w.tid, "ann", "Ann", Role.AGENT, "2026-01-01T00:00:02.000Z", keep_admin="bob")
    assert d.admins(w.tid) == ["ann"]
    ann = d.recipient(w.tid, user_key("ann"))
    assert ann is not None and ann.role is Role.ADMIN  # nothing of the refused demotion was written


def test_crossing_demotions_of_the_last_two_admins_leave_one(ddb_world: Any) -> None:
    """The same race without any lock: AWS's engine never lets both transactions commit."""
    w, d = ddb_world, ddb_world.directory
    for round_ in range(5):
        ann, bob = f"ann-{round_}", f"bob-{round_}"
        tid = f"{w.tid}-{round_}"
        for user in (ann, bob):
            d.put_user(tid, user, user, Role.ADMIN, "2026-01-01T00:00:00.000Z")
        start, outcome = threading.Barrier(2), []

        def demote(target: str, other: str) -> None:
            start.wait()
            try:
                d.put_user(tid, target, target, Role.AGENT, "2026-01-01T00:00:01.000Z", keep_admin=other)
                outcome.append("demoted")
            except Conflict:
                outcome.append("refused")

        threads = [threading.Thread(target=demote, args=pair) for pair in ((ann, bob), (bob, ann))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        assert sorted(outcome) == ["demoted", "refused"], outcome
        assert len(d.admins(tid)) == 1


def test_revoking_a_stranger_writes_nothing(ddb_world: Any) -> None:
    w, d = ddb_world, ddb_world.directory
    assert d.revoke(w.tid, "nobody-ever", 1_700_000_100) is None
    assert d.recipient(w.tid, user_key("nobody-ever")) is None


def test_an_issuers_user_joins_the_directory_once(ddb_world: Any) -> None:
    """docs/product.md W9.3 on the real engine: the enrolment's condition (not yet a directory user)
    holds for a new user and for one known only from a connection, and fails for a directory user."""
    w, d = ddb_world, ddb_world.directory
    ann = Principal(w.tid, "ann", Role.AGENT, name="ann@example.com", federated=True)
    d.connect(ann, Connection("c1=", 1_700_000_000_000))  # known from a connection only: not in the directory
    assert d.enroll(ann, "2026-01-01T00:00:00.000Z") is True
    recipient = d.recipient(w.tid, "U#ann")
    assert (recipient.in_directory, recipient.role, recipient.name) == (True, Role.AGENT, "ann@example.com")
    assert [c.connection_id for c in recipient.connections] == ["c1="]  # the connection is kept
    assert d.enroll(ann, "2026-01-01T00:00:01.000Z") is False  # once only
    d.put_user(w.tid, "ann", "Ann", Role.SUPERVISOR, "2026-01-01T00:00:02.000Z")
    assert d.enroll(ann, "2026-01-01T00:00:03.000Z") is False  # the admin's record stands
    assert d.recipient(w.tid, "U#ann").role is Role.SUPERVISOR
    ada = Principal(w.tid, "ada", Role.ADMIN, federated=True)
    assert d.enroll(ada, "2026-01-01T00:00:04.000Z") is True
    assert "ada" in d.admins(w.tid)
