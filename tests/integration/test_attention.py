"""Attention rules through REST (docs/product.md W11.1), on the in-memory stores and on moto."""

from __future__ import annotations

import json
import threading
from typing import Any

import pytest

from tests.support.world import World, atomic_aws_calls

RULES = "/admin/attention-rules"
KEYWORD = {"kind": "keyword", "enabled": True, "severity": 2, "phrases": ["refund", "speak to a manager"]}


def test_an_admin_creates_replaces_lists_and_deletes_rules(world: World) -> None:
    admin = world.token("admin-1", "admin")
    status, body = world.rest("PUT", f"{RULES}/kw-1", admin, KEYWORD)
    assert status == 201
    assert body == {
        "rule": {
            "ruleId": "kw-1",
            "kind": "keyword",
            "enabled": True,
            "severity": 2,
            "phrases": ["refund", "speak to a manager"],
            "speakers": ["customer"],
        }
    }
    # Replacing keeps the id and takes the new kind's fields only.
    status, body = world.rest("PUT", f"{RULES}/kw-1", admin, {"kind": "customer_waiting", "seconds": 45})
    assert status == 200
    assert body == {"rule": {"ruleId": "kw-1", "kind": "customer_waiting", "enabled": True, "severity": 1, "seconds": 45}}
    world.admin("PUT", f"{RULES}/neg", {"kind": "sentiment", "negativeInARow": 3, "severity": 3, "enabled": False})
    world.admin("PUT", f"{RULES}/long", {"kind": "handle_time", "seconds": 600})
    world.admin("PUT", f"{RULES}/quiet", {"kind": "silence", "seconds": 20})
    listed = world.admin("GET", RULES)["rules"]
    assert [r["ruleId"] for r in listed] == ["kw-1", "long", "neg", "quiet"]
    assert listed[2] == {"ruleId": "neg", "kind": "sentiment", "enabled": False, "severity": 3, "negativeInARow": 3}
    assert world.rest("DELETE", f"{RULES}/long", admin) == (204, None)
    status, body = world.rest("DELETE", f"{RULES}/long", admin)
    assert status == 404 and body["error"]["code"] == "not_found"
    assert [r["ruleId"] for r in world.admin("GET", RULES)["rules"]] == ["kw-1", "neg", "quiet"]


BAD_BODIES: list[tuple[dict[str, Any], str]] = [
    ({"kind": "keyword", "phrases": []}, "phrases"),
    ({"kind": "keyword"}, "phrases"),
    ({"kind": "keyword", "phrases": ["x" * 101]}, "phrases.0"),
    ({"kind": "keyword", "phrases": ["ok", "?!"]}, "phrases.1"),
    ({"kind": "keyword", "phrases": ["a"], "speakers": ["supervisor"]}, "speakers.0"),
    ({"kind": "keyword", "phrases": ["a"], "speakers": []}, "speakers"),
    ({"kind": "keyword", "phrases": ["a"], "seconds": 30}, "seconds"),
    ({"kind": "keyword", "phrases": ["a"], "threshold": 3}, "threshold"),
    ({"kind": "sentiment", "negativeInARow": 11}, "negativeInARow"),
    ({"kind": "sentiment", "negativeInARow": True}, "negativeInARow"),
    ({"kind": "sentiment", "negativeInARow": 2.0}, "negativeInARow"),
    ({"kind": "sentiment", "negativeInARow": 2, "speakers": ["agent"]}, "speakers"),
    ({"kind": "customer_waiting", "seconds": 9}, "seconds"),
    ({"kind": "customer_waiting", "seconds": "60"}, "seconds"),
    ({"kind": "silence", "seconds": 601}, "seconds"),
    ({"kind": "handle_time", "seconds": 59}, "seconds"),
    ({"kind": "handle_time"}, "seconds"),
    ({"kind": "handle_time", "seconds": 60, "severity": 4}, "severity"),
    ({"kind": "handle_time", "seconds": 60, "enabled": "yes"}, "enabled"),
    ({"kind": "mood", "seconds": 60}, "kind"),
    ({"seconds": 60}, "kind"),
]


def test_phrases_with_the_same_words_are_kept_once(world: World) -> None:
    body = {"kind": "keyword", "phrases": ["Refund", "REFÜND", "cancel", "refund!", "Cancel"]}
    saved = world.admin("PUT", f"{RULES}/dupes", body)
    assert saved["rule"]["phrases"] == ["Refund", "cancel"]
    assert world.admin("GET", RULES)["rules"][0]["phrases"] == ["Refund", "cancel"]
    status, refused = world.rest(
        "PUT", f"{RULES}/dupes", world.token("admin-1", "admin"), {"kind": "keyword", "phrases": ["a", "a", "!!"]}
    )
    assert status == 400 and refused["error"]["details"]["problems"] == [
        {"field": "phrases.2", "problem": "must hold at least one word (letters or digits)"}
    ]


