"""Storage behaviour on AWS's DynamoDB Local engine: conditions, transactions, indexes, sets, TTL.

moto answers like DynamoDB for most calls; these tests hold the repositories to the real engine's
rules (conditional transactions and their cancellation reasons, sparse GSI/LSI maintenance,
duplicate keys in BatchGetItem, set ADD/DELETE, TTL), through the repositories directly and through
the product's Lambda entry points (the ``ddb_world`` fixture, see conftest.py).
"""

from __future__ import annotations

import random
import threading
import time
from typing import Any

import pytest
from pynamodb.exceptions import UpdateError

from chalicelib.adapters.dynamo import create_tables, table_names
from chalicelib.domain import coaching as rules
from chalicelib.domain.coaching import Channel, Workitem
from chalicelib.domain.identity import Principal, Role
from chalicelib.domain.timeline import EntryKind
from chalicelib.services.ports import (
    AlreadyExists,
    Connection,
    CounterDelta,
    DuplicateEvent,
    Idempotency,
    StaleWorkitem,
    Template,
    Watcher,
)
from tests.ddblocal.conftest import ddb_client

pytestmark = pytest.mark.ddblocal

NOW = "2026-01-01T00:00:00.000Z"
MESSAGE_KINDS = {"customer_message", "agent_message"}


def _workitem(tid: str, wid: str = "wi-1", agent: str = "agent-1", channel: Channel = Channel.CHAT) -> Workitem:
    return Workitem(
        tenant_id=tid,
        workitem_id=wid,
        channel=channel,
        agent_id=agent,
        customer_id=f"cust-{wid}",
        customer_name="Casey Customer",
        created_at=NOW,
        subject="Refund",
    )


def _agent(tid: str, uid: str = "agent-1") -> Principal:
    return Principal(tid, uid, Role.AGENT)


def _sup(tid: str, uid: str = "sup-1") -> Principal:
    return Principal(tid, uid, Role.SUPERVISOR)


def _raw_item(world: Any, table: str, pk: str, sk: str | None) -> dict[str, Any]:
    key = {"pk": {"S": pk}} if sk is None else {"pk": {"S": pk}, "sk": {"S": sk}}
    name = table_names(world.settings)[table]
    item: dict[str, Any] | None = ddb_client(world.settings).get_item(TableName=name, Key=key, ConsistentRead=True).get("Item")
    assert item is not None, (table, pk, sk)
    return item


def _staff_timeline(world: Any, wid: str = "wi-1") -> list[Any]:
    entries, more = world.store.timeline(world.tid, wid, after=0, limit=1000, customer=False)
    assert not more
    return entries


def _setup_chat(world: Any, wid: str = "wi-1") -> tuple[Any, Any, Any]:
    world.team()
    world.assign(wid)
    agent = world.connect("agent-1", "agent")
    sup = world.connect("sup-1", "supervisor")
    cust = world.connect(f"cust-{wid}", "customer", wid=wid)
    return agent, sup, cust


# --- tables ------------------------------------------------------------------------------------


def test_every_table_has_ttl_enabled_and_the_indexes_the_queries_need(ddb_settings: Any) -> None:
    client = ddb_client(ddb_settings)
    names = table_names(ddb_settings)
    for name in names.values():
        ttl = client.describe_time_to_live(TableName=name)["TimeToLiveDescription"]
        assert ttl == {"TimeToLiveStatus": "ENABLED", "AttributeName": "ttl"}, name

    workitems = client.describe_table(TableName=names["workitems"])["Table"]
    indexes = {(i["IndexName"], i["Projection"]["ProjectionType"]) for i in workitems["GlobalSecondaryIndexes"]}
    assert indexes == {("gsi1", "ALL"), ("gsi2", "ALL")}  # open workitems by agent; active SMS ones by customer
    assert {(i["IndexName"], i["Projection"]["ProjectionType"]) for i in workitems["LocalSecondaryIndexes"]} == {("lsi1", "ALL")}
    directory = client.describe_table(TableName=names["directory"])["Table"]
    assert [i["IndexName"] for i in directory["GlobalSecondaryIndexes"]] == ["gsi1"]
    assistance = client.describe_table(TableName=names["assistance"])["Table"]
    assert [i["IndexName"] for i in assistance["GlobalSecondaryIndexes"]] == ["due"]
    for name in names.values():
        billing = client.describe_table(TableName=name)["Table"].get("BillingModeSummary", {})
        assert billing.get("BillingMode") == "PAY_PER_REQUEST", name


