"""Fast delivery (docs/product.md W15) on AWS's DynamoDB Local engine: the connection's mode in the
recipient's set, the workitem and its recipients read in one BatchGetItem across two tables, and a
handler that dies after its commit while the engine's real stream carries the backstop."""

from __future__ import annotations

import json
from typing import Any

import pytest

from chalicelib.domain.identity import Principal, Role
from chalicelib.entrypoints import ws
from chalicelib.services.ports import Connection
from tests.support.ordering import OrderedTimeline

pytestmark = pytest.mark.ddblocal


class Killed(BaseException):
    """The handler's process dies between its commit and its posts."""


def test_fast_connections_get_every_entry_once_in_order_after_a_handler_dies(ddb_world: Any) -> None:
    w = ddb_world
    w.team()
    w.assign("wi-1")
    sup = w.connect("sup-1", "supervisor")
    sup.ok("monitor.start", workitemId="wi-1")
    fast = w.connect("agent-1", "agent", delivery="fast")
    ordered = w.connect("agent-1", "agent")
    assert {(c.connection_id, c.fast) for c in w.directory.recipient(w.tid, "U#agent-1").connections} == {
        (fast.connection_id, True),
        (ordered.connection_id, False),
    }
    view = OrderedTimeline(fast, "wi-1")
    view.offer(fast.ok("timeline.get", workitemId="wi-1", after=0)["entries"])
    fanout = w.services.fanout
    post_fast = fanout.post_fast

    def dies(*args: Any, **kwargs: Any) -> None:
        raise Killed()

    with w.batched():
        sup.ok("coach.send", workitemId="wi-1", text="one")
        fanout.post_fast = dies
        with pytest.raises(Killed):
            body = {"action": "coach.send", "requestId": "r", "workitemId": "wi-1", "text": "two"}
            ws.message(sup.event("$default", json.dumps(body)))
        fanout.post_fast = post_fast
        sup.ok("coach.send", workitemId="wi-1", text="three")
        view.receive()
        assert view.missing  # three before two: a gap
    view.receive()  # the stream's copies, read from the engine's stream
    assert not view.missing
    texts = [e["text"] for e in view.delivered if e["kind"] == "coach_message"]
    assert texts == ["one", "two", "three"]
    timeline = fast.ok("timeline.get", workitemId="wi-1", after=0)["entries"]
    assert [e["seq"] for e in view.delivered] == [e["seq"] for e in timeline]
    assert [f["data"]["entry"]["text"] for f in ordered.events("coach.message")] == ["one", "two", "three"]


def test_a_workitem_and_its_recipients_in_one_batch_across_both_tables(ddb_world: Any) -> None:
    w = ddb_world
    w.team()
    w.assign("wi-1")
    w.directory.connect(Principal(w.tid, "agent-1", Role.AGENT), Connection("c-1=", 7, fast=True))
    sup = w.connect("sup-1", "supervisor")
    message = sup.ok("monitor.start", workitemId="wi-1") and sup.ok("coach.send", workitemId="wi-1", text="hi")["entry"]
    read = w.store.read(w.tid, "wi-1", message_id=message["messageId"], recipients=["U#agent-1", "U#sup-1", "U#gone"])
    assert read.workitem is not None and read.workitem.monitors.keys() == {"sup-1"}
    assert read.message is not None and read.message.text == "hi"
    assert sorted(read.recipients) == ["U#agent-1", "U#sup-1"]
    assert Connection("c-1=", 7, fast=True) in read.recipients["U#agent-1"].connections
    # 100 keys in all at most: a workitem and a message leave room for 98 recipients, asked once each.
    many = [f"U#user-{i}" for i in range(150)]
    assert w.store.read(w.tid, "wi-1", message_id="x", recipients=[*many, *many]).recipients == {}
