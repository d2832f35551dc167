"""Pure voice rules: Chime ids and tokens, the persisted voice state, permissions and teardown."""

from __future__ import annotations

import re
from typing import Any

import pytest

from chalicelib.domain.coaching import Channel, Status, Workitem
from chalicelib.domain.errors import Conflict, Forbidden, Invalid
from chalicelib.domain.identity import Principal, Role
from chalicelib.domain.timeline import EntryKind
from chalicelib.domain.voice import (
    Attendee,
    Audio,
    Cleanup,
    Meeting,
    Room,
    RoomKind,
    RoomState,
    SupervisorVoice,
    VoiceMode,
    VoiceState,
    caller_external_id,
    check_agent_action,
    check_caller_join,
    check_supervisor_action,
    client_request_token,
    drop_supervisor,
    external_id,
    leave_coach,
    meeting_external_id,
    meeting_token,
    reconcile,
    staff_external_id,
    voice_change,
)
from chalicelib.entrypoints import wire

pytestmark = pytest.mark.unit

TOKEN = re.compile(r"[-_a-zA-Z0-9]{2,64}")
NOW = "2025-01-01T00:00:00.000Z"


def workitem(**overrides: Any) -> Workitem:
    base: dict[str, Any] = dict(
        tenant_id="t1",
        workitem_id="wi-v",
        channel=Channel.VOICE,
        agent_id="agent-1",
        customer_id="c1",
        customer_name="C",
        created_at=NOW,
    )
    base.update(overrides)
    return Workitem(**base)


def valid_external_id(value: str) -> bool:
    return 2 <= len(value) <= 64 and value[:4].lower() != "aws:"


# ------------------------------------------------------------------------------------- ids and tokens


def test_external_id_joins_parts() -> None:
    assert external_id("t1", "wi-1", "contact") == "t1:wi-1:contact"


@pytest.mark.parametrize("parts", [("aws", "wi-1"), ("AWS", "x"), ("aws:x",), ("Aws", "u")])
def test_external_id_never_starts_with_the_reserved_prefix(parts: tuple[str, ...]) -> None:
    value = external_id(*parts)
    assert valid_external_id(value)
    assert value == "~" + ":".join(parts)


def test_external_id_hashes_the_tail_of_long_ids_and_stays_distinct() -> None:
    long_a = external_id("t" * 40, "w" * 40, "contact")
    long_b = external_id("t" * 40, "w" * 40, "coach")
    assert len(long_a) == 64 and long_a != long_b
    assert long_a.startswith("t" * 40 + ":")
    assert valid_external_id(external_id("aws" + "x" * 80))


def test_external_id_is_at_least_two_characters() -> None:
    assert external_id("a") == "a~"
    assert valid_external_id(external_id(""))


@pytest.mark.parametrize("parts", [("t1", "wi:1", "contact", "0"), ("a.b@c+d", "x" * 200), ("é", "|", " ")])
def test_client_request_tokens_match_the_chime_alphabet(parts: tuple[str, ...]) -> None:
    assert TOKEN.fullmatch(client_request_token(*parts))


def test_client_request_token_is_deterministic_and_part_sensitive() -> None:
    assert client_request_token("a", "b") == client_request_token("a", "b")
    assert client_request_token("a", "b") != client_request_token("ab")
    assert client_request_token("a:b", "c") != client_request_token("a", "b:c")
    with pytest.raises(ValueError, match="at least one"):
        client_request_token()


def test_meeting_tokens_differ_by_room_generation_and_workitem() -> None:
    tokens = {
        meeting_token("t1", "wi-1", RoomKind.CONTACT, 0),
        meeting_token("t1", "wi-1", RoomKind.CONTACT, 1),
        meeting_token("t1", "wi-1", RoomKind.COACH, 0),
        meeting_token("t1", "wi-2", RoomKind.CONTACT, 0),
        meeting_token("t2", "wi-1", RoomKind.CONTACT, 0),
    }
    assert len(tokens) == 5 and all(TOKEN.fullmatch(t) for t in tokens)
    assert meeting_token("t1", "wi-1", RoomKind.CONTACT, 0) == meeting_token("t1", "wi-1", RoomKind.CONTACT, 0)