def test_create_tables_is_idempotent_on_a_strict_engine(ddb_settings: Any) -> None:
    client = ddb_client(ddb_settings)
    name = table_names(ddb_settings)["idempotency"]
    # The engine refuses to enable TTL twice, as AWS does...
    with pytest.raises(client.exceptions.ClientError, match="already enabled"):
        client.update_time_to_live(TableName=name, TimeToLiveSpecification={"Enabled": True, "AttributeName": "ttl"})
    # ...so a second create_tables must leave existing tables alone (the local stack runs it at every start).
    create_tables(ddb_settings)
    create_tables(ddb_settings)
    for table in table_names(ddb_settings).values():
        assert client.describe_time_to_live(TableName=table)["TimeToLiveDescription"]["TimeToLiveStatus"] == "ENABLED"


# --- workitems: versions, transactions, idempotency --------------------------------------------------


def test_workitem_create_and_commit_are_conditional_on_the_version(ddb_world: Any) -> None:
    w, tid, store = ddb_world, ddb_world.tid, ddb_world.store
    store.create(_workitem(tid), counters=[CounterDelta(tid, "agent-1", 1)])
    with pytest.raises(AlreadyExists):
        store.create(_workitem(tid, agent="agent-2"), counters=[CounterDelta(tid, "agent-2", 1)])
    # The refused create wrote nothing, its counter included.
    assert w.directory.recipient(tid, "U#agent-2") is None
    assert w.directory.recipient(tid, "U#agent-1").workitem_count == 1

    v0 = store.get(tid, "wi-1")
    assert (v0.version, v0.seq, v0.agent_id) == (0, 0, "agent-1")
    store.commit(rules.start_monitoring(_sup(tid), v0, True, NOW))

    # A change decided on the old state loses: nothing of it is written (entry, message index).
    stale = rules.send_message(_agent(tid), v0, "decided on stale state", "msg_stale", NOW)
    with pytest.raises(StaleWorkitem):
        store.commit(stale)
    assert [e.kind for e in _staff_timeline(w)] == [EntryKind.SUPERVISOR_JOINED]
    assert store.get_with_message(tid, "wi-1", "msg_stale")[1] is None

    v1 = store.get(tid, "wi-1")
    assert (v1.version, v1.seq, list(v1.monitors)) == (1, 1, ["sup-1"])
    store.commit(rules.send_message(_agent(tid), v1, "hello", "msg_fresh", NOW))
    v2, message = store.get_with_message(tid, "wi-1", "msg_fresh")
    assert (v2.version, v2.seq, v2.customer_seq) == (2, 2, 1)
    assert (message.seq, message.kind, message.text) == (2, EntryKind.AGENT_MESSAGE, "hello")

    # A transfer moves both counters in the same transaction.
    change = rules.transfer(v2, "agent-2", "agent-1", Role.AGENT, NOW)
    store.commit(change, counters=[CounterDelta(tid, "agent-1", -1), CounterDelta(tid, "agent-2", 1)])
    counts = w.directory.recipients(tid, ["U#agent-1", "U#agent-2"])
    assert (counts["U#agent-1"].workitem_count, counts["U#agent-2"].workitem_count) == (0, 1)
    # A stale transfer leaves the counters alone.
    with pytest.raises(StaleWorkitem):
        store.commit(
            rules.transfer(v2, "agent-3", "agent-1", Role.AGENT, NOW),
            counters=[CounterDelta(tid, "agent-1", -1), CounterDelta(tid, "agent-3", 1)],
        )
    counts = w.directory.recipients(tid, ["U#agent-1", "U#agent-2", "U#agent-3"])
    assert (counts["U#agent-1"].workitem_count, counts["U#agent-2"].workitem_count) == (0, 1)
    assert "U#agent-3" not in counts


