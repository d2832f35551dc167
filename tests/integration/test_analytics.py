"""Coaching analytics end to end (docs/product.md W13): coaching and raised hands through the real
entry points, counted by the stream consumer's handler and the assistance events, read through
``GET /analytics/coaching`` with role scopes, redelivered stream batches counted once."""

from __future__ import annotations

import csv
import io
import random
from datetime import timedelta
from typing import Any
from urllib.parse import urlencode

import pytest

from chalicelib.domain import analytics as an
from chalicelib.entrypoints import events
from chalicelib.entrypoints.wire import COACHING_METRICS
from tests.support import coaching_history as ch
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
    assert set(days["totals"]) == set(COACHING_METRICS.values())


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
    w.connect("agent-2", "agent")
    sup = w.connect("sup-1", "supervisor")
    first = agent.ok("assist.request", templateId="tpl-help", to="supervisors")["assistId"]
    w.clock.advance(42.4)
    sup.ok("assist.claim", assistId=first)
    agent.ok("assist.request", templateId="tpl-help", to="supervisors")
    agent.ok("assist.request", templateId="tpl-help", to={"userId": "agent-2"})  # a question to a peer: not counted
    w.clock.advance(31)
    assert w.services.assistance.escalate_due()["escalated"] == 1
    w.clock.advance(31)
    assert w.services.assistance.escalate_due()["escalated"] == 1  # its second step: escalated once
    w.pump()
    around = (w.clock.now().date() - timedelta(days=1), w.clock.now().date() + timedelta(days=1))
    window = {"from": around[0].isoformat(), "to": around[1].isoformat()}

    def read(user: str, role: str, group_by: str) -> Any:
        status, body = w.rest("GET", "/analytics/coaching?" + urlencode({**window, "groupBy": group_by}), w.token(user, role))
        assert status == 200, body
        return body

    body = read("admin-1", "admin", "template")
    assert [r["key"] for r in body["rows"]] == ["tpl-help"]
    assert {k: body["rows"][0][k] for k in ("assistRequested", "assistClaimed", "assistEscalated", "claimSecondsP50")} == {
        "assistRequested": 2,
        "assistClaimed": 1,
        "assistEscalated": 1,
        "claimSecondsP50": 42,
    }
    sups = read("sup-1", "supervisor", "supervisor")
    assert [(r["key"], r["assistClaimed"], r["assistRequested"]) for r in sups["rows"]] == [("sup-1", 1, 0)]
    mine = read("sup-1", "supervisor", "template")
    assert mine["rows"][0]["assistRequested"] == 2
    other = read("sup-9", "supervisor", "template")
    assert other["rows"] == [] and other["totals"]["assistRequested"] == 0


def test_attention_alerts_are_counted_once_with_their_ack_time(w: World, monkeypatch: pytest.MonkeyPatch) -> None:
    """Two alerts raised on agent-1's chat (its stream batch handed over twice), one acked by sup-2 after
    75 s; sup-1's ack that lost the race (it read the alert open) counts nothing (W13.11)."""
    w.admin("PUT", "/admin/attention-rules/kw", {"kind": "keyword", "phrases": ["refund"]})
    w.admin("PUT", "/admin/attention-rules/kw2", {"kind": "keyword", "phrases": ["lawyer"]})
    sup1, sup2 = w.connect("sup-1", "supervisor"), w.connect("sup-2", "supervisor")
    customer = w.connect("cust-wi-1", "customer", wid="wi-1")
    real = events.fan_out

    def twice(event: dict[str, Any]) -> dict[str, Any]:
        real(event)
        return real(event)  # Lambda hands the same batch over again

    monkeypatch.setattr(events, "fan_out", twice)
    customer.ok("message.send", workitemId="wi-1", text="my lawyer wants a refund")
    w.pump()
    raised = {e["data"]["alert"]["ruleId"]: e["data"]["alert"] for e in sup1.events("attention.raised")}
    assert sorted(raised) == ["kw", "kw2"]
    alert_id = raised["kw"]["alertId"]
    stale = w.services.attention.store.alert("t1", alert_id)  # what a racing ack of sup-1 read: open
    assert stale is not None
    w.clock.advance(75.6)
    assert sup2.ok("attention.ack", alertId=alert_id)["alert"]["ackedBy"] == "sup-2"
    sup1.fails("attention.ack", "conflict", alertId=alert_id)
    late = stale.ack("sup-1", ch.iso(w.clock.now()))
    lost = an.alert_acked_slots(alert_id, "agent-1", stale.raised_at, "sup-1", late.acked_at or "")
    assert w.services.attention.store.ack(late, lost) is False
    w.pump()
    metrics = ("alertsRaised", "alertsAcked", "ackSecondsP50")
    agents = {r["key"]: [r[m] for m in metrics] for r in ok(w, "admin-1", "admin", "agent")["rows"]}
    assert agents == {"agent-1": [2, 1, 75]}
    sups = {r["key"]: [r[m] for m in metrics] for r in ok(w, "admin-1", "admin", "supervisor")["rows"]}
    assert sups == {"sup-2": [0, 1, 75]}
    days = ok(w, "admin-1", "admin", "day")
    assert [r[m] for r in days["rows"] for m in metrics] == [2, 1, 75]
    assert [days["totals"][m] for m in metrics] == [2, 1, 75]
    assert [ok(w, "sup-1", "supervisor", "agent")["totals"][m] for m in metrics] == [2, 1, 75]
    assert [ok(w, "sup-9", "supervisor", "agent")["totals"][m] for m in metrics] == [0, 0, None]
    status, text = report(w, "admin-1", "admin", "agent", format="csv")
    assert status == 200
    line = next(csv.DictReader(io.StringIO(text)))
    assert [line[m] for m in metrics] == ["2", "1", "75"]


