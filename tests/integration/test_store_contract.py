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
    Watcher,
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
    with pytest.raises(DuplicateEvent) as duplicate:
        store.create(_workitem("wi-2"), idempotency=idem)
    assert duplicate.value.args == ("evt-1",)
    with pytest.raises(AlreadyExists) as exists:
        store.create(_workitem(), idempotency=Idempotency("t1", "evt-2", "workitem.assigned"))
    assert exists.value.args == ("wi-1",)
    store.mark_event(Idempotency("t1", "evt-2", "workitem.assigned"))  # the refused create wrote nothing, not even its event id
    with pytest.raises(DuplicateEvent) as duplicate:
        store.mark_event(Idempotency("t1", "evt-2", "workitem.assigned"))
    assert duplicate.value.args == ("evt-2",)
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
    with pytest.raises(DuplicateEvent) as duplicate:  # the event id is checked before the version
        _append(world, _entry(4, EntryKind.AGENT_MESSAGE, 3), idem=again)
    assert duplicate.value.args == ("evt-9",)  # names the event
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


def test_a_workitem_read_brings_the_message_and_the_recipients_asked_for(world: World) -> None:
    """What a change is decided on and whom it is pushed to, in one request (docs/product.md W15.3)."""
    store, directory = world.services.coaching.store, world.services.directory.directory
    store.create(_workitem())
    _append(world, _entry(1, EntryKind.COACH_MESSAGE, None, "m-1"))
    directory.put_user("t1", "agent-1", "Agent One", Role.AGENT, AT)
    directory.connect(Principal("t1", "agent-1", Role.AGENT), Connection("c-1", 5, fast=True))
    plain = store.read("t1", "wi-1")
    assert plain.workitem is not None and plain.workitem.seq == 1
    assert (plain.message, plain.recipients) == (None, {})
    read = store.read("t1", "wi-1", message_id="m-1", recipients=["U#agent-1", "U#nobody", "U#agent-1"])
    assert read.workitem == plain.workitem
    assert read.message is not None and (read.message.seq, read.message.text) == (1, "text 1")
    assert list(read.recipients) == ["U#agent-1"]  # asked twice, read once; nobody is not there
    assert read.recipients["U#agent-1"].connections == [Connection("c-1", 5, fast=True)]
    assert read.recipients["U#agent-1"].role is Role.AGENT
    missing = store.read("t1", "wi-2", message_id="m-1", recipients=["U#agent-1"])
    assert (missing.workitem, missing.message) == (None, None)
    assert store.read("t2", "wi-1", recipients=["U#agent-1"]) == store.read("t2", "wi-1")  # another tenant's: nothing


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
    with pytest.raises(AlreadyExists) as exists:
        store.create(request, 90)
    assert exists.value.args == ("as-1",)
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


def test_an_assistance_request_reads_back_as_written_through_its_escalations_and_claim(world: World) -> None:
    store = world.services.assistance.store

    def due(now: int) -> list[str]:
        return sorted(r.assist_id for shard in range(world.settings.escalation_shards) for r in store.due(shard, now, 10))

    raised = AssistanceRequest(
        "t1", "as-1", "agent-1", "tpl-1", "Help", "wi-1", "supervisors", ("sup-1", "sup-2"), AT, 60, due_at=100
    )
    direct = AssistanceRequest("t1", "as-2", "agent-1", "tpl-2", "Look", None, "agent-2", ("agent-2",), AT, 0)
    store.create(raised, 90)
    store.create(direct, 90)
    assert store.get("t1", "as-1") == raised and store.get("t1", "as-2") == direct
    assert store.get("t2", "as-1") is None
    assert due(10**6) == ["as-1"]  # a request that never escalates is not in the due index

    team = replace(raised, stage=Stage(1), recipients=("sup-1", "sup-2", "sup-3"), due_at=160)
    assert store.escalate(raised, team)
    assert store.get("t1", "as-1") == team and due(159) == [] and due(160) == ["as-1"]
    admins = replace(team, stage=Stage(2), recipients=(*team.recipients, "admin-1"), due_at=None)
    assert store.escalate(team, admins)
    assert store.get("t1", "as-1") == admins and due(10**6) == []  # the last step leaves the index

    claimed = store.claim(admins, "admin-1")
    assert claimed == replace(admins, status=AssistStatus.CLAIMED, claimed_by="admin-1")
    assert store.get("t1", "as-1") == claimed