def test_idempotency_keys_are_written_in_the_same_transaction(ddb_world: Any) -> None:
    w, tid, store = ddb_world, ddb_world.tid, ddb_world.store
    assigned = Idempotency(tid, "evt-1", "workitem.assigned")
    store.create(_workitem(tid), idempotency=assigned, counters=[CounterDelta(tid, "agent-1", 1)])
    with pytest.raises(DuplicateEvent):
        store.create(_workitem(tid, "wi-2"), idempotency=assigned, counters=[CounterDelta(tid, "agent-1", 1)])
    assert store.get(tid, "wi-2") is None
    assert w.directory.recipient(tid, "U#agent-1").workitem_count == 1
    item = _raw_item(w, "idempotency", f"T#{tid}#EVT#evt-1", None)
    assert item is not None and item["event_type"] == {"S": "workitem.assigned"} and "ttl" in item

    message = Idempotency(tid, "evt-2", "workitem.message")
    v0 = store.get(tid, "wi-1")
    store.commit(rules.integration_message(v0, "customer", "hi", "msg_1", NOW), idempotency=message)
    v1 = store.get(tid, "wi-1")
    with pytest.raises(DuplicateEvent):  # a redelivery decided on fresh state is still refused
        store.commit(rules.integration_message(v1, "customer", "hi", "msg_2", NOW), idempotency=message)
    assert store.get(tid, "wi-1").version == v1.version
    assert [e.message_id for e in _staff_timeline(w)] == ["msg_1"]

    noop = Idempotency(tid, "evt-3", "workitem.ended")
    store.mark_event(noop)
    with pytest.raises(DuplicateEvent):
        store.mark_event(noop)

    # Event ids are per tenant.
    other = f"{tid}-other"
    store.create(_workitem(other), idempotency=Idempotency(other, "evt-1", "workitem.assigned"))
    assert store.get(other, "wi-1") is not None


# --- timelines --------------------------------------------------------------------------------


def test_timeline_pages_in_the_staff_view_and_in_the_customers_own_numbering(ddb_world: Any) -> None:
    w = ddb_world
    agent, sup, cust = _setup_chat(w)
    expected_customer: list[str] = []
    for i in range(4):
        cust.ok("message.send", workitemId="wi-1", text=f"customer {i}")
        expected_customer.append(f"customer {i}")
        if i == 1:
            sup.ok("monitor.start", workitemId="wi-1")
        if i >= 1:
            sup.ok("coach.send", workitemId="wi-1", text=f"coach {i}")
            agent.ok("coach.send", workitemId="wi-1", text=f"agent asks {i}")
        agent.ok("message.send", workitemId="wi-1", text=f"agent {i}")
        expected_customer.append(f"agent {i}")
    total = len(_staff_timeline(w))
    assert total == 4 + 1 + 3 * 2 + 4

    # Staff view, paged by 4: every seq once, in order, hasMore until the last page.
    seen: list[dict[str, Any]] = []
    after = 0
    while True:
        page = sup.ok("timeline.get", workitemId="wi-1", after=after, limit=4)
        seen.extend(page["entries"])
        if not page["hasMore"]:
            break
        assert len(page["entries"]) == 4
        after = page["entries"][-1]["seq"]
    assert [e["seq"] for e in seen] == list(range(1, total + 1))

    # Customer view through the LSI, paged by 3: contiguous customer numbering, no coaching at all.
    seen = []
    after = 0
    while True:
        page = cust.ok("timeline.get", workitemId="wi-1", after=after, limit=3)
        seen.extend(page["entries"])
        if not page["hasMore"]:
            break
        after = page["entries"][-1]["seq"]
    assert [e["seq"] for e in seen] == list(range(1, len(expected_customer) + 1))
    assert [e["text"] for e in seen] == expected_customer
    assert {e["kind"] for e in seen} == MESSAGE_KINDS
    assert all(set(e) == {"workitemId", "seq", "kind", "at", "authorId", "authorRole", "messageId", "text"} for e in seen)

    # Reading from the middle of either numbering.
    middle = cust.ok("timeline.get", workitemId="wi-1", after=5, limit=200)["entries"]
    assert [e["text"] for e in middle] == expected_customer[5:]
    entries, more = w.store.timeline(w.tid, "wi-1", after=total - 2, limit=200, customer=False)
    assert [e.seq for e in entries] == [total - 1, total] and not more

    # latest(): the newest entries, oldest first (what monitor.start returns).
    newest, more = w.store.latest(w.tid, "wi-1", 5)
    assert [e.seq for e in newest] == list(range(total - 4, total + 1)) and more
    everything, more = w.store.latest(w.tid, "wi-1", 200)
    assert [e.seq for e in everything] == list(range(1, total + 1)) and not more


# --- the open-workitems index ----------------------------------------------------------------------


def _open_ids(world: Any, agent_id: str) -> set[str]:
    return {wi.workitem_id for wi in world.store.open_for_agent(world.tid, agent_id)}


