"""Voice coaching through the real local stack (fake Chime SDK): listen, whisper, barge, listen, hang-up.

Each test assigns its own workitem through the signed webhook and ends it, so the seeded demo
workitems (``wi-voice-1``, ``wi-chat-1``) that other end-to-end tests use are never touched.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from tests.e2e.conftest import Stack

pytestmark = pytest.mark.e2e

TENANT = "demo"


def _webhook(stack: Stack, type_: str, data: dict[str, Any]) -> None:
    status, body = stack.post_webhook({"eventId": f"e2e-{uuid.uuid4().hex}", "tenantId": TENANT, "type": type_, "data": data})
    assert status == 200, (status, body)


def _assign(stack: Stack, channel: str = "voice") -> str:
    workitem_id = f"wi-{channel}-e2e-{uuid.uuid4().hex[:8]}"
    _webhook(
        stack,
        "workitem.assigned",
        {
            "workitemId": workitem_id,
            "channel": channel,
            "agentId": "agent-1",
            "customer": {"id": f"cust-{workitem_id}", "name": "Drew Caller"},
            "subject": "Billing question",
        },
    )
    return workitem_id


def _audio(room: dict[str, Any]) -> str:
    assert room["meetingId"] and room["attendeeId"] and room["joinToken"] and room["mediaRegion"]
    assert room["capabilities"]["video"] == "None" and room["capabilities"]["content"] == "None"
    audio: str = room["capabilities"]["audio"]
    return audio


def test_listen_whisper_barge_listen_then_customer_hang_up(stack: Stack) -> None:
    wid = _assign(stack)
    agent = stack.connect(stack.token("agent-1", "agent", name="Alex Agent"))
    sup = stack.connect(stack.token("sup-1", "supervisor", name="Sam Supervisor"))
    try:
        contact = agent.ok("voice.join", workitemId=wid)["contactRoom"]
        assert _audio(contact) == "SendReceive"

        sup.ok("monitor.start", workitemId=wid)
        agent.wait_event("coaching.joined", predicate=lambda f: f["data"]["workitemId"] == wid)

        # Listen: the supervisor hears both parties in the same contact room, heard by nobody.
        listening = sup.ok("voice.monitor", workitemId=wid)["contactRoom"]
        assert _audio(listening) == "Receive" and listening["meetingId"] == contact["meetingId"]

        # Whisper: a separate coach room; the agent is told to join it with Receive.
        coach = sup.ok("voice.whisper", workitemId=wid)["coachRoom"]
        assert _audio(coach) == "Send" and coach["meetingId"] != contact["meetingId"]
        pushed = agent.wait_event("voice.coach_room", predicate=lambda f: f["data"]["workitemId"] == wid)["data"]
        assert pushed["meetingId"] == coach["meetingId"] and _audio(pushed) == "Receive"
        assert pushed["attendeeId"] != coach["attendeeId"]

        # Barge: the coach room closes, the supervisor speaks to both in the contact room.
        barging = sup.ok("voice.barge", workitemId=wid)["contactRoom"]
        assert _audio(barging) == "SendReceive" and barging["attendeeId"] == listening["attendeeId"]
        closed = agent.wait_event("voice.coach_room_closed", predicate=lambda f: f["data"]["workitemId"] == wid)
        assert closed["data"] == {"workitemId": wid}

        # Listen again.
        back = sup.ok("voice.listen", workitemId=wid)["contactRoom"]
        assert _audio(back) == "Receive" and back["attendeeId"] == listening["attendeeId"]

        modes = [e["mode"] for e in sup.ok("timeline.get", workitemId=wid, after=0)["entries"] if e["kind"] == "voice_mode"]
        assert modes == ["monitor", "whisper", "barge", "listen"]

        # The customer hangs up: the routing engine ends the workitem and voice coaching ends (S14).
        _webhook(stack, "workitem.ended", {"workitemId": wid, "endedBy": "customer"})
        ended = sup.wait_event("coaching.ended", predicate=lambda f: f["data"]["workitemId"] == wid)
        assert ended["data"]["reason"] == "customer_hangup"

        # The rooms are gone with the call: voice actions on it are refused.
        assert agent.error("voice.join", "conflict", workitemId=wid)
        assert sup.error("voice.whisper", "conflict", workitemId=wid)
    finally:
        agent.close()
        sup.close()


def test_voice_actions_on_a_chat_workitem_are_invalid(stack: Stack) -> None:
    wid = _assign(stack, "chat")
    sup = stack.connect(stack.token("sup-1", "supervisor"))
    agent = stack.connect(stack.token("agent-1", "agent"))
    try:
        agent.error("voice.join", "invalid", workitemId=wid)
        sup.ok("monitor.start", workitemId=wid)
        sup.error("voice.whisper", "invalid", workitemId=wid)
        sup.ok("monitor.stop", workitemId=wid)
    finally:
        sup.close()
        agent.close()
        # Leave agent-1's workitem list as seeded for the other end-to-end tests.
        _webhook(stack, "workitem.ended", {"workitemId": wid, "endedBy": "agent"})


def test_the_local_transcript_route_reaches_the_agent_and_the_monitoring_supervisor(stack: Stack) -> None:
    """docs/transcript.md: POST /_local/voice/{tenantId}/{workitemId}/transcript hands the sink's record to
    the transcript function; the final line is stored once and pushed to the staff; a partial only pushed."""
    wid = _assign(stack)
    agent = stack.connect(stack.token("agent-1", "agent", name="Alex Agent"))
    sup = stack.connect(stack.token("sup-1", "supervisor", name="Sam Supervisor"))
    try:
        sup.ok("monitor.start", workitemId=wid)
        path = f"/_local/voice/{TENANT}/{wid}/transcript"
        partial = {"speaker": "customer", "text": "I was charged", "partial": True, "utteranceId": "u-1"}
        assert stack.rest("POST", path, None, partial) == (202, {"batchItemFailures": []})
        assert (
            sup.wait_event("transcript.partial", predicate=lambda f: f["data"]["workitemId"] == wid)["data"]["text"]
            == "I was charged"
        )
        final = {"speaker": "customer", "text": "I was charged twice for one order.", "utteranceId": "u-1"}
        assert stack.rest("POST", path, None, final) == (202, {"batchItemFailures": []})
        assert stack.rest("POST", path, None, final) == (202, {"batchItemFailures": []})  # redelivered: stored once
        for client in (agent, sup):
            line = client.wait_event("transcript.segment", predicate=lambda f: f["data"]["entry"]["workitemId"] == wid)
            assert (line["data"]["entry"]["speaker"], line["data"]["entry"]["text"]) == ("customer", final["text"])
        entries = sup.ok("timeline.get", workitemId=wid, after=0)["entries"]
        assert [e["text"] for e in entries if e["kind"] == "transcript"] == [final["text"]]
        status, body = stack.rest("POST", path, None, {"speaker": "supervisor", "text": "hi"})
        assert status == 400 and body["error"]["code"] == "invalid", body
    finally:
        agent.close()
        sup.close()
