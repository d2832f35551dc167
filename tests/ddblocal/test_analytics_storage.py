"""The coaching analytics store on AWS's DynamoDB Local: facts applied once under redelivery, reordering
and concurrent writers (transactions that lose a race are decided again), and the report through the
REST entry point."""

from __future__ import annotations

import random
import threading
import uuid
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chalicelib.adapters.analytics_store import DynamoAnalyticsStore
from chalicelib.domain import analytics as an
from tests.support import coaching_history as ch

pytestmark = pytest.mark.ddblocal


def stored(store: Any, tenant: str, slots: list[an.Slot]) -> dict[tuple[str, an.Cell], dict[str, int]]:
    """Every layout of the buckets (tenant days, month roll-ups, users' own days) as the store reads them."""
    return ch.every_layout(store, tenant, sorted({c.day[:7] for s in slots for c, _ in s.cells}))


def computed(slots: list[an.Slot]) -> dict[tuple[str, an.Cell], dict[str, int]]:
    """The same, from the buckets computed at once (the in-memory store's reading of them)."""
    from tests.support.fakes import MemoryAnalyticsStore

    memory = MemoryAnalyticsStore()
    memory.ledgers["t"] = an.Ledger()
    memory.ledgers["t"].buckets = an.direct(slots)
    return stored(memory, "t", slots)


@settings(max_examples=8, suppress_health_check=[HealthCheck.function_scoped_fixture])  # a tenant per example
@given(ch.histories, st.randoms(use_true_random=False))
def test_generated_histories_are_stored_as_computed_at_once(ddb_world: Any, spec: Any, rnd: random.Random) -> None:
    store = DynamoAnalyticsStore()
    tenant = f"t-{uuid.uuid4().hex[:12]}"
    slots = ch.all_slots(ch.build(spec))
    delivered = slots + rnd.sample(slots, len(slots) // 3)
    rnd.shuffle(delivered)
    for slot in delivered:
        store.apply(tenant, slot)
    assert stored(store, tenant, slots) == computed(slots)


def test_concurrent_writers_of_the_same_buckets_count_each_fact_once(ddb_world: Any) -> None:
    store = DynamoAnalyticsStore()
    tenant = f"t-{uuid.uuid4().hex[:12]}"
    day = "2026-04-01"
    slots = [an.Slot(f"cm|w|m{n}", an.Rule.ONCE, 0, ((an.Cell(an.Dim.TENANT, "", day), {"cm": 1}),)) for n in range(12)] + [
        an.Slot("re|w|m0", an.Rule.LATEST, seq, ((an.Cell(an.Dim.AGENT, "a", day), {"hp" if seq % 2 else "nh": 1}),))
        for seq in range(1, 9)
    ]
    errors: list[BaseException] = []

    def writer(seed: int) -> None:
        mine = slots[:]
        random.Random(seed).shuffle(mine)
        try:
            for slot in mine:
                store.apply(tenant, slot)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(seed,)) for seed in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    month = day[:7]
    assert stored(store, tenant, slots) == {
        ("day", an.Cell(an.Dim.TENANT, "", day)): {"cm": 12},
        ("month", an.Cell(an.Dim.TENANT, "", month)): {"cm": 12},
        ("day", an.Cell(an.Dim.AGENT, "a", day)): {"nh": 1},  # the latest reaction (seq 8) is thumbs_down
        ("month", an.Cell(an.Dim.AGENT, "a", month)): {"nh": 1},
        ("own", an.Cell(an.Dim.AGENT, "a", day)): {"nh": 1},
    }


def test_the_report_reads_through_rest(ddb_world: Any) -> None:
    w = ddb_world
    w.team(supervisors=("sup-1",), agents=("agent-1",))
    w.assign("wi-1")
    sup, agent = w.connect("sup-1", "supervisor"), w.connect("agent-1", "agent")
    sup.ok("monitor.start", workitemId="wi-1")
    tip = sup.ok("coach.send", workitemId="wi-1", text="Offer the refund")["entry"]["messageId"]
    agent.ok("coach.react", workitemId="wi-1", messageId=tip, reaction="thumbs_up")
    w.pump()
    day = w.clock.now().date().isoformat()
    status, body = w.rest("GET", f"/analytics/coaching?from={day}&to={day}&groupBy=supervisor", w.token("admin-1", "admin"))
    assert status == 200, body
    assert [(r["key"], r["monitoredWorkitems"], r["coachMessages"], r["helpful"]) for r in body["rows"]] == [("sup-1", 1, 1, 1)]
