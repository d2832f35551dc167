"""The fan-out note and the consumer that pushes committed changes in order (no store, no AWS)."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chalicelib.domain.coaching import Change, Channel, EndReason, Workitem
from chalicelib.domain.identity import Role
from chalicelib.domain.timeline import EntryKind, TimelineEntry
from chalicelib.entrypoints.wire import WIRE
from chalicelib.services.delivery import Notifier
from chalicelib.services.fanout import Committed, FanoutService, Note, decode_note, encode_note
from chalicelib.services.ports import Connection, Recipient

pytestmark = pytest.mark.unit


def _workitem(wid: str = "wi-1", version: int = 1, tenant: str = "t1") -> Workitem:
    return Workitem(
        tenant_id=tenant,
        workitem_id=wid,
        channel=Channel.CHAT,
        agent_id="agent-1",
        customer_id="cust-1",
        customer_name="Casey",
        created_at="2026-11-22T08:00:00.000Z",
        version=version,
        seq=version,
    )


def _entry(seq: int, **fields: Any) -> TimelineEntry:
    base: dict[str, Any] = dict(
        workitem_id="wi-1",
        seq=seq,
        kind=EntryKind.COACH_MESSAGE,
        at="2026-11-22T08:00:00.000Z",
        author_id="sup-1",
        author_role=Role.SUPERVISOR,
    )
    base.update(fields)
    return TimelineEntry(**base)


texts = st.text(max_size=200)
optional_ids = st.none() | st.from_regex(r"[A-Za-z0-9_]{1,20}", fullmatch=True)


@given(
    seq=st.integers(1, 10**9),
    customer_seq=st.none() | st.integers(1, 10**9),
    message_id=optional_ids,
    text=st.none() | texts,
    forwarded=optional_ids,
    reaction=st.none() | st.sampled_from(["thumbs_up", "thumbs_down"]),
    extra=st.dictionaries(st.sampled_from(["mode", "reason", "assistId"]), st.text(max_size=20), max_size=3),
    kind=st.sampled_from(list(EntryKind)),
    role=st.sampled_from(list(Role)),
    exclude=optional_ids,
    ended_for=st.lists(st.from_regex(r"sup-[0-9]{1,3}", fullmatch=True), max_size=3),
    reason=st.none() | st.sampled_from(list(EndReason)),
)
def test_a_note_reads_back_exactly_what_was_written(
    seq: int,
    customer_seq: int | None,
    message_id: str | None,
    text: str | None,
    forwarded: str | None,
    reaction: str | None,
    extra: dict[str, str],
    kind: EntryKind,
    role: Role,
    exclude: str | None,
    ended_for: list[str],
    reason: EndReason | None,
) -> None:
    entry = _entry(
        seq,
        kind=kind,
        author_role=role,
        customer_seq=customer_seq,
        message_id=message_id,
        text=text,
        forwarded_from=forwarded,
        reaction=reaction,
        extra=extra,
    )
    w = _workitem()
    change = Change(w, replace(w, version=2), [entry, _entry(seq + 1)], ended_for, reason)

    note = decode_note(encode_note(change, exclude), "wi-1")

    assert note == Note([entry, _entry(seq + 1)], exclude, ended_for, reason)


def test_a_note_of_an_unknown_version_is_refused() -> None:
    with pytest.raises(ValueError, match="version"):
        decode_note('{"v": 99, "e": []}', "wi-1")


NOW = datetime(2026, 11, 22, 8, 0, tzinfo=UTC)


class FixedClock:
    def now(self) -> datetime:
        return NOW


class FakeDirectory:
    """Every recipient has two live connections, ``<user>-a=`` and ``<user>-b=``; lookups are recorded."""

    def __init__(self) -> None:
        self.lookups: list[tuple[str, list[str]]] = []
        self.lock = threading.Lock()

    def recipients(self, tenant_id: str, keys: list[str], consistent: bool = False) -> dict[str, Recipient]:
        with self.lock:
            self.lookups.append((tenant_id, list(keys)))
        at = int(NOW.timestamp() * 1000)
        return {
            k: Recipient(tenant_id, k, k[2:], connections=[Connection(f"{k[2:]}-a=", at), Connection(f"{k[2:]}-b=", at)])
            for k in keys
        }

    def forget(self, *args: Any) -> None:
        raise AssertionError("no connection is gone in these tests")


class FakePusher:
    """Records (connection, event, workitem, seq) per post; ``slow`` seconds per batch, ``broken`` entry seqs fail."""

    def __init__(self, slow: float = 0.0, broken: frozenset[int] = frozenset()) -> None:
        self.posted: list[tuple[str, str, str, int]] = []
        self.lock = threading.Lock()
        self.slow = slow
        self.broken = broken
        self.concurrent = 0
        self.max_concurrent = 0

    def post_many(self, frames: list[tuple[str, bytes]]) -> list[str]:
        decoded = [(cid, json.loads(data)) for cid, data in frames]
        if any(f["data"]["entry"]["seq"] in self.broken for _, f in decoded):
            raise RuntimeError("post failed")
        with self.lock:
            self.concurrent += 1
            self.max_concurrent = max(self.max_concurrent, self.concurrent)
        try:
            time.sleep(self.slow)
            with self.lock:
                self.posted.extend(
                    (cid, f["event"], f["data"]["entry"]["workitemId"], f["data"]["entry"]["seq"]) for cid, f in decoded
                )
        finally:
            with self.lock:
                self.concurrent -= 1
        return []

    def close(self, connection_id: str) -> None:
        raise AssertionError("nothing is closed by the fan-out")

    def seqs(self, connection_id: str, workitem_id: str = "wi-1") -> list[int]:
        return [seq for cid, _, wid, seq in self.posted if cid == connection_id and wid == workitem_id]


def _fanout(pusher: FakePusher | FramePusher, directory: FakeDirectory, max_parallel: int = 8) -> FanoutService:
    return FanoutService(directory, Notifier(pusher, directory, FixedClock(), WIRE), FixedClock(), max_parallel=max_parallel)  # type: ignore[arg-type]


def _committed(wid: str, version: int, monitors: dict[str, str] | None = None, exclude: str | None = None) -> Committed:
    before = _workitem(wid, version - 1)
    after = replace(_workitem(wid, version), monitors=monitors or {})
    return Committed(before, after, Note([_entry(version, workitem_id=wid)], exclude, [], None))


def test_one_workitems_changes_are_pushed_oldest_first_with_one_lookup() -> None:
    pusher, directory = FakePusher(), FakeDirectory()
    # Handed over out of order (a retried batch can do that): pushed by version all the same.
    batch = [
        _committed("wi-1", 3),
        _committed("wi-1", 1, exclude="agent-1-a="),
        _committed("wi-1", 2, monitors={"sup-9": "2026-11-22T08:00:00.000Z"}),
    ]

    assert _fanout(pusher, directory).deliver(batch) == 3

    assert pusher.seqs("agent-1-b=") == [1, 2, 3]
    assert pusher.seqs("agent-1-a=") == [2, 3]  # version 1's caller got the ack instead
    assert pusher.seqs("sup-9-a=") == [2]  # a monitor in version 2 only
    assert {event for _, event, _, _ in pusher.posted} == {"coach.message"}
    # Everybody any of the three concerns, looked up once (sup-9 joined in version 2).
    assert directory.lookups == [("t1", ["U#agent-1", "U#sup-9"])]


def test_different_workitems_are_pushed_side_by_side_each_in_order() -> None:
    pusher, directory = FakePusher(slow=0.05), FakeDirectory()
    batch = [_committed(f"wi-{w}", v) for v in range(1, 4) for w in range(4)]

    assert _fanout(pusher, directory, max_parallel=4).deliver(batch) == 12

    # Side by side, not one after another: four batches of posts were in flight at once (the pusher
    # holds each 50 ms). How fast that is on a quiet machine is `make bench`'s business, not a bound here.
    assert pusher.max_concurrent == 4
    for w in range(4):
        assert pusher.seqs("agent-1-a=", f"wi-{w}") == [1, 2, 3]
    assert len(directory.lookups) == 4


def test_a_change_that_cannot_be_pushed_does_not_hold_back_the_later_ones(caplog: pytest.LogCaptureFixture) -> None:
    pusher, directory = FakePusher(broken=frozenset({2})), FakeDirectory()

    assert _fanout(pusher, directory).deliver([_committed("wi-1", v) for v in (1, 2, 3)]) == 2

    assert pusher.seqs("agent-1-a=") == [1, 3]
    assert "could not push version 2 of workitem wi-1" in caplog.text


def test_nothing_to_deliver_makes_no_lookup() -> None:
    pusher, directory = FakePusher(), FakeDirectory()
    assert _fanout(pusher, directory).deliver([]) == 0
    assert directory.lookups == [] and pusher.posted == []


class FramePusher:
    """Keeps every frame posted, whole."""

    def __init__(self) -> None:
        self.frames: list[tuple[str, dict[str, Any]]] = []

    def post_many(self, frames: list[tuple[str, bytes]]) -> list[str]:
        self.frames.extend((cid, json.loads(data)) for cid, data in frames)
        return []

    def close(self, connection_id: str) -> None:
        raise AssertionError("nothing is closed by the fan-out")

    def to(self, connection_id: str) -> list[dict[str, Any]]:
        return [frame for cid, frame in self.frames if cid == connection_id]


COACHING_SECRET = "Offer the refund, quietly"


def test_a_batch_mixing_customer_agent_and_coach_entries_tells_the_customer_only_the_conversation() -> None:
    """S8 in a stream batch: the customer is among the recipients looked up for the whole batch (the
    conversation's changes concern them), so nothing but the conversation's own entries may reach them."""
    pusher, directory = FramePusher(), FakeDirectory()
    monitors = {"sup-1": "2026-11-22T08:00:00.000Z"}

    def change(version: int, kind: EntryKind, author: str, role: Role, **fields: Any) -> Committed:
        before = replace(_workitem(version=version - 1), monitors=monitors)
        after = replace(_workitem(version=version), monitors=monitors)
        entry = _entry(version, kind=kind, author_id=author, author_role=role, **fields)
        return Committed(before, after, Note([entry], None, [], None))

    batch = [
        change(1, EntryKind.SUPERVISOR_JOINED, "sup-1", Role.SUPERVISOR),
        change(2, EntryKind.CUSTOMER_MESSAGE, "cust-1", Role.CUSTOMER, customer_seq=1, message_id="m-1", text="Where is it?"),
        change(3, EntryKind.COACH_MESSAGE, "sup-1", Role.SUPERVISOR, message_id="m-2", text=COACHING_SECRET),
        change(4, EntryKind.AGENT_MESSAGE, "agent-1", Role.AGENT, customer_seq=2, message_id="m-3", text="On its way"),
        change(5, EntryKind.REACTION, "agent-1", Role.AGENT, message_id="m-2", reaction="thumbs_up"),
        change(
            6,
            EntryKind.AGENT_MESSAGE,
            "agent-1",
            Role.AGENT,
            customer_seq=3,
            message_id="m-4",
            text=COACHING_SECRET + "!",
            forwarded_from="m-2",
        ),
        change(7, EntryKind.SUPERVISOR_LEFT, "sup-1", Role.SUPERVISOR),
    ]

    assert _fanout(pusher, directory).deliver(batch) == 7

    # One lookup for the batch, and the customer (keyed by workitem) is in it.
    assert directory.lookups == [("t1", ["U#agent-1", "U#sup-1", "C#wi-1"])]
    # The customer's connections get exactly the agent's two messages, in the customer's numbering.
    for connection in ("wi-1-a=", "wi-1-b="):
        frames = pusher.to(connection)
        assert [(f["event"], f["data"]["entry"]["seq"], f["data"]["entry"]["text"]) for f in frames] == [
            ("message.received", 2, "On its way"),
            ("message.received", 3, COACHING_SECRET + "!"),
        ]
        raw = json.dumps(frames)
        for never in ("sup-1", "coach", "supervisor", "thumbs_up", "m-2", '"seq": 4', '"seq": 6'):
            assert never not in raw, (never, frames)
    joined = pusher.to("agent-1-a=")[0]["data"]
    assert (joined["workitemId"], joined["supervisorId"], joined["entry"]["seq"]) == ("wi-1", "sup-1", 1)
    # The staff got theirs from the same batch: the agent every coaching entry, the monitor the conversation.
    assert [f["event"] for f in pusher.to("agent-1-a=")] == [
        "coaching.joined",
        "message.received",
        "coach.message",
        "coaching.left",
    ]
    assert [f["event"] for f in pusher.to("sup-1-a=")] == [
        "coaching.joined",
        "message.received",
        "coach.message",
        "message.received",
        "coach.reaction",
        "coach.forwarded",
        "coaching.left",
    ]


def test_who_a_change_concerns() -> None:
    from chalicelib.domain.coaching import Status
    from chalicelib.services.fanout import concerned

    w = replace(_workitem(version=2), monitors={"sup-2": "t"})
    before = replace(_workitem(version=1), agent_id="agent-0", monitors={"sup-1": "t", "sup-2": "t"})
    said = _entry(3, kind=EntryKind.AGENT_MESSAGE, customer_seq=1, author_id="agent-1", author_role=Role.AGENT)
    # Old and new agent, old and new monitors, once each; the customer of a chat when they can see an entry.
    assert concerned(Change(before, w, [said])) == ["U#agent-1", "U#agent-0", "U#sup-1", "U#sup-2", "C#wi-1"]
    assert concerned(Change(before, w, [_entry(3)])) == ["U#agent-1", "U#agent-0", "U#sup-1", "U#sup-2"]
    sms = replace(w, channel=Channel.SMS)
    assert "C#wi-1" not in concerned(Change(replace(before, channel=Channel.SMS), sms, [said]))  # SMS customers have no socket
    new = _workitem(version=0)
    assert concerned(Change(new, new)) == []  # a new workitem: its agent was told by the handler
    assert concerned(Change(new, new, [said])) == ["U#agent-1", "C#wi-1"]
    ended = replace(w, status=Status.ENDED)
    assert concerned(Change(w, ended)) == ["U#agent-1", "U#sup-2"]


class WatchedDirectory(FakeDirectory):
    """Every recipient is watched on one connection, ``watch-<user>=``."""

    def recipients(self, tenant_id: str, keys: list[str], consistent: bool = False) -> dict[str, Recipient]:
        from chalicelib.services.ports import Watcher

        found = super().recipients(tenant_id, keys, consistent)
        at = int(NOW.timestamp() * 1000)
        for key, r in found.items():
            r.watchers = [Watcher(Connection(f"watch-{key[2:]}=", at), "sup-w")]
        return found


def _dashboard(change: Change) -> list[tuple[str, str, str]]:
    pusher, directory = FramePusher(), WatchedDirectory()
    fanout = FanoutService(directory, Notifier(pusher, directory, FixedClock(), WIRE), FixedClock())  # type: ignore[arg-type]
    fanout.push(change)
    return [(cid, f["event"], f["data"]["workitem"]["agentId"]) for cid, f in pusher.frames if "workitem" in f["data"]]


def test_dashboards_learn_of_transfers_ends_and_coaching_changes() -> None:
    from chalicelib.domain.coaching import Status

    before = _workitem(version=1)
    moved = replace(_workitem(version=2), agent_id="agent-2")
    assert _dashboard(Change(before, moved)) == [
        ("watch-agent-1=", "workitem.updated", "agent-2"),
        ("agent-2-a=", "workitem.assigned", "agent-2"),
        ("agent-2-b=", "workitem.assigned", "agent-2"),
        ("watch-agent-2=", "workitem.assigned", "agent-2"),
    ]
    ended = replace(_workitem(version=2), status=Status.ENDED)
    assert _dashboard(Change(before, ended)) == [("watch-agent-1=", "workitem.ended", "agent-1")]
    monitored = replace(_workitem(version=2), monitors={"sup-1": "t"})
    assert _dashboard(Change(before, monitored)) == [("watch-agent-1=", "workitem.updated", "agent-1")]
    assert _dashboard(Change(before, _workitem(version=2))) == []  # nothing a dashboard shows changed


def test_a_store_that_does_not_answer_the_lookup_costs_the_pushes_not_the_batch(caplog: pytest.LogCaptureFixture) -> None:
    class Down(FakeDirectory):
        def recipients(self, tenant_id: str, keys: list[str], consistent: bool = False) -> dict[str, Recipient]:
            raise TimeoutError("no answer")

    pusher = FramePusher()
    down = Down()
    assert FanoutService(down, Notifier(pusher, down, FixedClock(), WIRE), FixedClock()).deliver([_committed("wi-1", 1)]) == 1  # type: ignore[arg-type]
    assert pusher.frames == []
    assert "could not look up who to tell in tenant t1 (TimeoutError)" in caplog.text
