"""The fan-out note and the consumer that pushes committed changes in order (no store, no AWS)."""

from __future__ import annotations

import threading
import time
from dataclasses import replace
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chalicelib.domain.coaching import Change, Channel, EndReason, Workitem
from chalicelib.domain.identity import Role
from chalicelib.domain.timeline import EntryKind, TimelineEntry
from chalicelib.services.fanout import Committed, FanoutService, Note, decode_note, encode_note
from chalicelib.services.ports import Recipient

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


class FakePublisher:
    """Records pushes and lookups; ``slow`` workitems take a while per change, ``broken`` versions fail."""

    def __init__(self, slow: float = 0.0, broken: frozenset[int] = frozenset()) -> None:
        self.pushed: list[tuple[str, int, str | None]] = []
        self.lookups: list[tuple[str, list[str]]] = []
        self.lock = threading.Lock()
        self.slow = slow
        self.broken = broken
        self.concurrent = 0
        self.max_concurrent = 0

    def recipients(self, change: Change) -> list[str]:
        return [f"U#{change.after.agent_id}", *[f"U#{m}" for m in change.after.monitors]]

    def recipients_of(self, tenant_id: str, keys: list[str]) -> dict[str, Recipient]:
        with self.lock:
            self.lookups.append((tenant_id, keys))
        return {k: Recipient(key=k, tenant_id=tenant_id, user_id=k[2:]) for k in keys}

    def fan_out(self, change: Change, exclude: str | None = None, recipients: dict[str, Recipient] | None = None) -> None:
        assert recipients is not None and set(self.recipients(change)) <= set(recipients)
        with self.lock:
            self.concurrent += 1
            self.max_concurrent = max(self.max_concurrent, self.concurrent)
        try:
            time.sleep(self.slow)
            if change.after.version in self.broken:
                raise RuntimeError("post failed")
            with self.lock:
                self.pushed.append((change.after.workitem_id, change.after.version, exclude))
        finally:
            with self.lock:
                self.concurrent -= 1


def _committed(wid: str, version: int, monitors: dict[str, str] | None = None, exclude: str | None = None) -> Committed:
    before = _workitem(wid, version - 1)
    after = replace(_workitem(wid, version), monitors=monitors or {})
    return Committed(before, after, Note([_entry(version, workitem_id=wid)], exclude, [], None))


def test_one_workitems_changes_are_pushed_oldest_first_with_one_lookup() -> None:
    publisher = FakePublisher()
    # Handed over out of order (a retried batch can do that): pushed by version all the same.
    batch = [
        _committed("wi-1", 3),
        _committed("wi-1", 1, exclude="c1="),
        _committed("wi-1", 2, monitors={"sup-9": "2026-11-22T08:00:00.000Z"}),
    ]

    assert FanoutService(publisher).deliver(batch) == 3

    assert publisher.pushed == [("wi-1", 1, "c1="), ("wi-1", 2, None), ("wi-1", 3, None)]
    # Everybody any of the three concerns, looked up once (sup-9 joined in version 2).
    assert publisher.lookups == [("t1", ["U#agent-1", "U#sup-9"])]


def test_different_workitems_are_pushed_side_by_side_each_in_order() -> None:
    publisher = FakePublisher(slow=0.05)
    batch = [_committed(f"wi-{w}", v) for v in range(1, 4) for w in range(4)]

    started = time.perf_counter()
    assert FanoutService(publisher, max_parallel=4).deliver(batch) == 12
    elapsed = time.perf_counter() - started

    assert publisher.max_concurrent == 4
    assert elapsed < 12 * 0.05  # not one after another
    for w in range(4):
        assert [v for wid, v, _ in publisher.pushed if wid == f"wi-{w}"] == [1, 2, 3]
    assert len(publisher.lookups) == 4


def test_a_change_that_cannot_be_pushed_does_not_hold_back_the_later_ones(caplog: pytest.LogCaptureFixture) -> None:
    publisher = FakePublisher(broken=frozenset({2}))

    assert FanoutService(publisher).deliver([_committed("wi-1", v) for v in (1, 2, 3)]) == 2

    assert [v for _, v, _ in publisher.pushed] == [1, 3]
    assert "could not push version 2 of workitem wi-1" in caplog.text


def test_nothing_to_deliver_makes_no_lookup() -> None:
    publisher = FakePublisher()
    assert FanoutService(publisher).deliver([]) == 0
    assert publisher.lookups == []