@pytest.mark.moto
def test_an_assistance_request_item_carries_its_expiry_and_due_keys(world: World) -> None:
    """The items as DynamoDB holds them (the in-memory fake has no TTL or index keys): literal keys."""
    import zlib
    from datetime import UTC, datetime

    from chalicelib.adapters.dynamo import AssistItem

    store = world.services.assistance.store
    request = AssistanceRequest("t1", "as-7", "agent-1", "tpl-1", "Help", None, "supervisors", ("sup-1",), AT, 60, due_at=100)
    store.create(request, 90)
    item = AssistItem.get("T#t1#AS#as-7", "AS", consistent_read=True)
    assert item.ttl == datetime(2026, 4, 1, tzinfo=UTC)  # 90 days after 2026-01-01
    assert (item.duepk, item.duesk) == (f"DUE#{zlib.crc32(b'as-7') % world.settings.escalation_shards}", "000000000100#t1#as-7")
    later = replace(request, stage=Stage(1), due_at=160)
    assert store.escalate(request, later)
    item = AssistItem.get("T#t1#AS#as-7", "AS", consistent_read=True)
    assert (item.duepk, item.duesk, item.due_at) == (
        f"DUE#{zlib.crc32(b'as-7') % world.settings.escalation_shards}",
        "000000000160#t1#as-7",
        160,
    )
    store.claim(later, "sup-1")
    item = AssistItem.get("T#t1#AS#as-7", "AS", consistent_read=True)
    gone: tuple[object, ...] = (item.duepk, item.duesk, item.due_at)
    assert gone == (None, None, None) and (item.status, item.claimed_by) == ("claimed", "sup-1")


def test_a_delivery_status_lands_on_its_own_entry_and_failed_may_repeat(world: World) -> None:
    store, webhooks = world.services.coaching.store, world.services.integrations.store
    store.create(_workitem())
    _append(world, _entry(1, EntryKind.AGENT_MESSAGE, 1, "m-1"), _entry(2, EntryKind.AGENT_MESSAGE, 2, "m-2"))
    assert webhooks.set_delivery("t1", "wi-1", 9, "failed") is None  # no such entry: nothing is created
    failed = webhooks.set_delivery("t1", "wi-1", 1, "failed")
    assert failed is not None and (failed.workitem_id, failed.seq, failed.extra) == ("wi-1", 1, {"delivery": "failed"})
    again = webhooks.set_delivery("t1", "wi-1", 1, "failed")  # a retry that failed again
    assert again is not None and again.extra == {"delivery": "failed"}
    sent = webhooks.set_delivery("t1", "wi-1", 1, "sent")  # a later attempt got through
    assert sent is not None and (sent.workitem_id, sent.text, sent.extra) == ("wi-1", "text 1", {"delivery": "sent"})
    entries, more = store.timeline("t1", "wi-1", after=0, limit=10, customer=False)
    assert [(e.seq, e.extra) for e in entries] == [(1, {"delivery": "sent"}), (2, {})] and not more


def test_a_workitem_its_entries_and_its_message_index_read_back_as_written(world: World) -> None:
    store, directory = world.services.coaching.store, world.services.directory.directory
    created = replace(_workitem(), subject="Refund", retention_days=30, record_coaching=True)
    store.create(created, counters=[CounterDelta("t1", "agent-1", 1)], fanout="note-1")
    assert store.get("t1", "wi-1") == created and store.get("t2", "wi-1") is None
    coach = TimelineEntry("wi-1", 1, EntryKind.COACH_MESSAGE, AT, "sup-1", Role.SUPERVISOR, None, "m-1", "psst")
    said = TimelineEntry("wi-1", 2, EntryKind.CUSTOMER_MESSAGE, AT, "cust-1", Role.CUSTOMER, 1, "m-2", "hello")
    after = replace(created, version=1, seq=2, customer_seq=1, monitors={"sup-1": AT})
    store.commit(Change(created, after, [coach, said]), counters=[CounterDelta("t1", "agent-1", -1)], fanout="note-2")
    assert store.get("t1", "wi-1") == after
    assert store.timeline("t1", "wi-1", after=0, limit=10, customer=False) == ([coach, said], False)
    assert store.get_with_message("t1", "wi-1", "m-1") == (after, coach)
    assert store.get_with_message("t1", "wi-1", "m-2") == (after, replace(said, customer_seq=None))  # staff numbering only
    agent = directory.recipient("t1", "U#agent-1")
    assert agent is not None and (agent.tenant_id, agent.user_id, agent.workitem_count) == ("t1", "agent-1", 0)


