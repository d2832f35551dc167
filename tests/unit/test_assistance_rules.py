"""The pure raise-hand rules (chalicelib.domain.assistance): recipients, delivery, claims, escalation."""

from __future__ import annotations

from dataclasses import replace

import pytest

from chalicelib.domain import assistance as rules
from chalicelib.domain.assistance import AlreadyClaimed, AssistStatus, Contact, Stage
from chalicelib.domain.errors import Conflict, Forbidden, Invalid, NotFound
from chalicelib.domain.identity import Principal, Role
from chalicelib.entrypoints.wire import WIRE
from chalicelib.services.results import AssistNote

pytestmark = pytest.mark.unit

NOW = 1_700_000_000


def sup(user_id: str, *, online: bool = True, ready: bool = True, notify: bool = True) -> Contact:
    return Contact(user_id, user_id.title(), Role.SUPERVISOR, online=online, available=online and ready, notify=notify)


def agent(user_id: str, *, online: bool = True, notify: bool = True) -> Contact:
    return Contact(user_id, user_id.title(), Role.AGENT, online=online, available=online, notify=notify)


def who(contacts: list[Contact]) -> list[str]:
    return [c.user_id for c in contacts]


def request(**overrides: object) -> rules.AssistanceRequest:
    base = rules.new_request(
        "t1", "as_1", "agent-1", "tpl-1", "Help", "wi-1", None, [sup("sup-1"), sup("sup-2")], "2026-01-01T00:00:00.000Z", NOW, 60
    )
    return replace(base, **overrides)  # type: ignore[arg-type]


P_AGENT = Principal("t1", "agent-1", Role.AGENT)
P_SUP1 = Principal("t1", "sup-1", Role.SUPERVISOR)
P_SUP2 = Principal("t1", "sup-2", Role.SUPERVISOR)


# --- templates ---------------------------------------------------------------------------------


def test_pick_template() -> None:
    templates = [("a", "Help", True), ("b", "Old", False)]
    assert rules.pick_template(templates, "a") == "Help"
    with pytest.raises(Invalid):
        rules.pick_template(templates, "b")
    with pytest.raises(NotFound):
        rules.pick_template(templates, "c")


def test_only_agents_ask() -> None:
    rules.require_agent(P_AGENT)
    for role in (Role.SUPERVISOR, Role.ADMIN, Role.CUSTOMER):
        with pytest.raises(Forbidden):
            rules.require_agent(Principal("t1", "x", role))


# --- recipients --------------------------------------------------------------------------------


TEAM = [sup("sup-1"), sup("sup-2", ready=False), sup("sup-3", online=False)]


def test_supervisors_means_online_and_available() -> None:
    assert who(rules.choose_recipients("agent-1", None, TEAM, None)) == ["sup-1"]
    assert rules.choose_recipients("agent-1", None, [sup("s", online=False)], None) == []


def test_one_supervisor_must_be_available() -> None:
    assert who(rules.choose_recipients("agent-1", "sup-1", TEAM, None)) == ["sup-1"]
    with pytest.raises(Conflict, match="not ready"):
        rules.choose_recipients("agent-1", "sup-2", TEAM, None)
    with pytest.raises(Conflict, match="offline"):
        rules.choose_recipients("agent-1", "sup-3", TEAM, None)


def test_supervisor_of_another_team_or_stranger_is_forbidden() -> None:
    with pytest.raises(Forbidden):
        rules.choose_recipients("agent-1", "sup-9", TEAM, sup("sup-9"))
    with pytest.raises(Forbidden):
        rules.choose_recipients("agent-1", "nobody", TEAM, None)
    admin = Contact("adm", "Adm", Role.ADMIN, online=True, available=True, notify=True)
    with pytest.raises(Forbidden):
        rules.choose_recipients("agent-1", "adm", TEAM, admin)


def test_a_logged_in_agent_of_the_tenant() -> None:
    assert who(rules.choose_recipients("agent-1", "agent-7", TEAM, agent("agent-7"))) == ["agent-7"]
    with pytest.raises(Conflict, match="not logged in"):
        rules.choose_recipients("agent-1", "agent-7", TEAM, agent("agent-7", online=False))
    with pytest.raises(Forbidden):
        rules.choose_recipients("agent-1", "agent-1", TEAM, agent("agent-1"))


def test_recipient_lists() -> None:
    assert who(rules.available_supervisors(TEAM)) == ["sup-1"]
    peers = [agent("agent-1"), agent("agent-2"), agent("agent-3", online=False), sup("sup-1")]
    assert who(rules.online_peers("agent-1", peers)) == ["agent-2"]


# --- delivery (S19) ------------------------------------------------------------------------------


def test_popup_for_notify_on_and_online_unread_for_everyone_else() -> None:
    d = rules.deliver([sup("a"), sup("b", notify=False), sup("c", online=False), sup("a")])
    assert d.popup == ("a",) and d.unread == ("b", "c")
    assert d.recipients == ["a", "b", "c"]
    assert rules.deliver([]).recipients == []


# --- new requests ------------------------------------------------------------------------------


def test_a_request_to_supervisors_is_due_after_the_delay() -> None:
    r = request()
    assert r.status is AssistStatus.PENDING and r.stage is Stage.INITIAL
    assert r.due_at == NOW + 60 and r.recipients == ("sup-1", "sup-2") and r.target == "supervisors"
    assert not r.is_due(NOW + 59) and r.is_due(NOW + 60)
    assert WIRE.plain(AssistNote(r)) == {"assistId": "as_1", "agentId": "agent-1", "text": "Help", "workitemId": "wi-1"}
    assert "workitemId" not in WIRE.plain(AssistNote(replace(r, workitem_id=None)))