def test_room_and_attendee_external_ids() -> None:
    assert meeting_external_id("t1", "wi-1", RoomKind.COACH) == "t1:wi-1:coach"
    assert staff_external_id("t1", "sup-1") == "t1:sup-1"
    assert caller_external_id("call-1") == "pstn:call-1"
    assert valid_external_id(meeting_external_id("aws", "w" * 100, RoomKind.CONTACT))


# ------------------------------------------------------------------------------------------- rooms


def test_room_wire_shape_with_and_without_media_placement() -> None:
    room = Room("m1", "a1", "tok", "eu-west-1", Audio.RECEIVE)
    assert wire.room(room) == {
        "meetingId": "m1",
        "attendeeId": "a1",
        "joinToken": "tok",
        "mediaRegion": "eu-west-1",
        "capabilities": {"audio": "Receive", "video": "None", "content": "None"},
    }
    placed = Room("m1", "a1", "tok", "eu-west-1", Audio.SEND, {"AudioHostUrl": "h"})
    assert wire.room(placed)["mediaPlacement"] == {"AudioHostUrl": "h"}
    assert hash(placed) == hash(Room("m1", "a1", "tok", "eu-west-1", Audio.SEND, {"AudioHostUrl": "h"}))


def test_room_state_from_meeting_and_room() -> None:
    meeting = Meeting("m1", "us-east-1", "arn:m1", {"AudioHostUrl": "h", "SignalingUrl": "s"})
    state = RoomState.from_meeting(meeting)
    assert state.meeting() == meeting
    room = state.room(Attendee("a1", "tok", Audio.SEND_RECEIVE), Audio.SEND_RECEIVE)
    assert wire.room(room)["mediaPlacement"] == {"AudioHostUrl": "h", "SignalingUrl": "s"}
    assert "mediaPlacement" not in wire.room(RoomState("m2", "us-east-1").room(Attendee("a", "t", Audio.SEND), Audio.SEND))


def full_state() -> VoiceState:
    return VoiceState(
        contact=RoomState("mc", "us-east-1", "arn:mc", {"AudioHostUrl": "h"}, "agent-1", "a-agent"),
        contact_generation=2,
        callers={"call-1": "a-caller"},
        coach=RoomState("mk", "us-east-1", "arn:mk", agent_id="agent-1", agent_attendee_id="k-agent", pipeline_id="p1"),
        coach_generation=3,
        supervisors={
            "sup-1": SupervisorVoice(VoiceMode.WHISPER, "c-sup1", "k-sup1"),
            "sup-2": SupervisorVoice(VoiceMode.BARGE, "c-sup2"),
        },
    )


def test_voice_state_round_trips_through_a_json_simple_map() -> None:
    state = full_state()
    raw = state.dump()
    assert VoiceState.load(raw) == state
    assert raw["supervisors"]["sup-2"] == {"mode": "barge", "contactAttendeeId": "c-sup2"}  # empties left out

    def simple(value: Any) -> bool:
        if isinstance(value, dict):
            return all(isinstance(k, str) and simple(v) for k, v in value.items()) and value != {}
        return isinstance(value, (str, int)) and not isinstance(value, bool) and value != ""

    assert simple(raw)


def test_empty_state_dumps_to_an_empty_map_and_loads_garbage_safely() -> None:
    assert VoiceState().dump() == {}
    assert VoiceState.load(None) == VoiceState()
    # Maps of strings keep their non-empty strings only.
    loaded = VoiceState.load({"callers": {"call-1": "a-1", "call-2": 7, "call-3": "", "call-4": None}})
    assert loaded.callers == {"call-1": "a-1"}
    assert VoiceState.load({"contact": "x", "supervisors": {"s": {"mode": "shout"}}, "contactGen": "7"}) == VoiceState(
        contact_generation=7, supervisors={"s": SupervisorVoice(VoiceMode.MONITOR)}
    )


def test_whisperers() -> None:
    assert full_state().whisperers() == ["sup-1"]