def test_open_workitems_index_is_sparse_and_follows_coaching(ddb_world: Any) -> None:
    w = ddb_world
    w.team()
    for wid in ("wi-a", "wi-b", "wi-c"):
        w.assign(wid)
    assert _open_ids(w, "agent-1") == {"wi-a", "wi-b", "wi-c"}
    agent = w.connect("agent-1", "agent")
    sup = w.connect("sup-1", "supervisor")

    # Ended without coaching: off the index at once, with a TTL instead.
    status, body = w.webhook("workitem.ended", {"workitemId": "wi-a", "endedBy": "agent"})
    assert (status, body) == (200, {"status": "applied"})
    assert _open_ids(w, "agent-1") == {"wi-b", "wi-c"}
    raw = _raw_item(w, "workitems", f"T#{w.tid}#W#wi-a", "W")
    assert "gsi1pk" not in raw and "gsi1sk" not in raw and "ttl" in raw

    # The customer leaves while a supervisor coaches: still listed until coaching ends (S14).
    sup.ok("monitor.start", workitemId="wi-b")
    status, _ = w.webhook("workitem.ended", {"workitemId": "wi-b", "endedBy": "customer"})
    assert status == 200
    listed = {x["workitemId"]: x for x in agent.ok("workitems.list", agentId="agent-1")["workitems"]}
    assert set(listed) == {"wi-b", "wi-c"}
    assert listed["wi-b"]["status"] == "ended" and listed["wi-b"]["coaching"]["active"] is True
    raw = _raw_item(w, "workitems", f"T#{w.tid}#W#wi-b", "W")
    assert raw["gsi1pk"] == {"S": f"T#{w.tid}#AGENT#agent-1"} and "ttl" not in raw
    agent.ok("coaching.end", workitemId="wi-b")
    assert _open_ids(w, "agent-1") == {"wi-c"}
    assert "gsi1pk" not in _raw_item(w, "workitems", f"T#{w.tid}#W#wi-b", "W")

    # A transfer moves the workitem to the new agent's list.
    agent.ok("workitem.transfer", workitemId="wi-c", toAgentId="agent-2")
    assert _open_ids(w, "agent-1") == set()
    assert _open_ids(w, "agent-2") == {"wi-c"}
    assert [x["workitemId"] for x in sup.ok("workitems.list", agentId="agent-2")["workitems"]] == ["wi-c"]
    agents = {a["userId"]: a["workitemCount"] for a in sup.ok("agents.list")["agents"]}
    assert agents == {"agent-1": 0, "agent-2": 1}


# --- directory -----------------------------------------------------------------------------------


def test_supervision_edges_by_agent_and_through_the_supervisor_index(ddb_world: Any) -> None:
    w, tid, d = ddb_world, ddb_world.tid, ddb_world.directory
    for uid in ("sup-3", "agent-3"):
        w.admin("PUT", f"/admin/users/{uid}", {"name": uid, "role": "supervisor" if "sup" in uid else "agent"})
    w.team(team_id="team-1", supervisors=("sup-1", "sup-2"), agents=("agent-1", "agent-2"))
    w.team(team_id="team-2", supervisors=("sup-1", "sup-3"), agents=("agent-2", "agent-3"))

    assert d.supervises(tid, "sup-1", "agent-1") and d.supervises(tid, "sup-3", "agent-3")
    assert not d.supervises(tid, "sup-3", "agent-1")
    assert not d.supervises(tid, "sup", "agent-1")  # a supervisor id is never matched by prefix
    assert sorted(d.supervisors_of(tid, "agent-2")) == ["sup-1", "sup-2", "sup-3"]
    assert d.agents_of(tid, "sup-1") == ["agent-1", "agent-2", "agent-3"]  # in two teams, listed once
    assert d.agents_of(tid, "sup-3") == ["agent-2", "agent-3"]

    # Shrinking a team removes exactly its edges; the other team's edges stay.
    w.team(team_id="team-1", supervisors=("sup-1",), agents=("agent-1",))
    assert not d.supervises(tid, "sup-2", "agent-1") and d.agents_of(tid, "sup-2") == []
    assert d.agents_of(tid, "sup-1") == ["agent-1", "agent-2", "agent-3"]
    w.team(team_id="team-2", supervisors=("sup-3",), agents=("agent-3",))
    assert d.agents_of(tid, "sup-1") == ["agent-1"]
    assert d.supervisors_of(tid, "agent-2") == []

    sup = w.connect("sup-1", "supervisor")
    assert [a["userId"] for a in sup.ok("agents.list")["agents"]] == ["agent-1"]
    sup.fails("workitems.list", "forbidden", agentId="agent-3")
    # Edges never leak across tenants.
    assert d.agents_of(f"{tid}-other", "sup-1") == []