def test_even_an_unheard_request_escalates() -> None:
    r = rules.new_request("t1", "as_1", "agent-1", "tpl", "Help", None, None, [], "now", NOW, 30)
    assert r.recipients == () and r.due_at == NOW + 30
    assert (r.tenant_id, r.assist_id, r.agent_id, r.template_id, r.text, r.created_at) == (
        "t1",
        "as_1",
        "agent-1",
        "tpl",
        "Help",
        "now",
    )


def test_a_request_to_a_fellow_agent_never_escalates() -> None:
    r = rules.new_request("t1", "as_1", "agent-1", "tpl", "Help", None, "agent-2", [agent("agent-2")], "now", NOW, 30)
    assert r.due_at is None and not r.escalates and rules.next_stage(r) is None
    one_sup = rules.new_request("t1", "as_2", "agent-1", "tpl", "Help", None, "sup-1", [sup("sup-1")], "now", NOW, 30)
    assert one_sup.due_at == NOW + 30 and one_sup.target == "sup-1"


def test_delay_is_at_least_one_second() -> None:
    r = rules.new_request("t1", "as_1", "agent-1", "tpl", "Help", None, None, [], "now", NOW, 0)
    assert r.due_at == NOW + 1


# --- claims (B4) -------------------------------------------------------------------------------


def test_a_recipient_supervisor_claims() -> None:
    r = request()
    rules.check_claim(P_SUP1, r)
    done = replace(r, status=AssistStatus.CLAIMED, claimed_by="sup-1", due_at=None)
    assert done.status is AssistStatus.CLAIMED and done.claimed_by == "sup-1" and not done.escalates
    assert r.due_at is not None and done.due_at is None  # off the escalation schedule (no due-index entry)
    with pytest.raises(AlreadyClaimed, match="sup-1"):
        rules.check_claim(P_SUP2, done)
    with pytest.raises(AlreadyClaimed, match="you"):
        rules.check_claim(P_SUP1, done)
    assert issubclass(AlreadyClaimed, Conflict)


def test_only_recipient_supervisors_or_admins_claim() -> None:
    r = request()
    with pytest.raises(Forbidden):
        rules.check_claim(P_AGENT, r)
    with pytest.raises(Forbidden):
        rules.check_claim(Principal("t1", "sup-9", Role.SUPERVISOR), r)
    with pytest.raises(Forbidden):  # a recipient agent (a peer request) answers by message instead
        rules.check_claim(Principal("t1", "agent-2", Role.AGENT), replace(r, recipients=("agent-2",)))
    rules.check_claim(Principal("t1", "adm", Role.ADMIN), replace(r, recipients=("adm",)))


def test_claim_audience_is_the_agent_and_every_recipient() -> None:
    assert rules.claim_audience(request()) == ["agent-1", "sup-1", "sup-2"]


# --- escalation (B4) ---------------------------------------------------------------------------


def test_escalation_stages_team_then_admins_then_exhausted() -> None:
    r = request()
    assert rules.next_stage(r) is Stage.TEAM
    team = rules.escalated(r, Stage.TEAM, ["sup-1", "sup-3"], NOW + 61)
    assert team.stage is Stage.TEAM and team.recipients == ("sup-1", "sup-2", "sup-3")
    assert team.due_at == NOW + 61 + 60
    assert rules.next_stage(team) is Stage.ADMINS
    admins = rules.escalated(team, Stage.ADMINS, ["adm"], NOW + 130)
    assert admins.recipients[-1] == "adm" and admins.due_at is None and not admins.escalates
    assert rules.next_stage(admins) is None
    assert rules.next_stage(replace(r, status=AssistStatus.CLAIMED, claimed_by="sup-1", due_at=None)) is None
    assert Stage.TEAM.label == "team" and Stage.ADMINS.label == "admins"


def test_escalation_audience_excludes_the_agent_and_duplicates() -> None:
    audience = rules.escalation_audience([sup("sup-1"), sup("sup-1"), agent("agent-1"), sup("sup-3", online=False)], "agent-1")
    assert who(audience) == ["sup-1", "sup-3"]
    # Presence does not matter at this stage; the offline one is reached by unread count.
    assert rules.deliver(audience).unread == ("sup-3",)


# --- directory messages ------------------------------------------------------------------------


def test_direct_message_checks() -> None:
    target = agent("agent-2")
    rules.check_direct_message(P_SUP1, "agent-2", "hi", target, True)
    with pytest.raises(Forbidden):
        rules.check_direct_message(Principal("t1", "c", Role.CUSTOMER, "wi-1"), "agent-2", "hi", target, True)
    with pytest.raises(Invalid):
        rules.check_direct_message(P_SUP1, "sup-1", "hi", sup("sup-1"), True)
    with pytest.raises(Invalid):
        rules.check_direct_message(P_SUP1, "agent-2", " \n ", target, True)
    with pytest.raises(NotFound):
        rules.check_direct_message(P_SUP1, "agent-2", "hi", None, False)
    with pytest.raises(NotFound):
        rules.check_direct_message(P_SUP1, "agent-2", "hi", target, False)
