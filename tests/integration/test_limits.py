"""Replies within limits: the four list actions page with ``limit`` / ``cursor`` / ``nextCursor``, every
page fits one frame, following the cursors yields every item exactly once, and a cursor that is not one
of this listing is ``invalid``. Every frame any test posts is checked against 128 KB by the world's pusher."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from chalicelib.domain.errors import TooLarge
from chalicelib.entrypoints.wire import WIRE
from chalicelib.services.delivery import Notifier, encode
from tests.support.world import Client, FakeClock, World

# Tier: from the world fixture's backend (service on memory, integration on moto; tests/conftest.py).

LONG_SUBJECT = "\U0001f600" * 1000  # 1,000 characters, 4,000 bytes of UTF-8


def assign_many(world: World, count: int, agent: str = "agent-1", subject: str = LONG_SUBJECT, prefix: str = "wi") -> list[str]:
    ids = [f"{prefix}-{i:03d}" for i in range(count)]
    for wid in ids:
        status, body = world.webhook(
            "workitem.assigned",
            {
                "workitemId": wid,
                "channel": "chat",
                "agentId": agent,
                "customer": {"id": f"c-{wid}", "name": "N" * 256},
                "subject": subject,
            },
        )
        assert status == 200, body
    return ids


def follow(client: Client, action: str, key: str, **fields: Any) -> tuple[list[dict[str, Any]], int]:
    """Every item of a list action, following nextCursor; also how many pages it took."""
    items: list[dict[str, Any]] = []
    cursor: str | None = None
    pages = 0
    while True:
        data = client.ok(action, **fields, **({"cursor": cursor} if cursor else {}))
        pages += 1
        items.extend(data[key])
        cursor = data["nextCursor"]
        assert cursor is None or isinstance(cursor, str)
        if cursor is None:
            return items, pages
        assert pages < 100


def test_110_workitems_with_long_subjects_page_within_one_frame_each(world: World) -> None:
    """Before: one ack of ~500 KB, dropped by @connections: no ack, no error, yet the watch registered."""
    world.team()
    ids = assign_many(world, 110)
    sup = world.connect("sup-1", "supervisor")
    agent = world.connect("agent-1", "agent")
    for client, action in ((sup, "workitems.list"), (agent, "workitems.list"), (sup, "agent.watch")):
        items, pages = follow(client, action, "workitems", agentId="agent-1")
        assert sorted(w["workitemId"] for w in items) == ids  # every item, exactly once
        assert pages > 1
    # the watch works: a new workitem is pushed
    assign_many(world, 1, subject="new", prefix="late")
    assert any(e["data"]["workitem"]["workitemId"] == "late-000" for e in sup.events("workitem.assigned"))


def test_limit_bounds_the_page_and_the_order_is_stable(world: World) -> None:
    world.team()
    ids = assign_many(world, 7, subject="s")
    agent = world.connect("agent-1", "agent")
    first = agent.ok("workitems.list", agentId="agent-1", limit=3)
    assert len(first["workitems"]) == 3 and first["nextCursor"]
    items, pages = follow(agent, "workitems.list", "workitems", agentId="agent-1", limit=3)
    assert pages == 3 and [w["workitemId"] for w in items] == ids
    last = agent.ok("workitems.list", agentId="agent-1", limit=500)
    assert last["nextCursor"] is None and len(last["workitems"]) == 7
    for bad in (0, 501, -1, "3", 3.0, True):
        agent.fails("workitems.list", "invalid", agentId="agent-1", limit=bad)


def test_items_added_between_pages_never_repeat_an_item(world: World) -> None:
    world.team()
    assign_many(world, 4, subject="s")
    agent = world.connect("agent-1", "agent")
    first = agent.ok("workitems.list", agentId="agent-1", limit=2)
    world.webhook(
        "workitem.assigned",
        {"workitemId": "wi-new", "channel": "chat", "agentId": "agent-1", "customer": {"id": "c", "name": "C"}},
    )
    seen = [w["workitemId"] for w in first["workitems"]]
    cursor = first["nextCursor"]
    while cursor:
        page = agent.ok("workitems.list", agentId="agent-1", limit=2, cursor=cursor)
        seen.extend(w["workitemId"] for w in page["workitems"])
        cursor = page["nextCursor"]
    assert len(seen) == len(set(seen)) and {"wi-000", "wi-001", "wi-002", "wi-003"} <= set(seen)


def tampered(cursor: str) -> list[str]:
    raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
    scope, key = json.loads(raw)
    forged = base64.urlsafe_b64encode(json.dumps(["0" * 16, key]).encode()).decode().rstrip("=")
    return [
        cursor[:-2],
        cursor + "x",
        "A" * 40,
        "",
        "%%%",
        "é",
        "\x00",
        "x" * 2000,
        forged,
        base64.urlsafe_b64encode(b"[1,2]").decode(),
        base64.urlsafe_b64encode(b"\xff\xfe").decode(),
        base64.urlsafe_b64encode(json.dumps([scope, []]).encode()).decode(),
        base64.urlsafe_b64encode(json.dumps([scope, [{"a": 1}]]).encode()).decode(),
    ]


def test_a_bad_or_foreign_cursor_is_invalid_never_an_error_of_ours(world: World) -> None:
    world.team()
    world.team(tid="t2")
    assign_many(world, 3, subject="s")
    assign_many(world, 3, agent="agent-2", subject="s", prefix="b")
    world.webhook(
        "workitem.assigned",
        {"workitemId": "wi-x", "channel": "chat", "agentId": "agent-1", "customer": {"id": "c", "name": "C"}},
        tid="t2",
    )
    sup = world.connect("sup-1", "supervisor")
    cursor = sup.ok("workitems.list", agentId="agent-1", limit=1)["nextCursor"]
    for bad in tampered(cursor):
        sup.fails("workitems.list", "invalid", agentId="agent-1", limit=1, cursor=bad)
    # the same cursor on another list, another agent, another caller, another tenant
    sup.fails("agent.watch", "invalid", agentId="agent-1", limit=1, cursor=cursor)
    sup.fails("workitems.list", "invalid", agentId="agent-2", limit=1, cursor=cursor)
    world.connect("sup-2", "supervisor").fails("workitems.list", "invalid", agentId="agent-1", limit=1, cursor=cursor)
    world.connect("sup-1", "supervisor", tid="t2").fails("workitems.list", "invalid", agentId="agent-1", limit=1, cursor=cursor)


def test_a_refused_watch_registers_nothing(world: World) -> None:
    world.team()
    sup = world.connect("sup-1", "supervisor")
    sup.fails("agent.watch", "invalid", agentId="agent-1", cursor="not-a-cursor")
    assign_many(world, 1, subject="s")
    assert sup.events("workitem.assigned") == []


def test_agents_list_pages(world: World) -> None:
    agents = tuple(f"agent-{i}" for i in range(1, 8))
    world.team(supervisors=("sup-1",), agents=agents)
    sup = world.connect("sup-1", "supervisor")
    items, pages = follow(sup, "agents.list", "agents", limit=3)
    assert pages == 3 and sorted(a["userId"] for a in items) == sorted(agents)
    assert sup.ok("agents.list")["nextCursor"] is None


def test_assist_recipients_pages_over_both_lists(world: World) -> None:
    world.team(supervisors=("sup-1", "sup-2"), agents=("agent-1", "agent-2", "agent-3"))
    for user, role in (("sup-1", "supervisor"), ("sup-2", "supervisor"), ("agent-2", "agent"), ("agent-3", "agent")):
        world.connect(user, role)
    agent = world.connect("agent-1", "agent")
    whole = agent.ok("assist.recipients")
    assert whole["nextCursor"] is None and len(whole["supervisors"]) == 2 and len(whole["agents"]) == 2
    sups: list[str] = []
    peers: list[str] = []
    cursor = None
    pages = 0
    while True:
        data = agent.ok("assist.recipients", limit=1, **({"cursor": cursor} if cursor else {}))
        pages += 1
        sups += [p["userId"] for p in data["supervisors"]]
        peers += [p["userId"] for p in data["agents"]]
        cursor = data["nextCursor"]
        if cursor is None:
            break
    assert pages == 4
    assert sups == [p["userId"] for p in whole["supervisors"]] and peers == [p["userId"] for p in whole["agents"]]


# --- the send guard -------------------------------------------------------------------------------------------


# API Gateway's limit on a frame posted to a connection (PostToConnection answers PayloadTooLarge above it):
# written here as AWS documents it, not read from the code under test.
API_GATEWAY_FRAME_BYTES = 128 * 1024


class SizePusher:
    """A pusher that behaves like @connections on size: a frame over 128 KiB is a failed test."""

    def __init__(self) -> None:
        self.posted: list[tuple[str, bytes]] = []

    def post_many(self, frames: list[tuple[str, bytes]]) -> list[str]:
        for connection_id, data in frames:
            assert len(data) <= API_GATEWAY_FRAME_BYTES, f"{len(data)} bytes posted to {connection_id}"
        self.posted.extend(frames)
        return []


class NoDirectory:
    def forget(self, *args: Any) -> None:
        raise AssertionError("nothing is gone")


def sized(frame: dict[str, Any], size: int) -> dict[str, Any]:
    """``frame`` with a ``blob`` in its data that makes its compact UTF-8 JSON exactly ``size`` bytes."""
    empty = len(json.dumps({**frame, "data": {**frame["data"], "blob": ""}}, separators=(",", ":")).encode())
    return {**frame, "data": {**frame["data"], "blob": "x" * (size - empty)}}


@pytest.mark.unit
@pytest.mark.parametrize("size", [API_GATEWAY_FRAME_BYTES - 1, API_GATEWAY_FRAME_BYTES])
def test_a_reply_up_to_exactly_128_kib_goes_out_as_it_is(size: int) -> None:
    pusher = SizePusher()
    Notifier(pusher, NoDirectory(), FakeClock(), WIRE).send("c1", sized({"type": "ack", "requestId": "r-7", "data": {}}, size))  # type: ignore[arg-type]
    [(connection_id, data)] = pusher.posted
    assert connection_id == "c1" and len(data) == size  # measured on the wire
    reply = json.loads(data)
    assert reply["type"] == "ack" and reply["requestId"] == "r-7"


@pytest.mark.unit
@pytest.mark.parametrize("size", [API_GATEWAY_FRAME_BYTES + 1, 2 * API_GATEWAY_FRAME_BYTES + 1])
def test_a_reply_over_128_kib_becomes_too_large_with_its_request_id(size: int) -> None:
    pusher = SizePusher()
    Notifier(pusher, NoDirectory(), FakeClock(), WIRE).send("c1", sized({"type": "ack", "requestId": "r-7", "data": {}}, size))  # type: ignore[arg-type]
    [(connection_id, data)] = pusher.posted
    reply = json.loads(data)
    assert connection_id == "c1" and reply["type"] == "error" and reply["requestId"] == "r-7"
    assert reply["error"]["code"] == TooLarge.code == "too_large"
    assert "131072 bytes" in reply["error"]["message"]


@pytest.mark.unit
def test_a_push_over_128_kib_is_never_posted_and_one_of_exactly_128_kib_is(caplog: pytest.LogCaptureFixture) -> None:
    from chalicelib.services.delivery import Outbox

    pusher = SizePusher()
    notifier = Notifier(pusher, NoDirectory(), FakeClock(), WIRE)  # type: ignore[arg-type]
    box = Outbox("t1", "2026-01-01T00:00:00.000Z", 0)
    event = {"type": "event", "event": "x", "data": {}}
    box.frames.append(("over", encode(sized(event, API_GATEWAY_FRAME_BYTES + 1))))
    box.frames.append(("exact", encode(sized(event, API_GATEWAY_FRAME_BYTES))))
    box.frames.append(("small", encode(event)))
    notifier.flush(box)
    assert [(c, len(d)) for c, d in pusher.posted] == [("exact", API_GATEWAY_FRAME_BYTES), ("small", len(encode(event)))]
    assert "not sent: 1 frame(s)" in caplog.text


def test_recipients_with_the_longest_names_page_with_cursors_the_frame_accepts(world: World) -> None:
    long_name = "\U0001f600" * 192 + '"\\' * 28  # 248 characters (+ the id: 256), quotes and backslashes escaped in JSON
    sups = tuple(f"sup-{i}" for i in range(3))
    peers = tuple(f"agent-{i}" for i in range(2, 6))
    world.team(supervisors=sups, agents=("agent-1", *peers))
    for uid, role in [(s, "supervisor") for s in sups] + [(a, "agent") for a in peers]:
        world.admin("PUT", f"/admin/users/{uid}", {"name": long_name + uid, "role": role})
        world.connect(uid, role)
    agent = world.connect("agent-1", "agent")
    seen: list[str] = []
    cursor = None
    while True:
        data = agent.ok("assist.recipients", limit=1, **({"cursor": cursor} if cursor else {}))
        seen += [p["userId"] for p in data["supervisors"] + data["agents"]]
        cursor = data["nextCursor"]
        if cursor is None:
            break
    assert sorted(seen) == sorted(sups + peers)


def test_every_action_with_the_largest_inputs_posts_nothing_over_128_kb(world: World) -> None:
    """The world's pusher refuses any post over 128 KB; here every action and its pushes run with the
    largest inputs the schemas accept (texts of 4-byte characters, long names and subjects, long ids)."""
    big_text = "\U0001f600" * 7000  # 28,000 bytes: the largest that still fits one 32 KB client frame
    rid = "r" * 128
    world.team(supervisors=("sup-1", "sup-2"), agents=("agent-1", "agent-2"))
    world.admin("PUT", "/admin/templates/tp-1", {"text": big_text, "enabled": True})
    assign_many(world, 30)
    wid = "wi-000"
    agent = world.connect("agent-1", "agent")
    sups = [world.connect("sup-1", "supervisor"), world.connect("sup-2", "supervisor")]
    customer = world.connect(f"c-{wid}", "customer", wid=wid)

    def ok(client: Client, action: str, **fields: Any) -> dict[str, Any]:
        reply = client.send_raw(json.dumps({"action": action, "requestId": rid, **fields}, ensure_ascii=False))
        assert reply["type"] == "ack", reply
        return reply["data"]

    for sup in sups:
        ok(sup, "agent.watch", agentId="agent-1")
        ok(sup, "monitor.start", workitemId=wid)
    for _ in range(12):
        ok(customer, "message.send", workitemId=wid, text=big_text)
        ok(agent, "message.send", workitemId=wid, text=big_text)
        tip = ok(sups[0], "coach.send", workitemId=wid, text=big_text)["entry"]["messageId"]
    ok(agent, "coach.react", workitemId=wid, messageId=tip, reaction="thumbs_up")
    ok(agent, "coach.forward", workitemId=wid, messageId=tip)
    for sup in sups:
        assert ok(sup, "monitor.start", workitemId=wid)["entries"]
        page = ok(sup, "timeline.get", workitemId=wid, after=0, limit=200)
        assert page["entries"] and page["hasMore"]
        ok(sup, "workitems.list", agentId="agent-1", limit=500)
        ok(sup, "agents.list", limit=500)
    ok(customer, "timeline.get", workitemId=wid, after=0, limit=200)
    ok(agent, "assist.request", templateId="tp-1", to="supervisors", workitemId=wid)
    ok(agent, "directory.send", toUserId="sup-1", text=big_text)
    ok(agent, "assist.recipients", limit=500)
    ok(agent, "workitem.transfer", workitemId=wid, toAgentId="agent-2")
    assert world.pusher.posts > 100  # every post above went through the 128 KB check
