"""Bounds that protect DynamoDB, on AWS's own engine: the largest ``after`` a client may send reads an
empty page in both timeline views (no ValidationException: the key range stays ordered), and pages of
the list actions follow the open-workitems index exactly once."""

from __future__ import annotations

from typing import Any

import pytest

from chalicelib.entrypoints.validation import MAX_SEQ

pytestmark = pytest.mark.ddblocal


def test_the_largest_after_reads_an_empty_page_and_a_larger_one_is_refused(ddb_world: Any) -> None:
    w = ddb_world
    w.team()
    w.assign("wi-1")
    agent = w.connect("agent-1", "agent")
    customer = w.connect("cust-wi-1", "customer", tid=w.tid, wid="wi-1")
    agent.ok("message.send", workitemId="wi-1", text="hello")
    for client in (agent, customer):
        page = client.ok("timeline.get", workitemId="wi-1", after=MAX_SEQ, limit=200)
        assert page == {"entries": [], "hasMore": False}
        for too_big in (MAX_SEQ + 1, 10**10, 10**38, 10**1022):  # 10**10 was a ValidationException (BETWEEN order)
            client.fails("timeline.get", "invalid", workitemId="wi-1", after=too_big)
        assert client.ok("timeline.get", workitemId="wi-1", after=0)["entries"]


def test_workitem_pages_follow_the_index_exactly_once(ddb_world: Any) -> None:
    w = ddb_world
    w.team()
    ids = [f"wi-{i}" for i in range(7)]
    for wid in ids:
        w.assign(wid)
    sup = w.connect("sup-1", "supervisor", tid=w.tid)
    seen: list[str] = []
    cursor = None
    while True:
        data = sup.ok("workitems.list", agentId="agent-1", limit=2, **({"cursor": cursor} if cursor else {}))
        seen += [x["workitemId"] for x in data["workitems"]]
        cursor = data["nextCursor"]
        if cursor is None:
            break
    assert sorted(seen) == sorted(ids) and len(seen) == len(ids)