def test_a_claim_whose_count_failed_stands_and_its_log_names_the_repair(
    w: World, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """The claim is committed whatever the count does; the log line names the command that counts
    what is missing, and that command exists (docs/operations.md, "Analytics rebuild")."""
    from pathlib import Path

    def broken(tenant_id: str, slot: an.Slot) -> bool:
        raise RuntimeError("store unavailable")

    agent, sup = w.connect("agent-1", "agent"), w.connect("sup-1", "supervisor")
    assist_id = agent.ok("assist.request", templateId="tpl-help", to="supervisors")["assistId"]
    monkeypatch.setattr(w.services.analytics.store, "apply", broken)
    assert sup.ok("assist.claim", assistId=assist_id) == {"assistId": assist_id}
    lines = [r.getMessage() for r in caplog.records if "could not count assistance request" in r.getMessage()]
    assert len(lines) == 1 and assist_id in lines[0], lines
    command = lines[0].split("; ", 1)[1]
    assert command.startswith("scripts/rebuild_analytics.py --stack <stack> --tenant t1"), command
    assert (Path(__file__).resolve().parents[2] / command.split()[0]).is_file()
    assert "/admin/" not in command


@pytest.mark.moto  # DynamoDB's answer to a transaction that met another one (moto never gives it)
def test_a_raised_hand_is_counted_in_its_own_write_and_alone_when_its_buckets_are_busy(
    w: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """docs/data-model.md: the request and its analytics facts are 1 TransactWriteItems; when that
    meets another transaction on a bucket, the request is stored alone (1 PutItem) and its facts are
    counted after it, once."""
    from botocore.client import BaseClient
    from botocore.exceptions import ClientError

    from tests.support.ddbcount import count_dynamodb

    agent = w.connect("agent-1", "agent")
    with count_dynamodb() as quiet:
        agent.ok("assist.request", templateId="tpl-help", to="supervisors")
    original = getattr(BaseClient, "_make_api_call")
    refused: list[int] = []

    def busy(self: BaseClient, operation: str, params: Any) -> object:
        items = params.get("TransactItems", []) if operation == "TransactWriteItems" else []
        if any("AssistanceTable" in str(i) or "assistance" in str(i) for i in items[:1]) and not refused:
            refused.append(len(items))
            reasons = [{"Code": "None"}] + [{"Code": "TransactionConflict"}] * (len(items) - 1)
            response = {"Error": {"Code": "TransactionCanceledException", "Message": "busy"}, "CancellationReasons": reasons}
            raise ClientError(response, operation)  # type: ignore[arg-type]
        return original(self, operation, params)

    monkeypatch.setattr(BaseClient, "_make_api_call", busy)
    with count_dynamodb() as contended:
        agent.ok("assist.request", templateId="tpl-help", to="supervisors")
    assert refused, "the request was not written with its facts"
    quiet_ops, busy_ops = dict(quiet.by_operation()), dict(contended.by_operation())
    assert quiet_ops.get("TransactWriteItems") == 1 and "PutItem" not in quiet_ops
    # the refused transaction, the request alone, then its facts counted by the analytics store
    assert busy_ops.get("PutItem") == 1 and busy_ops.get("TransactWriteItems") == 2
    body = ok(w, "admin-1", "admin", "template")
    assert [(r["key"], r["assistRequested"]) for r in body["rows"]] == [("tpl-help", 2)]


def test_csv_has_the_json_numbers_and_escapes_formulas(w: World) -> None:
    coach(w)
    body = ok(w, "admin-1", "admin", "agent")
    status, text = report(w, "admin-1", "admin", "agent", format="csv")
    assert status == 200 and isinstance(text, str)
    lines = list(csv.DictReader(io.StringIO(text)))
    assert [line["key"] for line in lines] == [r["key"] for r in body["rows"]]
    assert lines[0]["name"] == "'=Alex Agent"
    for line, row in zip(lines, body["rows"], strict=True):
        for metric in COACHING_METRICS.values():
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


@pytest.mark.moto  # counts DynamoDB requests
def test_a_year_long_read_costs_a_bounded_number_of_requests(w: World) -> None:
    """docs/data-model.md, "Coaching analytics": 1 GetItem (the caller's revocation); an admin's day
    grouping 1 Query per month (13 in 2026-01-01 to 2027-01-01), the other groupings per dimension
    1 Query of 2026's month roll-ups and 1 of 2027-01-01's day; a supervisor 1 Query of their agents
    and 1 Query per agent of theirs (agent-1, agent-2), and of themselves when grouped by supervisor,
    per calendar year; + 1 BatchGetItem per 100 named rows."""
    from tests.support.ddbcount import count_dynamodb

    coach(w)
    year = "from=2026-01-01&to=2027-01-01"
    cases: list[tuple[Any, ...]] = [
        ("admin-1", "admin", "day", {"GetItem": 1, "Query": 13}),
        ("admin-1", "admin", "agent", {"GetItem": 1, "Query": 2 + 2, "BatchGetItem": 1}),
        ("admin-1", "admin", "template", {"GetItem": 1, "Query": 2 + 2}),
        ("sup-1", "supervisor", "day", {"GetItem": 1, "Query": 1 + 2 * 2}),
        ("sup-1", "supervisor", "template", {"GetItem": 1, "Query": 1 + 2 * 2}),
        ("sup-1", "supervisor", "supervisor", {"GetItem": 1, "Query": 1 + 3 * 2, "BatchGetItem": 1}),
    ]
    # 90 days, 2026-09-02 to 2026-11-30: per dimension September to November's roll-ups minus 09-01's
    # day (no row there to name)
    ninety = "from=2026-09-02&to=2026-11-30"
    cases += [
        ("admin-1", "admin", "agent", {"GetItem": 1, "Query": 2 + 2}, ninety),
        ("admin-1", "admin", "supervisor", {"GetItem": 1, "Query": 2 + 2}, ninety),
        ("sup-1", "supervisor", "agent", {"GetItem": 1, "Query": 1 + 2}, ninety),
    ]
    for user, role, group_by, expected, *span in cases:
        query = span[0] if span else year
        with count_dynamodb() as log:
            status, body = w.rest("GET", f"/analytics/coaching?{query}&groupBy={group_by}", w.token(user, role))
        assert status == 200, body
        assert dict(log.by_operation()) == expected, (group_by, role, query)


@pytest.mark.moto  # counts DynamoDB requests
def test_write_cost_per_coaching_event(w: World) -> None:
    """docs/data-model.md: a join 3 GetItem + 3 TransactWriteItems, a coach message 1 TransactWriteItems,
    a reaction 1 GetItem + 1 TransactWriteItems, a redelivered fact its reads only."""
    from chalicelib.adapters.analytics_store import DynamoAnalyticsStore
    from chalicelib.domain.identity import Role
    from chalicelib.domain.timeline import EntryKind, TimelineEntry
    from tests.support.ddbcount import count_dynamodb

    store = DynamoAnalyticsStore()
    at = "2026-04-01T10:00:00.000Z"

    join = TimelineEntry("wi-9", 1, EntryKind.SUPERVISOR_JOINED, at, "sup-1", Role.SUPERVISOR)
    tip = TimelineEntry("wi-9", 2, EntryKind.COACH_MESSAGE, at, "sup-1", Role.SUPERVISOR, message_id="m1", text="x")
    like = TimelineEntry(
        "wi-9",
        3,
        EntryKind.REACTION,
        at,
        "agent-1",
        Role.AGENT,
        message_id="m1",
        reaction="thumbs_up",
        extra={"supervisorId": "sup-1"},
    )
    for entry, expected in (
        (join, {"GetItem": 3, "TransactWriteItems": 3}),
        (tip, {"TransactWriteItems": 1}),
        (like, {"GetItem": 1, "TransactWriteItems": 1}),
    ):
        for again, cost in ((False, expected), (True, {k: v for k, v in expected.items() if k == "GetItem"})):
            with count_dynamodb() as log:
                applied = [store.apply("t1", s) for s in an.entry_slots("wi-9", "agent-1", entry)]
            assert all(applied) != again
            # a redelivered ONCE fact costs its refused transaction; FIRST and LATEST facts their reads
            wanted = cost if again is False or entry is not tip else {"TransactWriteItems": 1}
            assert dict(log.by_operation()) == wanted, (entry.kind, again)


MOVES = ["join", "join", "coach", "coach", "react", "react", "forward", "leave", "transfer", "ask", "claim", "later"]


def _random_history(w: World, rnd: random.Random, steps: int) -> None:
    """Coaching and raised hands at random through the real entry points, over several UTC days:
    joins, leaves, coaching, reactions changed and cleared, forwards, transfers, claims, escalations."""

    now = w.clock.now()

    def connect(user: str, role: str) -> Any:  # sessions for the whole history (at most 20 h, below)
        client = w.connect_token(w.token(user, role, ttl_seconds=23 * 3600))[1]
        assert client is not None
        return client

    sups = {s: connect(s, "supervisor") for s in ("sup-1", "sup-2")}
    agents = {a: connect(a, "agent") for a in ("agent-1", "agent-2")}
    tips: list[str] = []
    asks: list[str] = []
    w.assign("wi-2", agent_id="agent-2")
    owner = {"wi-1": "agent-1", "wi-2": "agent-2"}
    for _ in range(steps):
        wid = rnd.choice(["wi-1", "wi-2"])
        sup = sups[rnd.choice(list(sups))]
        agent = agents[owner[wid]]
        move = rnd.choice(MOVES)
        if move == "join":
            sup.request("monitor.start", workitemId=wid)
        elif move == "leave":
            sup.request("monitor.stop", workitemId=wid)
        elif move == "coach":
            reply = sup.request("coach.send", workitemId=wid, text="tip")
            if reply["type"] == "ack":
                tips.append(reply["data"]["entry"]["messageId"])
        elif move == "react" and tips:
            reaction = rnd.choice(["thumbs_up", "thumbs_down", None])
            agent.request("coach.react", workitemId=wid, messageId=rnd.choice(tips), reaction=reaction)
        elif move == "forward" and tips:
            agent.request("coach.forward", workitemId=wid, messageId=rnd.choice(tips))
        elif move == "transfer":
            to = "agent-2" if owner[wid] == "agent-1" else "agent-1"
            if w.webhook("workitem.transferred", {"workitemId": wid, "toAgentId": to})[0] == 200:
                owner[wid] = to
        elif move == "ask":
            reply = agent.request("assist.request", templateId="tpl-help", to="supervisors")
            if reply["type"] == "ack":
                asks.append(reply["data"]["assistId"])
        elif move == "claim" and asks:
            sup.request("assist.claim", assistId=rnd.choice(asks))
        elif move == "later":
            passed = w.clock.now() - now
            w.clock.advance(rnd.choice([40, 600, 3 * 3600]) if passed < timedelta(hours=17) else 40)
            w.services.assistance.escalate_due()
        w.pump()


@pytest.mark.moto  # reads the retained tables as the rebuild does (Scans)
@pytest.mark.parametrize("seed", [1, 2])
def test_incremental_and_rebuilt_numbers_agree(w: World, seed: int) -> None:
    from chalicelib import bootstrap
    from chalicelib.services.analytics import AnalyticsService
    from scripts.rebuild_analytics import DynamoRetainedHistory
    from tests.support.fakes import MemoryAnalyticsStore

    _random_history(w, random.Random(seed), 60)
    months = sorted({(w.clock.now().date() - timedelta(days=d)).isoformat()[:7] for d in range(0, 5)})
    live = w.services.analytics.store
    incremental = ch.every_layout(live, "t1", months)
    assert incremental, "the history counted nothing"
    fresh = MemoryAnalyticsStore()
    rebuilt = AnalyticsService(fresh, w.services.directory.directory, w.services.directory.directory)
    summary = rebuilt.rebuild("t1", DynamoRetainedHistory(), w.services.coaching.store)
    assert summary["workitems"] >= 2 and summary["counted"] > 0
    assert ch.every_layout(fresh, "t1", months) == incremental
    # Rebuilding over the live numbers counts nothing again.
    assert bootstrap.rebuild_analytics(w.services, "t1", DynamoRetainedHistory())["counted"] == 0
    assert ch.every_layout(live, "t1", months) == incremental
