"""A fresh tenant on the shared local stack, set up as an admin and a routing engine would."""

from __future__ import annotations

import contextlib
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tests.e2e.conftest import Stack
    from tests.e2e.wsclient import WsClient


class Tenant:
    """Users and teams through the admin REST routes, workitems through signed webhooks."""

    def __init__(self, stack: Stack) -> None:
        self.stack = stack
        self.tid = f"e2e-{uuid.uuid4().hex}"
        self.admin_token = stack.token("admin-1", "admin", tid=self.tid)
        self.clients: list[WsClient] = []

    # -- setup ------------------------------------------------------------------------------------

    def admin(self, method: str, path: str, body: Any = None) -> Any:
        status, payload = self.stack.rest(method, path, self.admin_token, body)
        assert 200 <= status < 300, (method, path, status, payload)
        return payload

    def users(self, *users: tuple[str, str]) -> None:
        """``(userId, role)`` each, in parallel."""
        with ThreadPoolExecutor(max_workers=8) as pool:
            list(pool.map(lambda u: self.admin("PUT", f"/admin/users/{u[0]}", {"name": u[0].title(), "role": u[1]}), users))

    def team(self, team_id: str, supervisors: tuple[str, ...], agents: tuple[str, ...]) -> None:
        self.admin(
            "PUT", f"/admin/teams/{team_id}", {"name": team_id.title(), "supervisors": list(supervisors), "agents": list(agents)}
        )

    def teams(self, *teams: tuple[str, tuple[str, ...], tuple[str, ...]]) -> None:
        """``(teamId, supervisors, agents)`` each: the users first, then the teams (requests in parallel)."""
        self.users(
            *[(u, "supervisor") for _, sups, _ in teams for u in sups], *[(u, "agent") for _, _, agents in teams for u in agents]
        )
        with ThreadPoolExecutor(max_workers=8) as pool:
            list(pool.map(lambda team: self.team(*team), teams))

    def template(self, template_id: str, text: str, enabled: bool = True) -> None:
        self.admin("PUT", f"/admin/templates/{template_id}", {"text": text, "enabled": enabled})

    def webhook(self, type_: str, data: dict[str, Any]) -> tuple[int, Any]:
        """A routing-engine event for this tenant, signed with the stack's webhook secret."""
        return self.stack.post_webhook({"eventId": f"ev-{uuid.uuid4().hex}", "tenantId": self.tid, "type": type_, "data": data})

    def assign(self, workitem_id: str, channel: str = "chat", agent_id: str = "agent-1") -> str:
        status, body = self.webhook(
            "workitem.assigned",
            {
                "workitemId": workitem_id,
                "channel": channel,
                "agentId": agent_id,
                "customer": {"id": f"cust-{workitem_id}", "name": "Casey Customer"},
                "subject": "Order 1042",
            },
        )
        assert status == 200, (status, body)
        return workitem_id

    # -- parties ----------------------------------------------------------------------------------

    def token(self, sub: str, role: str, wid: str | None = None) -> str:
        return self.stack.token(sub, role, tid=self.tid, wid=wid)

    def connect(self, sub: str, role: str, wid: str | None = None) -> WsClient:
        client = self.stack.connect(self.token(sub, role, wid))
        self.clients.append(client)
        return client

    def customer(self, workitem_id: str) -> WsClient:
        return self.connect(f"cust-{workitem_id}", "customer", wid=workitem_id)

    def notify(self, user: str, role: str, on: bool) -> None:
        status, body = self.stack.rest("PUT", "/me/settings", self.token(user, role), {"agentMessageNotification": on})
        assert status == 200 and body == {"agentMessageNotification": on}, (status, body)

    def close(self) -> None:
        for client in self.clients:
            with contextlib.suppress(Exception):  # a socket the server closed already
                client.close()