def test_endpoint_connection_sets_add_and_delete(ddb_world: Any) -> None:
    w, tid, d = ddb_world, ddb_world.tid, ddb_world.directory
    p = Principal(tid, "agent-1", Role.AGENT, name="Agent One")
    a, b = Connection("conn-a=", 2_000), Connection("conn-b=", 1_000)
    assert [c.token for c in d.connect(p, a).connections] == ["conn-a=|2000"]
    assert d.connect(p, b).connections == [b, a]  # ordered by connection time
    assert d.connect(p, a).connections == [b, a]  # a set: the same connection once
    recipient = d.recipient(tid, "U#agent-1")
    assert (recipient.role, recipient.name, recipient.in_directory) == (Role.AGENT, "Agent One", False)
    assert d.disconnect(p, a).connections == [b]
    assert d.disconnect(p, b).connections == []
    # A fast connection (W15.1) keeps its mode in the set; $disconnect, which knows no mode, drops it,
    # and a gone one is forgotten by what it was read as.
    fast = Connection("conn-f=", 3_000, fast=True)
    assert d.connect(p, fast).connections == [fast]
    assert d.disconnect(p, Connection("conn-f=", 3_000)).connections == []
    d.connect(p, fast)
    d.forget(tid, "U#agent-1", d.recipient(tid, "U#agent-1").connections, [])
    assert "conns" not in _raw_item(w, "directory", f"T#{tid}#U#agent-1", "U")  # an empty set is removed

    # Connecting does not overwrite an admin's name and role.
    w.admin("PUT", "/admin/users/agent-2", {"name": "Official Name", "role": "agent"})
    recipient = d.connect(Principal(tid, "agent-2", Role.AGENT, name="Token Name"), a)
    assert (recipient.name, recipient.in_directory) == ("Official Name", True)

    # forget() drops gone connections and watches together, and never creates a recipient.
    watcher = Watcher(Connection("conn-s=", 3_000), "sup-1")
    d.connect(p, a)
    d.connect(p, b)
    d.watch(tid, "agent-1", watcher, True)
    assert d.recipient(tid, "U#agent-1").watchers == [watcher]
    d.forget(tid, "U#agent-1", [a], [watcher])
    recipient = d.recipient(tid, "U#agent-1")
    assert (recipient.connections, recipient.watchers) == ([b], [])
    # On a recipient that does not exist the update's condition fails (and the caller logs it).
    with pytest.raises(UpdateError) as refused:
        d.forget(tid, "U#nobody", [a], [])
    assert refused.value.cause_response_code == "ConditionalCheckFailedException"
    assert d.recipient(tid, "U#nobody") is None

    # Customers' recipients are keyed by workitem.
    w.assign("wi-1")
    cust = w.connect("cust-wi-1", "customer", wid="wi-1")
    recipient = d.recipient(tid, "C#wi-1")
    assert [c.connection_id for c in recipient.connections] == [cust.connection_id] and recipient.role is None
    cust.disconnect()
    assert d.recipient(tid, "C#wi-1").connections == []

    # Through the entry points: two tabs of one user, one closes.
    first = w.connect("sup-1", "supervisor")
    second = w.connect("sup-1", "supervisor")
    assert {c.connection_id for c in d.recipient(tid, "U#sup-1").connections} == {first.connection_id, second.connection_id}
    first.disconnect()
    assert [c.connection_id for c in d.recipient(tid, "U#sup-1").connections] == [second.connection_id]


def test_unread_counters_per_sender_and_in_total(ddb_world: Any) -> None:
    tid, d = ddb_world.tid, ddb_world.directory
    assert [d.add_unread(tid, "agent-1", "sup-1") for _ in range(3)] == [1, 2, 3]
    assert d.add_unread(tid, "agent-1", "sup-2") == 4
    assert d.mark_read(tid, "agent-1", "sup-1") == 1
    assert d.mark_read(tid, "agent-1", "sup-1") == 1  # nothing unread from sup-1 any more
    assert d.add_unread(tid, "agent-1", "sup-1") == 2
    assert d.mark_read(tid, "agent-1", "sup-2") == 1
    assert d.mark_read(tid, "agent-1", "sup-1") == 0
    assert d.recipient(tid, "U#agent-1").unread_total == 0
    assert d.mark_read(tid, "agent-9", "sup-1") == 0  # never had a recipient


