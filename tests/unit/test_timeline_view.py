"""The customer's view of a timeline (docs/product.md S8, W4.6): silent monitoring, own numbering."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chalicelib.domain import coaching as rules
from chalicelib.domain.coaching import Channel, EndedBy, Reaction, Workitem
from chalicelib.domain.errors import DomainError
from chalicelib.domain.identity import Principal, Role
from chalicelib.domain.timeline import CUSTOMER_VISIBLE, EntryKind, TimelineEntry
from chalicelib.entrypoints.wire import customer_entry, view

pytestmark = pytest.mark.unit

NOW = "2026-01-01T10:00:00.000Z"
AGENT = Principal("t1", "agent-1", Role.AGENT)
SUP1 = Principal("t1", "sup-1", Role.SUPERVISOR)
SUP2 = Principal("t1", "sup-2", Role.SUPERVISOR)
CUSTOMER = Principal("t1", "cust-1", Role.CUSTOMER, workitem_id="wi-1")
SUPERVISOR_IDS = ("sup-1", "sup-2")
COACHING_KINDS: set[EntryKind] = set(EntryKind) - CUSTOMER_VISIBLE
CUSTOMER_KEYS = {"workitemId", "seq", "kind", "at", "authorId", "authorRole", "messageId", "text"}


def _workitem(channel: Channel = Channel.CHAT) -> Workitem:
    return Workitem(
        tenant_id="t1",
        workitem_id="wi-1",
        channel=channel,
        agent_id="agent-1",
        customer_id="cust-1",
        customer_name="Casey",
        created_at=NOW,
    )


def _full_story() -> list[TimelineEntry]:
    """Every kind of entry, interleaved with the conversation."""
    w = _workitem()
    entries: list[TimelineEntry] = []

    def commit(change: rules.Change) -> None:
        nonlocal w
        w = change.after
        entries.extend(change.entries)

    commit(rules.send_message(CUSTOMER, w, "my order is late", "m1", NOW))
    commit(rules.start_monitoring(SUP1, w, True, NOW))
    commit(rules.start_monitoring(SUP2, w, True, NOW))
    commit(rules.send_coach_message(SUP1, w, "offer 10% off", "m2", NOW, supervises_agent=True))
    commit(rules.send_coach_message(AGENT, w, "ok", "m3", NOW))
    coach = next(e for e in entries if e.message_id == "m2")
    commit(rules.react(AGENT, w, coach, Reaction.THUMBS_UP, NOW))
    commit(rules.forward(AGENT, w, coach, "m4", NOW))
    commit(rules.record(w, EntryKind.VOICE_MODE, "sup-1", Role.SUPERVISOR, NOW, mode="whisper", supervisorId="sup-1"))
    commit(rules.record(w, EntryKind.ASSIST_REQUESTED, "agent-1", Role.AGENT, NOW, assistId="as-1", to=["sup-2"]))
    commit(rules.record(w, EntryKind.ASSIST_CLAIMED, "sup-2", Role.SUPERVISOR, NOW, assistId="as-1"))
    commit(rules.send_message(AGENT, w, "sorry about that", "m5", NOW))
    commit(rules.record_text(w, EntryKind.TRANSCRIPT, "agent-1", Role.AGENT, "sorry", NOW, {"speaker": "agent"}))
    commit(rules.stop_monitoring(SUP2, w, NOW))
    commit(rules.end_coaching(AGENT, w, NOW))
    commit(rules.send_message(CUSTOMER, w, "thanks", "m6", NOW))
    commit(rules.end_workitem(w, EndedBy.CUSTOMER, "cust-1", Role.CUSTOMER, NOW))
    return entries


def customer_view(entries: list[TimelineEntry]) -> list[dict[str, Any]]:
    return [v for v in (view(e, Role.CUSTOMER) for e in entries) if v is not None]


def assert_reveals_no_coaching(wire: list[dict[str, Any]]) -> None:
    assert [x["seq"] for x in wire] == list(range(1, len(wire) + 1))
    for x in wire:
        assert x["kind"] in {"customer_message", "agent_message"}
        assert set(x) <= CUSTOMER_KEYS, set(x) - CUSTOMER_KEYS
        assert x["authorRole"] in {"customer", "agent"}
    dumped = json.dumps(wire)
    for needle in (*SUPERVISOR_IDS, "forwardedFrom", "supervisor", "coach", "reaction", "thumbs"):
        assert needle not in dumped, needle


def test_every_kind_is_in_the_story() -> None:
    assert {e.kind for e in _full_story()} == set(EntryKind)


def test_customer_sees_only_the_conversation_with_own_numbering() -> None:
    entries = _full_story()
    wire = customer_view(entries)
    assert [(x["seq"], x["kind"], x["text"]) for x in wire] == [
        (1, "customer_message", "my order is late"),
        (2, "agent_message", "offer 10% off"),  # the forward, verbatim, as the agent's own message
        (3, "agent_message", "sorry about that"),
        (4, "customer_message", "thanks"),
    ]
    assert_reveals_no_coaching(wire)
    # The staff numbering of the same messages has gaps where coaching happened.
    assert [e.seq for e in entries if e.kind in CUSTOMER_VISIBLE] != [1, 2, 3, 4]


def test_a_forward_looks_like_any_agent_message_to_the_customer() -> None:
    forwarded = next(e for e in _full_story() if e.forwarded_from)
    staff = view(forwarded, Role.AGENT)
    customer = view(forwarded, Role.CUSTOMER)
    assert staff is not None and staff["forwardedFrom"] == "m2"
    assert customer == {
        "workitemId": "wi-1",
        "seq": 2,
        "kind": "agent_message",
        "at": NOW,
        "authorId": "agent-1",
        "authorRole": "agent",
        "messageId": "m4",
        "text": "offer 10% off",
    }


@pytest.mark.parametrize("kind", sorted(COACHING_KINDS))
def test_coaching_kinds_are_never_shown_to_customers(kind: EntryKind) -> None:
    entry = TimelineEntry(
        "wi-1",
        7,
        kind,
        NOW,
        "sup-1",
        Role.SUPERVISOR,
        message_id="m",
        text="secret",
        reaction="thumbs_up" if kind is EntryKind.REACTION else None,
        extra={"supervisorId": "sup-1"},
    )
    assert view(entry, Role.CUSTOMER) is None
    with pytest.raises(ValueError):
        customer_entry(entry)
    assert not entry.customer_visible


def test_extra_fields_never_reach_the_customer() -> None:
    entry = TimelineEntry(
        "wi-1",
        9,
        EntryKind.AGENT_MESSAGE,
        NOW,
        "agent-1",
        Role.AGENT,
        customer_seq=3,
        message_id="m9",
        text="hi",
        forwarded_from="m2",
        extra={"supervisorId": "sup-1"},
    )
    wire = customer_entry(entry)
    assert wire["seq"] == 3 and set(wire) == CUSTOMER_KEYS
    assert "sup-1" not in json.dumps(wire) and "m2" not in json.dumps(wire)


def test_a_visible_kind_without_its_customer_number_is_not_shown_with_the_staff_number() -> None:
    entry = TimelineEntry("wi-1", 5, EntryKind.CUSTOMER_MESSAGE, NOW, "cust-1", Role.CUSTOMER, message_id="m", text="x")
    with pytest.raises(ValueError):
        view(entry, Role.CUSTOMER)


@pytest.mark.parametrize("role", [Role.AGENT, Role.SUPERVISOR, Role.ADMIN])
def test_staff_see_everything_with_the_full_numbering(role: Role) -> None:
    entries = _full_story()
    wire = [view(e, role) for e in entries]
    assert all(x is not None for x in wire)
    assert [x["seq"] for x in wire if x] == list(range(1, len(entries) + 1))
    kinds = [x["kind"] for x in wire if x]
    assert set(kinds) == {k.value for k in EntryKind}
    coach = next(x for x in wire if x and x["kind"] == "coach_message" and x["authorRole"] == "supervisor")
    assert coach["authorId"] == "sup-1"
    reaction = next(x for x in wire if x and x["kind"] == "reaction")
    assert reaction["messageId"] == "m2" and reaction["reaction"] == "thumbs_up"


# --- property: whatever happened, the customer view is the conversation alone ------------------------

_op = st.sampled_from(["customer", "agent", "coach-sup", "coach-agent", "join", "leave", "react", "forward", "voice"])


@settings(max_examples=200, deadline=None)
@given(ops=st.lists(_op, max_size=30), channel=st.sampled_from([Channel.CHAT, Channel.SMS, Channel.SOCIAL]))
def test_property_customer_view_reveals_no_coaching(ops: list[str], channel: Channel) -> None:
    w = _workitem(channel)
    entries: list[TimelineEntry] = []
    sent: list[str] = []
    for i, op in enumerate(ops):
        mid = f"m{i}"
        try:
            if op == "customer":
                change = rules.send_message(CUSTOMER, w, f"c{i}", mid, NOW)
            elif op == "agent":
                change = rules.send_message(AGENT, w, f"a{i}", mid, NOW)
            elif op == "coach-sup":
                change = rules.send_coach_message(SUP1, w, f"s{i}", mid, NOW, supervises_agent=True)
            elif op == "coach-agent":
                change = rules.send_coach_message(AGENT, w, f"x{i}", mid, NOW)
            elif op == "join":
                change = rules.start_monitoring(SUP1, w, True, NOW)
            elif op == "leave":
                change = rules.stop_monitoring(SUP1, w, NOW)
            elif op in ("react", "forward"):
                source = next(
                    e for e in reversed(entries) if e.kind is EntryKind.COACH_MESSAGE and e.author_role is Role.SUPERVISOR
                )
                change = (
                    rules.react(AGENT, w, source, Reaction.THUMBS_DOWN, NOW)
                    if op == "react"
                    else rules.forward(AGENT, w, source, mid, NOW)
                )
            else:
                change = rules.record(w, EntryKind.VOICE_MODE, "sup-1", Role.SUPERVISOR, NOW, mode="barge")
        except (DomainError, StopIteration):
            continue
        w = change.after
        entries.extend(change.entries)
        sent.extend(e.text or "" for e in change.entries if e.kind in CUSTOMER_VISIBLE)
    wire = customer_view(entries)
    assert_reveals_no_coaching(wire)
    assert [x["text"] for x in wire] == sent
    # Paging by the customer's numbering (after=n) yields exactly the rest, in order.
    for after in range(len(wire) + 1):
        assert [x["seq"] for x in wire if x["seq"] > after] == list(range(after + 1, len(wire) + 1))
