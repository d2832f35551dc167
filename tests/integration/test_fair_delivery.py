"""Fair and lossless delivery (docs/webhooks.md "Fair delivery", docs/product.md W8.6, W8.7) through the
real entry points: the circuit per subscription, the tenant's slow lane, SMS on their own queue, a
partial batch response instead of an error for a backoff, and what a queue refuses kept, not dropped."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest

from chalicelib.domain.fairness import BREAK_AFTER, BREAK_BASE_SECONDS, Health
from chalicelib.entrypoints import events
from chalicelib.services.ports import Outgoing
from devstack.delivery import LocalDeliveryQueue
from tests.support.receiver import Receiver, receiver
from tests.support.world import World

# Tier: from the world fixture's backend (service on memory, integration on moto; tests/conftest.py).
# The receivers listen on 127.0.0.1, which only the local stack's targets allow.
pytestmark = pytest.mark.local_webhooks


@pytest.fixture
def w(world: World) -> World:
    world.team()
    world.services.integrations._sleep = lambda seconds: None  # the pauses between enqueue attempts
    return world


@pytest.fixture
def hook() -> Iterator[Receiver]:
    with receiver() as r:
        yield r


def subscribe(w: World, url: str, events_: list[str], sub: str = "crm", tid: str = "t1") -> None:
    status, body = w.rest(
        "PUT",
        f"/admin/webhook-subscriptions/{sub}",
        w.token("admin-1", "admin", tid),
        {"url": url, "events": events_, "enabled": True},
    )
    assert status == 201, body


def health(w: World, sub: str = "crm", tid: str = "t1") -> Health:
    found = w.services.integrations.store.get(tid, sub)
    assert found is not None
    return found.health


def test_a_backoff_is_a_partial_batch_response_not_a_function_error(w: World, hook: Receiver) -> None:
    subscribe(w, hook.url, ["workitem.assigned"])
    hook.script.append(500)
    w.assign("wi-1")
    [record] = w.queue.receive()
    assert events.deliver_webhooks([record]) == {"batchItemFailures": [{"itemIdentifier": record["messageId"]}]}
    assert len(hook.requests) == 1 and w.queue.pending() == 1  # it stays, hidden for its backoff
    w.deliver(after_seconds=31)
    assert len(hook.requests) == 2 and w.queue.pending() == 0


def test_three_failures_in_a_row_open_the_circuit_and_one_probe_closes_it(w: World, hook: Receiver) -> None:
    subscribe(w, hook.url, ["workitem.assigned"])
    hook.script.extend([500] * BREAK_AFTER)
    for i in range(BREAK_AFTER):
        w.assign(f"wi-{i}")
    w.deliver()
    assert len(hook.requests) == BREAK_AFTER
    assert health(w).broken
    for i in range(BREAK_AFTER, BREAK_AFTER + 4):
        w.assign(f"wi-{i}")
    w.deliver()
    assert len(hook.requests) == BREAK_AFTER  # the circuit is open: nothing posted, nothing waits on the receiver
    [listed] = w.admin("GET", "/admin/webhook-subscriptions")["subscriptions"]
    paused = datetime.fromisoformat(listed["deliveriesPausedUntil"].replace("Z", "+00:00"))
    assert 0 < (paused - w.clock.now()).total_seconds() <= BREAK_BASE_SECONDS
    w.deliver(after_seconds=BREAK_BASE_SECONDS + 5)
    # One probe went first; it was answered, the circuit closed, and everything waiting followed.
    w.deliver(after_seconds=3600)
    ids = {r.json["data"]["workitem"]["workitemId"] for r in hook.requests}
    assert ids == {f"wi-{i}" for i in range(BREAK_AFTER + 4)}
    assert health(w) == Health(fast=True)
    assert "deliveriesPausedUntil" not in w.admin("GET", "/admin/webhook-subscriptions")["subscriptions"][0]


def test_a_failed_probe_keeps_the_circuit_open_twice_as_long(w: World, hook: Receiver) -> None:
    subscribe(w, hook.url, ["workitem.assigned"])
    hook.script.extend([500] * (BREAK_AFTER + 1))
    for i in range(BREAK_AFTER + 2):
        w.assign(f"wi-{i}")
    w.deliver()
    assert len(hook.requests) == BREAK_AFTER
    w.deliver(after_seconds=BREAK_BASE_SECONDS + 5)
    assert len(hook.requests) == BREAK_AFTER + 1  # one probe, refused
    opened = health(w)
    assert opened.failures == BREAK_AFTER + 1
    assert opened.open_until - int(w.clock.now().timestamp()) in range(2 * BREAK_BASE_SECONDS - 5, 2 * BREAK_BASE_SECONDS + 1)


def test_an_admins_edit_closes_the_circuit(w: World, hook: Receiver) -> None:
    subscribe(w, hook.url, ["workitem.assigned"])
    hook.script.extend([500] * BREAK_AFTER)
    for i in range(BREAK_AFTER):
        w.assign(f"wi-{i}")
    w.deliver()
    assert health(w).broken
    w.admin("PUT", "/admin/webhook-subscriptions/crm", {"url": hook.url, "events": ["workitem.assigned"], "enabled": True})
    assert health(w) == Health()
    w.assign("wi-new")
    w.deliver()
    assert hook.requests[-1].json["data"]["workitem"]["workitemId"] == "wi-new"


def test_a_tenants_slow_lane_is_full_so_the_delivery_waits_without_losing_an_attempt(w: World, hook: Receiver) -> None:
    subscribe(w, hook.url, ["workitem.assigned"])  # new: not known to be fast, so it needs a place
    store = w.services.integrations.store
    now_ms = int(w.clock.now().timestamp() * 1000)
    places = w.services.integrations.lane_places
    held = [store.take_lane("t1", f"other-{n}", now_ms, places, 15_000) for n in range(places)]
    assert all(place is not None for place, _ in held)
    assert store.take_lane("t2", "another-tenant", now_ms, places, 15_000)[0] is not None  # lanes are per tenant
    w.assign("wi-1")
    w.deliver()
    assert hook.requests == [] and w.queue.pending() == 1  # back on the queue, for a few seconds
    w.deliver(after_seconds=31)  # the places' leases ran out (a holder that died frees its place)
    assert len(hook.requests) == 1
    assert health(w) == Health(fast=True)
    for n, (place, _) in enumerate(held):
        assert place is not None
        store.leave_lane("t1", f"other-{n}", place)


def test_waiting_for_the_lane_is_not_an_attempt(w: World) -> None:
    """The copy put back for the lane says how many attempts were made before: its receive count restarts."""
    store = w.services.integrations.store
    subscribe(w, "http://127.0.0.1:9/refused", ["workitem.assigned"])
    w.assign("wi-1")
    w.deliver()  # attempt 1 fails (connection refused)
    now_ms = int(w.clock.now().timestamp() * 1000) + 31_000
    places = w.services.integrations.lane_places
    held = [store.take_lane("t1", f"other-{n}", now_ms, places, 60_000) for n in range(places)]
    w.deliver(after_seconds=31)  # attempt 2 finds the lane full: put back, as attempt 2 still to make
    assert w.queue.receive() == []  # hidden for the few seconds it waits
    w.queue_time += 120
    [record] = w.queue.receive()
    copy = json.loads(record["body"])
    assert (copy["n"], copy["w"], record["attributes"]["ApproximateReceiveCount"]) == (1, 1, "1")
    for n, (place, _) in enumerate(held):
        assert place is not None
        store.leave_lane("t1", f"other-{n}", place)


def test_after_its_last_attempt_a_delivery_moves_to_the_dead_letters_and_a_replay_starts_it_afresh(
    w: World, hook: Receiver
) -> None:
    subscribe(w, hook.url, ["workitem.assigned"])
    hook.script.extend([500] * 14)
    w.assign("wi-1")
    w.deliver_for_a_day()
    assert len(w.queue.dead) == 1 and w.queue.pending() == 0
    [letter] = [m.body for m in w.queue.dead]
    assert "n" not in json.loads(letter)  # a replay gets every attempt again
    assert w.admin("POST", "/admin/webhook-deliveries/replay") == {"replayed": 1}
    w.deliver()
    assert len(hook.requests) == 15 and len(w.queue.dead) == 0


def test_sms_go_on_their_own_queue(w: World) -> None:
    w.admin("PUT", "/admin/sms-settings", {"originationIdentity": "+15550001111"})
    w.assign("wi-sms", channel="sms")
    agent = w.connect("agent-1", "agent")
    agent.ok("message.send", workitemId="wi-sms", text="On its way")
    assert w.sms_queue.pending() == 1 and w.queue.pending() == 0
    w.deliver()
    assert [s["text"] for s in w.sms.snapshot()] == ["On its way"]


class RefusingQueue:
    """A delivery queue that refuses the next ``refusals`` sends (and, with ``dead_too``, every dead letter)."""

    def __init__(self, inner: LocalDeliveryQueue, refusals: int, dead_too: bool = False) -> None:
        self.inner = inner
        self.refusals = refusals
        self.dead_too = dead_too
        self.sends = 0

    def send(self, messages: list[Outgoing]) -> list[Outgoing]:
        self.sends += 1
        if self.refusals > 0:
            self.refusals -= 1
            return list(messages)
        return self.inner.send(messages)

    def dead_letter(self, messages: list[Outgoing]) -> list[Outgoing]:
        return list(messages) if self.dead_too else self.inner.dead_letter(messages)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def test_a_refused_enqueue_is_sent_again_within_the_invocation(w: World, hook: Receiver) -> None:
    subscribe(w, hook.url, ["workitem.assigned"])
    refusing = RefusingQueue(w.queue, refusals=2)
    w.services.integrations.queue = refusing
    w.assign("wi-1")
    assert refusing.sends == 3 and w.queue.pending() == 1
    w.deliver()
    assert len(hook.requests) == 1


def test_what_the_queue_keeps_refusing_is_kept_in_the_dead_letters_with_its_payload(
    w: World, hook: Receiver, caplog: pytest.LogCaptureFixture
) -> None:
    subscribe(w, hook.url, ["workitem.assigned"])
    w.services.integrations.queue = RefusingQueue(w.queue, refusals=10**6)
    caplog.set_level("ERROR")
    import logging

    logging.getLogger("chalicelib").propagate = True
    try:
        w.assign("wi-1")
    finally:
        logging.getLogger("chalicelib").propagate = False
    assert w.queue.pending() == 0 and len(w.queue.dead) == 1
    assert any(getattr(r, "event", "") == "webhook_enqueue_failed" for r in caplog.records)
    w.services.integrations.queue = w.queue
    assert w.admin("POST", "/admin/webhook-deliveries/replay") == {"replayed": 1}
    w.deliver()
    assert [r.json["data"]["workitem"]["workitemId"] for r in hook.requests] == ["wi-1"]


def test_a_change_whose_deliveries_cannot_be_kept_either_is_handed_back_to_the_stream(w: World, hook: Receiver) -> None:
    """Only then does the mapping retry it (pushing it again); its pushes went out already, once."""
    subscribe(w, hook.url, ["timeline.entry"])
    w.assign("wi-1")
    sup = w.connect("sup-1", "supervisor")
    agent = w.connect("agent-1", "agent")
    sup.ok("monitor.start", workitemId="wi-1")
    assert w.handed_back == []
    w.services.integrations.queue = RefusingQueue(w.queue, refusals=10**6, dead_too=True)
    sup.ok("coach.send", workitemId="wi-1", text="Offer the refund")
    assert len(w.handed_back) == 1
    assert [e["data"]["entry"]["text"] for e in agent.events("coach.message")] == ["Offer the refund"]


@pytest.mark.moto  # a 3.5 s post: kept out of the fast tier
def test_a_fast_receiver_that_stops_answering_is_marked_slow_while_the_post_still_runs(w: World, hook: Receiver) -> None:
    """So the deliveries behind the hanging post take the slow lane at once, not after its 10 s."""
    import threading
    import time

    subscribe(w, hook.url, ["workitem.assigned"])
    w.assign("wi-1")
    w.deliver()
    assert health(w) == Health(fast=True)
    hook.delay = 3.5
    w.assign("wi-2")
    running = threading.Thread(target=w.deliver)
    running.start()
    marked = False
    deadline = time.monotonic() + 3.3
    while time.monotonic() < deadline and not marked:
        marked = not health(w).fast and len(hook.requests) == 1  # the second post has not returned yet
        time.sleep(0.05)
    running.join()
    assert marked and len(hook.requests) == 2
    assert health(w) == Health()  # it answered, slowly: not known to be fast any more