def test_a_bad_body_is_refused_naming_the_field_and_writes_nothing(world: World) -> None:
    admin = world.token("admin-1", "admin")
    world.admin("PUT", f"{RULES}/r1", {"kind": "handle_time", "seconds": 300})
    before = world.admin("GET", RULES)
    for body, field in BAD_BODIES:
        for rule_id in ("r1", "r2"):  # replacing and creating alike
            status, refused = world.rest("PUT", f"{RULES}/{rule_id}", admin, body)
            assert status == 400, (body, refused)
            assert refused["error"]["code"] == "invalid"
            assert refused["error"]["details"]["problems"][0]["field"] == field, (body, refused)
    assert world.admin("GET", RULES) == before


def test_only_admins_keep_rules_and_tenants_see_their_own(world: World) -> None:
    world.admin("PUT", f"{RULES}/mine", {"kind": "handle_time", "seconds": 300})
    for role in ("supervisor", "agent"):
        for method, path, body in (("GET", RULES, None), ("PUT", f"{RULES}/x", KEYWORD), ("DELETE", f"{RULES}/mine", None)):
            status, refused = world.rest(method, path, world.token(f"{role}-1", role), body)
            assert status == 403 and refused["error"]["code"] == "forbidden", (role, method)
    assert world.admin("GET", RULES, tid="t2") == {"rules": []}
    status, _ = world.rest("DELETE", f"{RULES}/mine", world.token("admin-1", "admin", tid="t2"))
    assert status == 404
    assert [r["ruleId"] for r in world.admin("GET", RULES)["rules"]] == ["mine"]
    status, refused = world.rest("PUT", f"{RULES}/a%23b", world.token("admin-1", "admin"), KEYWORD)
    assert status == 400


def test_a_tenant_keeps_at_most_fifty_rules(world: World) -> None:
    for i in range(50):
        world.admin("PUT", f"{RULES}/r{i:02d}", {"kind": "handle_time", "seconds": 60 + i})
    status, refused = world.rest("PUT", f"{RULES}/r50", world.token("admin-1", "admin"), KEYWORD)
    assert status == 409 and refused["error"]["code"] == "conflict"
    status, _ = world.rest("PUT", f"{RULES}/r07", world.token("admin-1", "admin"), KEYWORD)  # replacing is fine
    assert status == 200
    assert len(world.admin("GET", RULES)["rules"]) == 50


# --- alerts ---------------------------------------------------------------------------------------------


def floor(world: World) -> dict[str, Any]:
    """Two teams: sup-1 and sup-2 supervise agent-1 and agent-2; sup-3 supervises agent-3 only. A chat
    of agent-1 (wi-1) with its customer connected, and a keyword rule."""
    world.team()
    world.team(team_id="team-2", supervisors=("sup-3",), agents=("agent-3",))
    world.admin("PUT", f"{RULES}/kw", {"kind": "keyword", "severity": 2, "phrases": ["refund", "cancel my account"]})
    world.assign("wi-1")
    people = {
        name: world.connect(name, role)
        for name, role in [("sup-1", "supervisor"), ("sup-2", "supervisor"), ("sup-3", "supervisor"), ("agent-1", "agent")]
    }
    people["customer"] = world.connect("cust-wi-1", "customer", wid="wi-1")
    return people


def test_a_keyword_raises_one_alert_pushed_to_exactly_the_agents_supervisors(world: World) -> None:
    p = floor(world)
    p["customer"].ok("message.send", workitemId="wi-1", text="I want a REFÜND!")
    raised = [p[s].events("attention.raised") for s in ("sup-1", "sup-2")]
    assert [len(r) for r in raised] == [1, 1]
    alert = raised[0][0]["data"]["alert"]
    assert raised[1][0]["data"]["alert"] == alert
    assert {k: alert[k] for k in ("workitemId", "agentId", "ruleId", "kind", "severity", "state")} == {
        "workitemId": "wi-1",
        "agentId": "agent-1",
        "ruleId": "kw",
        "kind": "keyword",
        "severity": 2,
        "state": "open",
    }
    assert '"refund"' in alert["reason"]
    for other in ("sup-3", "agent-1", "customer"):
        assert not [f for f in p[other].frames() if f.get("event", "").startswith("attention.")], other
    # A new match meanwhile changes nothing; the agent's own words are not the customer's.
    p["customer"].ok("message.send", workitemId="wi-1", text="refund, and cancel my account")
    p["agent-1"].ok("message.send", workitemId="wi-1", text="about your refund")
    assert len(p["sup-1"].events("attention.raised")) == 1
    page = p["sup-1"].ok("attention.list")
    assert page["nextCursor"] is None
    assert [(i["workitem"]["workitemId"], i["score"], [a["alertId"] for a in i["alerts"]]) for i in page["items"]] == [
        ("wi-1", 2, [alert["alertId"]])
    ]
    assert p["sup-3"].ok("attention.list") == {"items": [], "nextCursor": None}
    p["agent-1"].fails("attention.list", "forbidden")