# -------------------------------------------------------------------------------------- permissions


def agent(user: str = "agent-1") -> Principal:
    return Principal("t1", user, Role.AGENT)


def supervisor(user: str = "sup-1") -> Principal:
    return Principal("t1", user, Role.SUPERVISOR)


def test_agent_action_checks() -> None:
    check_agent_action(agent(), workitem())
    with pytest.raises(Forbidden):
        check_agent_action(agent("agent-2"), workitem())
    with pytest.raises(Forbidden):
        check_agent_action(supervisor(), workitem())
    with pytest.raises(Forbidden):  # permission before channel
        check_agent_action(agent("agent-2"), workitem(channel=Channel.CHAT))
    with pytest.raises(Invalid):
        check_agent_action(agent(), workitem(channel=Channel.CHAT))
    with pytest.raises(Conflict):
        check_agent_action(agent(), workitem(status=Status.ENDED))


def test_supervisor_action_checks() -> None:
    monitored = workitem(monitors={"sup-1": NOW})
    check_supervisor_action(supervisor(), monitored, supervises_agent=False)  # checked at monitor.start
    with pytest.raises(Conflict, match="monitor"):
        check_supervisor_action(supervisor(), workitem(), supervises_agent=True)
    with pytest.raises(Forbidden):
        check_supervisor_action(supervisor(), workitem(), supervises_agent=False)
    with pytest.raises(Forbidden):
        check_supervisor_action(supervisor(), workitem(channel=Channel.EMAIL), supervises_agent=False)
    with pytest.raises(Forbidden):
        check_supervisor_action(agent(), monitored, supervises_agent=True)
    with pytest.raises(Forbidden):
        check_supervisor_action(Principal("t1", "admin-1", Role.ADMIN), monitored, supervises_agent=True)
    with pytest.raises(Invalid):
        check_supervisor_action(supervisor(), workitem(channel=Channel.CHAT, monitors={"sup-1": NOW}), True)
    with pytest.raises(Conflict):
        check_supervisor_action(supervisor(), workitem(status=Status.ENDED, monitors={"sup-1": NOW}), True)


def test_caller_join_checks() -> None:
    check_caller_join(workitem())
    with pytest.raises(Conflict):
        check_caller_join(workitem(channel=Channel.SMS))
    with pytest.raises(Conflict):
        check_caller_join(workitem(status=Status.ENDED))


# ------------------------------------------------------------------------------------ coach room rules


def test_leaving_the_coach_room_as_last_whisperer_closes_it_with_its_pipeline() -> None:
    state = full_state()
    cleanup = Cleanup()
    assert leave_coach(state, "sup-1", cleanup) is True
    assert state.coach is None and state.coach_generation == 4
    assert cleanup.pipelines == ["p1"] and cleanup.meetings == ["mk"]
    assert cleanup.remaining_attendees() == []  # the meeting's deletion removes them
    assert state.supervisors["sup-1"].coach_attendee_id == ""


def test_leaving_the_coach_room_while_another_whispers_keeps_it() -> None:
    state = full_state()
    state.supervisors["sup-2"].coach_attendee_id = "k-sup2"
    cleanup = Cleanup()
    assert leave_coach(state, "sup-1", cleanup) is False
    assert state.coach is not None and cleanup.remaining_attendees() == [("mk", "k-sup1")]
    assert not cleanup.meetings and not cleanup.pipelines


def test_leave_coach_without_a_coach_room_does_nothing() -> None:
    state = VoiceState(supervisors={"sup-1": SupervisorVoice(VoiceMode.MONITOR, "c1")})
    cleanup = Cleanup()
    assert leave_coach(state, "sup-1", cleanup) is False
    assert not cleanup


def test_drop_supervisor_deletes_both_attendees() -> None:
    state = full_state()
    state.supervisors["sup-2"].coach_attendee_id = "k-sup2"
    cleanup = Cleanup()
    assert drop_supervisor(state, "sup-1", cleanup) is False
    assert set(cleanup.remaining_attendees()) == {("mk", "k-sup1"), ("mc", "c-sup1")}
    assert "sup-1" not in state.supervisors


