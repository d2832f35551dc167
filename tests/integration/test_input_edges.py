"""Input at the edges, through the real entry points on moto: every bad input is a 4xx / ``invalid``
with nothing written, never an internal error, and every frame gets exactly one reply."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from chalicelib.entrypoints import ws
from devstack.tokens import webhook_signature
from tests.support.ddbcount import count_dynamodb
from tests.support.world import WEBHOOK_SECRET, World

# Tier: from the world fixture's backend (service on memory, integration on moto; tests/conftest.py).

DEEP = 1000


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


def deep_object(depth: int) -> str:
    return '{"a":' * depth + "1" + "}" * depth


def signed_post(world: World, raw: bytes, signature: str | None = "valid") -> tuple[int, Any]:
    headers = {"Content-Type": "application/json"}
    if signature == "valid":
        headers["X-Coaching-Signature"] = webhook_signature(WEBHOOK_SECRET, raw, int(time.time()))
    response = world.http.post("/webhooks/events", body=raw, headers=headers)
    return response.status_code, json.loads(response.body) if response.body else None


def admin_token(world: World) -> str:
    return world.token("admin-1", "admin")


# --- deeply nested JSON ------------------------------------------------------------------------------


@pytest.mark.parametrize("body", [nested(DEEP), deep_object(DEEP), nested(40), nested(DEEP * 30)])
def test_deeply_nested_rest_bodies_are_400(world: World, body: str) -> None:
    for path in ("/admin/policy", "/me/settings", "/admin/teams/team-9"):
        status, payload = world.rest("PUT", path, admin_token(world), body)
        assert status == 400, (path, status, payload)
        assert payload["error"]["code"] == "invalid"


@pytest.mark.parametrize("body", [nested(DEEP), deep_object(DEEP)])
def test_deeply_nested_webhooks_are_4xx_before_and_after_the_signature(world: World, body: str) -> None:
    raw = body.encode()
    assert signed_post(world, raw, signature=None)[0] == 401  # unsigned: refused at the signature
    status, payload = signed_post(world, raw)
    assert status == 400 and payload["error"]["code"] == "invalid", payload
    event = json.dumps(
        {"eventId": "e-deep", "tenantId": "t1", "type": "workitem.ended", "data": json.loads(deep_object(40))}
    ).encode()
    status, payload = signed_post(world, event)
    assert status == 400 and payload["error"]["code"] == "invalid", payload


@pytest.mark.parametrize("body", [nested(DEEP), '{"action":"ping","x":' + nested(DEEP) + "}", deep_object(33)])
def test_deeply_nested_frames_are_invalid(world: World, body: str) -> None:
    client = world.connect("agent-1", "agent")
    reply = client.send_raw(body)
    assert reply["type"] == "error" and reply["error"]["code"] == "invalid", reply


@pytest.mark.unit
def test_nesting_up_to_the_limit_is_decoded() -> None:
    from chalicelib.entrypoints.validation import MAX_DEPTH, decode

    assert decode(nested(MAX_DEPTH), "body", 1 << 20) is not None
    with pytest.raises(Exception) as refused:
        decode(nested(MAX_DEPTH + 1), "body", 1 << 20)
    assert getattr(refused.value, "code", None) == "invalid"


# --- huge numbers -----------------------------------------------------------------------------------


@pytest.mark.parametrize("digits", [10, 11, 17, 1022, 1100, 4300, 4301, 10_000])
def test_huge_after_in_timeline_get_is_invalid(world: World, digits: int) -> None:
    world.team()
    world.assign("wi-1")
    client = world.connect("agent-1", "agent")
    reply = client.send_raw('{"action":"timeline.get","requestId":"r1","workitemId":"wi-1","after":' + "9" * digits + "}")
    assert reply["type"] == "error" and reply["error"]["code"] == "invalid", reply
    assert reply["requestId"] in ("r1", None)


@pytest.mark.parametrize(
    "after",
    [
        "1" + "0" * 9,
        "9" * 11,
        "9" * 17,
        "9" * 1022,
        "9" * 4300,
        "9" * 5000,
        " 5",
        "5 ",
        "+5",
        "-1",
        "1_0",
        "\u0665",
        "\uff15",
        "5.0",
        "0x5",
        "",
    ],
)
def test_huge_or_lax_after_in_the_timeline_route_is_400(world: World, after: str) -> None:
    world.team()
    world.assign("wi-1")
    from urllib.parse import quote

    status, payload = world.rest("GET", f"/workitems/wi-1/timeline?after={quote(after)}", world.token("agent-1", "agent"))
    assert status == 400 and payload["error"]["code"] == "invalid", (after, status, payload)


def test_plain_ascii_query_integers_are_accepted(world: World) -> None:
    world.team()
    world.assign("wi-1")
    status, payload = world.rest("GET", "/workitems/wi-1/timeline?after=0&limit=200", world.token("agent-1", "agent"))
    assert status == 200, payload
    status, payload = world.rest("GET", "/workitems/wi-1/timeline?limit=201", world.token("agent-1", "agent"))
    assert status == 400, payload


# --- bytes that are not UTF-8 -----------------------------------------------------------------------------

# Invalid UTF-8 inside a JSON string: a stray byte, an overlong "/", an encoded surrogate (CESU-8), a code
# point past U+10FFFF, a sequence cut short.
NOT_UTF8 = [b"\xff", b"\xc0\xaf", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"\xe2\x82"]


def with_bytes(bad: bytes) -> bytes:
    return b'{"eventId":"' + bad + b'","tenantId":"t1","type":"workitem.ended","data":{"workitemId":"wi-1","endedBy":"agent"}}'


@pytest.mark.parametrize("bad", NOT_UTF8)
def test_a_webhook_that_is_not_utf8_is_400_signed_or_not(world: World, bad: bytes) -> None:
    raw = with_bytes(bad)
    for signature in (None, "valid"):
        status, payload = signed_post(world, raw, signature)
        assert (status, payload["error"]["code"]) == (400, "invalid"), (signature, payload)
        assert "UTF-8" in payload["error"]["message"]


@pytest.mark.parametrize("bad", NOT_UTF8)
def test_a_body_that_is_not_utf8_is_400_on_every_route_before_anything_else(world: World, bad: bytes) -> None:
    """Every route and method, with a token, without one and with a wrong one: 400 before authentication,
    method and media type are looked at; nothing is written, no internal error."""
    from app import app

    raw = b'{"name":"' + bad + b'","role":"agent","text":"x","enabled":true}'
    for path, methods in sorted(app.routes.items()):
        url = path.replace("{", "").replace("}", "").replace("Id", "-1")
        for method in sorted(methods):
            for token in (admin_token(world), None, "not.a.token"):
                headers = {"Content-Type": "application/json"}
                if token:
                    headers["Authorization"] = f"Bearer {token}"
                response = getattr(world.http, method.lower())(url, headers=headers, body=raw)
                payload = json.loads(response.body)
                assert (response.status_code, payload["error"]["code"]) == (400, "invalid"), (method, url, payload)
    assert world.admin("GET", "/admin/templates") == {"templates": []}
    assert world.admin("GET", "/admin/webhook-subscriptions") == {"subscriptions": []}


# --- lone surrogates and the reply encoder ---------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        '{"action":"ping","requestId":"\\ud800"}',
        '{"action":"nope","requestId":"\\udfff"}',
        '{"action":"coach.send","requestId":"\\ud800x","workitemId":"wi-1","text":"hi"}',
        '{"action":"ping","requestId":"r","text":"\\ud800"}',
        '{"\\ud800":1}',
        '{"action":"ping","requestId":"\ud800"}',  # a real lone surrogate in the body text
    ],
)
def test_a_lone_surrogate_still_gets_exactly_one_reply(world: World, body: str) -> None:
    client = world.connect("agent-1", "agent")
    reply = client.send_raw(body)  # asserts exactly one ack/error
    assert reply["type"] == "error" and reply["error"]["code"] == "invalid", reply


@pytest.mark.unit
def test_the_reply_encoder_copes_with_lone_surrogates() -> None:
    from chalicelib.entrypoints.wire import error
    from chalicelib.services.delivery import encode

    data = encode(error("\ud800", {"code": "invalid", "message": "m"}))
    assert json.loads(data)["requestId"] == "\ud800"
    data.decode("utf-8")  # valid UTF-8 on the wire


def test_a_failure_before_routing_is_still_answered_once(world: World, monkeypatch: Any) -> None:
    client = world.connect("agent-1", "agent")

    def broken(*_: Any) -> Any:
        raise RuntimeError("registry unavailable")

    monkeypatch.setattr(ws, "_caller", broken)
    reply = client.send_raw('{"action":"ping","requestId":"r1"}')
    assert reply["type"] == "error" and reply["error"]["code"] == "internal"


# --- strict types -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/me/settings", {"agentMessageNotification": 0}),
        ("/me/settings", {"agentMessageNotification": "yes"}),
        ("/me/settings", {"agentMessageNotification": "off"}),
        ("/admin/policy", {"recordCoaching": True, "escalationSeconds": " 120 ", "retentionDays": 30}),
        ("/admin/policy", {"recordCoaching": True, "escalationSeconds": "9_0", "retentionDays": 30}),
        ("/admin/policy", {"recordCoaching": True, "escalationSeconds": "\u0661\u0662\u0660", "retentionDays": 30}),
        ("/admin/policy", {"recordCoaching": "true", "escalationSeconds": 120, "retentionDays": 30}),
        ("/admin/policy", {"recordCoaching": True, "escalationSeconds": 120.0, "retentionDays": 30}),
        ("/admin/templates/tpl-1", {"text": "Need help", "enabled": "on"}),
    ],
)
def test_lax_types_are_refused(world: World, path: str, body: dict[str, Any]) -> None:
    with count_dynamodb() as log:
        status, payload = world.rest("PUT", path, admin_token(world), body)
    assert status == 400 and payload["error"]["code"] == "invalid", payload
    assert not [op for op in log.calls if op not in ("GetItem", "Query", "BatchGetItem")]


def test_a_refused_rest_body_names_every_offending_field_as_a_frame_does(world: World) -> None:
    """REST and WebSocket refusals come from the same mapper: ``details.problems`` on both, no value echoed."""
    body = {"name": "", "supervisors": ["ok", "a#b"], "agents": [1]}
    status, payload = world.rest("PUT", "/admin/teams/team-9", admin_token(world), body)
    assert status == 400 and payload["error"]["code"] == "invalid", payload
    assert [p["field"] for p in payload["error"]["details"]["problems"]] == ["name", "supervisors.1", "agents.0"]
    assert "a#b" not in json.dumps(payload)


def test_lax_types_are_refused_in_frames(world: World) -> None:
    world.team()
    world.assign("wi-1")
    client = world.connect("agent-1", "agent")
    for fields in ({"after": "0"}, {"after": True}, {"after": 0, "limit": "5"}, {"after": 0, "limit": 5.0}):
        client.fails("timeline.get", "invalid", workitemId="wi-1", **fields)
    client.fails("workitems.list", "invalid", agentId="agent-1", limit="10")


# --- text, names, secrets --------------------------------------------------------------------------------

INVISIBLE = [
    "",
    " ",
    "   \t\n",
    "\u200b",
    "\u2060",
    "\ufeff",
    "\u200b\u2060\ufeff \u00a0",
    "\u3000",
    "\u180e\u200d",
    "\U000e0020",
]


@pytest.mark.parametrize("text", INVISIBLE)
def test_text_of_only_invisible_characters_is_invalid(world: World, text: str) -> None:
    world.team()
    world.assign("wi-1")
    agent = world.connect("agent-1", "agent")
    sup = world.connect("sup-1", "supervisor")
    sup.ok("monitor.start", workitemId="wi-1")
    with count_dynamodb() as log:
        sup.fails("coach.send", "invalid", workitemId="wi-1", text=text)
        agent.fails("message.send", "invalid", workitemId="wi-1", text=text)
        agent.fails("directory.send", "invalid", toUserId="sup-1", text=text)
    assert not [op for op in log.calls if op not in ("GetItem", "Query", "BatchGetItem")]
    status, _ = world.rest("PUT", "/admin/templates/tpl-9", admin_token(world), {"text": text, "enabled": True})
    assert status == 400
    status, _ = world.webhook("workitem.message", {"workitemId": "wi-1", "from": "customer", "text": text})
    assert status == 400


def test_text_with_a_visible_character_is_kept_as_sent(world: World) -> None:
    world.team()
    world.assign("wi-1")
    agent = world.connect("agent-1", "agent")
    entry = agent.ok("message.send", workitemId="wi-1", text="\u200b ok \ufeff")["entry"]
    assert entry["text"] == "\u200b ok \ufeff"


@pytest.mark.parametrize("name", ["   ", "\u200b", "Ada\x00", "\x00", "Ada\u202eevil", "\u202e", "Ada\nBob", "A\u2066b"])
def test_bad_user_and_team_names_are_refused(world: World, name: str) -> None:
    status, payload = world.rest("PUT", "/admin/users/u-1", admin_token(world), {"name": name, "role": "agent"})
    assert status == 400 and payload["error"]["field" if False else "code"] == "invalid", payload
    status, _ = world.rest("PUT", "/admin/teams/team-9", admin_token(world), {"name": name, "supervisors": [], "agents": []})
    assert status == 400


def test_good_names_are_accepted(world: World) -> None:
    for name in ("Ada Lovelace", "Zoë Ærø", "李小龍", " Ada ", "O'Brien-Smith"):
        status, payload = world.rest("PUT", "/admin/users/u-1", admin_token(world), {"name": name, "role": "agent"})
        assert status == 200 and payload["name"] == name, payload


@pytest.mark.parametrize("secret", [" " * 16, " " * 40, "\t" * 16, "secret with spaces in it", "x" * 15, "é" * 16])
def test_weak_or_blank_webhook_secrets_are_refused(world: World, secret: str) -> None:
    status, payload = world.rest("PUT", "/admin/webhook-secret", admin_token(world), {"secret": secret})
    assert status == 400, payload
    # the default secret still signs this tenant's webhooks
    world.team()
    world.assign("wi-1")


# --- ids -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        "/admin/templates/tpl-1%23evil",
        "/admin/templates/tpl-1%2523evil",
        "/admin/templates/tpl-1%25",
        "/admin/templates/tpl-1%2Fevil",
    ],
)
def test_ids_with_hash_slash_or_percent_are_refused_on_rest_routes(world: World, path: str) -> None:
    world.admin("PUT", "/admin/templates/tpl-1", {"text": "original", "enabled": True})
    status, payload = world.rest("PUT", path, admin_token(world), {"text": "evil", "enabled": True})
    assert status in (400, 404) and "error" in payload, (status, payload)
    templates = world.admin("GET", "/admin/templates")["templates"]
    assert [(t["templateId"], t["text"]) for t in templates] == [("tpl-1", "original")]


def test_an_encoded_hash_is_refused_through_the_local_gateway(world: World) -> None:
    """The local stack's gateway decoded %23 to '#', which its router read as a fragment: tpl-1 was overwritten."""
    import urllib.error
    import urllib.request

    from app import app
    from devstack.gateway import Gateway, GatewayThread

    world.admin("PUT", "/admin/templates/tpl-1", {"text": "original", "enabled": True})
    with GatewayThread(Gateway(app)) as server:
        request = urllib.request.Request(
            server.base_url + "/admin/templates/tpl-1%23evil",
            method="PUT",
            data=b'{"text": "evil", "enabled": true}',
            headers={"Content-Type": "application/json", "Authorization": f"Bearer {admin_token(world)}"},
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                status, body = response.status, response.read()
        except urllib.error.HTTPError as refused:
            status, body = refused.code, refused.read()
    assert status == 400, body
    assert json.loads(body)["error"]["code"] == "invalid"
    templates = world.admin("GET", "/admin/templates")["templates"]
    assert [(t["templateId"], t["text"]) for t in templates] == [("tpl-1", "original")]


# --- Chalice's own answers ----------------------------------------------------------------------------


def test_wrong_method_and_media_type_answer_in_the_error_shape(world: World) -> None:
    response = world.http.post("/health", body="{}", headers={"Content-Type": "application/json"})
    assert response.status_code == 405
    assert json.loads(response.body) == {
        "error": {"code": "method_not_allowed", "message": "this route does not take this method"}
    }
    response = world.http.put(
        "/admin/policy", body="{}", headers={"Content-Type": "text/plain", "Authorization": f"Bearer {admin_token(world)}"}
    )
    assert response.status_code == 415
    payload = json.loads(response.body)
    assert payload["error"]["code"] == "unsupported_media_type" and "text/plain" not in payload["error"]["message"]


# --- teams ------------------------------------------------------------------------------------------------


def bulk_users(world: World, role: str, count: int, prefix: str) -> list[str]:
    from chalicelib.domain.identity import Role

    ids = [f"{prefix}-{i}" for i in range(count)]
    for uid in ids:
        world.services.directory.directory.put_user("t1", uid, uid, Role(role), "2026-01-01T00:00:00Z")
    return ids


def test_a_large_team_with_a_ghost_is_refused_and_nothing_is_written(world: World) -> None:
    sups = bulk_users(world, "supervisor", 2, "s")
    agents = bulk_users(world, "agent", 150, "a")
    status, payload = world.rest(
        "PUT", "/admin/teams/team-big", admin_token(world), {"name": "Big", "supervisors": sups, "agents": [*agents, "ghost-1"]}
    )
    assert status == 409 and "ghost-1" in payload["error"]["message"], payload
    status, payload = world.rest(
        "PUT",
        "/admin/teams/team-big",
        admin_token(world),
        {"name": "Big", "supervisors": [*sups, agents[120]], "agents": agents[:100]},
    )
    assert status == 409 and "not a supervisor" in payload["error"]["message"], payload
    sup = world.connect(sups[0], "supervisor")
    assert sup.ok("agents.list")["agents"] == []


@pytest.mark.moto
@pytest.mark.slow
def test_a_team_of_500_is_checked_in_chunks_and_501_is_refused(world: World) -> None:
    sups = bulk_users(world, "supervisor", 4, "s")
    agents = bulk_users(world, "agent", 497, "a")
    with count_dynamodb() as log:
        status, payload = world.rest(
            "PUT", "/admin/teams/team-big", admin_token(world), {"name": "Big", "supervisors": sups, "agents": agents[:496]}
        )
    assert status == 200, payload
    assert log.calls.count("BatchGetItem") == 5 and "Scan" not in log.calls
    status, payload = world.rest(
        "PUT", "/admin/teams/team-big", admin_token(world), {"name": "Big", "supervisors": sups, "agents": agents}
    )
    assert status == 400 and "500" in payload["error"]["message"], payload


# --- workitem.transferred ------------------------------------------------------------------------------------


@pytest.mark.parametrize("target", ["ghost", "sup-1", "admin-1"])
def test_a_transfer_webhook_to_a_non_agent_is_409_and_applies_nothing(world: World, target: str) -> None:
    world.team()
    world.admin("PUT", "/admin/users/admin-1", {"name": "Admin", "role": "admin"})
    world.assign("wi-1")
    before = world.services.coaching.store.get("t1", "wi-1")
    status, payload = world.webhook("workitem.transferred", {"workitemId": "wi-1", "toAgentId": target})
    assert status == 409 and payload["error"]["code"] == "conflict", payload
    after = world.services.coaching.store.get("t1", "wi-1")
    assert after == before
    status, payload = world.webhook("workitem.transferred", {"workitemId": "wi-1", "toAgentId": "agent-2"})
    assert status == 200, payload
    stored = world.services.coaching.store.get("t1", "wi-1")
    assert stored is not None and stored.agent_id == "agent-2"


def test_a_transfer_webhook_to_an_agent_of_another_tenant_is_409(world: World) -> None:
    world.team()
    world.team(tid="t2", team_id="team-x", supervisors=("sup-9",), agents=("agent-9",))
    world.assign("wi-1")
    status, _ = world.webhook("workitem.transferred", {"workitemId": "wi-1", "toAgentId": "agent-9"})
    assert status == 409


@pytest.mark.parametrize(
    "header",
    [
        "t={now},v1=\u00e9\u00e9",
        "t={now},v1=\u2603",
        "t=\u0661\u0662,v1=ab",
        "t=" + "9" * 5000 + ",v1=ab",
        "t= {now} ,v1=ab",
        "t=+{now},v1=ab",
        "t={now}_0,v1=ab",
        "t=,v1=",
        "\u00ff",
    ],
)
def test_odd_signature_headers_are_401_never_500(world: World, header: str) -> None:
    raw = json.dumps(
        {"eventId": "e-1", "tenantId": "t1", "type": "workitem.ended", "data": {"workitemId": "wi-1", "endedBy": "system"}}
    ).encode()
    value = header.replace("{now}", str(int(time.time())))
    response = world.http.post(
        "/webhooks/events", body=raw, headers={"Content-Type": "application/json", "X-Coaching-Signature": value}
    )
    assert response.status_code == 401, response.body