def test_the_first_ack_wins_and_the_others_hear_of_it(world: World) -> None:
    p = floor(world)
    p["customer"].ok("message.send", workitemId="wi-1", text="refund")
    alert_id = p["sup-1"].events("attention.raised")[0]["data"]["alert"]["alertId"]
    p["sup-3"].fails("attention.ack", "forbidden", alertId=alert_id)
    p["agent-1"].fails("attention.ack", "forbidden", alertId=alert_id)
    p["sup-1"].fails("attention.ack", "not_found", alertId="al-nothing")
    acked = p["sup-2"].ok("attention.ack", alertId=alert_id)["alert"]
    assert (acked["state"], acked["ackedBy"]) == ("acked", "sup-2")
    assert [e["data"]["alert"]["ackedBy"] for e in p["sup-1"].events("attention.acked")] == ["sup-2"]
    assert not p["sup-2"].events("attention.acked")
    error = p["sup-1"].fails("attention.ack", "conflict", alertId=alert_id)
    assert "acked" in error["message"]
    item = p["sup-1"].ok("attention.list")["items"][0]
    assert item["score"] == 0 and item["alerts"][0]["state"] == "acked"  # acked: listed, scores nothing


def test_ending_the_workitem_or_deleting_the_rule_clears_alerts(world: World) -> None:
    p = floor(world)
    world.admin("PUT", f"{RULES}/kw2", {"kind": "keyword", "phrases": ["lawyer"]})
    p["customer"].ok("message.send", workitemId="wi-1", text="my lawyer wants a refund")
    assert len(p["sup-1"].events("attention.raised")) == 2
    assert p["sup-1"].ok("attention.list")["items"][0]["score"] == 3
    # Editing a rule keeps its alert; deleting it clears it.
    world.admin("PUT", f"{RULES}/kw2", {"kind": "keyword", "phrases": ["lawyer", "attorney"], "severity": 3})
    assert not p["sup-1"].events("attention.cleared")
    world.admin("DELETE", f"{RULES}/kw2")
    cleared = [e["data"]["alert"] for e in p["sup-2"].events("attention.cleared")]
    assert [(a["ruleId"], a["state"], a["clearedReason"]) for a in cleared] == [("kw2", "cleared", "rule_deleted")]
    p["agent-1"].ok("workitem.end", workitemId="wi-1")
    cleared = [e["data"]["alert"] for e in p["sup-1"].events("attention.cleared")]
    assert [(a["ruleId"], a["clearedReason"]) for a in cleared] == [("kw2", "rule_deleted"), ("kw", "ended")]
    assert p["sup-1"].ok("attention.list")["items"] == []
    assert not p["agent-1"].events("attention.cleared") and not p["sup-3"].events("attention.cleared")


def test_disabling_a_rule_clears_its_alerts_and_raises_nothing_more(world: World) -> None:
    p = floor(world)
    p["customer"].ok("message.send", workitemId="wi-1", text="refund")
    world.admin("PUT", f"{RULES}/kw", {"kind": "keyword", "phrases": ["refund"], "enabled": False})
    assert [e["data"]["alert"]["clearedReason"] for e in p["sup-1"].events("attention.cleared")] == ["rule_deleted"]
    p["customer"].ok("message.send", workitemId="wi-1", text="refund!!")
    assert len(p["sup-1"].events("attention.raised")) == 1