@pytest.mark.moto
def test_workitem_items_carry_their_fan_out_note_and_expiry(world: World) -> None:
    """What the stream and DynamoDB's TTL read, as the table holds it (the in-memory fake has neither)."""
    from datetime import UTC, datetime

    from chalicelib.adapters.dynamo import EntryItem, IdempotencyItem, MessageRefItem, WorkitemItem

    store = world.services.coaching.store
    created = replace(_workitem(), retention_days=30)
    store.create(created, idempotency=Idempotency("t1", "evt-1", "workitem.assigned"), fanout="note-1")
    assert WorkitemItem.get("T#t1#W#wi-1", "W", consistent_read=True).fanout == "note-1"
    event = IdempotencyItem.get("T#t1#EVT#evt-1", consistent_read=True)
    assert event.event_type == "workitem.assigned"
    coach = TimelineEntry("wi-1", 1, EntryKind.COACH_MESSAGE, AT, "sup-1", Role.SUPERVISOR, None, "m-1", "psst")
    store.commit(Change(created, replace(created, version=1, seq=1), [coach]), fanout="note-2")
    assert WorkitemItem.get("T#t1#W#wi-1", "W", consistent_read=True).fanout == "note-2"
    expiry = datetime(2026, 1, 31, tzinfo=UTC)  # 30 days after the entry
    assert EntryItem.get("T#t1#W#wi-1", "E#0000000001", consistent_read=True).ttl == expiry
    assert MessageRefItem.get("T#t1#W#wi-1", "M#m-1", consistent_read=True).ttl == expiry
    store.commit(Change(replace(created, version=1, seq=1), replace(created, version=2, seq=1)))  # no note: none left
    assert WorkitemItem.get("T#t1#W#wi-1", "W", consistent_read=True).fanout is None


def test_enrolling_writes_the_issuers_user_once_and_forgetting_removes_only_what_is_named(world: World) -> None:
    d = world.services.directory.directory
    assert d.enroll(Principal("t1", "ann", Role.SUPERVISOR, name="Ann"), AT)
    assert d.enroll(Principal("t1", "bob", Role.AGENT), AT)  # no name in the token: the user id
    ann, bob = d.recipient("t1", "U#ann"), d.recipient("t1", "U#bob")
    assert ann is not None and (ann.tenant_id, ann.user_id, ann.name, ann.role, ann.in_directory) == (
        "t1",
        "ann",
        "Ann",
        Role.SUPERVISOR,
        True,
    )
    assert bob is not None and (bob.name, bob.role, bob.in_directory) == ("bob", Role.AGENT, True)
    assert d.admins("t1") == []
    # A connected stranger (an endpoint, not a directory user) may still enrol.
    d.connect(Principal("t1", "cy", Role.AGENT), Connection("c0", 1))
    assert d.enroll(Principal("t1", "cy", Role.ADMIN, name="Cy"), AT) and d.admins("t1") == ["cy"]
    cy = d.recipient("t1", "U#cy")
    assert cy is not None and (cy.role, cy.name, cy.in_directory) == (Role.ADMIN, "Cy", True)
    assert cy.connections == [Connection("c0", 1)]

    c1, c2, c3 = Connection("c1", 10), Connection("c2", 20), Connection("c3", 30)
    for c in (c1, c2, c3):
        d.connect(Principal("t1", "ann", Role.SUPERVISOR), c)
    w1, w2 = Watcher(c1, "sup-1"), Watcher(c2, "sup-2")
    d.watch("t1", "ann", w1, True)
    d.watch("t1", "ann", w2, True)
    d.forget("t1", "U#ann", [c1, c3], [w2])
    ann = d.recipient("t1", "U#ann")
    assert ann is not None and (ann.connections, ann.watchers) == ([c2], [w1])
    d.forget("t1", "U#ann", [], [w1])
    d.forget("t1", "U#ann", [c2], [])
    ann = d.recipient("t1", "U#ann")
    assert ann is not None and (ann.connections, ann.watchers, ann.name) == ([], [], "Ann")
    d.forget("t1", "U#nobody", [], [])  # nothing to remove: nothing written, nothing raised
    assert d.recipient("t1", "U#nobody") is None


