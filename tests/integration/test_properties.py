"""Property-based: random interleavings of every party's actions keep the timeline's guarantees.

For any sequence of actions by an agent, two supervisors, the customer and the routing engine:
the customer never receives a coaching frame (live or in history), every staff timeline is numbered
1..n with no gap, the customer's view is numbered 1..m with no gap, and every frame gets one reply.
"""

from __future__ import annotations

import itertools
import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.world import World

# Tier: from the world fixture's backend (service on memory, integration on moto; tests/conftest.py).

CUSTOMER_KINDS = {"customer_message", "agent_message"}
_wids = itertools.count(1)

STEP = st.one_of(
    st.tuples(st.just("sup"), st.sampled_from(["monitor.start", "monitor.stop", "coach.send"]), st.integers(0, 1)),
    st.tuples(
        st.just("agent"),
        st.sampled_from(
            ["coach.send", "message.send", "coach.react", "coach.forward", "coaching.end", "consult.start", "timeline.get"]
        ),
        st.integers(0, 1),
    ),
    st.tuples(st.just("customer"), st.sampled_from(["message.send", "timeline.get"]), st.integers(0, 1)),
    st.tuples(st.just("hook"), st.sampled_from(["customer", "agent", "end-customer"]), st.integers(0, 1)),
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(steps=st.lists(STEP, min_size=1, max_size=25))
def test_random_interleavings_keep_coaching_silent_and_timelines_contiguous(world: World, steps: list) -> None:
    if not hasattr(world, "_prop_team"):
        world.team()
        world._prop_team = True  # type: ignore[attr-defined]
    wid = f"wi-p{next(_wids)}"
    world.assign(wid)
    agent = world.connect("agent-1", "agent")
    sups = [world.connect("sup-1", "supervisor"), world.connect("sup-2", "supervisor")]
    customer = world.connect(f"cust-{wid}", "customer", wid=wid)
    tips: list[str] = []
    for who, action, n in steps:
        if who == "sup":
            fields: dict[str, Any] = {"text": f"tip {n}"} if action == "coach.send" else {}
            reply = sups[n].request(action, workitemId=wid, **fields)
            if action == "coach.send" and reply["type"] == "ack":
                tips.append(reply["data"]["entry"]["messageId"])
        elif who == "agent":
            fields = {}
            if action in ("coach.send", "message.send"):
                fields = {"text": f"agent says {n}"}
            elif action == "coach.react":
                fields = {"messageId": tips[-1] if tips else "msg_none", "reaction": ["thumbs_up", None][n]}
            elif action == "coach.forward":
                fields = {"messageId": tips[-1] if tips else "msg_none"}
            elif action == "consult.start":
                fields = {"userId": "agent-2"}
            elif action == "timeline.get":
                fields = {"after": 0}
            agent.request(action, workitemId=wid, **fields)
        elif who == "customer":
            fields = {"text": f"customer says {n}"} if action == "message.send" else {"after": n}
            customer.request(action, workitemId=wid, **fields)
        elif action == "end-customer":
            world.webhook("workitem.ended", {"workitemId": wid, "endedBy": "customer"})
        else:
            world.webhook("workitem.message", {"workitemId": wid, "from": action, "text": "via provider"})

    for frame in customer.frames():
        text = json.dumps(frame)
        assert "sup-1" not in text and "sup-2" not in text and "forwardedFrom" not in text
        data = frame.get("data") or {}
        entries = data.get("entries", []) + ([data["entry"]] if "entry" in data else [])
        assert all(e["kind"] in CUSTOMER_KINDS for e in entries), frame
        if frame["type"] == "event":
            assert frame["event"] == "message.received", frame
    staff = world.services.coaching.store.timeline("t1", wid, after=0, limit=500, customer=False)[0]
    assert [e.seq for e in staff] == list(range(1, len(staff) + 1))
    seen = customer.ok("timeline.get", workitemId=wid, after=0)["entries"]
    assert [e["seq"] for e in seen] == list(range(1, len(seen) + 1))
    assert len(seen) == sum(1 for e in staff if e.kind.value in CUSTOMER_KINDS)
