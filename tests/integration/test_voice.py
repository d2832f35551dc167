"""Voice coaching end to end on moto with the fake Chime SDK (docs/product.md S14, S15, B5; W4.29 voice.*).

Everything goes through the real entry points: WebSocket frames, signed webhooks, REST admin routes and
the SIP media application Lambda handler. ``world.meetings`` is the FakeMeetingProvider, inspected to
check which rooms, attendees and pipelines exist and with which audio capability.
"""

from __future__ import annotations

from typing import Any

import msgspec
import pytest

from chalicelib.domain.errors import RateLimited
from chalicelib.domain.voice import Audio, VoiceState
from devstack.fake_meetings import FakeAttendee
from tests.support.races import first_voice_actions
from tests.support.world import Client, World, atomic_aws_calls

# Tier: from the world fixture's backend (service on memory, integration on moto; tests/conftest.py).

WID = "wi-v"
SINK = "arn:aws:s3:::coaching-recordings"


@pytest.fixture
def w(world: World) -> World:
    world.team()
    return world


def voice_state(w: World, wid: str = WID, tid: str = "t1") -> VoiceState:
    return VoiceState.load(w.services.coaching.load(tid, wid).voice)


def raw_voice(w: World, wid: str = WID) -> dict[str, Any]:
    return w.services.coaching.load("t1", wid).voice


def attendee(w: World, attendee_id: str) -> FakeAttendee:
    return w.meetings.attendees[attendee_id]


def audio_of(w: World, room: dict[str, Any]) -> Audio:
    found = w.meetings.attendees[room["attendeeId"]]
    assert found.meeting_id == room["meetingId"]
    return found.audio


def sma_event(
    event_type: str, *, tenant: str = "t1", workitem: str = WID, call_id: str = "call-1", headers: bool = True
) -> dict[str, Any]:
    participant: dict[str, Any] = {
        "CallId": call_id,
        "ParticipantTag": "LEG-A",
        "To": "+12065550100",
        "From": "+15105550101",
        "Direction": "Inbound",
        "Status": "Connected",
    }
    if headers:
        participant["SipHeaders"] = {"X-Tenant-Id": tenant, "X-Workitem-Id": workitem}
    return {
        "SchemaVersion": "1.0",
        "Sequence": 1,
        "InvocationEventType": event_type,
        "CallDetails": {
            "TransactionId": f"tx-{call_id}",
            "AwsRegion": "us-east-1",
            "SipMediaApplicationId": "sma-1",
            "Participants": [participant],
        },
    }


def sma(event: dict[str, Any]) -> dict[str, Any]:
    """Through the Lambda function the SIP media application invokes."""
    from app import sma_handler

    return sma_handler(event, None)


def start(w: World, wid: str = WID, *, sup: str = "sup-1") -> tuple[Client, Client]:
    """A voice workitem for agent-1 with the agent in its contact room and ``sup`` monitoring."""
    w.assign(wid, channel="voice")
    agent = w.connect("agent-1", "agent")
    supervisor = w.connect(sup, "supervisor")
    agent.ok("voice.join", workitemId=wid)
    supervisor.ok("monitor.start", workitemId=wid)
    return agent, supervisor


def voice_modes(client: Client, wid: str = WID) -> list[tuple[str, str]]:
    entries = client.ok("timeline.get", workitemId=wid, after=0)["entries"]
    return [(e["supervisorId"], e["mode"]) for e in entries if e["kind"] == "voice_mode"]


# --------------------------------------------------------------------------------------------- the flow