def test_only_messages_with_an_id_are_indexed(world: World) -> None:
    store = world.services.coaching.store
    store.create(_workitem())
    joined = TimelineEntry("wi-1", 1, EntryKind.SUPERVISOR_JOINED, AT, "sup-1", Role.SUPERVISOR, None, "j-1", None)
    unnamed = TimelineEntry("wi-1", 2, EntryKind.COACH_MESSAGE, AT, "sup-1", Role.SUPERVISOR, None, None, "psst")
    named = TimelineEntry("wi-1", 3, EntryKind.AGENT_MESSAGE, AT, "agent-1", Role.AGENT, 1, "m-3", "hi")
    _append(world, joined, unnamed, named)
    assert store.get_with_message("t1", "wi-1", "j-1")[1] is None  # not a message
    assert store.get_with_message("t1", "wi-1", "None")[1] is None  # a message without an id
    assert store.get_with_message("t1", "wi-1", "m-3")[1] == replace(named, customer_seq=None)


@pytest.mark.moto
def test_an_ended_workitem_expires_after_its_retention_and_leaves_the_open_index(world: World) -> None:
    from datetime import UTC, datetime

    from chalicelib.adapters.dynamo import WorkitemItem
    from chalicelib.domain.coaching import EndedBy, Status

    store = world.services.coaching.store
    created = replace(_workitem(), retention_days=7)
    store.create(created)
    assert WorkitemItem.get("T#t1#W#wi-1", "W", consistent_read=True).gsi1pk == "T#t1#AGENT#agent-1"
    ended = replace(created, version=1, status=Status.ENDED, ended_at="2026-01-02T00:00:00.000Z", ended_by=EndedBy.AGENT)
    store.commit(Change(created, ended))
    item = WorkitemItem.get("T#t1#W#wi-1", "W", consistent_read=True)
    assert item.ttl == datetime(2026, 1, 9, tzinfo=UTC) and item.gsi1pk is None  # 7 days after it ended
    assert store.get("t1", "wi-1") == ended


@pytest.mark.moto
@pytest.mark.parametrize(
    ("code", "reasons", "stale"),
    [
        ("TransactionCanceledException", ["None", "TransactionConflict"], True),  # another transaction on the item
        ("TransactionCanceledException", ["None", "ConditionalCheckFailed"], True),
        ("TransactionConflictException", [], True),
        ("TransactionInProgressException", [], True),
        ("TransactionCanceledException", ["None", "ValidationError"], False),
        ("ProvisionedThroughputExceededException", [], False),
    ],
)
def test_a_commit_the_store_refuses_is_a_lost_race_only_for_conflicts(
    world: World, monkeypatch: pytest.MonkeyPatch, code: str, reasons: list[str], stale: bool
) -> None:
    """How DynamoDB answers a transaction that met another one (moto never does): the caller reads
    again; any other refusal reaches the caller as it is."""
    from botocore.client import BaseClient
    from botocore.exceptions import ClientError
    from pynamodb.exceptions import TransactWriteError

    store = world.services.coaching.store
    store.create(_workitem())
    before = store.get("t1", "wi-1")
    assert before is not None
    original = getattr(BaseClient, "_make_api_call")

    def refuse(self: BaseClient, operation: str, params: object) -> object:
        if operation == "TransactWriteItems":
            response = {"Error": {"Code": code, "Message": "refused"}, "CancellationReasons": [{"Code": r} for r in reasons]}
            raise ClientError(response, operation)  # type: ignore[arg-type]
        return original(self, operation, params)

    monkeypatch.setattr(BaseClient, "_make_api_call", refuse)
    change = Change(before, replace(before, version=1, seq=1), [_entry(1, EntryKind.AGENT_MESSAGE, 1)])
    with pytest.raises(StaleWorkitem if stale else TransactWriteError) as refused:
        store.commit(change)
    if stale:
        assert refused.value.args == ("wi-1",)  # names the workitem


@pytest.mark.moto
def test_an_enrolled_user_is_dated_when_they_joined(world: World) -> None:
    from chalicelib.adapters.dynamo import RecipientItem

    assert world.services.directory.directory.enroll(Principal("t1", "ann", Role.AGENT, name="Ann"), AT)
    assert RecipientItem.get("T#t1#U#ann", "U", consistent_read=True).updated_at == AT
