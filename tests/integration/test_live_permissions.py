"""Live permissions (`W6.4`, `W6.5`): a supervisor taken off an agent's team (or demoted) loses access at once.

The admin's change itself ends the supervisor's monitors of the agent's workitems and their watch of
the agent before it returns (and a retried change finishes what a failed one began); every other
supervisor action asks the directory as it is now.
"""

from __future__ import annotations

import pytest

from chalicelib.adapters.dynamo import DirectoryEdge
from chalicelib.services.messagebus import SupervisionLost
from tests.support.world import Client, World

# Tier: from the world fixture's backend (service on memory, integration on moto; tests/conftest.py).


def coached(world: World) -> tuple[Client, Client, Client, Client]:
    """sup-1 monitors wi-1 and watches agent-1; sup-2 monitors too; a customer is on the chat."""
    world.team(supervisors=("sup-1", "sup-2"), agents=("agent-1", "agent-2"))
    world.assign("wi-1")
    agent = world.connect("agent-1", "agent")
    sup1 = world.connect("sup-1", "supervisor")
    sup2 = world.connect("sup-2", "supervisor")
    customer = world.connect("cust-wi-1", "customer", wid="wi-1")
    sup1.ok("agent.watch", agentId="agent-1")
    sup1.ok("monitor.start", workitemId="wi-1")
    sup2.ok("monitor.start", workitemId="wi-1")
    for c in (agent, sup1, sup2, customer):
        c.new_events()
    return agent, sup1, sup2, customer


def assert_locked_out(world: World, sup: Client, token: str) -> None:
    sup.fails("coach.send", "forbidden", workitemId="wi-1", text="still here?")
    sup.fails("timeline.get", "forbidden", workitemId="wi-1", after=0)
    sup.fails("monitor.start", "forbidden", workitemId="wi-1")
    sup.fails("workitems.list", "forbidden", agentId="agent-1")
    sup.fails("agent.watch", "forbidden", agentId="agent-1")
    assert world.rest("GET", "/workitems/wi-1/timeline", token)[0] == 403
    assert world.rest("GET", "/workitems/wi-1/export", token)[0] == 403
    assert world.rest("GET", "/agents/agent-1/workitems", token)[0] == 403


def test_removed_from_team_ends_monitors_and_watch(world: World) -> None:
    agent, sup1, sup2, customer = coached(world)
    world.admin("PUT", "/admin/teams/team-1", {"name": "team-1", "supervisors": ["sup-2"], "agents": ["agent-1", "agent-2"]})

    ended = sup1.new_events("coaching.ended")
    assert [e["data"]["workitemId"] for e in ended] == ["wi-1"]
    assert ended[0]["data"]["reason"] == "permissions"
    assert ended[0]["data"]["entry"]["kind"] == "coaching_ended"
    left = [e["data"] for e in agent.new_events("coaching.left")]
    assert [d["supervisorId"] for d in left] == ["sup-1"]
    assert [e["data"]["supervisorId"] for e in sup2.new_events("coaching.left")] == ["sup-1"]

    entries = agent.ok("timeline.get", workitemId="wi-1", after=0)["entries"]
    kinds = [(e["kind"], e.get("reason")) for e in entries[-2:]]
    assert kinds == [("supervisor_left", "permissions"), ("coaching_ended", "permissions")]
    wi = agent.ok("workitems.list", agentId="agent-1")["workitems"][0]
    assert wi["coaching"] == {"active": True, "supervisors": ["sup-2"]}

    assert_locked_out(world, sup1, world.token("sup-1", "supervisor"))

    # No more pushes about agent-1's work: neither the conversation nor the watch.
    customer.ok("message.send", workitemId="wi-1", text="are you there?")
    world.assign("wi-2")
    assert sup1.new_events() == []
    assert [e["event"] for e in sup2.new_events()] == ["message.received"]
    # sup-2 is unaffected.
    sup2.ok("coach.send", workitemId="wi-1", text="keep going")


def test_kept_when_still_supervising_through_another_team(world: World) -> None:
    _, sup1, _, _ = coached(world)
    world.admin("PUT", "/admin/teams/team-2", {"name": "team-2", "supervisors": ["sup-1"], "agents": ["agent-1"]})
    world.admin("PUT", "/admin/teams/team-1", {"name": "team-1", "supervisors": ["sup-2"], "agents": ["agent-1", "agent-2"]})
    assert sup1.new_events("coaching.ended") == []
    sup1.ok("coach.send", workitemId="wi-1", text="still my agent")
    world.assign("wi-2")
    assert [e["event"] for e in sup1.new_events("workitem.assigned")] == ["workitem.assigned"]


def test_a_failed_clean_up_is_finished_by_the_retried_admin_request(world: World) -> None:
    _, sup1, _, _ = coached(world)
    body = {"name": "team-1", "supervisors": ["sup-2"], "agents": ["agent-1", "agent-2"]}
    real = world.services.coaching.on_supervision_lost

    def crash(*args: object) -> None:
        raise RuntimeError("the Lambda timed out here")

    world.services.bus.handlers[SupervisionLost][:] = [crash]
    status, _ = world.rest("PUT", "/admin/teams/team-1", world.token("admin-1", "admin"), body)
    assert status == 500
    world.services.bus.handlers[SupervisionLost][:] = [real]
    world.admin("PUT", "/admin/teams/team-1", body)  # the admin (or their client) retries
    assert [e["data"]["reason"] for e in sup1.new_events("coaching.ended")] == ["permissions"]
    sup1.fails("coach.send", "forbidden", workitemId="wi-1", text="hello")


