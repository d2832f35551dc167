"""Who is who: connections and presence, users and teams, settings, templates and tenant policy."""

from __future__ import annotations

import logging
from typing import Any

from chalicelib.domain.errors import Conflict, Forbidden, Invalid, NotFound, Unauthorized
from chalicelib.domain.identity import ADMINS_TO_SEE, Principal, Role, other_admin_to_keep, user_key
from chalicelib.domain.sentiment import LANGUAGES
from chalicelib.services import push_events as ev
from chalicelib.services.clock import now_pair
from chalicelib.services.delivery import Notifier
from chalicelib.services.messagebus import PresenceChanged, Publisher, SupervisionLost
from chalicelib.services.paging import DEFAULT_LIMIT, page, scope_of, workitem_page
from chalicelib.services.ports import (
    Clock,
    Connection,
    ConnectionRegistry,
    Directory,
    Policy,
    Presence,
    Recipient,
    Team,
    Template,
    Watcher,
    WorkitemStore,
)
from chalicelib.services.results import (
    AgentId,
    AgentPage,
    AgentRow,
    NotificationSetting,
    PresenceState,
    UserSaved,
    WorkitemPage,
)

log = logging.getLogger(__name__)

MAX_TEAM_SUPERVISORS = 25
MAX_TEAM_AGENTS = 500
MAX_TEAM_EDGES = 2500
MAX_TEAM_USERS = 500


def require_admin(caller: Principal) -> None:
    if caller.role is not Role.ADMIN:
        raise Forbidden("only admins may do this")


