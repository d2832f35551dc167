"""Attention rules on AWS's DynamoDB Local engine (docs/attention.md): the store, and REST through the
product's entry points."""

from __future__ import annotations

from typing import Any

import pytest

from chalicelib.adapters.attention_store import DynamoAttentionStore
from chalicelib.domain.attention import Rule, RuleKind

pytestmark = pytest.mark.ddblocal

NOW = "2026-01-01T00:00:00.000Z"


def test_rules_round_trip_replace_and_delete(ddb_world: Any) -> None:
    w, tid, store = ddb_world, ddb_world.tid, DynamoAttentionStore()
    keyword = Rule("kw", RuleKind.KEYWORD, True, 3, phrases=("refund", "退款"), speakers=("customer", "agent"))
    store.put_rule(tid, keyword, NOW)
    store.put_rule(tid, Rule("neg", RuleKind.SENTIMENT, False, 1, negative_in_a_row=2), NOW)
    assert store.rules(tid) == [keyword, Rule("neg", RuleKind.SENTIMENT, False, 1, negative_in_a_row=2)]
    # A replacement of another kind leaves none of the old kind's fields behind.
    store.put_rule(tid, Rule("kw", RuleKind.HANDLE_TIME, True, 2, seconds=900), NOW)
    assert store.rules(tid)[0] == Rule("kw", RuleKind.HANDLE_TIME, True, 2, seconds=900)
    assert store.delete_rule(tid, "kw") is True
    assert store.delete_rule(tid, "kw") is False
    assert [r.rule_id for r in store.rules(tid)] == ["neg"]
    assert store.rules(f"{tid}-other") == []

    token = w.token("admin-1", "admin")
    status, body = w.rest("PUT", "/admin/attention-rules/wait", token, {"kind": "customer_waiting", "seconds": 30})
    assert status == 201 and body["rule"]["seconds"] == 30
    status, body = w.rest("PUT", "/admin/attention-rules/wait", token, {"kind": "customer_waiting", "seconds": 3601})
    assert status == 400 and body["error"]["details"]["problems"][0]["field"] == "seconds"
    assert [r["ruleId"] for r in w.rest("GET", "/admin/attention-rules", token)[1]["rules"]] == ["neg", "wait"]
    assert w.rest("DELETE", "/admin/attention-rules/wait", token)[0] == 204


def test_alert_transactions_on_the_real_engine(ddb_world: Any) -> None:
    from chalicelib.domain.attention import AlertState, ClearReason, raise_alert

    tid, store = ddb_world.tid, DynamoAttentionStore()
    rule = Rule("kw", RuleKind.KEYWORD, True, 2, phrases=("refund",), speakers=("customer",))
    first = raise_alert(tid, rule, "wi-1", "agent-1", "e3", 'customer said "refund"', NOW)
    assert store.raise_alert(first, 2) == "raised"
    assert store.raise_alert(first, 2) == "exists"  # the same trigger again
    assert store.raise_alert(raise_alert(tid, rule, "wi-1", "agent-1", "e9", "again", NOW), 2) == "exists"  # the pair is taken
    other = raise_alert(tid, rule, "wi-2", "agent-1", "e1", "x", NOW)
    assert store.raise_alert(other, 2) == "raised"
    assert store.raise_alert(raise_alert(tid, rule, "wi-3", "agent-1", "e1", "x", NOW), 2) == "full"
    assert sorted(a.workitem_id for a in store.alerts(tid)) == ["wi-1", "wi-2"]
    assert store.active_of(tid, "wi-1") == [first.alert_id]

    acked = first.ack("sup-1", NOW)
    assert store.ack(acked) is True
    assert store.ack(first.ack("sup-2", NOW)) is False
    assert store.alert(tid, first.alert_id) == acked

    cleared = acked.clear(ClearReason.ENDED, NOW)
    assert store.clear(cleared) is True
    assert store.clear(cleared) is False
    assert store.alert(tid, first.alert_id) == cleared and cleared.state is AlertState.CLEARED
    assert store.active_of(tid, "wi-1") == []
    assert store.raise_alert(first, 2) == "exists"  # a redelivered record: cleared, never raised again
    assert store.raise_alert(raise_alert(tid, rule, "wi-1", "agent-1", "e12", "later", NOW), 2) == "raised"


def test_a_raise_and_its_first_ack_are_counted_in_their_own_writes(ddb_world: Any) -> None:
    """W13.11 on the real engine: the analytics fact joins the raise's transaction and the ack's; a
    repeated raise, a lost ack and a fact counted before add nothing, and the alert is still written."""
    from chalicelib.adapters.analytics_store import DynamoAnalyticsStore
    from chalicelib.domain import analytics as an
    from chalicelib.domain.attention import raise_alert

    tid, store, counts = ddb_world.tid, DynamoAttentionStore(), DynamoAnalyticsStore()
    rule = Rule("kw", RuleKind.KEYWORD, True, 2, phrases=("refund",), speakers=("customer",))
    first = raise_alert(tid, rule, "wi-1", "agent-1", "e3", "x", NOW)
    raised = an.alert_raised_slots(first.alert_id, "agent-1", NOW)
    assert store.raise_alert(first, 5, raised) == "raised"
    assert store.raise_alert(first, 5, raised) == "exists"
    other = raise_alert(tid, rule, "wi-2", "agent-1", "e1", "x", NOW)
    assert store.raise_alert(other, 5, raised) == "raised"  # its fact was counted before: the raise alone
    third = raise_alert(tid, rule, "wi-3", "agent-1", "e1", "x", NOW)
    assert store.raise_alert(third, 2, an.alert_raised_slots(third.alert_id, "agent-1", NOW)) == "full"  # nor counted
    at = "2026-01-01T00:01:15.900Z"
    acked = first.ack("sup-1", at)
    assert store.ack(acked, an.alert_acked_slots(first.alert_id, "agent-1", NOW, "sup-1", at)) is True
    late = first.ack("sup-2", at)
    assert store.ack(late, an.alert_acked_slots(first.alert_id, "agent-1", NOW, "sup-2", at)) is False
    assert store.alert(tid, first.alert_id) == acked
    assert store.ack(other.ack("sup-2", at), an.alert_acked_slots(first.alert_id, "agent-1", NOW, "sup-2", at)) is True
    day = an.Read(an.Dim.TENANT, "2026-01-01", "2026-01-01")
    sups = an.Read(an.Dim.SUPERVISOR, "2026-01-01", "2026-01-01")
    found = {(c.dim, c.key): v for c, v in counts.read(tid, [day, sups])}
    assert found == {(an.Dim.TENANT, ""): {"lr": 1, "la": 1, "lk75": 1}, (an.Dim.SUPERVISOR, "sup-1"): {"la": 1, "lk75": 1}}