def test_listen_whisper_barge_listen_then_customer_hangs_up(w: World) -> None:
    w.assign(WID, channel="voice")
    agent = w.connect("agent-1", "agent")
    sup = w.connect("sup-1", "supervisor")

    # The customer's phone leg arrives first: the SMA handler creates the contact room.
    answer = sma(sma_event("NEW_INBOUND_CALL"))
    [join_action] = answer["Actions"]
    assert join_action["Type"] == "JoinChimeMeeting"
    contact_id = join_action["Parameters"]["MeetingId"]
    assert answer["TransactionAttributes"] == {"tenantId": "t1", "workitemId": WID}
    caller = next(a for a in w.meetings.attendees_in(contact_id) if a.external_user_id == "pstn:call-1")
    assert caller.audio is Audio.SEND_RECEIVE and caller.join_token == join_action["Parameters"]["JoinToken"]

    # The agent joins the same room, SendReceive.
    joined = agent.ok("voice.join", workitemId=WID)["contactRoom"]
    assert joined["meetingId"] == contact_id
    assert joined["capabilities"] == {"audio": "SendReceive", "video": "None", "content": "None"}
    assert joined["mediaRegion"] == "us-east-1" and joined["joinToken"]
    assert audio_of(w, joined) is Audio.SEND_RECEIVE

    sup.ok("monitor.start", workitemId=WID)

    # Listen (silent monitor): Receive in the contact room, heard by nobody.
    listening = sup.ok("voice.monitor", workitemId=WID)["contactRoom"]
    assert listening["meetingId"] == contact_id and listening["capabilities"]["audio"] == "Receive"
    assert audio_of(w, listening) is Audio.RECEIVE
    sup_contact = listening["attendeeId"]

    # Whisper: a coach room with supervisor Send and agent Receive; the customer is never in it.
    whispering = sup.ok("voice.whisper", workitemId=WID)
    coach = whispering["coachRoom"]
    coach_id = coach["meetingId"]
    assert coach_id != contact_id and coach["capabilities"]["audio"] == "Send"
    assert audio_of(w, coach) is Audio.SEND
    assert whispering["contactRoom"]["attendeeId"] == sup_contact  # still listening to the call
    assert attendee(w, sup_contact).audio is Audio.RECEIVE
    [pushed] = agent.events("voice.coach_room")
    room = pushed["data"]
    assert room["workitemId"] == WID and room["meetingId"] == coach_id
    assert room["capabilities"] == {"audio": "Receive", "video": "None", "content": "None"}
    assert audio_of(w, room) is Audio.RECEIVE
    in_coach = {a.external_user_id for a in w.meetings.attendees_in(coach_id)}
    assert in_coach == {"t1:sup-1", "t1:agent-1"}
    assert w.meetings.meeting_by_external_id(f"t1:{WID}:coach") is w.meetings.meetings[coach_id]
    assert sup.events("voice.coach_room") == []  # the caller gets the ack, not an event

    # Barge: the coach room closes first, then the same contact attendee becomes SendReceive.
    barging = sup.ok("voice.barge", workitemId=WID)["contactRoom"]
    assert barging["attendeeId"] == sup_contact and barging["capabilities"]["audio"] == "SendReceive"
    assert attendee(w, sup_contact).audio_history == [Audio.RECEIVE, Audio.SEND_RECEIVE]
    assert coach_id in w.meetings.deleted_meetings
    assert [e["data"] for e in agent.events("voice.coach_room_closed")] == [{"workitemId": WID}]

    # Listen again: back to Receive.
    back = sup.ok("voice.listen", workitemId=WID)["contactRoom"]
    assert back["attendeeId"] == sup_contact and back["capabilities"]["audio"] == "Receive"
    assert attendee(w, sup_contact).audio is Audio.RECEIVE
    assert len(agent.events("voice.coach_room_closed")) == 1  # nothing more to close

    assert voice_modes(sup) == [("sup-1", "monitor"), ("sup-1", "whisper"), ("sup-1", "barge"), ("sup-1", "listen")]

    # The customer hangs up: the routing engine ends the workitem, voice coaching ends (S14).
    status, _ = w.webhook("workitem.ended", {"workitemId": WID, "endedBy": "customer"})
    assert status == 200
    [ended] = sup.events("coaching.ended")
    assert ended["data"]["reason"] == "customer_hangup"
    assert contact_id in w.meetings.deleted_meetings
    assert w.meetings.live_resources() == 0
    assert voice_state(w).contact is None and voice_state(w).supervisors == {}

    # The SMA then reports the phone leg's HANGUP: harmless.
    assert sma(sma_event("HANGUP")) == {
        "SchemaVersion": "1.0",
        "Actions": [],
        "TransactionAttributes": {"tenantId": "t1", "workitemId": WID},
    }


