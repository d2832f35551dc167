"""The storage ports' contract, checked on both backends of ``world``: the in-memory fakes
(tests/support/fakes.py, tier ``service``) and the DynamoDB adapters on moto (tier ``integration``).

The service tests run on both backends too; these pin down the edges a service test may not reach:
which write is conditional, what a failed condition raises, and that a refused write leaves nothing.
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from chalicelib.domain.assistance import AlreadyClaimed, AssistanceRequest, AssistStatus, Stage
from chalicelib.domain.coaching import Change, Channel, Workitem
from chalicelib.domain.identity import Principal, Role
from chalicelib.domain.timeline import EntryKind, TimelineEntry
from chalicelib.services.ports import (
    AlreadyExists,
    Connection,
    CounterDelta,
    DuplicateEvent,
    Idempotency,
    Presence,
    StaleWorkitem,
    Team,
)
from tests.support.world import World

# Tier: from the world fixture's backend (service on memory, integration on moto; tests/conftest.py).

AT = "2026-01-01T00:00:00.000Z"


def _workitem(wid: str = "wi-1", agent: str = "agent-1") -> Workitem:
    return Workitem("t1", wid, Channel.CHAT, agent, "cust-1", "Casey", AT)


def _entry(seq: int, kind: EntryKind, customer_seq: int | None = None, message_id: str | None = None) -> TimelineEntry:
    return TimelineEntry("wi-1", seq, kind, AT, "agent-1", Role.AGENT, customer_seq, message_id, f"text {seq}")


def _append(world: World, *entries: TimelineEntry, idem: Idempotency | None = None) -> Workitem:
    store = world.services.coaching.store
    before = store.get("t1", "wi-1")
    assert before is not None
    last = entries[-1]
    after = replace(
        before, version=before.version + 1, seq=last.seq, customer_seq=max(before.customer_seq, last.customer_seq or 0)
    )
    store.commit(Change(before, after, list(entries)), idempotency=idem)
    return after


def test_create_is_conditional_and_checks_the_event_id_first(world: World) -> None:
    store = world.services.coaching.store
    idem = Idempotency("t1", "evt-1", "workitem.assigned")
    store.create(_workitem(), idempotency=idem, counters=[CounterDelta("t1", "agent-1", 1)])
    with pytest.raises(DuplicateEvent):
        store.create(_workitem("wi-2"), idempotency=idem)
    with pytest.raises(AlreadyExists):
        store.create(_workitem(), idempotency=Idempotency("t1", "evt-2", "workitem.assigned"))
    store.mark_event(Idempotency("t1", "evt-2", "workitem.assigned"))  # the refused create wrote nothing, not even its event id
    with pytest.raises(DuplicateEvent):
        store.mark_event(Idempotency("t1", "evt-2", "workitem.assigned"))
    assert store.get("t1", "wi-2") is None
    # The counter created the agent's endpoint, with no role: an update creates what it writes to.
    endpoint = world.services.directory.directory.recipient("t1", "U#agent-1")
    assert endpoint is not None and endpoint.workitem_count == 1 and endpoint.role is None and not endpoint.in_directory


def test_a_commit_is_conditional_on_the_version_and_all_or_nothing(world: World) -> None:
    store = world.services.coaching.store
    store.create(_workitem())
    _append(world, _entry(1, EntryKind.CUSTOMER_MESSAGE, 1, "m-1"))
    stale = store.get("t1", "wi-1")
    assert stale is not None and stale.version == 1
    _append(world, _entry(2, EntryKind.COACH_MESSAGE, None, "m-2"))
    with pytest.raises(StaleWorkitem):
        store.commit(Change(stale, replace(stale, version=2, seq=3), [_entry(3, EntryKind.AGENT_MESSAGE, 2)]))
    with pytest.raises(StaleWorkitem):  # an entry that is there already: the change lost a race
        current = store.get("t1", "wi-1")
        assert current is not None
        store.commit(Change(current, replace(current, version=3), [_entry(2, EntryKind.AGENT_MESSAGE, 2)]))
    with pytest.raises(StaleWorkitem):  # a workitem that is not there
        store.commit(Change(_workitem("wi-9"), replace(_workitem("wi-9"), version=1)))
    entries, more = store.timeline("t1", "wi-1", after=0, limit=10, customer=False)
    assert [e.seq for e in entries] == [1, 2] and not more
    again = Idempotency("t1", "evt-9", "workitem.message")
    _append(world, _entry(3, EntryKind.AGENT_MESSAGE, 2), idem=again)
    with pytest.raises(DuplicateEvent):  # the event id is checked before the version
        _append(world, _entry(4, EntryKind.AGENT_MESSAGE, 3), idem=again)
    current = store.get("t1", "wi-1")
    assert current is not None and current.version == 3


def test_timeline_views_pages_and_the_message_index(world: World) -> None:
    store = world.services.coaching.store
    store.create(_workitem())
    _append(
        world,
        _entry(1, EntryKind.CUSTOMER_MESSAGE, 1, "m-1"),
        _entry(2, EntryKind.COACH_MESSAGE, None, "m-2"),
        _entry(3, EntryKind.SUPERVISOR_JOINED),
        _entry(4, EntryKind.AGENT_MESSAGE, 2, "m-4"),
    )
    staff, more = store.timeline("t1", "wi-1", after=1, limit=2, customer=False)
    assert [e.seq for e in staff] == [2, 3] and more
    customer, more = store.timeline("t1", "wi-1", after=0, limit=5, customer=True)
    assert [(e.seq, e.customer_seq) for e in customer] == [(1, 1), (4, 2)] and not more
    latest, more = store.latest("t1", "wi-1", 3)
    assert [e.seq for e in latest] == [2, 3, 4] and more
    workitem, message = store.get_with_message("t1", "wi-1", "m-2")
    assert workitem is not None and workitem.seq == 4
    assert message is not None and (message.seq, message.kind, message.text, message.customer_seq) == (
        2,
        EntryKind.COACH_MESSAGE,
        "text 2",
        None,
    )
    assert store.get_with_message("t1", "wi-1", "m-3")[1] is None  # no index item for other kinds


def test_delivery_statuses_never_go_from_sent_to_failed(world: World) -> None:
    store, webhooks = world.services.coaching.store, world.services.integrations.store
    store.create(_workitem())
    _append(world, _entry(1, EntryKind.AGENT_MESSAGE, 1, "m-1"))
    assert webhooks.set_delivery("t1", "wi-1", 9, "sent") is None  # no such entry
    sent = webhooks.set_delivery("t1", "wi-1", 1, "sent")
    assert sent is not None and sent.extra["delivery"] == "sent"
    assert webhooks.set_delivery("t1", "wi-1", 1, "failed") is None
    entries, _ = store.timeline("t1", "wi-1", after=0, limit=5, customer=False)
    assert entries[0].extra == {"delivery": "sent"}


def test_directory_users_connections_and_edges(world: World) -> None:
    d = world.services.directory.directory
    assert d.put_user("t1", "sup-1", "Sam", Role.ADMIN, AT)[0] is None
    old, endpoint = d.put_user("t1", "sup-1", "Sam", Role.SUPERVISOR, AT)
    assert old is Role.ADMIN and endpoint.role is Role.SUPERVISOR and d.admins("t1") == []
    # Connecting keeps the directory's role and name; the connection joins the set.
    connected = d.connect(Principal("t1", "sup-1", Role.AGENT, name="Other"), Connection("c1", 5))
    assert (connected.role, connected.name, connected.connections) == (Role.SUPERVISOR, "Sam", [Connection("c1", 5)])
    assert d.set_presence("t1", "sup-1", Presence.NOT_READY).presence_state is Presence.NOT_READY
    # A fast connection is stored as one (W15.1); disconnecting, which does not know the mode, drops it.
    fast = Connection("c2", 6, fast=True)
    assert d.connect(Principal("t1", "sup-1", Role.SUPERVISOR), fast).connections == [Connection("c1", 5), fast]
    left = d.disconnect(Principal("t1", "sup-1", Role.SUPERVISOR), Connection("c2", 6))
    assert left is not None and left.connections == [Connection("c1", 5)]
    # An issuer's user joins once; a directory user is never enrolled over.
    assert d.enroll(Principal("t1", "new-1", Role.ADMIN), AT) and not d.enroll(Principal("t1", "new-1", Role.AGENT), AT)
    assert not d.enroll(Principal("t1", "sup-1", Role.AGENT), AT)
    assert d.admins("t1") == ["new-1"]
    d.put_team("t1", Team("team-1", "One", ["sup-1"], ["agent-2", "agent-1"]), AT)
    assert d.agents_of("t1", "sup-1") == ["agent-1", "agent-2"] and d.supervises("t1", "sup-1", "agent-1")
    assert d.role_changed("t1", "sup-1", Role.AGENT) == ["agent-1", "agent-2"]
    assert not d.supervises("t1", "sup-1", "agent-1") and d.supervisors_of("t1", "agent-1") == []
    assert d.role_changed("t1", "sup-1", Role.SUPERVISOR) == [] and d.supervisors_of("t1", "agent-2") == ["sup-1"]
    removed: list[list[tuple[str, str]]] = []
    d.put_team("t1", Team("team-1", "One", ["sup-1"], ["agent-1"]), AT, removed.append)
    assert removed == [[("sup-1", "agent-2")]] and d.agents_of("t1", "sup-1") == ["agent-1"]
    # Unread counts per sender and in total; marking an unknown sender read changes nothing.
    assert [d.add_unread("t1", "agent-1", s) for s in ("sup-1", "sup-1", "sup-2")] == [1, 2, 3]
    assert d.mark_read("t1", "agent-1", "sup-1") == 1 and d.mark_read("t1", "agent-1", "nobody") == 1
    # Forgetting a connection of an endpoint that is not there fails and creates nothing.
    with pytest.raises(Exception):
        d.forget("t1", "U#ghost", [Connection("c9", 1)], [])
    assert d.recipient("t1", "U#ghost") is None


def test_assistance_claims_and_escalations_are_conditional(world: World) -> None:
    store = world.services.assistance.store

    def due(now: int) -> list[str]:  # every shard of the due index
        return [r.assist_id for shard in range(world.settings.escalation_shards) for r in store.due(shard, now, 10)]

    request = AssistanceRequest("t1", "as-1", "agent-1", "tpl-1", "Help", None, "supervisors", ("sup-1",), AT, 60, due_at=100)
    store.create(request, 90)
    with pytest.raises(AlreadyExists):
        store.create(request, 90)
    assert due(99) == [] and due(100) == ["as-1"]
    later = replace(request, stage=Stage(1), recipients=("sup-1", "sup-2"), due_at=160)
    assert store.escalate(request, later) and not store.escalate(request, later)  # the stage moved on
    claimed = store.claim(request, "sup-2")
    assert (claimed.status, claimed.claimed_by, claimed.recipients, claimed.due_at) == (
        AssistStatus.CLAIMED,
        "sup-2",
        ("sup-1", "sup-2"),
        None,
    )
    with pytest.raises(AlreadyClaimed):
        store.claim(request, "sup-1")
    assert due(10**6) == [] and not store.escalate(later, replace(later, stage=Stage(2)))


def test_receiver_health_probe_claims_and_the_slow_lane(world: World) -> None:
    """Fair delivery's storage (domain.fairness): the health rides on the subscription, an admin's save
    drops it, one caller wins a probe, and a tenant's lane has exactly its places, freed by leaving or
    by their lease running out."""
    from chalicelib.domain.fairness import Health
    from chalicelib.domain.webhooks import Subscription

    webhooks = world.services.integrations.store
    sub = Subscription("t1", "crm", "https://example.com/h", ("*",), True, "whsec_" + "A" * 43 + "=")
    webhooks.set_health("t1", "crm", Health(failures=2))  # no such subscription: nothing is created
    assert webhooks.get("t1", "crm") is None
    webhooks.put(sub, AT)
    broken = Health(failures=3, open_until=1_000)
    webhooks.set_health("t1", "crm", broken)
    found = webhooks.get("t1", "crm")
    assert found is not None and found.health == broken
    assert [s.health for s in webhooks.list("t1")] == [broken]
    assert webhooks.claim_probe("t1", "crm", seen_open_until=1_000, until=1_015)
    assert not webhooks.claim_probe("t1", "crm", seen_open_until=1_000, until=1_015)  # claimed already
    assert not webhooks.claim_probe("t1", "other", seen_open_until=0, until=1_015)
    assert webhooks.get("t1", "crm").health == Health(failures=3, open_until=1_015)  # type: ignore[union-attr]
    webhooks.set_health("t1", "crm", Health(fast=True))
    assert webhooks.get("t1", "crm").health == Health(fast=True)  # type: ignore[union-attr]
    webhooks.put(sub, AT)  # an admin's save: the receiver is not known any more
    assert webhooks.get("t1", "crm").health == Health()  # type: ignore[union-attr]

    now = 5_000_000
    taken = [webhooks.take_lane("t1", f"h{n}", now, 3, 15_000) for n in range(3)]
    places = [p for p, _ in taken]
    assert sorted(p for p in places if p is not None) == [0, 1, 2]
    assert webhooks.take_lane("t1", "h3", now + 1, 3, 15_000) == (None, now + 15_000)  # full: frees then
    assert webhooks.take_lane("t2", "other-tenant", now, 3, 15_000)[0] is not None  # another tenant's lane
    webhooks.leave_lane("t1", "not-the-holder", places[1] or 0)  # only the holder frees its place
    assert webhooks.take_lane("t1", "h3", now + 2, 3, 15_000)[0] is None
    webhooks.leave_lane("t1", "h1", places[1] or 0)
    assert webhooks.take_lane("t1", "h4", now + 3, 3, 15_000)[0] == places[1]
    assert webhooks.take_lane("t1", "h5", now + 15_001, 3, 15_000)[0] is not None  # a lease ran out
