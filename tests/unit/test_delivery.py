"""The outbox and the notifier (chalicelib/services/delivery.py): who gets which frame, what is left out
of a page, and how connections that are gone are forgotten. No store, no AWS: recording fakes."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from chalicelib.domain.identity import Role
from chalicelib.domain.timeline import EntryKind, TimelineEntry
from chalicelib.entrypoints.wire import WIRE
from chalicelib.services.delivery import Notifier, Outbox, encode
from chalicelib.services.ports import Connection, Recipient, Watcher

pytestmark = pytest.mark.unit

LIFETIME_MS = 2 * 3600 * 1000  # API Gateway closes a WebSocket connection after two hours
NOW_MS = 10 * LIFETIME_MS
AT = "2026-01-01T00:00:00.000Z"


class Pusher:
    def __init__(self, gone: set[str] | None = None) -> None:
        self.posted: list[tuple[str, dict[str, Any]]] = []
        self.gone = gone or set()

    def post_many(self, frames: list[tuple[str, bytes]]) -> list[str]:
        self.posted.extend((cid, json.loads(data)) for cid, data in frames)
        return [cid for cid, _ in frames if cid in self.gone]

    def close(self, connection_id: str) -> None:
        raise AssertionError("not closed here")


class Directory:
    def __init__(self, fail: bool = False) -> None:
        self.forgotten: list[tuple[str, str, list[Connection], list[Watcher]]] = []
        self.fail = fail

    def forget(self, tenant_id: str, key: str, connections: list[Connection], watchers: list[Watcher]) -> None:
        self.forgotten.append((tenant_id, key, list(connections), list(watchers)))
        if self.fail:
            raise RuntimeError("store down")


class Clock:
    def now(self) -> datetime:
        return datetime.fromtimestamp(NOW_MS / 1000, UTC)


def notifier(pusher: Pusher, directory: Directory) -> Notifier:
    return Notifier(pusher, directory, Clock(), WIRE)  # type: ignore[arg-type]


def live(cid: str) -> Connection:
    return Connection(cid, NOW_MS - 1000)


def test_encode_is_compact_utf8_and_escapes_only_what_utf8_cannot_carry() -> None:
    assert encode({"a": "caf\u00e9", "b": [1, 2]}) == '{"a":"caf\u00e9","b":[1,2]}'.encode()
    assert encode({"a": "\ud800"}) == b'{"a":"\\ud800"}'


def test_fitting_keeps_the_newest_or_the_oldest_entries_within_the_budget_exactly() -> None:
    entries = [{"n": i} for i in range(5)]  # each encodes to 7 bytes, 8 with its separator
    fitter = notifier(Pusher(), Directory())
    fit_entries, fit_forward = fitter.fit_entries, fitter.fit_forward
    assert fit_entries(entries, budget=40) == (entries, False)
    assert fit_entries(entries, budget=39) == (entries[1:], True)
    assert fit_entries(entries, budget=16) == (entries[3:], True)
    assert fit_entries([], budget=0) == ([], False)
    assert fit_forward(entries, budget=40) == (entries, False)
    assert fit_forward(entries, budget=39) == (entries[:4], True)
    assert fit_forward(entries, budget=8) == (entries[:1], True)
    assert fit_forward(entries, budget=7) == ([], True)


def test_a_recipient_gets_a_frame_on_each_live_connection_but_the_callers() -> None:
    box = Outbox("t1", AT, NOW_MS, exclude="mine=")
    expired = Connection("old=", NOW_MS - LIFETIME_MS)
    recipient = Recipient("t1", "U#sup-1", "sup-1", connections=[live("a="), live("mine="), expired, live("b=")])
    box.to_recipient(recipient, "presence.changed", {"k": 1})
    box.to_recipient(None, "presence.changed", {"k": 2})  # nobody to tell
    assert [cid for cid, _ in box.frames] == ["a=", "b="]
    assert json.loads(box.frames[0][1]) == {"type": "event", "event": "presence.changed", "data": {"k": 1}, "at": AT}
    assert box.owners["a="] == [("U#sup-1", recipient.connections[0], None)]


def test_watchers_get_one_frame_per_live_connection() -> None:
    box = Outbox("t1", AT, NOW_MS, exclude="mine=")
    watchers = [
        Watcher(live("w1="), "sup-1"),
        Watcher(live("w1="), "sup-1"),  # the same connection watching twice
        Watcher(live("mine="), "sup-2"),
        Watcher(Connection("old=", NOW_MS - LIFETIME_MS), "sup-3"),
        Watcher(live("w2="), "sup-4"),
    ]
    agent = Recipient("t1", "U#agent-1", "agent-1", watchers=watchers)
    box.to_watchers(agent, "workitem.updated", {"w": 1})
    box.to_watchers(None, "workitem.updated", {"w": 2})
    assert [cid for cid, _ in box.frames] == ["w1=", "w2="]
    assert box.owners["w1="] == [("U#agent-1", None, watchers[0])]


def test_an_entry_goes_out_in_the_view_of_the_role_it_is_sent_to() -> None:
    coach = TimelineEntry("wi-1", 4, EntryKind.COACH_MESSAGE, AT, "sup-1", Role.SUPERVISOR, message_id="m", text="psst")
    said = TimelineEntry("wi-1", 5, EntryKind.AGENT_MESSAGE, AT, "agent-1", Role.AGENT, customer_seq=2, message_id="n", text="hi")
    box = Outbox("t1", AT, NOW_MS, wire=WIRE)
    customer = Recipient("t1", "C#wi-1", "cust-1", connections=[live("c=")])
    box.entry_to(customer, "message.received", coach, Role.CUSTOMER)  # never shown to a customer
    box.entry_to(customer, "message.received", said, Role.CUSTOMER)
    [(cid, data)] = box.frames
    frame = json.loads(data)
    assert cid == "c=" and frame["data"]["entry"]["seq"] == 2 and frame["data"]["entry"]["workitemId"] == "wi-1"


def test_connections_that_are_gone_are_forgotten_per_owner_and_a_failure_to_forget_is_only_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    box = Outbox("t1", AT, NOW_MS)
    sup = Recipient("t1", "U#sup-1", "sup-1", connections=[live("s1="), live("s2=")])
    watcher = Watcher(live("s1="), "sup-1")
    agent = Recipient("t1", "U#agent-1", "agent-1", connections=[live("a=")], watchers=[watcher])
    box.to_recipient(sup, "presence.changed", {})
    box.to_watchers(agent, "workitem.updated", {})
    box.to_recipient(agent, "presence.changed", {})
    directory = Directory()
    notifier(Pusher(gone={"s1="}), directory).flush(box)
    assert sorted(directory.forgotten, key=lambda f: f[1]) == [
        ("t1", "U#agent-1", [], [watcher]),
        ("t1", "U#sup-1", [sup.connections[0]], []),
    ]
    failing = Directory(fail=True)
    notifier(Pusher(gone={"a="}), failing).flush(box)
    assert [f[1] for f in failing.forgotten] == ["U#agent-1"]
    assert "could not forget gone connections of U#agent-1" in caplog.text
    nothing = Directory()
    notifier(Pusher(), nothing).flush(Outbox("t1", AT, NOW_MS))
    notifier(Pusher(), nothing).flush(box)
    assert nothing.forgotten == []