def test_repeated_mode_is_idempotent_and_records_no_new_entry(w: World) -> None:
    _, sup = start(w)
    first = sup.ok("voice.monitor", workitemId=WID)["contactRoom"]
    again = sup.ok("voice.monitor", workitemId=WID)["contactRoom"]
    assert again == first
    whisper = sup.ok("voice.whisper", workitemId=WID)["coachRoom"]
    assert sup.ok("voice.whisper", workitemId=WID)["coachRoom"]["meetingId"] == whisper["meetingId"]
    assert voice_modes(sup) == [("sup-1", "monitor"), ("sup-1", "whisper")]
    assert len(w.meetings.meetings) == 2


def test_whisper_first_also_puts_the_supervisor_in_the_contact_room(w: World) -> None:
    agent, sup = start(w)
    data = sup.ok("voice.whisper", workitemId=WID)
    assert audio_of(w, data["contactRoom"]) is Audio.RECEIVE
    assert audio_of(w, data["coachRoom"]) is Audio.SEND
    assert len(agent.events("voice.coach_room")) == 1


def test_barge_without_monitor_creates_a_send_receive_attendee(w: World) -> None:
    _, sup = start(w)
    room = sup.ok("voice.barge", workitemId=WID)["contactRoom"]
    assert audio_of(w, room) is Audio.SEND_RECEIVE
    assert attendee(w, room["attendeeId"]).audio_history == [Audio.SEND_RECEIVE]


def test_barge_closes_the_coach_room_before_the_supervisor_speaks(w: World) -> None:
    agent, sup = start(w)
    coach = sup.ok("voice.whisper", workitemId=WID)["coachRoom"]
    mark = len(w.meetings.calls)
    sup.ok("voice.barge", workitemId=WID)
    calls = w.meetings.calls[mark:]
    # Otherwise the agent would hear the supervisor twice, once from each room.
    assert calls.index("delete_meeting") < calls.index("update_attendee_audio")
    assert coach["meetingId"] in w.meetings.deleted_meetings
    assert len(agent.events("voice.coach_room_closed")) == 1


def test_barge_whose_upgrade_fails_can_be_retried(w: World) -> None:
    _, sup = start(w)
    room = sup.ok("voice.monitor", workitemId=WID)["contactRoom"]
    w.meetings.fail_next("update_attendee_audio", RateLimited("busy"))
    sup.fails("voice.barge", "rate_limited", workitemId=WID)
    assert attendee(w, room["attendeeId"]).audio is Audio.RECEIVE
    again = sup.ok("voice.barge", workitemId=WID)["contactRoom"]
    assert again["attendeeId"] == room["attendeeId"] and audio_of(w, again) is Audio.SEND_RECEIVE
    assert voice_modes(sup) == [("sup-1", "monitor"), ("sup-1", "barge")]


def test_whisper_from_barge_goes_back_to_receive_in_the_contact_room(w: World) -> None:
    _, sup = start(w)
    barge = sup.ok("voice.barge", workitemId=WID)["contactRoom"]
    sup.ok("voice.whisper", workitemId=WID)
    assert attendee(w, barge["attendeeId"]).audio is Audio.RECEIVE  # the customer must not hear the whisper


def test_agent_rejoining_during_a_whisper_gets_the_coach_room_too(w: World) -> None:
    agent, sup = start(w)
    assert "coachRoom" not in agent.ok("voice.join", workitemId=WID)
    coach = sup.ok("voice.whisper", workitemId=WID)["coachRoom"]
    again = agent.ok("voice.join", workitemId=WID)
    assert again["coachRoom"]["meetingId"] == coach["meetingId"]
    assert again["coachRoom"]["capabilities"]["audio"] == "Receive"
    assert again["coachRoom"]["attendeeId"] == agent.events("voice.coach_room")[0]["data"]["attendeeId"]


