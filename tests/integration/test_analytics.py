"""Coaching analytics end to end (docs/product.md A1-A9): coaching and raised hands through the real
entry points, counted by the stream consumer's handler and the assistance events, read through
``GET /analytics/coaching`` with role scopes, redelivered stream batches counted once."""

from __future__ import annotations

import csv
import io
import random
from typing import Any

import pytest

from chalicelib.domain import analytics as an
from chalicelib.entrypoints import events
from tests.support.world import World

# Tier: from the world fixture's backend (service on memory, integration on moto; tests/conftest.py).


@pytest.fixture
def w(world: World) -> World:
    world.team(supervisors=("sup-1", "sup-2"), agents=("agent-1", "agent-2"))
    world.team(team_id="team-2", supervisors=("sup-9",), agents=("agent-3",))
    world.admin("PUT", "/admin/users/agent-1", {"name": "=Alex Agent", "role": "agent"})
    world.admin("PUT", "/admin/templates/tpl-help", {"text": "Help with a refund", "enabled": True})
    world.admin("PUT", "/admin/policy", {"recordCoaching": False, "escalationSeconds": 30, "retentionDays": 30})
    world.assign("wi-1")
    world.assign("wi-3", agent_id="agent-3")
    return world


def today(world: World) -> str:
    return world.clock.now().date().isoformat()


def report(world: World, user: str, role: str, group_by: str, **extra: str) -> tuple[int, Any]:
    day = today(world)
    query = "&".join(f"{k}={v}" for k, v in {"from": day, "to": day, "groupBy": group_by, **extra}.items())
    return world.rest("GET", f"/analytics/coaching?{query}", world.token(user, role))


def ok(world: World, user: str, role: str, group_by: str) -> dict[str, Any]:
    status, body = report(world, user, role, group_by)
    assert status == 200, body
    return body


def coach(world: World) -> None:
    """sup-1 joins wi-1 and coaches twice; sup-2 joins too; the agent likes the first tip, dislikes
    then likes the second, and forwards the first. sup-9 coaches agent-3 once."""
    sup1, sup2 = world.connect("sup-1", "supervisor"), world.connect("sup-2", "supervisor")
    agent = world.connect("agent-1", "agent")
    sup1.ok("monitor.start", workitemId="wi-1")
    first = sup1.ok("coach.send", workitemId="wi-1", text="Offer the refund")["entry"]["messageId"]
    second = sup1.ok("coach.send", workitemId="wi-1", text="Apologise first")["entry"]["messageId"]
    sup2.ok("monitor.start", workitemId="wi-1")
    agent.ok("coach.send", workitemId="wi-1", text="thanks")  # the agent's own messages are not coaching
    agent.ok("coach.react", workitemId="wi-1", messageId=first, reaction="thumbs_up")
    agent.ok("coach.react", workitemId="wi-1", messageId=second, reaction="thumbs_down")
    agent.ok("coach.react", workitemId="wi-1", messageId=second, reaction="thumbs_up")
    agent.ok("coach.forward", workitemId="wi-1", messageId=first)
    sup9 = world.connect("sup-9", "supervisor")
    sup9.ok("monitor.start", workitemId="wi-3")
    sup9.ok("coach.send", workitemId="wi-3", text="Slow down")
    world.pump()


def test_coaching_is_counted_per_agent_supervisor_and_day(w: World) -> None:
    coach(w)
    by_agent = ok(w, "admin-1", "admin", "agent")
    rows = {r["key"]: r for r in by_agent["rows"]}
    assert set(rows) == {"agent-1", "agent-3"}
    assert rows["agent-1"]["name"] == "=Alex Agent"
    assert {k: rows["agent-1"][k] for k in ("monitoredWorkitems", "coachMessages", "helpful", "notHelpful", "forwarded")} == {
        "monitoredWorkitems": 1,
        "coachMessages": 2,
        "helpful": 2,
        "notHelpful": 0,
        "forwarded": 1,
    }
    assert by_agent["totals"]["monitoredWorkitems"] == 2 and by_agent["totals"]["coachMessages"] == 3
    assert by_agent["totals"]["claimSecondsP50"] is None
    sups = {r["key"]: r for r in ok(w, "admin-1", "admin", "supervisor")["rows"]}
    assert sups["sup-1"]["coachMessages"] == 2 and sups["sup-1"]["helpful"] == 2
    assert sups["sup-2"]["monitoredWorkitems"] == 1 and sups["sup-2"]["coachMessages"] == 0
    days = ok(w, "admin-1", "admin", "day")
    assert [r["key"] for r in days["rows"]] == [today(w)]
    assert days["rows"][0]["monitoredWorkitems"] == 2
    assert set(days) == {"from", "to", "groupBy", "rows", "totals"}
    assert set(days["totals"]) == set(an.METRICS)