# ----------------------------------------------------------------------------------------- teardown


def test_reconcile_drops_supervisors_who_no_longer_monitor() -> None:
    state = full_state()
    cleanup = Cleanup()
    closed_for = reconcile(workitem(monitors={"sup-2": NOW}), state, cleanup)
    assert closed_for == "agent-1"
    assert set(state.supervisors) == {"sup-2"} and state.coach is None
    assert cleanup.pipelines == ["p1"] and cleanup.meetings == ["mk"]
    assert cleanup.remaining_attendees() == [("mc", "c-sup1")]
    assert state.contact is not None and state.callers == {"call-1": "a-caller"}


def test_reconcile_after_transfer_keeps_the_contact_room_for_the_customer() -> None:
    state = full_state()
    cleanup = Cleanup()
    closed_for = reconcile(workitem(agent_id="agent-2"), state, cleanup)
    assert closed_for == "agent-1"  # the old agent had the coach room
    assert state.contact is not None and state.contact.agent_attendee_id == ""
    assert state.supervisors == {} and state.coach is None
    assert set(cleanup.remaining_attendees()) == {("mc", "c-sup1"), ("mc", "c-sup2"), ("mc", "a-agent")}
    assert cleanup.meetings == ["mk"]


def test_reconcile_of_an_ended_workitem_deletes_every_room() -> None:
    state = full_state()
    cleanup = Cleanup()
    assert reconcile(workitem(status=Status.ENDED), state, cleanup) == "agent-1"
    assert cleanup.pipelines == ["p1"] and cleanup.meetings == ["mk", "mc"]
    assert cleanup.remaining_attendees() == []
    assert state.dump() == {"contactGen": 3, "coachGen": 4}


def test_reconcile_is_idempotent() -> None:
    state = full_state()
    reconcile(workitem(status=Status.ENDED), state, Cleanup())
    again = Cleanup()
    assert reconcile(workitem(status=Status.ENDED), state, again) is None
    assert not again
    live = full_state()
    w = workitem(monitors={"sup-1": NOW, "sup-2": NOW})
    untouched = Cleanup()
    assert reconcile(w, live, untouched) is None and not untouched and live == full_state()


# --------------------------------------------------------------------------------------- the change


def test_voice_change_with_a_mode_appends_a_voice_mode_entry() -> None:
    w = workitem(monitors={"sup-1": NOW}, seq=4, version=7)
    state = VoiceState(supervisors={"sup-1": SupervisorVoice(VoiceMode.BARGE, "c1")})
    change = voice_change(w, state, NOW, ("sup-1", VoiceMode.BARGE))
    assert change.changed and change.after.version == 8 and change.after.voice == state.dump()
    entry = change.entry
    assert (entry.kind, entry.seq, entry.author_id, entry.author_role) == (EntryKind.VOICE_MODE, 5, "sup-1", Role.SUPERVISOR)
    assert entry.extra == {"supervisorId": "sup-1", "mode": "barge"} and entry.at == NOW
    assert not entry.customer_visible and entry.customer_seq is None
    assert w.voice == {} and w.version == 7  # the rule never mutates its input


def test_voice_change_without_a_mode_only_stores_the_state() -> None:
    w = workitem(version=3)
    state = VoiceState(contact=RoomState("m", "us-east-1"))
    change = voice_change(w, state, NOW)
    assert change.changed and change.entries == [] and change.after.version == 4
    same = voice_change(change.after, VoiceState.load(change.after.voice), NOW)
    assert not same.changed


def test_a_cleanup_is_empty_only_when_it_holds_nothing_to_delete() -> None:
    assert not Cleanup()
    nothing = Cleanup()
    nothing.attendee("", "a")  # an attendee of no meeting, or no attendee: nothing to delete
    nothing.attendee("m", "")
    assert not nothing
    assert Cleanup(pipelines=["p"]) and Cleanup(meetings=["m"]) and Cleanup(attendees=[("m", "a")])
    assert Cleanup(pipelines=["p"], meetings=["m"], attendees=[("m", "a")])