def test_template_delete_reports_whether_it_existed(ddb_world: Any) -> None:
    w, tid, d = ddb_world, ddb_world.tid, ddb_world.directory
    d.put_template(tid, Template("tpl-1", "Need help with a refund", True), NOW)
    d.put_template(tid, Template("tpl-2", "Escalation please", False), NOW)
    assert sorted((t.template_id, t.enabled) for t in d.templates(tid)) == [("tpl-1", True), ("tpl-2", False)]
    assert d.delete_template(tid, "tpl-1") is True
    assert d.delete_template(tid, "tpl-1") is False
    assert d.delete_template(tid, "never") is False
    assert [t.template_id for t in d.templates(tid)] == ["tpl-2"]

    token = w.token("admin-1", "admin")
    assert w.rest("DELETE", "/admin/templates/tpl-2", token)[0] == 204
    status, body = w.rest("DELETE", "/admin/templates/tpl-2", token)
    assert status == 404 and body["error"]["code"] == "not_found"


def test_batch_get_of_endpoints(ddb_world: Any) -> None:
    tid, d = ddb_world.tid, ddb_world.directory
    assert d.recipients(tid, []) == {}
    for i in range(30):
        d.put_user(tid, f"user-{i:02d}", f"User {i}", Role.AGENT, NOW)
    keys = [f"U#user-{i:02d}" for i in range(100)]
    # Duplicate keys would make DynamoDB refuse the whole BatchGetItem; they are asked once.
    found = d.recipients(tid, [*keys[:70], "U#user-00", "U#user-05", *keys[70:]][:100])
    assert sorted(found) == [f"U#user-{i:02d}" for i in range(30)]
    assert found["U#user-07"].name == "User 7" and found["U#user-07"].role is Role.AGENT
    assert d.recipients(f"{tid}-other", keys[:10]) == {}


# --- the product, end to end on the real engine ---------------------------------------------------


def test_full_coaching_flow(ddb_world: Any) -> None:
    w = ddb_world
    agent, sup, cust = _setup_chat(w)
    agent2 = w.connect("agent-2", "agent")
    for c in (agent, sup, cust, agent2):
        c.new_events()

    started = sup.ok("monitor.start", workitemId="wi-1")
    assert started["workitem"]["coaching"] == {"active": True, "supervisors": ["sup-1"]}
    assert [e["event"] for e in agent.new_events()] == ["coaching.joined"]

    cust.ok("message.send", workitemId="wi-1", text="my order is late")
    assert [e["event"] for e in agent.new_events()] == ["message.received"]
    assert [e["event"] for e in sup.new_events()] == ["message.received"]

    coach = sup.ok("coach.send", workitemId="wi-1", text="Offer a voucher")["entry"]
    assert [e["data"]["entry"]["text"] for e in agent.new_events("coach.message")] == ["Offer a voucher"]

    agent.ok("coach.react", workitemId="wi-1", messageId=coach["messageId"], reaction="thumbs_up")
    assert [e["data"]["entry"]["reaction"] for e in sup.new_events("coach.reaction")] == ["thumbs_up"]

    forwarded = agent.ok("coach.forward", workitemId="wi-1", messageId=coach["messageId"])["entry"]
    assert forwarded["forwardedFrom"] == coach["messageId"]
    assert [e["data"]["entry"]["text"] for e in cust.new_events("message.received")] == ["Offer a voucher"]
    assert [e["event"] for e in sup.new_events()] == ["coach.forwarded"]

    agent.ok("message.send", workitemId="wi-1", text="Anything else?")
    assert [e["data"]["entry"]["seq"] for e in cust.new_events("message.received")] == [3]

    moved = agent.ok("workitem.transfer", workitemId="wi-1", toAgentId="agent-2")["workitem"]
    assert (moved["agentId"], moved["coaching"]["active"]) == ("agent-2", False)
    ended = sup.new_events("coaching.ended")
    assert [e["data"]["reason"] for e in ended] == ["transferred"]
    assert [e["data"]["workitem"]["workitemId"] for e in agent2.new_events("workitem.assigned")] == ["wi-1"]
    sup.fails("coach.send", "conflict", workitemId="wi-1", text="too late")
    agent.fails("message.send", "forbidden", workitemId="wi-1", text="not mine any more")

    kinds = [e["kind"] for e in sup.ok("timeline.get", workitemId="wi-1", after=0)["entries"]]
    assert kinds == [
        "supervisor_joined",
        "customer_message",
        "coach_message",
        "reaction",
        "agent_message",
        "agent_message",
        "coaching_ended",
    ]
    customer_view = cust.ok("timeline.get", workitemId="wi-1", after=0)["entries"]
    assert [(e["seq"], e["text"]) for e in customer_view] == [
        (1, "my order is late"),
        (2, "Offer a voucher"),
        (3, "Anything else?"),
    ]
    counts = {a["userId"]: a["workitemCount"] for a in sup.ok("agents.list")["agents"]}
    assert counts == {"agent-1": 0, "agent-2": 1}


