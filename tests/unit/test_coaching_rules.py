"""The coaching state machine (docs/product.md S5-S7, S9-S14, B3) on pure Workitem objects: no storage, no clock.

Every rule returns a Change; these tests apply it by hand (``after`` becomes the next state and the
entries are appended to a local timeline), which is exactly what the service commits.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chalicelib.domain import coaching as rules
from chalicelib.domain.coaching import Change, Channel, EndedBy, EndReason, Reaction, Status, Workitem
from chalicelib.domain.errors import Conflict, DomainError, Forbidden, Invalid
from chalicelib.domain.identity import Principal, Role
from chalicelib.domain.timeline import CUSTOMER_VISIBLE, EntryKind, TimelineEntry
from chalicelib.entrypoints import wire

pytestmark = pytest.mark.unit

NOW = "2026-01-01T10:00:00.000Z"
LATER = "2026-01-01T10:05:00.000Z"

AGENT = Principal("t1", "agent-1", Role.AGENT)
OTHER_AGENT = Principal("t1", "agent-2", Role.AGENT)
SUP1 = Principal("t1", "sup-1", Role.SUPERVISOR)
SUP2 = Principal("t1", "sup-2", Role.SUPERVISOR)
ADMIN = Principal("t1", "admin-1", Role.ADMIN)
CUSTOMER = Principal("t1", "cust-1", Role.CUSTOMER, workitem_id="wi-1")
OTHER_CUSTOMER = Principal("t1", "cust-2", Role.CUSTOMER, workitem_id="wi-2")


def make(channel: Channel = Channel.CHAT, **overrides: Any) -> Workitem:
    base: dict[str, Any] = dict(
        tenant_id="t1",
        workitem_id="wi-1",
        channel=channel,
        agent_id="agent-1",
        customer_id="cust-1",
        customer_name="Casey",
        created_at=NOW,
    )
    base.update(overrides)
    return Workitem(**base)


class Run:
    """A workitem and its timeline, advanced one committed Change at a time."""

    def __init__(self, workitem: Workitem) -> None:
        self.w = workitem
        self.entries: list[TimelineEntry] = []
        self._mid = 0

    def mid(self) -> str:
        self._mid += 1
        return f"msg-{self._mid}"

    def apply(self, change: Change) -> Change:
        assert change.before is self.w, "a rule must judge the state it was given"
        if change.changed:
            assert change.after.version == self.w.version + 1
        else:
            assert not change.entries
        self.w = change.after
        self.entries.extend(change.entries)
        return change

    def do(self, rule: Callable[..., Change], *args: Any) -> Change:
        """Run ``rule`` on the current state and check it did not touch that state (purity)."""
        snapshot = copy.deepcopy(self.w)
        try:
            change = rule(*args)
        finally:
            assert self.w == snapshot, "a rule mutated the workitem it was given"
        return self.apply(change)

    # shorthands ------------------------------------------------------------------------------
    def start(self, who: Principal = SUP1, supervises: bool = True) -> Change:
        return self.do(lambda: rules.start_monitoring(who, self.w, supervises, NOW))

    def stop(self, who: Principal = SUP1) -> Change:
        return self.do(lambda: rules.stop_monitoring(who, self.w, NOW, supervises_agent=True))

    def coach(self, who: Principal, text: str = "try offering a refund") -> Change:
        mid = self.mid()
        return self.do(lambda: rules.send_coach_message(who, self.w, text, mid, NOW, supervises_agent=True))

    def say(self, who: Principal, text: str = "hello") -> Change:
        mid = self.mid()
        return self.do(lambda: rules.send_message(who, self.w, text, mid, NOW))

    def react(self, message: TimelineEntry, reaction: Reaction | None, who: Principal = AGENT) -> Change:
        return self.do(lambda: rules.react(who, self.w, message, reaction, NOW))

    def forward(self, message: TimelineEntry, who: Principal = AGENT) -> Change:
        mid = self.mid()
        return self.do(lambda: rules.forward(who, self.w, message, mid, NOW))

    def end(self, ended_by: EndedBy, actor: str = "agent-1", role: Role = Role.AGENT) -> Change:
        return self.do(lambda: rules.end_workitem(self.w, ended_by, actor, role, LATER))

    def end_coaching(self, who: Principal = AGENT) -> Change:
        return self.do(lambda: rules.end_coaching(who, self.w, LATER))

    def transfer(self, to: str = "agent-2") -> Change:
        return self.do(lambda: rules.transfer(self.w, to, self.w.agent_id, Role.AGENT, LATER))


def assert_contiguous(entries: list[TimelineEntry]) -> None:
    assert [e.seq for e in entries] == list(range(1, len(entries) + 1))
    visible = [e for e in entries if e.kind in CUSTOMER_VISIBLE]
    assert [e.customer_seq for e in visible] == list(range(1, len(visible) + 1))
    assert all(e.customer_seq is None for e in entries if e.kind not in CUSTOMER_VISIBLE)


@pytest.fixture
def run() -> Run:
    return Run(make())


# --- monitoring (S5, S6, B3) -----------------------------------------------------------------------


def test_start_monitoring_adds_a_joined_line_and_makes_coaching_active(run: Run) -> None:
    change = run.start()
    assert change.changed and run.w.coaching_active
    assert run.w.monitors == {"sup-1": NOW}
    (entry,) = change.entries
    assert entry.kind is EntryKind.SUPERVISOR_JOINED and entry.seq == 1 and entry.at == NOW
    assert entry.author_id == "sup-1" and entry.author_role is Role.SUPERVISOR
    assert entry.extra == {"supervisorId": "sup-1", "agentId": "agent-1"} and entry.customer_seq is None
    assert run.w.version == 1 and run.w.seq == 1 and run.w.customer_seq == 0
    assert change.ended_for == [] and change.end_reason is None


def test_start_monitoring_is_idempotent(run: Run) -> None:
    run.start()
    again = run.start()
    assert not again.changed and again.entries == [] and again.after is again.before
    assert run.w.version == 1 and run.w.seq == 1 and len(run.entries) == 1


@pytest.mark.parametrize("who", [AGENT, OTHER_AGENT, ADMIN, CUSTOMER], ids=lambda p: p.role.value)
def test_only_supervisors_monitor(run: Run, who: Principal) -> None:
    with pytest.raises(Forbidden):
        rules.start_monitoring(who, run.w, True, NOW)


def test_a_supervisor_of_another_team_may_not_monitor(run: Run) -> None:
    with pytest.raises(Forbidden):
        rules.start_monitoring(SUP1, run.w, False, NOW)


def test_permission_is_checked_before_state_on_monitor_start() -> None:
    ended = make(status=Status.ENDED)
    with pytest.raises(Forbidden):
        rules.start_monitoring(SUP1, ended, False, NOW)
    with pytest.raises(Forbidden):
        rules.start_monitoring(AGENT, ended, True, NOW)
    with pytest.raises(Conflict):
        rules.start_monitoring(SUP1, ended, True, NOW)


def test_stop_monitoring_adds_a_left_line(run: Run) -> None:
    run.start()
    change = run.stop()
    (entry,) = change.entries
    assert entry.kind is EntryKind.SUPERVISOR_LEFT and entry.seq == 2 and entry.author_id == "sup-1"
    assert entry.extra == {"supervisorId": "sup-1"}
    assert not run.w.coaching_active and run.w.version == 2
    # Leaving by one's own monitor.stop is not "coaching ended for" that supervisor.
    assert change.ended_for == [] and change.end_reason is None
    assert_contiguous(run.entries)


def test_stop_monitoring_when_not_monitoring_is_a_conflict(run: Run) -> None:
    with pytest.raises(Conflict):
        rules.stop_monitoring(SUP1, run.w, NOW, supervises_agent=True)
    run.start(SUP2)
    with pytest.raises(Conflict):
        rules.stop_monitoring(SUP1, run.w, NOW, supervises_agent=True)


def test_a_supervisor_of_another_team_stopping_is_forbidden_whatever_the_state(run: Run) -> None:
    with pytest.raises(Forbidden):
        rules.stop_monitoring(SUP1, run.w, NOW, supervises_agent=False)
    run.start(SUP2)
    with pytest.raises(Forbidden):
        rules.stop_monitoring(SUP1, run.w, NOW, supervises_agent=False)
    # A monitoring supervisor may always leave (even if since removed from the team).
    run.start(SUP1)
    assert run.do(lambda: rules.stop_monitoring(SUP1, run.w, NOW, supervises_agent=False)).changed


@pytest.mark.parametrize("who", [AGENT, ADMIN, CUSTOMER], ids=lambda p: p.role.value)
def test_only_supervisors_stop_monitoring(run: Run, who: Principal) -> None:
    run.start()
    with pytest.raises(Forbidden):
        rules.stop_monitoring(who, run.w, NOW)


def test_b3_many_supervisors_monitor_at_once(run: Run) -> None:
    run.start(SUP1)
    run.start(SUP2)
    assert set(run.w.monitors) == {"sup-1", "sup-2"}
    assert wire.workitem(run.w)["coaching"] == {"active": True, "supervisors": ["sup-1", "sup-2"]}
    run.stop(SUP1)
    assert run.w.coaching_active and set(run.w.monitors) == {"sup-2"}
    run.stop(SUP2)
    assert not run.w.coaching_active
    assert [e.kind for e in run.entries] == [
        EntryKind.SUPERVISOR_JOINED,
        EntryKind.SUPERVISOR_JOINED,
        EntryKind.SUPERVISOR_LEFT,
        EntryKind.SUPERVISOR_LEFT,
    ]
    assert_contiguous(run.entries)
    assert run.w.version == 4


def test_a_supervisor_may_join_an_ended_workitem_while_coaching_goes_on(run: Run) -> None:
    run.start(SUP1)
    run.end(EndedBy.CUSTOMER, "cust-1", Role.CUSTOMER)
    assert run.w.status is Status.ENDED and run.w.is_open
    run.start(SUP2)
    assert set(run.w.monitors) == {"sup-1", "sup-2"}


# --- coach messages (S3, S5, S7, B3) ---------------------------------------------------------------


def test_a_monitoring_supervisor_coaches(run: Run) -> None:
    run.start()
    change = run.coach(SUP1, "offer the refund")
    entry = change.entry
    assert entry.kind is EntryKind.COACH_MESSAGE and entry.seq == 2 and entry.customer_seq is None
    assert entry.author_id == "sup-1" and entry.author_role is Role.SUPERVISOR
    assert entry.text == "offer the refund" and entry.message_id == "msg-1"
    assert wire.entry(entry)["authorRole"] == "supervisor"  # S7: clients highlight supervisor messages
    assert run.w.customer_seq == 0


def test_the_agent_coaches_back_while_someone_monitors(run: Run) -> None:
    run.start()
    entry = run.coach(AGENT, "ok, will do").entry
    assert entry.author_id == "agent-1" and entry.author_role is Role.AGENT
    assert entry.kind is EntryKind.COACH_MESSAGE


@pytest.mark.parametrize("channel", [Channel.VOICE, Channel.EMAIL])
def test_text_coaching_refused_on_voice_and_email(channel: Channel) -> None:
    run = Run(make(channel))
    run.start()  # monitoring itself is allowed on any channel (S1, S4)
    for who in (SUP1, AGENT):
        with pytest.raises(Forbidden):
            rules.send_coach_message(who, run.w, "psst", "m", NOW)


@pytest.mark.parametrize("channel", [Channel.CHAT, Channel.SMS, Channel.SOCIAL])
def test_text_coaching_allowed_on_digital_messaging(channel: Channel) -> None:
    run = Run(make(channel))
    run.start()
    assert run.coach(SUP1).entry.kind is EntryKind.COACH_MESSAGE


def test_coaching_when_nobody_monitors_is_a_conflict(run: Run) -> None:
    with pytest.raises(Conflict):
        rules.send_coach_message(AGENT, run.w, "anyone?", "m", NOW)
    with pytest.raises(Conflict):
        rules.send_coach_message(SUP1, run.w, "hi", "m", NOW, supervises_agent=True)


def test_s5_a_supervisor_must_monitor_before_coaching(run: Run) -> None:
    run.start(SUP2)
    with pytest.raises(Conflict):
        rules.send_coach_message(SUP1, run.w, "hi", "m", NOW, supervises_agent=True)
    run.start(SUP1)
    assert run.coach(SUP1).entry.author_id == "sup-1"


def test_a_supervisor_of_another_team_coaching_is_forbidden_whatever_the_state(run: Run) -> None:
    with pytest.raises(Forbidden):
        rules.send_coach_message(SUP1, run.w, "hi", "m", NOW, supervises_agent=False)
    run.start(SUP2)
    with pytest.raises(Forbidden):
        rules.send_coach_message(SUP1, run.w, "hi", "m", NOW, supervises_agent=False)
    voice = make(Channel.VOICE)
    with pytest.raises(Forbidden):
        rules.send_coach_message(SUP1, voice, "hi", "m", NOW, supervises_agent=False)


@pytest.mark.parametrize("who", [OTHER_AGENT, ADMIN, CUSTOMER], ids=["other-agent", "admin", "customer"])
def test_others_may_not_coach(run: Run, who: Principal) -> None:
    run.start()
    with pytest.raises(Forbidden):
        rules.send_coach_message(who, run.w, "hi", "m", NOW)


def test_empty_coach_text_is_invalid(run: Run) -> None:
    run.start()
    with pytest.raises(Invalid):
        rules.send_coach_message(SUP1, run.w, "   \n", "m", NOW, supervises_agent=True)


def test_coaching_goes_on_after_the_customer_leaves_a_digital_workitem(run: Run) -> None:
    run.start()
    run.end(EndedBy.CUSTOMER, "cust-1", Role.CUSTOMER)
    assert run.coach(SUP1).entry.kind is EntryKind.COACH_MESSAGE
    assert run.coach(AGENT).entry.kind is EntryKind.COACH_MESSAGE


# --- reactions (S9) --------------------------------------------------------------------------------


def test_the_agent_reacts_changes_and_clears(run: Run) -> None:
    run.start()
    message = run.coach(SUP1).entry
    up = run.react(message, Reaction.THUMBS_UP).entry
    assert up.kind is EntryKind.REACTION and up.message_id == message.message_id and up.reaction == "thumbs_up"
    assert up.author_id == "agent-1" and up.author_role is Role.AGENT and up.customer_seq is None
    down = run.react(message, Reaction.THUMBS_DOWN).entry
    assert down.reaction == "thumbs_down"
    cleared = run.react(message, None).entry
    assert cleared.reaction is None
    assert "reaction" in wire.entry(cleared) and wire.entry(cleared)["reaction"] is None  # JSON null, not absent
    assert_contiguous(run.entries)


@pytest.mark.parametrize(
    "who", [SUP1, SUP2, OTHER_AGENT, CUSTOMER, ADMIN], ids=["monitoring-sup", "sup", "other-agent", "customer", "admin"]
)
def test_only_the_agent_reacts(run: Run, who: Principal) -> None:
    run.start()
    message = run.coach(SUP1).entry
    with pytest.raises(Forbidden):
        rules.react(who, run.w, message, Reaction.THUMBS_UP, NOW)


def test_reactions_only_on_supervisor_coach_messages(run: Run) -> None:
    run.start()
    own = run.coach(AGENT).entry
    customer = run.say(CUSTOMER).entry
    joined = run.entries[0]
    for message in (own, customer, joined):
        with pytest.raises(Invalid):
            rules.react(AGENT, run.w, message, Reaction.THUMBS_UP, NOW)


# --- forward (S10) ---------------------------------------------------------------------------------


def test_forward_sends_the_exact_text_linked_to_its_source(run: Run) -> None:
    run.say(CUSTOMER, "where is my parcel?")
    run.start()
    text = "  Sorry — it ships *today* 📦\n(ref #42)  "
    source = run.coach(SUP1, text).entry
    forwarded = run.forward(source).entry
    assert forwarded.kind is EntryKind.AGENT_MESSAGE and forwarded.text == text
    assert forwarded.forwarded_from == source.message_id and forwarded.message_id != source.message_id
    assert forwarded.author_id == "agent-1" and forwarded.author_role is Role.AGENT
    assert forwarded.customer_seq == 2 and forwarded.seq == 4
    assert wire.entry(forwarded)["forwardedFrom"] == source.message_id
    assert run.w.customer_seq == 2
    with pytest.raises(dataclasses.FrozenInstanceError):
        forwarded.text = "edited"  # type: ignore[misc]  # immutable once sent


def test_forward_twice_makes_two_messages(run: Run) -> None:
    run.start()
    source = run.coach(SUP1, "same text").entry
    a, b = run.forward(source).entry, run.forward(source).entry
    assert a.text == b.text == "same text" and a.message_id != b.message_id
    assert (a.customer_seq, b.customer_seq) == (1, 2)


def test_only_the_agent_forwards_supervisor_messages(run: Run) -> None:
    run.start()
    source = run.coach(SUP1).entry
    for who in (SUP1, OTHER_AGENT, CUSTOMER):
        with pytest.raises(Forbidden):
            rules.forward(who, run.w, source, "m", NOW)
    own = run.coach(AGENT).entry
    with pytest.raises(Invalid):
        rules.forward(AGENT, run.w, own, "m", NOW)
    customer = run.say(CUSTOMER).entry
    with pytest.raises(Invalid):
        rules.forward(AGENT, run.w, customer, "m", NOW)


def test_no_forward_once_the_customer_has_left(run: Run) -> None:
    run.start()
    source = run.coach(SUP1).entry
    run.end(EndedBy.CUSTOMER, "cust-1", Role.CUSTOMER)
    with pytest.raises(Conflict):
        rules.forward(AGENT, run.w, source, "m", NOW)


# --- the conversation ------------------------------------------------------------------------------


def test_customer_and_agent_messages_are_numbered_for_the_customer(run: Run) -> None:
    first = run.say(CUSTOMER, "hi").entry
    assert first.kind is EntryKind.CUSTOMER_MESSAGE and first.author_id == "cust-1"
    assert first.author_role is Role.CUSTOMER and (first.seq, first.customer_seq) == (1, 1)
    run.start()
    run.coach(SUP1)
    reply = run.say(AGENT, "hello!").entry
    assert reply.kind is EntryKind.AGENT_MESSAGE and (reply.seq, reply.customer_seq) == (4, 2)
    assert_contiguous(run.entries)


def test_a_customer_writes_only_on_their_own_workitem(run: Run) -> None:
    with pytest.raises(Forbidden):
        rules.send_message(OTHER_CUSTOMER, run.w, "hi", "m", NOW)


@pytest.mark.parametrize("who", [OTHER_AGENT, SUP1, ADMIN], ids=["other-agent", "supervisor", "admin"])
def test_only_the_agent_and_the_customer_converse(run: Run, who: Principal) -> None:
    run.start()
    with pytest.raises(Forbidden):
        rules.send_message(who, run.w, "hi", "m", NOW)


def test_no_conversation_after_the_end(run: Run) -> None:
    run.end(EndedBy.AGENT)
    for who in (AGENT, CUSTOMER):
        with pytest.raises(Conflict):
            rules.send_message(who, run.w, "hi", "m", NOW)
    with pytest.raises(Forbidden):  # permission first, whatever the state
        rules.send_message(OTHER_CUSTOMER, run.w, "hi", "m", NOW)


def test_empty_message_is_invalid(run: Run) -> None:
    with pytest.raises(Invalid):
        rules.send_message(AGENT, run.w, "", "m", NOW)


# --- transfer (S13) --------------------------------------------------------------------------------


def test_transfer_ends_coaching_for_every_supervisor(run: Run) -> None:
    run.start(SUP2)
    run.start(SUP1)
    change = run.transfer("agent-2")
    assert run.w.agent_id == "agent-2" and change.before.agent_id == "agent-1"
    assert not run.w.coaching_active and run.w.status is Status.ACTIVE
    assert change.ended_for == ["sup-1", "sup-2"] and change.end_reason is EndReason.TRANSFERRED
    (entry,) = change.entries
    assert entry.kind is EntryKind.COACHING_ENDED and entry.author_id == "agent-1"
    assert entry.extra == {"reason": "transferred", "supervisors": ["sup-1", "sup-2"]}
    assert_contiguous(run.entries)


def test_transfer_without_coaching_appends_nothing(run: Run) -> None:
    change = run.transfer("agent-2")
    assert change.changed and change.entries == [] and change.ended_for == [] and change.end_reason is None
    assert run.w.agent_id == "agent-2" and run.w.version == 1


def test_transfer_refusals(run: Run) -> None:
    with pytest.raises(Invalid):
        rules.transfer(run.w, "agent-1", "agent-1", Role.AGENT, NOW)
    run.end(EndedBy.AGENT)
    with pytest.raises(Conflict):
        rules.transfer(run.w, "agent-2", "agent-1", Role.AGENT, NOW)


def test_after_a_transfer_the_new_agent_owns_the_workitem(run: Run) -> None:
    run.transfer("agent-2")
    with pytest.raises(Forbidden):
        rules.send_message(AGENT, run.w, "still mine?", "m", NOW)
    assert run.say(OTHER_AGENT, "hi, I take over").entry.author_id == "agent-2"


# --- end of the interaction (S13, S14) -------------------------------------------------------------


@pytest.mark.parametrize(
    ("ended_by", "actor", "role"), [(EndedBy.AGENT, "agent-1", Role.AGENT), (EndedBy.SYSTEM, "system", Role.ADMIN)]
)
@pytest.mark.parametrize("channel", list(Channel))
def test_agent_or_system_end_stops_coaching(ended_by: EndedBy, actor: str, role: Role, channel: Channel) -> None:
    run = Run(make(channel))
    run.start(SUP1)
    run.start(SUP2)
    change = run.end(ended_by, actor, role)
    assert run.w.status is Status.ENDED and run.w.ended_by is ended_by and run.w.ended_at == LATER
    assert not run.w.coaching_active and not run.w.is_open
    assert change.ended_for == ["sup-1", "sup-2"] and change.end_reason is EndReason.ENDED
    (entry,) = change.entries
    assert entry.kind is EntryKind.COACHING_ENDED and entry.extra["reason"] == "ended" and entry.author_id == actor


@pytest.mark.parametrize("channel", [Channel.CHAT, Channel.SMS, Channel.SOCIAL, Channel.EMAIL])
def test_s14_customer_ending_a_digital_interaction_keeps_coaching(channel: Channel) -> None:
    run = Run(make(channel))
    run.start()
    change = run.end(EndedBy.CUSTOMER, "cust-1", Role.CUSTOMER)
    assert run.w.status is Status.ENDED and run.w.ended_by is EndedBy.CUSTOMER
    assert run.w.coaching_active and run.w.is_open  # still listed for the agent
    assert change.entries == [] and change.ended_for == [] and change.end_reason is None
    assert run.w.version == 2
    # ... until the agent (or the supervisor) ends it.
    ended = run.end_coaching(AGENT)
    assert ended.ended_for == ["sup-1"] and ended.end_reason is EndReason.AGENT
    assert not run.w.is_open


def test_s14_customer_hanging_up_a_call_ends_coaching() -> None:
    run = Run(make(Channel.VOICE))
    run.start()
    change = run.end(EndedBy.CUSTOMER, "cust-1", Role.CUSTOMER)
    assert not run.w.coaching_active and not run.w.is_open
    assert change.ended_for == ["sup-1"] and change.end_reason is EndReason.CUSTOMER_HANGUP
    assert change.entry.kind is EntryKind.COACHING_ENDED and change.entry.extra["reason"] == "customer_hangup"


def test_s14_supervisor_leaving_after_the_customer_closes_the_workitem(run: Run) -> None:
    run.start()
    run.end(EndedBy.CUSTOMER, "cust-1", Role.CUSTOMER)
    run.stop()
    assert not run.w.is_open


def test_end_without_coaching_and_twice(run: Run) -> None:
    change = run.end(EndedBy.AGENT)
    assert change.entries == [] and change.ended_for == [] and change.end_reason is None
    assert run.w.status is Status.ENDED and not run.w.is_open
    for by in EndedBy:
        with pytest.raises(Conflict):
            rules.end_workitem(run.w, by, "x", Role.AGENT, NOW)


# --- the agent ends coaching (S12) -----------------------------------------------------------------


def test_the_agent_ends_coaching_for_everyone(run: Run) -> None:
    run.start(SUP1)
    run.start(SUP2)
    change = run.end_coaching()
    assert change.ended_for == ["sup-1", "sup-2"] and change.end_reason is EndReason.AGENT
    assert change.entry.extra == {"reason": "agent", "supervisors": ["sup-1", "sup-2"]}
    assert change.entry.author_id == "agent-1" and change.entry.author_role is Role.AGENT
    assert not run.w.coaching_active and run.w.status is Status.ACTIVE
    with pytest.raises(Conflict):  # S12: the agent stops receiving coach messages
        rules.send_coach_message(SUP1, run.w, "still there?", "m", NOW, supervises_agent=True)


@pytest.mark.parametrize("who", [SUP1, OTHER_AGENT, CUSTOMER, ADMIN], ids=["sup", "other-agent", "customer", "admin"])
def test_only_the_agent_ends_coaching(run: Run, who: Principal) -> None:
    run.start()
    with pytest.raises(Forbidden):
        rules.end_coaching(who, run.w, NOW)


def test_end_coaching_without_coaching(run: Run) -> None:
    with pytest.raises(Conflict):
        rules.end_coaching(AGENT, run.w, NOW)
    with pytest.raises(Forbidden):  # permission before state
        rules.end_coaching(SUP1, run.w, NOW)


# --- consult (S11) ---------------------------------------------------------------------------------


def test_s11_no_consult_while_coaching(run: Run) -> None:
    rules.check_consult(AGENT, run.w, "agent-2")  # does not raise
    run.start()
    with pytest.raises(Conflict):
        rules.check_consult(AGENT, run.w, "agent-2")
    with pytest.raises(Conflict):
        rules.check_consult(AGENT, run.w, "sup-1")
    run.stop()
    rules.check_consult(AGENT, run.w, "sup-1")  # does not raise


def test_consult_refusals(run: Run) -> None:
    with pytest.raises(Invalid):
        rules.check_consult(AGENT, run.w, "agent-1")
    run.start()
    for who in (OTHER_AGENT, SUP1, CUSTOMER):
        with pytest.raises(Forbidden):  # permission before the coaching state
            rules.check_consult(who, run.w, "agent-3")
    run.stop()
    run.end(EndedBy.AGENT)
    with pytest.raises(Conflict):
        rules.check_consult(AGENT, run.w, "agent-2")


# --- other features' entries -----------------------------------------------------------------------


def test_record_appends_one_numbered_entry(run: Run) -> None:
    run.say(CUSTOMER)
    change = run.do(lambda: rules.record(run.w, EntryKind.VOICE_MODE, "sup-1", Role.SUPERVISOR, NOW, mode="whisper"))
    assert change.entry.seq == 2 and change.entry.customer_seq is None and change.entry.extra == {"mode": "whisper"}


def test_wire_form_of_a_workitem() -> None:
    w = make(Channel.SMS, subject="Refund", monitors={"sup-2": NOW, "sup-1": NOW})
    w.monitor_names = {"sup-1": "Sam One"}  # sup-2 joined before names were kept: named by id
    assert wire.workitem(w) == {
        "workitemId": "wi-1",
        "channel": "sms",
        "agentId": "agent-1",
        "customer": {"id": "cust-1", "name": "Casey"},
        "subject": "Refund",
        "status": "active",
        "createdAt": NOW,
        "coaching": {"active": True, "supervisors": ["sup-1", "sup-2"]},
        "lastActivityAt": NOW,
        "waitingSince": None,
        "monitoredBy": [{"userId": "sup-1", "name": "Sam One"}, {"userId": "sup-2", "name": "sup-2"}],
        "lastMessage": None,
    }


# --- property: any sequence of rule calls keeps both numberings contiguous ---------------------------

ACTORS: dict[str, Principal] = {
    "agent-2": OTHER_AGENT,
    "sup-1": SUP1,
    "sup-2": SUP2,
    "sup-3": Principal("t1", "sup-3", Role.SUPERVISOR),
    "admin": ADMIN,
    "customer": CUSTOMER,
    "other-customer": OTHER_CUSTOMER,
}
SUPERVISED_BY = {"sup-1", "sup-2"}  # sup-3 supervises nobody
# Repeated names weight the draw so that most runs coach, react and forward before anything ends.
OPS = (
    ["start"] * 3
    + ["coach"] * 5
    + ["say"] * 2
    + ["react"] * 3
    + ["forward"] * 3
    + ["stop", "transfer", "end", "end_coaching", "consult", "record"]
)
# Who normally calls each operation; one step in five picks any other caller instead (to be refused).
USUAL: dict[str, list[str]] = {
    "start": ["sup-1", "sup-2"],
    "stop": ["sup-1", "sup-2"],
    "coach": ["sup-1", "sup-2", "agent"],
    "say": ["agent", "customer"],
    "react": ["agent"],
    "forward": ["agent"],
    "transfer": ["agent"],
    "end": ["agent", "customer"],
    "end_coaching": ["agent"],
    "consult": ["agent"],
    "record": ["sup-1", "agent"],
}

step = st.tuples(
    st.sampled_from(OPS),
    st.integers(min_value=0, max_value=4),  # 0: an unusual caller
    st.sampled_from(["agent", *ACTORS]),
    st.integers(min_value=0, max_value=40),
    st.sampled_from([None, *Reaction]),
    st.sampled_from(list(EndedBy)),
    st.sampled_from(["hi", "offer a voucher", " ", "agent-1", "agent-2", "agent-3"]),
)


def _actor(op: str, unusual: int, other: str, index: int, w: Workitem) -> Principal:
    usual = USUAL[op]
    name = other if unusual == 0 else usual[index % len(usual)]
    return Principal("t1", w.agent_id, Role.AGENT) if name == "agent" else ACTORS[name]


def _call(run: Run, op: str, who: Principal, index: int, reaction: Reaction | None, by: EndedBy, text: str) -> Change:
    w = run.w
    coached = [e for e in run.entries if e.kind is EntryKind.COACH_MESSAGE and e.author_role is Role.SUPERVISOR]
    pool = coached if coached and index % 4 else run.entries  # mostly a supervisor's message, sometimes anything
    target = pool[index % len(pool)] if pool else None
    supervises = who.user_id in SUPERVISED_BY
    if op == "start":
        return rules.start_monitoring(who, w, supervises, NOW)
    if op == "stop":
        return rules.stop_monitoring(who, w, NOW, supervises_agent=supervises)
    if op == "coach":
        return rules.send_coach_message(who, w, text, run.mid(), NOW, supervises_agent=supervises)
    if op == "say":
        return rules.send_message(who, w, text, run.mid(), NOW)
    if op in ("react", "forward"):
        if target is None:
            raise Invalid("nothing to point at")
        if op == "react":
            return rules.react(who, w, target, reaction, NOW)
        return rules.forward(who, w, target, run.mid(), NOW)
    if op == "transfer":
        return rules.transfer(w, text if text.startswith("agent") else "agent-2", who.user_id, who.role, NOW)
    if op == "end":
        return rules.end_workitem(w, by, who.user_id, who.role, NOW)
    if op == "end_coaching":
        return rules.end_coaching(who, w, NOW)
    if op == "consult":
        rules.check_consult(who, w, text)
        return Change(w, w)
    return rules.record(w, EntryKind.ASSIST_REQUESTED, who.user_id, who.role, NOW, assistId="as-1")


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(channel=st.sampled_from(list(Channel)), steps=st.lists(step, min_size=3, max_size=40))
def test_property_numbering_stays_contiguous(channel: Channel, steps: list[tuple[Any, ...]]) -> None:
    run = Run(make(channel))
    committed = 0
    for op, unusual, other, index, reaction, by, text in steps:
        before = run.w
        was_active = before.coaching_active
        try:
            who = _actor(op, unusual, other, index, run.w)
            change = run.do(lambda: _call(run, op, who, index, reaction, by, text))
        except DomainError:
            assert run.w is before
            continue
        # State invariants after every committed step.
        assert run.w.seq == len(run.entries)
        assert run.w.customer_seq == sum(1 for e in run.entries if e.kind in CUSTOMER_VISIBLE)
        for entry in change.entries:
            if entry.kind is EntryKind.COACH_MESSAGE:
                assert was_active and channel in rules.TEXT_COACHING_CHANNELS
            if entry.kind is EntryKind.COACHING_ENDED:
                assert sorted(entry.extra["supervisors"]) == change.ended_for == sorted(before.monitors)
                assert entry.extra["reason"] in {r.value for r in EndReason}
        if change.ended_for:
            assert not run.w.coaching_active and change.end_reason is not None
        if change.changed:
            committed += 1
        # S13/S14: once the agent or the system ended it (or a caller hung up), nobody coaches any more.
        if run.w.status is Status.ENDED and (run.w.ended_by is not EndedBy.CUSTOMER or channel is Channel.VOICE):
            assert not run.w.coaching_active and not run.w.is_open
    assert_contiguous(run.entries)
    assert run.w.version == committed


# --- live permissions (issue 11) --------------------------------------------------------------------


def test_revoking_a_monitor_ends_their_coaching_with_the_usual_entries(run: Run) -> None:
    run.start(SUP1)
    run.start(SUP2)
    change = run.do(lambda: rules.revoke_monitoring(run.w, "sup-1", NOW))
    assert change.ended_for == ["sup-1"] and change.end_reason is EndReason.PERMISSIONS
    assert [(e.kind, e.extra.get("reason")) for e in change.entries] == [
        (EntryKind.SUPERVISOR_LEFT, "permissions"),
        (EntryKind.COACHING_ENDED, "permissions"),
    ]
    assert change.entries[-1].extra["supervisors"] == ["sup-1"]
    assert list(run.w.monitors) == ["sup-2"] and run.w.coaching_active


def test_revoking_a_supervisor_who_is_not_monitoring_changes_nothing(run: Run) -> None:
    run.start(SUP2)
    change = run.do(lambda: rules.revoke_monitoring(run.w, "sup-1", NOW))
    assert not change.changed


def test_losing_the_right_to_supervise_ends_that_supervisors_monitoring_with_both_lines() -> None:
    w = make(monitors={"sup-1": NOW, "sup-2": NOW}, seq=4, version=3)
    change = rules.revoke_monitoring(w, "sup-1", LATER)
    assert change.after.monitors == {"sup-2": NOW} and w.monitors == {"sup-1": NOW, "sup-2": NOW}
    assert [(e.seq, e.kind, e.author_id, e.author_role, e.at, e.extra) for e in change.entries] == [
        (5, EntryKind.SUPERVISOR_LEFT, "sup-1", Role.SUPERVISOR, LATER, {"supervisorId": "sup-1", "reason": "permissions"}),
        (6, EntryKind.COACHING_ENDED, "sup-1", Role.SUPERVISOR, LATER, {"reason": "permissions", "supervisors": ["sup-1"]}),
    ]
    assert (change.ended_for, change.end_reason) == (["sup-1"], EndReason.PERMISSIONS)
    assert change.after.seq == 6 and change.after.version == 4
    # Someone who was not monitoring: nothing changes.
    unchanged = rules.revoke_monitoring(w, "sup-9", LATER)
    assert unchanged.after == w and unchanged.entries == [] and unchanged.ended_for == []


def test_viewing_needs_the_right_standing_and_an_entry_is_dated_when_it_happens() -> None:
    w = make()
    rules.require_view(SUP1, w, True)  # supervises the agent
    with pytest.raises(Forbidden):
        rules.require_view(SUP1, w, False)
    said = rules.integration_message(w, "customer", "hello", "m-1", LATER)
    moved = rules.transfer(make(monitors={"sup-1": NOW}), "agent-2", "system", Role.ADMIN, LATER)
    assert [e.at for e in said.entries] == [LATER] and said.entries[0].author_id == "cust-1"
    assert moved.after.agent_id == "agent-2" and [e.at for e in moved.entries] == [LATER] * len(moved.entries) != []


def test_every_rule_dates_its_entries_with_the_time_it_is_given() -> None:
    coached = make(monitors={"sup-1": NOW})
    tip = rules.send_coach_message(SUP1, coached, "psst", "m-1", LATER).entries[0]
    changes = {
        "start_monitoring": rules.start_monitoring(SUP1, make(), True, LATER),
        "stop_monitoring": rules.stop_monitoring(SUP1, coached, LATER),
        "end_coaching": rules.end_coaching(AGENT, coached, LATER),
        "send_coach_message": rules.send_coach_message(SUP1, coached, "psst", "m-1", LATER),
        "react": rules.react(AGENT, coached, tip, Reaction.THUMBS_UP, LATER),
        "forward": rules.forward(AGENT, coached, tip, "m-2", LATER),
        "send_message": rules.send_message(AGENT, coached, "hi", "m-3", LATER),
        "end_workitem": rules.end_workitem(coached, EndedBy.AGENT, "agent-1", Role.AGENT, LATER),
        "record": rules.record(coached, EntryKind.ASSIST_REQUESTED, "agent-1", Role.AGENT, LATER, assistId="as_1"),
    }
    for name, change in changes.items():
        assert change.entries and [e.at for e in change.entries] == [LATER] * len(change.entries), name
    # A supervisor coaches only while monitoring, whatever their standing: the default is "not theirs".
    with pytest.raises(DomainError):
        rules.send_coach_message(SUP2, make(), "psst", "m-9", LATER)
    assert changes["end_workitem"].ended_for == ["sup-1"]
    quiet = rules.end_workitem(make(), EndedBy.AGENT, "agent-1", Role.AGENT, LATER)
    assert quiet.ended_for == [] and quiet.after.status is Status.ENDED
    left = rules.end_workitem(coached, EndedBy.CUSTOMER, "cust-1", Role.CUSTOMER, LATER)  # a chat: coaching goes on
    assert left.ended_for == [] and left.end_reason is None and left.after.monitors == {"sup-1": NOW}