def test_dropping_a_supervisor_without_a_contact_attendee_or_room_deletes_nothing_there() -> None:
    state = full_state()
    state.supervisors["sup-3"] = SupervisorVoice(VoiceMode.LISTEN, "")  # never joined the contact room
    cleanup = Cleanup()
    assert drop_supervisor(state, "sup-3", cleanup) is False
    assert cleanup.remaining_attendees() == [] and "sup-3" not in state.supervisors
    state.contact = None  # the contact room is gone already
    cleanup = Cleanup()
    drop_supervisor(state, "sup-2", cleanup)
    assert cleanup.remaining_attendees() == []
    assert drop_supervisor(state, "sup-9", Cleanup()) is False  # not in the call at all


def test_reconcile_closing_the_coach_room_as_its_last_whisperer_leaves_is_reported_for_the_agent() -> None:
    state = full_state()
    state.coach = RoomState("mk", "us-east-1", agent_id="agent-1", agent_attendee_id="")  # the agent never joined
    cleanup = Cleanup()
    assert reconcile(workitem(monitors={"sup-2": NOW}), state, cleanup) is None  # nobody to tell
    assert state.coach is None and cleanup.meetings == ["mk"]
    assert all(s.coach_attendee_id == "" for s in state.supervisors.values())


def test_a_transfer_closes_the_coach_room_of_the_previous_agent_even_while_supervisors_whisper() -> None:
    state = full_state()
    cleanup = Cleanup()
    closed_for = reconcile(workitem(agent_id="agent-2", monitors={"sup-1": NOW, "sup-2": NOW}), state, cleanup)
    assert closed_for == "agent-1" and state.coach is None
    assert cleanup.pipelines == ["p1"] and cleanup.meetings == ["mk"]
    assert set(state.supervisors) == {"sup-1", "sup-2"} and state.supervisors["sup-1"].coach_attendee_id == ""
    assert state.coach_generation == 4  # a later whisper makes a fresh room


def test_dropping_the_contact_room_takes_everyone_out_of_it() -> None:
    from chalicelib.domain.voice import drop_contact

    state = full_state()
    cleanup = Cleanup()
    drop_contact(state, cleanup)
    assert state.contact is None and state.contact_generation == 3 and state.callers == {}
    assert cleanup.meetings == ["mc"]
    assert [s.contact_attendee_id for s in state.supervisors.values()] == ["", ""]
    assert state.coach is not None  # the coach room is another meeting
    again = Cleanup()
    drop_contact(state, again)
    assert again.meetings == [] and state.contact_generation == 3


def test_leaving_the_coach_room_clears_the_supervisors_attendee_there() -> None:
    state = full_state()
    state.supervisors["sup-2"].coach_attendee_id = "k-sup2"  # two whisper: the room stays
    cleanup = Cleanup()
    assert leave_coach(state, "sup-1", cleanup) is False
    assert state.supervisors["sup-1"].coach_attendee_id == "" and state.whisperers() == ["sup-2"]
    assert cleanup.remaining_attendees() == [("mk", "k-sup1")]


def test_request_tokens_and_external_ids_are_the_documented_functions_of_their_parts() -> None:
    """Frozen values: a deployment that computed them differently would not recognise its own meetings
    (CreateMeeting retries are idempotent only under the same ClientRequestToken)."""
    import hashlib

    expected = hashlib.sha256(b"meeting\x1ft1\x1fwi-1\x1fcontact\x1f3").hexdigest()[:48]
    assert meeting_token("t1", "wi-1", RoomKind.CONTACT, 3) == expected
    assert client_request_token("a", "b") == hashlib.sha256(b"a\x1fb").hexdigest()[:48]
    exactly = "x" * 64
    assert external_id(exactly) == exactly  # 64 characters fit as they are
    longer = "x" * 65
    assert external_id(longer) == "x" * 47 + "~" + hashlib.sha256(longer.encode()).hexdigest()[:16]
    assert external_id("ab") == "ab" and external_id("a") == "a~"