def test_two_supervisors_share_the_coach_room_which_closes_with_the_last_whisperer(w: World) -> None:
    agent, sup1 = start(w)
    sup2 = w.connect("sup-2", "supervisor")
    sup2.ok("monitor.start", workitemId=WID)
    one = sup1.ok("voice.whisper", workitemId=WID)["coachRoom"]
    two = sup2.ok("voice.whisper", workitemId=WID)["coachRoom"]
    assert one["meetingId"] == two["meetingId"] and one["attendeeId"] != two["attendeeId"]
    assert len(agent.events("voice.coach_room")) == 1  # the agent is already in it

    sup1.ok("voice.listen", workitemId=WID)
    assert one["attendeeId"] in w.meetings.deleted_attendees
    assert one["meetingId"] in w.meetings.meetings  # sup-2 still whispers
    assert agent.events("voice.coach_room_closed") == []

    sup2.ok("voice.listen", workitemId=WID)
    assert one["meetingId"] in w.meetings.deleted_meetings
    assert len(agent.events("voice.coach_room_closed")) == 1

    # A later whisper opens a fresh coach room (a new client request token, not the dead meeting).
    again = sup1.ok("voice.whisper", workitemId=WID)["coachRoom"]
    assert again["meetingId"] != one["meetingId"] and again["meetingId"] in w.meetings.meetings
    assert len(agent.events("voice.coach_room")) == 2


# ----------------------------------------------------------------------------------------- teardown


def test_supervisor_leaving_drops_their_attendees_and_the_coach_room(w: World) -> None:
    agent, sup = start(w)
    data = sup.ok("voice.whisper", workitemId=WID)
    sup.ok("monitor.stop", workitemId=WID)
    assert data["contactRoom"]["attendeeId"] in w.meetings.deleted_attendees
    assert data["coachRoom"]["meetingId"] in w.meetings.deleted_meetings
    assert len(agent.events("voice.coach_room_closed")) == 1
    state = voice_state(w)
    assert state.supervisors == {} and state.coach is None
    assert state.contact is not None and state.contact.meeting_id in w.meetings.meetings  # the call goes on
    assert agent.ok("voice.join", workitemId=WID)["contactRoom"]["meetingId"] == state.contact.meeting_id


def test_one_supervisor_leaving_keeps_the_other_whispering(w: World) -> None:
    _, sup1 = start(w)
    sup2 = w.connect("sup-2", "supervisor")
    sup2.ok("monitor.start", workitemId=WID)
    one = sup1.ok("voice.whisper", workitemId=WID)
    two = sup2.ok("voice.whisper", workitemId=WID)
    sup1.ok("monitor.stop", workitemId=WID)
    assert one["coachRoom"]["attendeeId"] in w.meetings.deleted_attendees
    assert one["contactRoom"]["attendeeId"] in w.meetings.deleted_attendees
    assert audio_of(w, two["coachRoom"]) is Audio.SEND
    assert set(voice_state(w).supervisors) == {"sup-2"}


def test_transfer_ends_coaching_and_tears_down_the_supervisors_voice(w: World) -> None:
    agent, sup = start(w)
    sma(sma_event("NEW_INBOUND_CALL"))
    listening = sup.ok("voice.monitor", workitemId=WID)["contactRoom"]
    coach = sup.ok("voice.whisper", workitemId=WID)["coachRoom"]
    agent_room = agent.ok("voice.join", workitemId=WID)["contactRoom"]

    agent.ok("workitem.transfer", workitemId=WID, toAgentId="agent-2")

    assert sup.events("coaching.ended")[0]["data"]["reason"] == "transferred"
    assert listening["attendeeId"] in w.meetings.deleted_attendees
    assert coach["meetingId"] in w.meetings.deleted_meetings
    assert agent_room["attendeeId"] in w.meetings.deleted_attendees  # the old agent is out of the call
    assert len(agent.events("voice.coach_room_closed")) == 1
    contact_id = listening["meetingId"]
    assert contact_id in w.meetings.meetings  # the customer is still on the line
    assert [a.external_user_id for a in w.meetings.attendees_in(contact_id)] == ["pstn:call-1"]

    agent.fails("voice.join", "forbidden", workitemId=WID)
    new_agent = w.connect("agent-2", "agent")
    assert new_agent.ok("voice.join", workitemId=WID)["contactRoom"]["meetingId"] == contact_id