def test_a_supervisor_sees_their_agents_and_themselves_and_an_agent_is_refused(w: World) -> None:
    coach(w)
    mine = ok(w, "sup-1", "supervisor", "agent")
    assert [r["key"] for r in mine["rows"]] == ["agent-1"]
    assert mine["totals"]["coachMessages"] == 2
    assert [r["key"] for r in ok(w, "sup-1", "supervisor", "supervisor")["rows"]] == ["sup-1"]
    assert ok(w, "sup-9", "supervisor", "day")["totals"]["coachMessages"] == 1
    for user, role in (("agent-1", "agent"),):
        status, body = report(w, user, role, "agent")
        assert status == 403 and body["error"]["code"] == "forbidden"


def test_raised_hands_are_counted_with_their_claim_time(w: World) -> None:
    agent = w.connect("agent-1", "agent")
    w.rest("PUT", "/me/settings", w.token("sup-1", "supervisor"), {"agentMessageNotification": True})
    sup = w.connect("sup-1", "supervisor")
    first = agent.ok("assist.request", templateId="tpl-help", to="supervisors")["assistId"]
    w.clock.advance(42.4)
    sup.ok("assist.claim", assistId=first)
    agent.ok("assist.request", templateId="tpl-help", to="supervisors")
    w.pump()
    rows = {r["key"]: r for r in ok(w, "admin-1", "admin", "template")["rows"]}
    assert rows["tpl-help"]["assistRequested"] == 2
    assert rows["tpl-help"]["assistClaimed"] == 1
    assert rows["tpl-help"]["claimSecondsP50"] == 42
    assert ok(w, "sup-1", "supervisor", "template")["rows"][0]["assistRequested"] == 2
    assert ok(w, "sup-9", "supervisor", "template")["rows"] == []


def test_csv_has_the_json_numbers_and_escapes_formulas(w: World) -> None:
    coach(w)
    body = ok(w, "admin-1", "admin", "agent")
    status, text = report(w, "admin-1", "admin", "agent", format="csv")
    assert status == 200 and isinstance(text, str)
    lines = list(csv.DictReader(io.StringIO(text)))
    assert [line["key"] for line in lines] == [r["key"] for r in body["rows"]]
    assert lines[0]["name"] == "'=Alex Agent"
    for line, row in zip(lines, body["rows"], strict=True):
        for metric in an.METRICS:
            assert line[metric] == ("" if row[metric] is None else str(row[metric]))


@pytest.mark.parametrize(
    "query",
    [
        "",
        "from=2026-01-01&groupBy=day",
        "from=2026-01-01&to=2026-01-01",
        "from=2026-01-02&to=2026-01-01&groupBy=day",
        "from=2026-01-01&to=2027-01-02&groupBy=day",
        "from=2026-01-01&to=2026-01-01&groupBy=team",
        "from=2026-01-01&to=2026-01-01&groupBy=day&format=xml",
        "from=2026-01-01&to=2026-01-01&groupBy=day&limit=3",
        "from=yesterday&to=2026-01-01&groupBy=day",
    ],
)
def test_bad_queries_are_refused_with_a_clear_error(w: World, query: str) -> None:
    status, body = w.rest("GET", f"/analytics/coaching?{query}", w.token("admin-1", "admin"))
    assert status == 400, body
    assert body["error"]["code"] == "invalid" and body["error"]["message"]


@pytest.mark.moto  # reads the stream's records itself
def test_redelivered_and_reordered_batches_count_once(w: World) -> None:
    coach(w)  # counted once already
    expected = ok(w, "admin-1", "admin", "agent")
    sup1 = w.connect("sup-1", "supervisor")
    agent = w.connect("agent-1", "agent")
    w.pump()
    with w.batched():  # the stream holds these changes for the test to hand over
        sup1.ok("monitor.stop", workitemId="wi-1")
        sup1.ok("monitor.start", workitemId="wi-1")
        tip = sup1.ok("coach.send", workitemId="wi-1", text="One more")["entry"]["messageId"]
        agent.ok("coach.react", workitemId="wi-1", messageId=tip, reaction="thumbs_down")
        records = w.take_records()
    assert len(records) >= 4
    rnd = random.Random(7)
    for _ in range(3):  # the whole batch again, then halves in the wrong order, then one by one shuffled
        events.fan_out({"Records": records})
        half = len(records) // 2
        events.fan_out({"Records": records[half:]})
        events.fan_out({"Records": records[:half]})
        shuffled = records[:]
        rnd.shuffle(shuffled)
        for record in shuffled:
            events.fan_out({"Records": [record]})
    got = {r["key"]: r for r in ok(w, "admin-1", "admin", "agent")["rows"]}
    before = {r["key"]: r for r in expected["rows"]}
    assert got["agent-1"]["monitoredWorkitems"] == before["agent-1"]["monitoredWorkitems"] == 1
    assert got["agent-1"]["coachMessages"] == before["agent-1"]["coachMessages"] + 1
    assert got["agent-1"]["notHelpful"] == 1 and got["agent-1"]["helpful"] == 2
