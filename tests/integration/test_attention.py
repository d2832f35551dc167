"""Attention rules through REST (docs/product.md W11.1), on the in-memory stores and on moto."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.world import World

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


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"kind": "keyword", "phrases": []}, "phrases"),
        ({"kind": "keyword"}, "phrases"),
        ({"kind": "keyword", "phrases": ["x" * 101]}, "phrases.0"),
        ({"kind": "keyword", "phrases": ["ok", "?!"]}, "phrases.1"),
        ({"kind": "keyword", "phrases": ["Refund", "REFÜND"]}, "phrases.1"),
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
    ],
)
def test_a_bad_body_is_refused_naming_the_field_and_writes_nothing(world: World, body: dict[str, Any], field: str) -> None:
    world.admin("PUT", f"{RULES}/r1", {"kind": "handle_time", "seconds": 300})
    before = world.admin("GET", RULES)
    status, refused = world.rest("PUT", f"{RULES}/r1", world.token("admin-1", "admin"), body)
    assert status == 400, refused
    assert refused["error"]["code"] == "invalid"
    assert refused["error"]["details"]["problems"][0]["field"] == field, refused
    status, _ = world.rest("PUT", f"{RULES}/r2", world.token("admin-1", "admin"), body)
    assert status == 400
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