def test_transfer_by_webhook_without_coaching_drops_the_old_agent(w: World) -> None:
    w.assign(WID, channel="voice")
    agent = w.connect("agent-1", "agent")
    room = agent.ok("voice.join", workitemId=WID)["contactRoom"]
    status, _ = w.webhook("workitem.transferred", {"workitemId": WID, "toAgentId": "agent-2"})
    assert status == 200
    assert room["attendeeId"] in w.meetings.deleted_attendees
    assert room["meetingId"] in w.meetings.meetings


def test_agent_ending_the_workitem_deletes_every_room(w: World) -> None:
    agent, sup = start(w)
    sma(sma_event("NEW_INBOUND_CALL"))
    sup.ok("voice.whisper", workitemId=WID)
    agent.ok("workitem.end", workitemId=WID)
    assert sup.events("coaching.ended")[0]["data"]["reason"] == "ended"
    assert w.meetings.meetings == {} and w.meetings.live_resources() == 0
    agent.fails("voice.join", "conflict", workitemId=WID)


def test_ending_a_call_nobody_coached_deletes_the_contact_room(w: World) -> None:
    w.assign(WID, channel="voice")
    agent = w.connect("agent-1", "agent")
    room = agent.ok("voice.join", workitemId=WID)["contactRoom"]
    status, _ = w.webhook("workitem.ended", {"workitemId": WID, "endedBy": "customer"})
    assert status == 200
    assert room["meetingId"] in w.meetings.deleted_meetings and w.meetings.live_resources() == 0


def test_agent_ending_coaching_drops_the_supervisors_but_not_the_call(w: World) -> None:
    agent, sup = start(w)
    coach = sup.ok("voice.whisper", workitemId=WID)
    agent.ok("coaching.end", workitemId=WID)
    assert sup.events("coaching.ended")[0]["data"]["reason"] == "agent"
    assert coach["coachRoom"]["meetingId"] in w.meetings.deleted_meetings
    assert coach["contactRoom"]["attendeeId"] in w.meetings.deleted_attendees
    assert coach["contactRoom"]["meetingId"] in w.meetings.meetings
    sup.fails("voice.whisper", "conflict", workitemId=WID)  # monitoring first


def test_teardown_is_idempotent_when_meetings_are_already_gone(w: World) -> None:
    _, sup = start(w)
    data = sup.ok("voice.whisper", workitemId=WID)
    # Both rooms end under us (Chime ends empty meetings by itself).
    w.meetings.expire_meeting(data["coachRoom"]["meetingId"])
    w.meetings.expire_meeting(data["contactRoom"]["meetingId"])
    status, _ = w.webhook("workitem.ended", {"workitemId": WID, "endedBy": "agent"})
    assert status == 200
    assert sup.events("coaching.ended")[0]["data"]["reason"] == "ended"
    assert voice_state(w).contact is None and voice_state(w).coach is None

    # A repeated end (new event id) and a repeated teardown change nothing and call no delete.
    calls = len(w.meetings.calls)
    status, _ = w.webhook("workitem.ended", {"workitemId": WID, "endedBy": "agent"})
    assert status == 200
    w.services.voice.reconcile("t1", WID)
    assert w.meetings.calls[calls:] == []


def test_a_failing_delete_is_logged_not_raised(w: World, caplog: pytest.LogCaptureFixture) -> None:
    agent, sup = start(w)
    sup.ok("voice.whisper", workitemId=WID)
    w.meetings.fail_next("delete_meeting", RateLimited("busy"))
    ended = agent.ok("workitem.end", workitemId=WID)["workitem"]
    assert ended["status"] == "ended"
    assert "voice clean-up delete_meeting failed" in caplog.text
    assert len(w.meetings.meetings) == 1  # the other room was still deleted