def test_webhook_redeliveries_change_nothing(ddb_world: Any) -> None:
    w = ddb_world
    w.team()
    assigned = {"workitemId": "wi-1", "channel": "sms", "agentId": "agent-1", "customer": {"id": "cust-1", "name": "Casey"}}
    assert w.webhook("workitem.assigned", assigned, event_id="evt-a") == (200, {"status": "applied"})
    assert w.webhook("workitem.assigned", assigned, event_id="evt-a") == (200, {"status": "duplicate"})
    # The same assignment under a new event id is recognised as already applied.
    assert w.webhook("workitem.assigned", assigned, event_id="evt-a2") == (200, {"status": "applied"})
    assert w.webhook("workitem.assigned", assigned, event_id="evt-a2") == (200, {"status": "duplicate"})
    status, body = w.webhook("workitem.assigned", {**assigned, "agentId": "agent-2"}, event_id="evt-a3")
    assert status == 409 and body["error"]["code"] == "conflict"
    assert w.directory.recipient(w.tid, "U#agent-1").workitem_count == 1
    assert w.directory.recipient(w.tid, "U#agent-2") is None or w.directory.recipient(w.tid, "U#agent-2").workitem_count == 0

    message = {"workitemId": "wi-1", "from": "customer", "text": "hi by sms"}
    assert w.webhook("workitem.message", message, event_id="evt-m")[1] == {"status": "applied"}
    assert w.webhook("workitem.message", message, event_id="evt-m")[1] == {"status": "duplicate"}
    assert [e.text for e in _staff_timeline(w)] == ["hi by sms"]

    ended = {"workitemId": "wi-1", "endedBy": "agent"}
    assert w.webhook("workitem.ended", ended, event_id="evt-e")[1] == {"status": "applied"}
    version = w.store.get(w.tid, "wi-1").version
    assert w.webhook("workitem.ended", ended, event_id="evt-e")[1] == {"status": "duplicate"}
    assert w.webhook("workitem.ended", ended, event_id="evt-e2")[1] == {"status": "applied"}  # no-op, recorded
    assert w.webhook("workitem.ended", ended, event_id="evt-e2")[1] == {"status": "duplicate"}
    assert w.store.get(w.tid, "wi-1").version == version
    assert w.directory.recipient(w.tid, "U#agent-1").workitem_count == 0
    assert [e.kind for e in _staff_timeline(w)] == [EntryKind.CUSTOMER_MESSAGE]


# --- races on the real engine -------------------------------------------------------------------


def _run_together(*jobs: Any) -> None:
    barrier = threading.Barrier(len(jobs))
    errors: list[BaseException] = []

    def run(job: Any) -> None:
        try:
            barrier.wait(timeout=30)
            job()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(job,)) for job in jobs]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors
    assert not any(t.is_alive() for t in threads)


