"""Pushes come from the workitems table's stream, in commit order (chalicelib/services/fanout.py).

The world reads moto's stream after every invocation and hands the records to the real ``fanout``
entry point; these tests look at the records themselves and at what receivers get when handlers
commit at the same time.
"""

from __future__ import annotations

import json
import logging
import threading
from typing import Any

import pytest

from chalicelib.adapters.dynamo import FANOUT_NOTE_ATTRIBUTE
from chalicelib.adapters.stream import committed_changes
from chalicelib.entrypoints import events
from tests.support.world import World, _stream_tail, atomic_aws_calls

pytestmark = [pytest.mark.integration, pytest.mark.moto]

WID = "wi-stream"


def _room(world: World) -> tuple[Any, Any, Any]:
    world.team()
    agent = world.connect("agent-1", "agent")
    sup = world.connect("sup-1", "supervisor")
    world.assign(WID)
    cust = world.connect(f"cust-{WID}", "customer", wid=WID)
    sup.ok("monitor.start", workitemId=WID)
    return agent, sup, cust


def test_only_noted_changes_of_workitem_items_become_pushes(world: World) -> None:
    agent, sup, _ = _room(world)
    tail = _stream_tail(world.settings)  # a second reader, from now on

    entry = sup.ok("coach.send", workitemId=WID, text="slow down")["entry"]
    records = tail.read()

    keys = sorted(r["dynamodb"]["Keys"]["sk"]["S"][:2] for r in records)
    assert keys == ["E#", "M#", "W"]  # the entry, the message index and the workitem item
    [committed] = committed_changes(records)
    assert [e.seq for e in committed.note.entries] == [entry["seq"]]
    assert committed.note.exclude == sup.connection_id  # the sender got the ack instead
    assert committed.after.version == committed.before.version + 1
    # The world's own reader pushed it already: once, to the agent, not to the sender.
    assert [e["data"]["entry"]["seq"] for e in agent.events("coach.message")] == [entry["seq"]]
    assert sup.events("coach.message") == []


def test_records_that_are_not_noted_changes_are_skipped(world: World, caplog: pytest.LogCaptureFixture) -> None:
    agent, sup, _ = _room(world)
    tail = _stream_tail(world.settings)
    sup.ok("coach.send", workitemId=WID, text="one")
    [workitem_record] = [r for r in tail.read() if r["dynamodb"]["Keys"]["sk"]["S"] == "W"]
    without_note = json.loads(json.dumps(workitem_record, default=str))
    del without_note["dynamodb"]["NewImage"][FANOUT_NOTE_ATTRIBUTE]  # a commit that pushes nothing (a voice mode entry)
    removed = {**without_note, "eventName": "REMOVE"}  # TTL deleting an ended workitem
    garbled = json.loads(json.dumps(workitem_record, default=str))
    garbled["dynamodb"]["NewImage"][FANOUT_NOTE_ATTRIBUTE] = {"S": '{"v": 1, "e": [{"s": "not a number"}]}'}
    garbled["dynamodb"]["SequenceNumber"] = "garbled-1"
    before = len(agent.events("coach.message"))
    caplog.set_level(logging.INFO)
    logging.getLogger("chalicelib").propagate = True
    try:
        result = events.fan_out({"Records": [without_note, removed, garbled, workitem_record]})
    finally:
        logging.getLogger("chalicelib").propagate = False

    assert result == {"batchItemFailures": []}  # the good record behind the bad one still goes (pushed once more below)
    assert "skipping unreadable stream record garbled-1" in caplog.text
    # At least once: a record handed over again is pushed again (clients ignore a seq they have).
    assert len(agent.events("coach.message")) == before + 1


def test_concurrent_handlers_reach_every_receiver_in_seq_order(world: World) -> None:
    """Agent, supervisor and customer all write at once; every receiver sees ascending seq."""
    agent, sup, cust = _room(world)
    sup2 = world.connect("sup-2", "supervisor")
    sup2.ok("monitor.start", workitemId=WID)
    barrier = threading.Barrier(4)
    errors: list[dict[str, Any]] = []

    def writer(client: Any, action: str) -> None:
        barrier.wait()
        for n in range(8):
            reply = client.request(action, workitemId=WID, text=f"{action} {n}")
            if reply["type"] != "ack":
                errors.append(reply)

    threads = [
        threading.Thread(target=writer, args=(c, a))
        for c, a in ((agent, "coach.send"), (sup, "coach.send"), (sup2, "coach.send"), (cust, "message.send"))
    ]
    with atomic_aws_calls():
        for t in threads:
            t.start()
        for t in threads:
            t.join()

    assert not any(e["error"]["code"] not in ("rate_limited",) for e in errors), errors
    timeline = world.services.coaching.store.timeline("t1", WID, after=0, limit=200, customer=False)[0]
    assert [e.seq for e in timeline] == list(range(1, len(timeline) + 1))
    for receiver in (agent, sup, sup2):
        seqs = [f["data"]["entry"]["seq"] for f in receiver.events() if "entry" in (f.get("data") or {})]
        assert seqs == sorted(seqs) and len(seqs) == len(set(seqs)), (receiver.claims["sub"], seqs)
        own = {e.seq for e in timeline if e.author_id == receiver.claims["sub"]}
        assert own.isdisjoint(seqs)  # own entries come in the ack
    customer_seqs = [f["data"]["entry"]["seq"] for f in cust.events("message.received")]
    assert customer_seqs == sorted(customer_seqs)