def test_contact_room_that_ended_by_itself_is_replaced_with_a_new_token(w: World) -> None:
    agent, sup = start(w)
    first = sup.ok("voice.monitor", workitemId=WID)["contactRoom"]
    w.meetings.expire_meeting(first["meetingId"])
    second = sup.ok("voice.monitor", workitemId=WID)["contactRoom"]
    assert second["meetingId"] != first["meetingId"] and second["meetingId"] in w.meetings.meetings
    assert voice_state(w).contact_generation == 1
    assert agent.ok("voice.join", workitemId=WID)["contactRoom"]["meetingId"] == second["meetingId"]


def test_chime_pushback_during_an_action_is_rate_limited_and_changes_nothing(w: World) -> None:
    _, sup = start(w)
    before = raw_voice(w)
    w.meetings.fail_next("create_meeting", RateLimited("busy", service="chime"))
    error = sup.fails("voice.whisper", "rate_limited", workitemId=WID)
    assert error.get("retryable") is True
    assert raw_voice(w) == before
    assert voice_modes(sup) == []
    assert sup.ok("voice.whisper", workitemId=WID)["coachRoom"]


# ---------------------------------------------------------------------------------------- recording


def test_recording_policy_captures_the_coach_room_and_deletes_the_pipeline_with_it(w: World) -> None:
    w.admin("PUT", "/admin/policy", {"recordCoaching": True, "escalationSeconds": 60, "retentionDays": 30})
    w.services.voice.settings = msgspec.structs.replace(w.services.voice.settings, media_pipeline_sink_arn=SINK)
    _, sup = start(w)
    coach = sup.ok("voice.whisper", workitemId=WID)["coachRoom"]
    [pipeline] = w.meetings.pipelines.values()
    assert pipeline.meeting_id == coach["meetingId"] and pipeline.sink_arn == SINK
    assert pipeline.source_arn.endswith(f":meeting/{coach['meetingId']}")
    contact = voice_state(w).contact
    assert contact is not None and all(p.meeting_id != contact.meeting_id for p in w.meetings.pipelines.values())

    sup.ok("voice.listen", workitemId=WID)
    assert w.meetings.pipelines == {} and pipeline.pipeline_id in w.meetings.deleted_pipelines
    # Pipelines go before their room, so the recording never outlives its source by accident.
    deletes = [c for c in w.meetings.calls if c.startswith("delete")]
    assert deletes[:2] == ["delete_pipeline", "delete_meeting"]


def test_recording_pipeline_goes_with_a_customer_hang_up(w: World) -> None:
    w.admin("PUT", "/admin/policy", {"recordCoaching": True, "escalationSeconds": 60, "retentionDays": 30})
    w.services.voice.settings = msgspec.structs.replace(w.services.voice.settings, media_pipeline_sink_arn=SINK)
    _, sup = start(w)
    sup.ok("voice.whisper", workitemId=WID)
    assert len(w.meetings.pipelines) == 1
    w.webhook("workitem.ended", {"workitemId": WID, "endedBy": "customer"})
    assert w.meetings.pipelines == {} and w.meetings.live_resources() == 0


def test_no_recording_without_policy_or_without_a_sink(w: World) -> None:
    w.services.voice.settings = msgspec.structs.replace(w.services.voice.settings, media_pipeline_sink_arn=SINK)
    _, sup = start(w)  # policy recordCoaching is off by default
    sup.ok("voice.whisper", workitemId=WID)
    assert w.meetings.pipelines == {}

    w.admin("PUT", "/admin/policy", {"recordCoaching": True, "escalationSeconds": 60, "retentionDays": 30})
    w.services.voice.settings = msgspec.structs.replace(w.services.voice.settings, media_pipeline_sink_arn="")
    w.assign("wi-v2", channel="voice")
    sup.ok("monitor.start", workitemId="wi-v2")
    sup.ok("voice.whisper", workitemId="wi-v2")
    assert w.meetings.pipelines == {}


# ------------------------------------------------------------------------------ refusals and permissions


