"""Races: a coach message racing a transfer is in the timeline before coaching_ended, or refused.

moto applies a TransactWriteItems as several steps without a lock, so two threads can interleave
inside one transaction, which real DynamoDB never allows. Here each DynamoDB call is made atomic
with a lock (the handlers still interleave between calls, which is the race that matters); the
DynamoDB Local tier (tests/ddblocal) runs the same race on AWS's own engine without the lock.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from tests.support.world import World, atomic_aws_calls

pytestmark = [pytest.mark.integration, pytest.mark.moto]


@pytest.fixture(autouse=True)
def atomic_calls() -> Iterator[None]:
    with atomic_aws_calls():
        yield


def test_coach_send_racing_transfer_never_lands_after_coaching_ended(world: World) -> None:
    world.team()
    agent = world.connect("agent-1", "agent")
    sup = world.connect("sup-1", "supervisor")
    for round_ in range(15):
        wid = f"wi-race-{round_}"
        world.assign(wid)
        sup.ok("monitor.start", workitemId=wid)
        barrier = threading.Barrier(3)
        results: dict[str, list[dict]] = {"send": [], "transfer": []}

        def send() -> None:
            barrier.wait()
            for i in range(3):
                results["send"].append(sup.request("coach.send", workitemId=wid, text=f"tip {i}"))

        def transfer() -> None:
            barrier.wait()
            results["transfer"].append(agent.request("workitem.transfer", workitemId=wid, toAgentId="agent-2"))

        threads = [threading.Thread(target=send), threading.Thread(target=transfer)]
        for t in threads:
            t.start()
        barrier.wait()
        for t in threads:
            t.join()
        assert results["transfer"][0]["type"] == "ack"
        entries = world.services.coaching.store.timeline("t1", wid, after=0, limit=100, customer=False)[0]
        assert [e.seq for e in entries] == list(range(1, len(entries) + 1))
        ended = [e.seq for e in entries if e.kind.value == "coaching_ended"]
        assert len(ended) == 1
        coach_seqs = [e.seq for e in entries if e.kind.value == "coach_message"]
        assert all(s < ended[0] for s in coach_seqs)
        accepted = [r for r in results["send"] if r["type"] == "ack"]
        refused = [r for r in results["send"] if r["type"] == "error"]
        assert len(accepted) == len(coach_seqs)
        assert all(r["error"]["code"] == "conflict" for r in refused)
        # the transfer moved the workitem to agent-2; give it back so the next round starts alike
        world.connect("agent-2", "agent")


def test_two_supervisors_joining_at_once_both_get_contiguous_lines(world: World) -> None:
    world.team()
    world.assign("wi-1")
    sups = [world.connect("sup-1", "supervisor"), world.connect("sup-2", "supervisor")]
    barrier = threading.Barrier(2)
    replies: list[dict] = []

    def join(client) -> None:
        barrier.wait()
        replies.append(client.request("monitor.start", workitemId="wi-1"))

    threads = [threading.Thread(target=join, args=(s,)) for s in sups]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(r["type"] == "ack" for r in replies)
    entries = world.services.coaching.store.timeline("t1", "wi-1", after=0, limit=10, customer=False)[0]
    assert [(e.seq, e.kind.value) for e in entries] == [(1, "supervisor_joined"), (2, "supervisor_joined")]