def test_a_demotion_retried_after_a_failed_clean_up_finishes_it(world: World) -> None:
    _, sup1, _, _ = coached(world)
    real = world.services.coaching.on_supervision_lost

    def crash(*args: object) -> None:
        raise RuntimeError("the Lambda timed out here")

    world.services.bus.handlers[SupervisionLost][:] = [crash]
    assert world.rest("PUT", "/admin/users/sup-1", world.token("admin-1", "admin"), {"name": "Sup-1", "role": "agent"})[0] == 500
    world.services.bus.handlers[SupervisionLost][:] = [real]
    world.admin("PUT", "/admin/users/sup-1", {"name": "Sup-1", "role": "agent"})
    assert [e["data"]["reason"] for e in sup1.new_events("coaching.ended")] == ["permissions"]


@pytest.mark.moto
def test_monitor_start_racing_a_team_change_is_undone(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    """The supervisor passed the check, then the admin removed them and cleaned up before the join
    was committed: the join is undone after the commit and the supervisor refused."""
    world.team(supervisors=("sup-1", "sup-2"), agents=("agent-1",))
    world.assign("wi-1")
    agent = world.connect("agent-1", "agent")
    sup1 = world.connect("sup-1", "supervisor")
    directory = world.services.coaching.directory
    real = directory.supervises
    answers = iter([True])  # the check inside the decision still saw the edge

    def supervises(tenant_id: str, supervisor_id: str, agent_id: str) -> bool:
        return next(answers, None) or real(tenant_id, supervisor_id, agent_id)

    for edge in DirectoryEdge.query("T#t1#A#agent-1", DirectoryEdge.sk.startswith("S#sup-1#")):
        edge.delete()
    monkeypatch.setattr(directory, "supervises", supervises)
    sup1.fails("monitor.start", "forbidden", workitemId="wi-1")
    assert agent.ok("workitems.list", agentId="agent-1")["workitems"][0]["coaching"]["supervisors"] == []
    assert [e["data"]["reason"] for e in sup1.events("coaching.ended")] == ["permissions"]
    sup1.fails("coach.send", "forbidden", workitemId="wi-1", text="sneaky")


def test_supervisor_demoted_to_agent_cannot_monitor_with_an_old_token(world: World) -> None:
    _, sup1, _, _ = coached(world)
    world.admin("PUT", "/admin/users/sup-1", {"name": "Sup-1", "role": "agent"})

    ended = sup1.new_events("coaching.ended")
    assert [(e["data"]["workitemId"], e["data"]["reason"]) for e in ended] == [("wi-1", "permissions")]
    assert_locked_out(world, sup1, world.token("sup-1", "supervisor"))
    fresh = world.connect("sup-1", "supervisor")  # an old supervisor token, a new connection
    fresh.fails("monitor.start", "forbidden", workitemId="wi-1")
    assert fresh.ok("agents.list") == {"agents": [], "nextCursor": None}

    # Promoted again: the team membership the admin set still stands.
    world.admin("PUT", "/admin/users/sup-1", {"name": "Sup-1", "role": "supervisor"})
    fresh.ok("monitor.start", workitemId="wi-1")
    assert [a["userId"] for a in fresh.ok("agents.list")["agents"]] == ["agent-1", "agent-2"]


def test_renaming_a_supervisor_changes_nothing(world: World) -> None:
    _, sup1, _, _ = coached(world)
    world.admin("PUT", "/admin/users/sup-1", {"name": "Sam", "role": "supervisor"})
    assert sup1.new_events("coaching.ended") == []
    sup1.ok("coach.send", workitemId="wi-1", text="still here")


def test_an_admin_demoted_in_the_directory_loses_admin_routes(world: World) -> None:
    world.admin("PUT", "/admin/users/admin-3", {"name": "Third Admin", "role": "admin"})  # not the last one
    world.admin("PUT", "/admin/users/admin-2", {"name": "Second Admin", "role": "admin"})
    old = world.token("admin-2", "admin")
    assert world.rest("GET", "/admin/templates", old)[0] == 200
    world.admin("PUT", "/admin/users/admin-2", {"name": "Second Admin", "role": "agent"})
    status, body = world.rest("GET", "/admin/templates", old)
    assert status == 403 and body["error"]["code"] == "forbidden"
    # An admin who is not a directory user (an admin need not be one) keeps working.
    assert world.rest("GET", "/admin/templates", world.token("admin-1", "admin"))[0] == 200


@pytest.mark.moto
def test_agent_watch_racing_a_team_change_is_taken_back(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    world.team(supervisors=("sup-1", "sup-2"), agents=("agent-1",))
    sup1 = world.connect("sup-1", "supervisor")
    directory = world.services.directory.directory
    real = directory.supervises
    answers = iter([True])  # the first check still saw the edge

    def supervises(tenant_id: str, supervisor_id: str, agent_id: str) -> bool:
        return next(answers, None) or real(tenant_id, supervisor_id, agent_id)

    for edge in DirectoryEdge.query("T#t1#A#agent-1", DirectoryEdge.sk.startswith("S#sup-1#")):
        edge.delete()
    monkeypatch.setattr(directory, "supervises", supervises)
    sup1.fails("agent.watch", "forbidden", agentId="agent-1")
    world.assign("wi-1")
    assert sup1.events("workitem.assigned") == []