@pytest.mark.parametrize("action", ["voice.join", "voice.monitor", "voice.whisper", "voice.barge", "voice.listen"])
def test_voice_actions_on_a_chat_workitem_are_invalid(w: World, action: str) -> None:
    w.assign("wi-chat", channel="chat")
    caller = w.connect("agent-1", "agent") if action == "voice.join" else w.connect("sup-1", "supervisor")
    if action != "voice.join":
        caller.ok("monitor.start", workitemId="wi-chat")
    caller.fails(action, "invalid", workitemId="wi-chat")
    assert w.meetings.calls == []


@pytest.mark.parametrize("action", ["voice.monitor", "voice.whisper", "voice.barge", "voice.listen"])
def test_supervisor_modes_permissions(w: World, action: str) -> None:
    w.team(team_id="team-2", supervisors=("sup-3",), agents=("agent-3",))
    w.assign(WID, channel="voice")
    w.connect("agent-1", "agent").fails(action, "forbidden", workitemId=WID)
    w.connect("sup-3", "supervisor").fails(action, "forbidden", workitemId=WID)  # not agent-1's supervisor
    w.connect("admin-1", "admin").fails(action, "forbidden", workitemId=WID)
    w.connect("cust-wi-v", "customer", wid=WID).fails(action, "forbidden", workitemId=WID)
    sup = w.connect("sup-1", "supervisor")
    error = sup.fails(action, "conflict", workitemId=WID)  # S5: monitoring first
    assert "monitor" in error["message"]
    w.connect("sup-1", "supervisor", tid="t2").fails(action, "not_found", workitemId=WID)
    assert w.meetings.calls == []


def test_voice_join_is_for_the_workitems_agent_only(w: World) -> None:
    w.assign(WID, channel="voice")
    w.connect("agent-2", "agent").fails("voice.join", "forbidden", workitemId=WID)
    w.connect("sup-1", "supervisor").fails("voice.join", "forbidden", workitemId=WID)
    w.connect("cust-wi-v", "customer", wid=WID).fails("voice.join", "forbidden", workitemId=WID)
    w.connect("agent-1", "agent").fails("voice.join", "not_found", workitemId="wi-none")
    assert w.meetings.calls == []


def test_customers_never_see_voice_mode_entries(w: World) -> None:
    _, sup = start(w)
    sup.ok("voice.whisper", workitemId=WID)
    customer = w.connect("cust-wi-v", "customer", wid=WID)
    assert customer.ok("timeline.get", workitemId=WID, after=0)["entries"] == []
    assert customer.events() == []


# ------------------------------------------------------------------------------- the phone leg (SMA)


def test_inbound_call_joins_the_contact_room_of_its_workitem(w: World) -> None:
    w.assign(WID, channel="voice")
    w.assign("wi-other", channel="voice")
    agent = w.connect("agent-1", "agent")
    other = agent.ok("voice.join", workitemId="wi-other")["contactRoom"]
    room = agent.ok("voice.join", workitemId=WID)["contactRoom"]

    answer = sma(sma_event("NEW_INBOUND_CALL", call_id="call-7"))
    params = answer["Actions"][0]["Parameters"]
    assert params["MeetingId"] == room["meetingId"] != other["meetingId"]
    assert params["CallId"] == "call-7"
    caller = next(a for a in w.meetings.attendees_in(room["meetingId"]) if a.external_user_id == "pstn:call-7")
    assert caller.join_token == params["JoinToken"] and caller.audio is Audio.SEND_RECEIVE
    assert voice_state(w).callers == {"call-7": caller.attendee_id}

    # A retried invocation hands out the same attendee.
    assert sma(sma_event("NEW_INBOUND_CALL", call_id="call-7"))["Actions"][0]["Parameters"] == params

    # The leg hangs up: its attendee goes, the room stays for the agent.
    sma(sma_event("HANGUP", call_id="call-7"))
    assert caller.attendee_id in w.meetings.deleted_attendees
    assert room["meetingId"] in w.meetings.meetings and voice_state(w).callers == {}