def test_a_redelivered_batch_raises_nothing_twice(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    from chalicelib.entrypoints import events

    p = floor(world)
    delivered: list[dict[str, Any]] = []
    real = events.fan_out

    def twice(event: dict[str, Any]) -> dict[str, Any]:
        delivered.append(event)
        real(event)
        return real(event)  # Lambda hands the same batch over again

    monkeypatch.setattr(events, "fan_out", twice)
    p["customer"].ok("message.send", workitemId="wi-1", text="refund")
    assert delivered
    assert len(p["sup-1"].events("attention.raised")) == 1
    p["agent-1"].ok("workitem.end", workitemId="wi-1")
    assert len(p["sup-1"].events("attention.cleared")) == 1
    real(delivered[0])  # an old batch, long after: the cleared alert is not raised again
    assert len(p["sup-1"].events("attention.raised")) == 1


def test_alerts_reach_the_tenants_webhook_subscriptions(world: World) -> None:
    p = floor(world)
    world.admin(
        "PUT", "/admin/webhook-subscriptions/s1", {"url": "https://hooks.example.invalid/h", "events": ["attention.raised"]}
    )
    world.deliver()
    queued = {m.message_id for m in world.queue._messages.values()}
    p["customer"].ok("message.send", workitemId="wi-1", text="refund")
    fresh = [json.loads(m.body) for m in world.queue._messages.values() if m.message_id not in queued]
    assert [
        (m.get("type"), m.get("data", {}).get("alert", {}).get("ruleId"))
        for m in fresh
        if m.get("type", "").startswith("attention.")
    ] == [("attention.raised", "kw")]


def test_ten_supervisors_acking_at_once_one_wins(world: World) -> None:
    sups = tuple(f"sup-{i}" for i in range(10))
    world.team(supervisors=sups, agents=("agent-1",))
    world.admin("PUT", f"{RULES}/kw", {"kind": "keyword", "phrases": ["refund"]})
    world.assign("wi-1")
    clients = [world.connect(s, "supervisor") for s in sups]
    world.connect("cust-wi-1", "customer", wid="wi-1").ok("message.send", workitemId="wi-1", text="refund")
    alert_id = clients[0].events("attention.raised")[0]["data"]["alert"]["alertId"]
    barrier = threading.Barrier(len(clients))
    replies: list[dict[str, Any]] = []

    def ack(client: Any) -> None:
        barrier.wait()
        replies.append(client.request("attention.ack", alertId=alert_id))

    with atomic_aws_calls():
        threads = [threading.Thread(target=ack, args=(c,)) for c in clients]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    won = [r for r in replies if r["type"] == "ack"]
    assert len(won) == 1 and len(replies) == 10
    assert {r["error"]["code"] for r in replies if r["type"] == "error"} == {"conflict"}
    winner = won[0]["data"]["alert"]["ackedBy"]
    for sup, client in zip(sups, clients, strict=True):
        heard = [e["data"]["alert"]["ackedBy"] for e in client.events("attention.acked")]
        assert heard == ([] if sup == winner else [winner]), sup


def test_negative_customer_messages_in_a_row_raise_a_sentiment_alert(world: World) -> None:
    p = floor(world)
    world.admin("PUT", f"{RULES}/neg", {"kind": "sentiment", "negativeInARow": 2, "severity": 3})
    p["sup-1"].ok("monitor.start", workitemId="wi-1")
    p["customer"].ok("message.send", workitemId="wi-1", text="This is the worst service ever")
    p["customer"].ok("message.send", workitemId="wi-1", text="Thank you so much, that was really helpful :)")
    p["customer"].ok("message.send", workitemId="wi-1", text="I am not happy at all")
    assert not [e for e in p["sup-2"].events("attention.raised") if e["data"]["alert"]["kind"] == "sentiment"]
    p["customer"].ok("message.send", workitemId="wi-1", text="This is terrible, I want my money back")
    raised = [e["data"]["alert"] for e in p["sup-2"].events("attention.raised")]
    assert [(a["ruleId"], a["severity"], a["reason"]) for a in raised if a["kind"] == "sentiment"] == [
        ("neg", 3, "2 negative customer messages in a row")
    ]
    # Staff see each customer message's sentiment (pushed, and in timeline.get); the customer never does.
    pushed = [(e["data"]["seq"], e["data"]["sentiment"]) for e in p["agent-1"].events("entry.sentiment")]
    assert [label for _, label in pushed] == ["negative", "positive", "negative", "negative"]
    assert [e["data"]["sentiment"] for e in p["sup-1"].events("entry.sentiment")] == [label for _, label in pushed]
    assert not p["sup-2"].events("entry.sentiment") and not p["customer"].events("entry.sentiment")
    staff = p["agent-1"].ok("timeline.get", workitemId="wi-1", after=0)["entries"]
    assert [(e["seq"], e["sentiment"]) for e in staff if e["kind"] == "customer_message"] == pushed
    own = p["customer"].ok("timeline.get", workitemId="wi-1", after=0)["entries"]
    assert own and not [e for e in own if "sentiment" in e]


def test_the_tenants_sentiment_language_reaches_the_analyzer(world: World) -> None:
    policy = {"recordCoaching": False, "escalationSeconds": 120, "retentionDays": 30}
    admin = world.token("admin-1", "admin")
    status, body = world.rest("PUT", "/admin/policy", admin, {**policy, "sentimentLanguage": "xx"})
    assert status == 400 and body["error"]["code"] == "invalid"
    assert world.admin("GET", "/admin/policy")["sentimentLanguage"] == "en"  # nothing written
    assert world.admin("PUT", "/admin/policy", {**policy, "sentimentLanguage": "de"})["sentimentLanguage"] == "de"
    assert world.admin("GET", "/admin/policy") == {**policy, "sentimentLanguage": "de", "transcribeCalls": False}
    p = floor(world)
    world.admin("PUT", f"{RULES}/neg", {"kind": "sentiment", "negativeInARow": 1, "severity": 3})
    heard: list[tuple[str, list[str]]] = []
    offline = world.services.attention.sentiment
    assert offline is not None
    analyze = offline.analyze

    class Recording:
        def analyze(self, texts: list[str], language: str = "en") -> list[Any]:
            heard.append((language, texts))
            return analyze(texts, language)

    world.services.attention.sentiment = Recording()
    p["customer"].ok("message.send", workitemId="wi-1", text="Das ist wirklich schrecklich")
    assert heard == [("de", ["Das ist wirklich schrecklich"])]
    # The offline analyzer knows English only: a German message gets no label, and raises nothing.
    assert not p["agent-1"].events("entry.sentiment") and not p["sup-1"].events("attention.raised")


def test_a_waiting_customer_raises_when_the_threshold_passes_and_an_answer_clears_it(world: World) -> None:
    p = floor(world)
    world.admin("PUT", f"{RULES}/wait", {"kind": "customer_waiting", "seconds": 45, "severity": 2})
    p["customer"].ok("message.send", workitemId="wi-1", text="hello?")
    world.deliver(after_seconds=20)
    p["customer"].ok("message.send", workitemId="wi-1", text="anyone there?")
    world.deliver(after_seconds=20)
    assert not [e for e in p["sup-1"].events("attention.raised") if e["data"]["alert"]["kind"] == "customer_waiting"]
    world.deliver(after_seconds=6)  # 46 s after the first unanswered message
    raised = [
        e["data"]["alert"] for e in p["sup-1"].events("attention.raised") if e["data"]["alert"]["kind"] == "customer_waiting"
    ]
    assert [(a["ruleId"], a["reason"]) for a in raised] == [("wait", "customer waiting 45 s")]
    world.deliver(after_seconds=60)  # the second message's timer finds the first one's wait: nothing more
    assert len([e for e in p["sup-1"].events("attention.raised") if e["data"]["alert"]["kind"] == "customer_waiting"]) == 1
    p["agent-1"].ok("message.send", workitemId="wi-1", text="Sorry for the wait!")
    cleared = [e["data"]["alert"] for e in p["sup-2"].events("attention.cleared")]
    assert [(a["ruleId"], a["clearedReason"]) for a in cleared] == [("wait", "resolved")]


def test_an_answered_customer_raises_nothing(world: World) -> None:
    p = floor(world)
    world.admin("PUT", f"{RULES}/wait", {"kind": "customer_waiting", "seconds": 30})
    p["customer"].ok("message.send", workitemId="wi-1", text="hello?")
    world.deliver(after_seconds=10)
    p["agent-1"].ok("message.send", workitemId="wi-1", text="Hi!")
    world.deliver(after_seconds=60)
    assert not p["sup-1"].events("attention.raised")


def test_handle_time_is_armed_again_past_the_longest_delay(world: World) -> None:
    p = floor(world)
    world.admin("PUT", f"{RULES}/long", {"kind": "handle_time", "seconds": 1200})
    world.assign("wi-2")
    world.deliver(after_seconds=900)  # the first message fires at SQS's longest delay, and is armed again
    assert not p["sup-1"].events("attention.raised")
    world.deliver(after_seconds=301)
    raised = [e["data"]["alert"] for e in p["sup-1"].events("attention.raised")]
    assert [(a["workitemId"], a["kind"], a["reason"]) for a in raised] == [("wi-2", "handle_time", "handle time 1200 s")]