@pytest.mark.parametrize("transfer_delay", [0.0, 0.03, 0.12])
def test_coach_send_racing_a_transfer_is_before_coaching_ended_or_refused(ddb_world: Any, transfer_delay: float) -> None:
    w = ddb_world
    w.team()
    w.assign("wi-1")
    agent = w.connect("agent-1", "agent")
    sup = w.connect("sup-1", "supervisor")
    sup.ok("monitor.start", workitemId="wi-1")

    outcomes: list[tuple[str, str | None]] = []  # (result, message id)
    transferred: list[dict[str, Any]] = []

    def coach() -> None:
        for i in range(15):
            reply = sup.request("coach.send", workitemId="wi-1", text=f"tip {i}")
            if reply["type"] == "ack":
                outcomes.append(("ack", reply["data"]["entry"]["messageId"]))
            else:
                outcomes.append((reply["error"]["code"], None))

    def transfer() -> None:
        time.sleep(transfer_delay + random.uniform(0, 0.01))
        transferred.append(agent.request("workitem.transfer", workitemId="wi-1", toAgentId="agent-2"))

    _run_together(coach, transfer)
    assert transferred[0]["type"] == "ack", transferred

    entries = _staff_timeline(w)
    assert [e.seq for e in entries] == list(range(1, len(entries) + 1))
    ended = [e for e in entries if e.kind is EntryKind.COACHING_ENDED]
    assert len(ended) == 1 and ended[0].extra["reason"] == "transferred"
    coached = [e for e in entries if e.kind is EntryKind.COACH_MESSAGE]
    assert all(e.seq < ended[0].seq for e in coached)
    # Every acknowledged message is on the timeline exactly once; every other one was refused.
    assert sorted(str(e.message_id) for e in coached) == sorted(str(m) for r, m in outcomes if r == "ack")
    assert {r for r, _ in outcomes} <= {"ack", "conflict", "rate_limited"}
    refused = [r for r, _ in outcomes if r != "ack"]
    assert len(coached) + len(refused) == 15
    # Once refused for the transfer, never accepted again.
    results = [r for r, _ in outcomes]
    if "conflict" in results:
        assert "ack" not in results[results.index("conflict") :]


def test_concurrent_writers_keep_both_numberings_contiguous(ddb_world: Any) -> None:
    w = ddb_world
    agent, sup, cust = _setup_chat(w)
    sup.ok("monitor.start", workitemId="wi-1")
    acked: list[str] = []
    refused: list[str] = []
    lock = threading.Lock()

    def writer(client: Any, action: str, label: str) -> Any:
        def run() -> None:
            for i in range(8):
                reply = client.request(action, workitemId="wi-1", text=f"{label} {i}")
                with lock:
                    if reply["type"] == "ack":
                        acked.append(f"{label} {i}")
                    else:  # writers on one workitem are serialized, never refused
                        refused.append(f"{label} {i}: {reply['error']}")

        return run

    _run_together(
        writer(agent, "message.send", "agent"), writer(cust, "message.send", "customer"), writer(sup, "coach.send", "coach")
    )
    entries = _staff_timeline(w)
    assert [e.seq for e in entries] == list(range(1, len(entries) + 1))
    assert sorted(e.text for e in entries if e.text) == sorted(acked)
    assert refused == []
    assert len(acked) == 24
    visible = [e for e in entries if e.customer_seq is not None]
    assert [e.customer_seq for e in visible] == list(range(1, len(visible) + 1))
    assert [e["text"] for e in cust.ok("timeline.get", workitemId="wi-1", after=0)["entries"]] == [e.text for e in visible]


def test_the_slow_lane_admits_exactly_its_places_when_posts_race_for_them(ddb_world: Any) -> None:
    """Fair delivery's per-tenant lane on the real engine: conditional writes on the places, 10 posts
    racing for 4; a circuit's probe claimed by exactly one of several deliveries."""
    from chalicelib.domain.fairness import Health
    from chalicelib.domain.webhooks import Subscription

    w = ddb_world
    store = w.services.integrations.store
    now = int(time.time() * 1000)
    results: dict[str, tuple[int | None, int]] = {}

    def take(holder: str) -> None:
        results[holder] = store.take_lane(w.tid, holder, now, 4, 15_000)

    _run_together(*[lambda n=n: take(f"h{n}") for n in range(10)])
    held = {holder: place for holder, (place, _) in results.items() if place is not None}
    assert sorted(held.values()) == [0, 1, 2, 3]
    assert {frees for place, frees in results.values() if place is None} == {now + 15_000}
    holder, place = next(iter(held.items()))
    store.leave_lane(w.tid, holder, place)
    assert store.take_lane(w.tid, "late", now + 1, 4, 15_000)[0] == place

    store.put(Subscription(w.tid, "crm", "https://example.com/h", ("*",), True, "whsec_" + "A" * 43 + "="), NOW)
    store.set_health(w.tid, "crm", Health(failures=3, open_until=100))
    claims: list[bool] = []
    _run_together(*[lambda: claims.append(store.claim_probe(w.tid, "crm", 100, 115)) for _ in range(6)])
    assert sorted(claims) == [False] * 5 + [True]
    assert store.get(w.tid, "crm").health == Health(failures=3, open_until=115)