def test_call_routed_by_arguments_on_call_update(w: World) -> None:
    w.assign(WID, channel="voice")
    event = sma_event("CALL_UPDATE_REQUESTED", headers=False)
    event["ActionData"] = {"Type": "CallUpdateRequest", "Parameters": {"Arguments": {"tenantId": "t1", "workitemId": WID}}}
    answer = sma(event)
    assert answer["Actions"][0]["Type"] == "JoinChimeMeeting"
    state = voice_state(w)
    assert state.contact is not None and answer["Actions"][0]["Parameters"]["MeetingId"] == state.contact.meeting_id


@pytest.mark.parametrize(
    ("tenant", "workitem", "setup"),
    [
        ("t1", "wi-missing", None),  # unknown workitem
        ("t2", WID, "voice"),  # the workitem exists in another tenant only
        ("t1", WID, "chat"),  # not a voice workitem
        ("t1", WID, "ended"),  # the call's workitem has ended
    ],
)
def test_unroutable_calls_hang_up_480(w: World, tenant: str, workitem: str, setup: str | None) -> None:
    if setup is not None:
        w.assign(WID, channel="chat" if setup == "chat" else "voice")
    if setup == "ended":
        w.webhook("workitem.ended", {"workitemId": WID, "endedBy": "agent"})
    answer = sma(sma_event("NEW_INBOUND_CALL", tenant=tenant, workitem=workitem))
    assert answer == {
        "SchemaVersion": "1.0",
        "Actions": [{"Type": "Hangup", "Parameters": {"SipResponseCode": "480", "CallId": "call-1"}}],
    }
    assert w.meetings.meetings == {}


def test_call_without_routing_and_garbage_events(w: World) -> None:
    answer = sma(sma_event("NEW_INBOUND_CALL", headers=False))
    assert answer["Actions"][0]["Type"] == "Hangup"
    assert answer["Actions"][0]["Parameters"]["SipResponseCode"] == "480"
    assert sma({"not": "an sma event"}) == {"SchemaVersion": "1.0", "Actions": []}
    assert sma(sma_event("RINGING"))["Actions"] == []
    assert w.meetings.calls == []


def test_chime_failure_while_answering_hangs_up(w: World) -> None:
    w.assign(WID, channel="voice")
    w.meetings.fail_next("create_attendee", RuntimeError("boom"))
    answer = sma(sma_event("NEW_INBOUND_CALL"))
    assert answer["Actions"][0]["Type"] == "Hangup"


# ------------------------------------------------------------------------------------------ races


def test_concurrent_first_joins_create_one_meeting(w: World) -> None:
    """A second voice.join that commits while the first is between CreateMeeting and its commit."""
    w.assign(WID, channel="voice")
    first = w.connect("agent-1", "agent")
    second = w.connect("agent-1", "agent")
    sup = w.connect("sup-1", "supervisor")
    sup.ok("monitor.start", workitemId=WID)
    original = w.meetings.create_meeting
    raced: list[dict[str, Any]] = []
    racing = [True]

    def racing_create_meeting(**kwargs: str) -> Any:
        meeting = original(**kwargs)
        if racing.pop() if racing else False:
            raced.append(second.ok("voice.join", workitemId=WID))  # commits first
            raced.append(sup.ok("voice.monitor", workitemId=WID))
        return meeting

    w.meetings.create_meeting = racing_create_meeting  # type: ignore[method-assign]
    mine = first.ok("voice.join", workitemId=WID)["contactRoom"]
    assert mine == raced[0]["contactRoom"]  # the same meeting and the same attendee
    assert raced[1]["contactRoom"]["meetingId"] == mine["meetingId"]
    assert len(w.meetings.meetings) == 1
    state = voice_state(w)
    assert state.contact is not None and state.contact.meeting_id == mine["meetingId"]
    assert set(state.supervisors) == {"sup-1"}  # the losing commit re-read and kept the racer's state


def test_concurrent_first_actions_in_threads_agree_on_one_contact_room(w: World) -> None:
    # moto can undo one thread's commit when another's transaction is cancelled (tests/support/races.py);
    # each SDK call is made atomic here, and tests/ddblocal runs the same race without any lock.
    with atomic_aws_calls():
        first_voice_actions(w, WID, "t1")