class DirectoryService:
    def __init__(
        self,
        directory: Directory,
        registry: ConnectionRegistry,
        store: WorkitemStore,
        notifier: Notifier,
        clock: Clock,
        publish: Publisher,
    ) -> None:
        self.directory = directory
        self.registry = registry
        self.store = store
        self.notifier = notifier
        self.clock = clock
        self._publish = publish

    # --- connections and presence -------------------------------------------------------------

    def connect(self, caller: Principal, connection: Connection, *, register: bool) -> None:
        """$connect: remember the connection on the caller's recipient (and in the registry when
        frames will arrive without the authorizer's context). A customer's token must name a workitem
        of its tenant that exists (1 GetItem, before anything is written): Forbidden otherwise."""
        if caller.is_customer and self.store.get(caller.tenant_id, caller.workitem_id or "") is None:
            raise Forbidden("the workitem of this customer token does not exist")
        if register:
            self.registry.put(caller, connection)
        recipient = self.directory.connect(caller, connection)
        if caller.is_customer:
            return
        if caller.federated and not recipient.in_directory:  # first sight of an issuer's user (W9.3)
            self.directory.enroll(caller, self._now())
        if caller.revoked_by(recipient.revoked_at):
            # Read back from the update that added the connection, so a revocation racing this
            # $connect either saw the connection (and closed it) or is seen here.
            self.directory.disconnect(caller, connection)
            if register:
                self.registry.delete(connection.connection_id)
            raise Unauthorized("the token was revoked; sign in again")
        _, now_ms = now_pair(self.clock)
        others = [c for c in recipient.live(now_ms) if c.connection_id != connection.connection_id]
        if not others:
            # Coming online: "available until they set otherwise" (docs/product.md W4.7).
            if recipient.presence_state is not Presence.AVAILABLE:
                recipient = self.directory.set_presence(caller.tenant_id, caller.user_id, Presence.AVAILABLE)
            self._presence_changed(caller.tenant_id, recipient, Presence.AVAILABLE, connection.connection_id)

    def registered_caller(self, connection: Connection) -> Principal | None:
        """The caller $connect registered for a connection whose frames carry no authorizer context
        (1 GetItem), or None when it never connected."""
        return self.registry.get(connection.connection_id)

    def disconnect(self, caller: Principal, connection: Connection, *, registered: bool) -> None:
        recipient = self.directory.disconnect(caller, connection)
        if registered:
            self.registry.delete(connection.connection_id)
        if recipient is None or caller.is_customer:
            return
        _, now_ms = now_pair(self.clock)
        if not recipient.live(now_ms):
            self._presence_changed(caller.tenant_id, recipient, Presence.OFFLINE, connection.connection_id)

    def _presence_changed(self, tenant_id: str, recipient: Recipient, state: Presence, exclude: str | None) -> None:
        self._publish(PresenceChanged(tenant_id, recipient.user_id, state))
        if not recipient.watchers:
            return
        box = self.notifier.outbox(tenant_id, exclude)
        box.to_watchers(recipient, ev.PRESENCE_CHANGED, PresenceState(recipient.user_id, state.value))
        self.notifier.flush(box)

    def set_presence(self, caller: Principal, state: str, connection_id: str | None = None) -> PresenceState:
        if caller.is_customer:
            raise Forbidden("customers have no presence")
        try:
            value = Presence(state)
        except ValueError as exc:
            raise Invalid("state must be available or not_ready") from exc
        if value is Presence.OFFLINE:
            raise Invalid("state must be available or not_ready")
        recipient = self.directory.set_presence(caller.tenant_id, caller.user_id, value)
        self._presence_changed(caller.tenant_id, recipient, value, connection_id)
        return PresenceState(None, value.value)

    # --- supervisors' views ----------------------------------------------------------------

    def agents(self, caller: Principal, limit: int = DEFAULT_LIMIT, cursor: str | None = None) -> AgentPage:
        """``agents.list``, one page by agent id: 1 Query (edges) + 1 BatchGetItem per 100 agents of the page."""
        if caller.role is not Role.SUPERVISOR:
            raise Forbidden("only supervisors may list their agents")
        scope = scope_of("agents.list", caller.tenant_id, caller.user_id)
        # The page is cut by id first (names and presence are not needed to order it) ...
        ids, next_cursor = page(
            self.directory.agents_of(caller.tenant_id, caller.user_id),
            lambda a: (a,),
            lambda a: self.notifier.wire.plain(AgentId(a)),
            scope,
            limit,
            cursor,
        )
        agent_ids = [a for a, _ in ids]
        recipients: dict[str, Recipient] = {}
        for i in range(0, len(agent_ids), 100):
            recipients.update(self.directory.recipients(caller.tenant_id, [user_key(a) for a in agent_ids[i : i + 100]]))
        _, now_ms = now_pair(self.clock)
        out = []
        for agent_id in agent_ids:
            recipient = recipients.get(user_key(agent_id))
            out.append(
                AgentRow(
                    agent_id,
                    (recipient.name if recipient else None) or agent_id,
                    (recipient.presence(now_ms) if recipient else Presence.OFFLINE).value,
                    recipient.workitem_count if recipient else 0,
                )
            )
        # ... and shortened when the names make it too large for one reply (names are at most 256 characters).
        rows, short_cursor = page(out, lambda a: (a.user_id,), self.notifier.wire.plain, scope, limit, None)
        if short_cursor is not None:
            next_cursor = short_cursor
        return AgentPage([body for _, body in rows], next_cursor)

    def watch(
        self,
        caller: Principal,
        agent_id: str,
        connection: Connection,
        add: bool,
        limit: int = DEFAULT_LIMIT,
        cursor: str | None = None,
    ) -> dict[str, Any] | WorkitemPage:
        """``agent.watch`` / ``agent.unwatch``. The first page of workitems is built (and a bad cursor or an
        item too large for a reply refused) before the watch is registered: a refused watch registers nothing."""
        if caller.role is not Role.SUPERVISOR:
            raise Forbidden("only supervisors may watch agents")
        if add and not self.directory.supervises(caller.tenant_id, caller.user_id, agent_id):
            raise Forbidden("you do not supervise this agent")
        watcher = Watcher(connection, caller.user_id)
        reply: dict[str, Any] | WorkitemPage = {}
        if add:  # the page is built (a bad cursor refused) before the watch is registered
            reply = workitem_page(
                self.store.open_for_agent(caller.tenant_id, agent_id),
                scope_of("agent.watch", caller.tenant_id, caller.user_id, agent_id),
                limit,
                cursor,
                self.notifier.wire.plain,
            )
        self.directory.watch(caller.tenant_id, agent_id, watcher, add)
        if not add:
            return {}
        if not self.directory.supervises(caller.tenant_id, caller.user_id, agent_id):
            # An admin's change landed between the check and the write, and its clean-up may have
            # read the watchers before this one was added: take it back (1 Query).
            self.directory.watch(caller.tenant_id, agent_id, watcher, False)
            raise Forbidden("you no longer supervise this agent")
        return reply

    # --- admin ------------------------------------------------------------------------------

    def put_user(self, caller: Principal, user_id: str, name: str, role: str) -> UserSaved:
        require_admin(caller)
        try:
            value = Role(role)
        except ValueError as exc:
            raise Invalid("role must be admin, supervisor or agent") from exc
        if value is Role.CUSTOMER:
            raise Invalid("customers are not directory users")
        if user_id == caller.user_id and value is not Role.ADMIN:  # W3.8: nobody locks themselves out
            raise Conflict("you cannot take away your own admin role; another admin can")
        self._store_user(caller.tenant_id, user_id, name, value)
        lost = self.directory.role_changed(caller.tenant_id, user_id, value)
        self._supervision_lost(caller.tenant_id, [(user_id, agent_id) for agent_id in lost])
        return UserSaved(user_id, name, value.value)

    def _store_user(self, tenant_id: str, user_id: str, name: str, role: Role) -> None:
        """The tenant keeps a directory admin (W3.8): a role other than admin is stored only while
        another directory admin exists (1 Query of the admin index, for the first two), conditional on
        that admin still being there. A concurrent demotion that took it away makes the check run
        again (and the last admin's demotion is then refused)."""
        for _ in range(3):
            keep = None
            if role is not Role.ADMIN:
                keep = other_admin_to_keep(user_id, self.directory.admins(tenant_id, limit=ADMINS_TO_SEE))
            try:
                self.directory.put_user(tenant_id, user_id, name, role, self._now(), keep_admin=keep)
                return
            except Conflict:
                if keep is None:
                    raise
        raise Conflict("the tenant's admins changed while this request ran; retry")

    def put_team(self, caller: Principal, team_id: str, name: str, supervisors: list[str], agents: list[str]) -> Team:
        require_admin(caller)
        sups, ags = list(dict.fromkeys(supervisors)), list(dict.fromkeys(agents))
        if (
            len(sups) > MAX_TEAM_SUPERVISORS
            or len(ags) > MAX_TEAM_AGENTS
            or len(sups) + len(ags) > MAX_TEAM_USERS
            or len(sups) * len(ags) > MAX_TEAM_EDGES
        ):
            raise Invalid(
                f"a team has at most {MAX_TEAM_USERS} users: {MAX_TEAM_SUPERVISORS} supervisors, "
                f"{MAX_TEAM_AGENTS} agents and {MAX_TEAM_EDGES} supervisor-agent pairs"
            )
        # Every member is checked, whatever the team's size: 1 BatchGetItem per 100 members (no Scan).
        members = [(u, Role.SUPERVISOR) for u in sups] + [(u, Role.AGENT) for u in ags]
        keys = list(dict.fromkeys(user_key(u) for u, _ in members))
        known: dict[str, Recipient] = {}
        for i in range(0, len(keys), 100):
            known.update(self.directory.recipients(caller.tenant_id, keys[i : i + 100]))
        for uid, want in members:
            recipient = known.get(user_key(uid))
            # A well-formed team the directory does not allow (yet): a conflict with its state, not bad input.
            if recipient is None or not recipient.in_directory:
                raise Conflict(f"user {uid} is not in the directory; PUT /admin/users/{uid} first")
            if recipient.role is not want and not (want is Role.SUPERVISOR and recipient.role is Role.ADMIN):
                raise Conflict(f"user {uid} is a {recipient.role.value if recipient.role else 'user'}, not a {want.value}")
        team = Team(team_id, name, sups, ags)
        self.directory.put_team(
            caller.tenant_id, team, self._now(), removed=lambda pairs: self._pairs_removed(caller.tenant_id, pairs)
        )
        return team

    def _pairs_removed(self, tenant_id: str, removed: list[tuple[str, str]]) -> None:
        """A pair a team no longer links may still be linked by another team: 1 strongly consistent
        Query per removed pair (the index by supervisor could still show the edges just deleted),
        then the clean-up of the pairs that are gone."""
        self._supervision_lost(
            tenant_id, [(sup, agent) for sup, agent in removed if not self.directory.supervises(tenant_id, sup, agent)]
        )

    def _supervision_lost(self, tenant_id: str, pairs: list[tuple[str, str]]) -> None:
        """Live permissions, applied before the admin's request returns: each supervisor's watch of
        the agent stops (the agents' recipients in one BatchGetItem per 100, + 1 UpdateItem per pair
        with watchers) and their monitors of the agent's workitems end. Costs follow the pairs that
        changed, never the tenant's size; a failed or retried admin request runs it again for the
        same pairs."""
        keys = list(dict.fromkeys(user_key(agent_id) for _, agent_id in pairs))
        recipients: dict[str, Recipient] = {}
        for i in range(0, len(keys), 100):
            recipients.update(self.directory.recipients(tenant_id, keys[i : i + 100], consistent=True))
        for supervisor_id, agent_id in pairs:
            key = user_key(agent_id)
            recipient = recipients.get(key)
            stale = [w for w in recipient.watchers if w.supervisor_id == supervisor_id] if recipient else []
            if stale:
                self.directory.forget(tenant_id, key, [], stale)
            self._publish(SupervisionLost(tenant_id, supervisor_id, agent_id))

    def put_template(self, caller: Principal, template_id: str, text: str, enabled: bool) -> Template:
        require_admin(caller)
        if not text.strip():
            raise Invalid("text must not be empty")
        template = Template(template_id, text, enabled)
        self.directory.put_template(caller.tenant_id, template, self._now())
        return template

    def delete_template(self, caller: Principal, template_id: str) -> None:
        require_admin(caller)
        if not self.directory.delete_template(caller.tenant_id, template_id):
            raise NotFound(f"template {template_id} not found")

    def list_templates(self, caller: Principal) -> dict[str, Any]:
        require_admin(caller)
        return {"templates": self.directory.templates(caller.tenant_id)}

    def put_policy(
        self,
        caller: Principal,
        record_coaching: bool,
        escalation_seconds: int,
        retention_days: int,
        sentiment_language: str = "en",
        transcribe_calls: bool = False,
    ) -> Policy:
        require_admin(caller)
        if sentiment_language not in LANGUAGES:
            raise Invalid(f"sentiment language must be one of {', '.join(LANGUAGES)}")
        policy = Policy(
            record_coaching,
            escalation_seconds,
            retention_days,
            sentiment_language=sentiment_language,
            transcribe_calls=transcribe_calls,
        )
        self.directory.put_policy(caller.tenant_id, policy, self._now())
        return policy

    def get_policy(self, caller: Principal) -> Policy:
        require_admin(caller)
        return self.directory.policy(caller.tenant_id)

    def set_webhook_secret(self, caller: Principal, secret: str) -> None:
        require_admin(caller)
        self.directory.set_webhook_secret(caller.tenant_id, secret, self._now())

    # --- settings ---------------------------------------------------------------------------

    def get_settings(self, caller: Principal) -> NotificationSetting:
        if caller.is_customer:
            raise Forbidden("customers have no directory settings")
        recipient = self.directory.recipient(caller.tenant_id, user_key(caller.user_id))
        return NotificationSetting(recipient.notify if recipient else True)

    def put_settings(self, caller: Principal, notify: bool) -> NotificationSetting:
        if caller.is_customer:
            raise Forbidden("customers have no directory settings")
        recipient = self.directory.set_notify(caller.tenant_id, caller.user_id, notify)
        return NotificationSetting(recipient.notify)

    def _now(self) -> str:
        return now_pair(self.clock)[0]
