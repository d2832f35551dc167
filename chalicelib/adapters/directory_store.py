"""The directory table behind the ``Directory`` port (``chalicelib.services.ports``): users and
customers as recipients of pushes (with their live connections and watchers), teams and supervision
edges, templates, policy, unread counts and directory messages.

Every method documents the DynamoDB requests it makes; docs/data-model.md sums them per action and
tests/integration/test_request_budget.py holds the code to those sums.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from pynamodb.exceptions import DoesNotExist, TransactWriteError, UpdateError
from pynamodb.expressions.update import Action
from pynamodb.transactions import TransactWrite

from chalicelib.adapters.dynamo import (
    AdminItem,
    DirectoryEdge,
    DirectoryMessageItem,
    PolicyItem,
    RecipientItem,
    TeamItem,
    TemplateItem,
    UnreadItem,
)
from chalicelib.adapters.pynamodb_compat import low_level
from chalicelib.adapters.store_keys import (
    cancel_codes,
    expiry,
    recipient_pk,
    tenant_prefix,
)
from chalicelib.domain.errors import Conflict
from chalicelib.domain.identity import Principal, Role, user_key
from chalicelib.services.ports import (
    Connection,
    Policy,
    Presence,
    Recipient,
    Team,
    Template,
    Watcher,
)
from chalicelib.services.results import DirectMessage
from chalicelib.settings import Settings


def to_recipient(item: RecipientItem, key: str) -> Recipient:
    try:
        presence = Presence(item.presence) if item.presence else Presence.AVAILABLE
    except ValueError:
        presence = Presence.AVAILABLE
    role = None
    if item.role:
        try:
            role = Role(item.role)
        except ValueError:
            role = None
    return Recipient(
        tenant_id=item.tenant_id,
        key=key,
        user_id=item.user_id,
        role=role,
        name=item.name,
        in_directory=bool(item.in_directory),
        notify=item.notify is not False,
        presence_state=presence,
        connections=sorted((Connection.parse(t) for t in (item.conns or set())), key=lambda c: c.connected_at),
        watchers=[Watcher.parse(t) for t in sorted(item.watchers or set())],
        workitem_count=max(0, int(item.workitem_count or 0)),
        unread_total=max(0, int(item.unread_total or 0)),
        revoked_at=int(item.revoked_at) if item.revoked_at is not None else None,
    )


def _role(raw: Any) -> Role | None:
    try:
        return Role(raw) if raw else None
    except ValueError:
        return None


SUPERVISING_ROLES = (Role.SUPERVISOR, Role.ADMIN)
# Edges that count: those of a supervisor whose role allows supervising.
_ACTIVE_EDGE = DirectoryEdge.suspended.does_not_exist()


class DynamoDirectory:
    """Users, customer recipients, teams and supervision edges, templates, policy, unread counts."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings

    # recipients and users

    def recipients(self, tenant_id: str, keys: Iterable[str], consistent: bool = False) -> dict[str, Recipient]:
        """1 BatchGetItem (up to 100 keys; the ports never ask for more)."""
        wanted = {recipient_pk(tenant_id, k): k for k in dict.fromkeys(keys)}
        if not wanted:
            return {}
        out: dict[str, Recipient] = {}
        for item in RecipientItem.batch_get([(pk, "U") for pk in wanted], consistent_read=consistent):
            out[wanted[item.pk]] = to_recipient(item, wanted[item.pk])
        return out

    def recipient(self, tenant_id: str, key: str) -> Recipient | None:
        """1 GetItem."""
        try:
            return to_recipient(RecipientItem.get(recipient_pk(tenant_id, key), "U"), key)
        except DoesNotExist:
            return None

    def _update(self, tenant_id: str, key: str, user_id: str, actions: list[Any]) -> Recipient:
        item = RecipientItem(recipient_pk(tenant_id, key), "U")
        item.update(actions=[RecipientItem.tenant_id.set(tenant_id), RecipientItem.user_id.set(user_id), *actions])
        return to_recipient(item, key)

    def put_user(
        self, tenant_id: str, user_id: str, name: str, role: Role, now: str, *, keep_admin: str | None = None
    ) -> tuple[Role | None, Recipient]:
        """1 UpdateItem (ALL_OLD: the previous role) + 1 Put/DeleteItem on the admin index; with
        ``keep_admin``, 1 TransactWriteItems instead: the user, their admin index entry gone, and a
        condition on ``keep_admin``'s entry (the user was an admin: the caller saw them in the index)."""
        key = user_key(user_id)
        actions: list[Action] = [
            RecipientItem.tenant_id.set(tenant_id),
            RecipientItem.user_id.set(user_id),
            RecipientItem.name.set(name),
            RecipientItem.role.set(role.value),
            RecipientItem.in_directory.set(True),
            RecipientItem.updated_at.set(now),
        ]
        admins = f"{tenant_prefix(tenant_id)}#ADMINS"
        recipient = Recipient(tenant_id, key, user_id, role=role, name=name, in_directory=True)
        if keep_admin is not None:
            try:
                with TransactWrite(connection=low_level(RecipientItem)) as tx:
                    tx.update(RecipientItem(recipient_pk(tenant_id, key), "U"), actions=actions)
                    tx.delete(AdminItem(admins, user_id))
                    tx.condition_check(AdminItem, admins, keep_admin, condition=AdminItem.pk.exists())
            except TransactWriteError as exc:
                if {"ConditionalCheckFailed", "TransactionConflict"} & set(cancel_codes(exc)):
                    raise Conflict(f"{keep_admin} is no longer an admin") from exc
                raise
            return Role.ADMIN, recipient
        out = low_level(RecipientItem).update_item(
            RecipientItem.Meta.table_name, recipient_pk(tenant_id, key), "U", return_values="ALL_OLD", actions=actions
        )
        old = _role(out.get("Attributes", {}).get("role", {}).get("S"))
        admin = AdminItem(admins, user_id)
        if role is Role.ADMIN:
            admin.save()
        else:
            admin.delete()
        return old, recipient

    def role_changed(self, tenant_id: str, user_id: str, role: Role) -> list[str]:
        """1 Query on the supervision GSI (the user's edges as a supervisor) + BatchWriteItem re-putting
        those whose ``suspended`` flag disagrees with ``role`` (one request per 25: grows with the
        user's own teams, never with the tenant). Returns every agent of a user who may not
        supervise, so a retried demotion finishes the clean-up an earlier attempt began."""
        suspend = role not in SUPERVISING_ROLES
        edges = list(DirectoryEdge.by_supervisor.query(f"{tenant_prefix(tenant_id)}#S#{user_id}"))
        with DirectoryEdge.batch_write() as batch:
            for edge in edges:
                if bool(edge.suspended) != suspend:
                    edge.suspended = True if suspend else None
                    batch.save(edge)
        return list(dict.fromkeys(e.agent_id for e in edges)) if suspend else []

    def revoke(self, tenant_id: str, user_id: str, at: int) -> Recipient | None:
        """1 UpdateItem (ALL_NEW: the connections to close come back with it), conditional on the record
        existing: a stranger gets None and no record."""
        key = user_key(user_id)
        item = RecipientItem(recipient_pk(tenant_id, key), "U")
        try:
            item.update(actions=[RecipientItem.revoked_at.set(at)], condition=RecipientItem.pk.exists())
        except UpdateError as exc:
            if exc.cause_response_code == "ConditionalCheckFailedException":
                return None
            raise
        return to_recipient(item, key)

    def enroll(self, principal: Principal, now: str) -> bool:
        """A user of the OIDC issuer joins the directory with the token's role and name (docs/product.md
        W9.3): 1 UpdateItem, conditional on the user not being a directory user yet (so a repeat, or an
        admin's own record, changes nothing), + 1 PutItem on the admin index for an admin."""
        key = user_key(principal.user_id)
        name = principal.name or principal.user_id
        try:
            RecipientItem(recipient_pk(principal.tenant_id, key), "U").update(
                actions=[
                    RecipientItem.tenant_id.set(principal.tenant_id),
                    RecipientItem.user_id.set(principal.user_id),
                    RecipientItem.name.set(name),
                    RecipientItem.role.set(principal.role.value),
                    RecipientItem.in_directory.set(True),
                    RecipientItem.updated_at.set(now),
                ],
                condition=RecipientItem.in_directory.does_not_exist() | (RecipientItem.in_directory == False),  # noqa: E712
            )
        except UpdateError as exc:
            if exc.cause_response_code == "ConditionalCheckFailedException":
                return False
            raise
        if principal.role is Role.ADMIN:
            AdminItem(f"{tenant_prefix(principal.tenant_id)}#ADMINS", principal.user_id).save()
        return True

    def connect(self, principal: Principal, connection: Connection) -> Recipient:
        """1 UpdateItem (ADD to the connection set; creates the recipient on first connect)."""
        key = principal.recipient_key
        actions: list[Any] = [RecipientItem.conns.add({connection.token})]
        if not principal.is_customer:
            actions.append(RecipientItem.role.set(RecipientItem.role | principal.role.value))
            if principal.name:
                actions.append(RecipientItem.name.set(RecipientItem.name | principal.name))
        return self._update(principal.tenant_id, key, principal.user_id, actions)

    def disconnect(self, principal: Principal, connection: Connection) -> Recipient | None:
        """1 UpdateItem (DELETE from the connection set, stored either way: fast or ordered)."""
        try:
            return self._update(
                principal.tenant_id, principal.recipient_key, principal.user_id, [RecipientItem.conns.delete(connection.tokens)]
            )
        except UpdateError:
            return None

    def forget(self, tenant_id: str, key: str, connections: Iterable[Connection], watchers: Iterable[Watcher]) -> None:
        """1 UpdateItem removing gone connections and their watches."""
        tokens = {c.token for c in connections}
        watches = {w.token for w in watchers}
        actions: list[Any] = []
        if tokens:
            actions.append(RecipientItem.conns.delete(tokens))
        if watches:
            actions.append(RecipientItem.watchers.delete(watches))
        if actions:
            RecipientItem(recipient_pk(tenant_id, key), "U").update(actions=actions, condition=RecipientItem.pk.exists())

    def set_presence(self, tenant_id: str, user_id: str, state: Presence) -> Recipient:
        """1 UpdateItem (ALL_NEW: the watchers come back with it)."""
        return self._update(tenant_id, user_key(user_id), user_id, [RecipientItem.presence.set(state.value)])

    def watch(self, tenant_id: str, agent_id: str, watcher: Watcher, add: bool) -> None:
        """1 UpdateItem on the agent's recipient."""
        op = RecipientItem.watchers.add if add else RecipientItem.watchers.delete
        self._update(tenant_id, user_key(agent_id), agent_id, [op({watcher.token})])

    def set_notify(self, tenant_id: str, user_id: str, notify: bool) -> Recipient:
        """1 UpdateItem."""
        return self._update(tenant_id, user_key(user_id), user_id, [RecipientItem.notify.set(notify)])

    # teams

    def put_team(
        self, tenant_id: str, team: Team, now: str, removed: Callable[[list[tuple[str, str]]], None] | None = None
    ) -> None:
        """1 GetItem (the old membership) + BatchWriteItem of the changed edges + 1 PutItem.

        New edges are written before removed ones are deleted, and the team item last, so a retry
        of a failed PUT converges to the requested membership. ``removed`` gets the (supervisor,
        agent) pairs the team no longer links once their edges are gone and before the team item is
        written: if it fails, a retry finds the same pairs again.
        """
        pk = f"{tenant_prefix(tenant_id)}#TEAM#{team.team_id}"
        try:
            old = TeamItem.get(pk, "TEAM", consistent_read=True)
            old_edges: set[tuple[str, str]] = {(str(s), str(a)) for s in old.supervisors for a in old.agents}
        except DoesNotExist:
            old_edges = set()
        new_edges = {(s, a) for s in team.supervisors for a in team.agents}
        with DirectoryEdge.batch_write() as batch:
            for sup, agent in sorted(new_edges - old_edges):
                batch.save(self._edge(tenant_id, team.team_id, sup, agent))
        with DirectoryEdge.batch_write() as batch:
            for sup, agent in sorted(old_edges - new_edges):
                batch.delete(self._edge(tenant_id, team.team_id, sup, agent))
        if removed is not None and old_edges - new_edges:
            removed(sorted(old_edges - new_edges))
        TeamItem(
            pk,
            "TEAM",
            tenant_id=tenant_id,
            team_id=team.team_id,
            name=team.name,
            supervisors=team.supervisors,
            agents=team.agents,
            updated_at=now,
        ).save()

    @staticmethod
    def _edge(tenant_id: str, team_id: str, supervisor_id: str, agent_id: str) -> DirectoryEdge:
        return DirectoryEdge(
            pk=f"{tenant_prefix(tenant_id)}#A#{agent_id}",
            sk=f"S#{supervisor_id}#T#{team_id}",
            gsi1pk=f"{tenant_prefix(tenant_id)}#S#{supervisor_id}",
            gsi1sk=f"A#{agent_id}#T#{team_id}",
            tenant_id=tenant_id,
            agent_id=agent_id,
            supervisor_id=supervisor_id,
            team_id=team_id,
        )

    def supervises(self, tenant_id: str, supervisor_id: str, agent_id: str) -> bool:
        """1 Query (limit 1)."""
        # All of one supervisor's edges are suspended together, so the first one decides.
        hits = DirectoryEdge.query(
            f"{tenant_prefix(tenant_id)}#A#{agent_id}",
            DirectoryEdge.sk.startswith(f"S#{supervisor_id}#"),
            filter_condition=_ACTIVE_EDGE,
            limit=1,
            consistent_read=True,
        )
        return any(True for _ in hits)

    def supervisors_of(self, tenant_id: str, agent_id: str) -> list[str]:
        """1 Query."""
        edges = DirectoryEdge.query(
            f"{tenant_prefix(tenant_id)}#A#{agent_id}", DirectoryEdge.sk.startswith("S#"), filter_condition=_ACTIVE_EDGE
        )
        return list(dict.fromkeys(e.supervisor_id for e in edges))

    def agents_of(self, tenant_id: str, supervisor_id: str) -> list[str]:
        """1 Query on the supervision GSI."""
        edges = DirectoryEdge.by_supervisor.query(f"{tenant_prefix(tenant_id)}#S#{supervisor_id}", filter_condition=_ACTIVE_EDGE)
        return list(dict.fromkeys(e.agent_id for e in edges))

    # templates, policy, admins

    def templates(self, tenant_id: str) -> list[Template]:
        """1 Query."""
        return [Template(i.sk, i.text, bool(i.enabled)) for i in TemplateItem.query(f"{tenant_prefix(tenant_id)}#TPL")]

    def put_template(self, tenant_id: str, template: Template, now: str) -> None:
        """1 PutItem."""
        TemplateItem(
            f"{tenant_prefix(tenant_id)}#TPL", template.template_id, text=template.text, enabled=template.enabled, updated_at=now
        ).save()

    def delete_template(self, tenant_id: str, template_id: str) -> bool:
        """1 DeleteItem (ALL_OLD tells whether it existed)."""
        ddb = low_level(TemplateItem)
        out = ddb.delete_item(
            TemplateItem.Meta.table_name, f"{tenant_prefix(tenant_id)}#TPL", template_id, return_values="ALL_OLD"
        )
        return bool(out.get("Attributes"))

    def policy(self, tenant_id: str) -> Policy:
        """1 GetItem; defaults come from the deployment's settings."""
        d = Policy(
            escalation_seconds=self._settings.default_escalation_seconds, retention_days=self._settings.default_retention_days
        )
        try:
            item = PolicyItem.get(f"{tenant_prefix(tenant_id)}#POLICY", "POLICY")
        except DoesNotExist:
            return d
        return Policy(
            record_coaching=bool(item.record_coaching),
            escalation_seconds=int(item.escalation_seconds) if item.escalation_seconds is not None else d.escalation_seconds,
            retention_days=int(item.retention_days) if item.retention_days is not None else d.retention_days,
            webhook_secret=item.webhook_secret,
            transcribe_calls=bool(item.transcribe_calls),
            sentiment_language=item.sentiment_language or d.sentiment_language,
        )

    def put_policy(self, tenant_id: str, policy: Policy, now: str) -> None:
        """1 UpdateItem (keeps the webhook secret)."""
        PolicyItem(f"{tenant_prefix(tenant_id)}#POLICY", "POLICY").update(
            actions=[
                PolicyItem.record_coaching.set(policy.record_coaching),
                PolicyItem.escalation_seconds.set(policy.escalation_seconds),
                PolicyItem.retention_days.set(policy.retention_days),
                PolicyItem.transcribe_calls.set(policy.transcribe_calls),
                PolicyItem.sentiment_language.set(policy.sentiment_language),
                PolicyItem.updated_at.set(now),
            ]
        )

    def set_webhook_secret(self, tenant_id: str, secret: str, now: str) -> None:
        """1 UpdateItem."""
        PolicyItem(f"{tenant_prefix(tenant_id)}#POLICY", "POLICY").update(
            actions=[PolicyItem.webhook_secret.set(secret), PolicyItem.updated_at.set(now)]
        )

    def admins(self, tenant_id: str, limit: int | None = None) -> list[str]:
        """1 Query (per page; with a ``limit``, one page of that many)."""
        return [i.sk for i in AdminItem.query(f"{tenant_prefix(tenant_id)}#ADMINS", limit=limit)]

    # directory messages and unread counts

    def add_unread(self, tenant_id: str, recipient_id: str, sender_id: str) -> int:
        """2 UpdateItem: the per-sender count, then the total (ALL_NEW returns it)."""
        pk = recipient_pk(tenant_id, user_key(recipient_id))
        UnreadItem(pk, f"UNREAD#{sender_id}").update(actions=[UnreadItem.unread_count.add(1)])
        return self._update(tenant_id, user_key(recipient_id), recipient_id, [RecipientItem.unread_total.add(1)]).unread_total

    def mark_read(self, tenant_id: str, recipient_id: str, sender_id: str) -> int:
        """1 DeleteItem (ALL_OLD gives the count) + 1 UpdateItem on the total (ALL_NEW)."""
        pk = recipient_pk(tenant_id, user_key(recipient_id))
        out = low_level(UnreadItem).delete_item(UnreadItem.Meta.table_name, pk, f"UNREAD#{sender_id}", return_values="ALL_OLD")
        count = int(out.get("Attributes", {}).get("count", {}).get("N", "0"))
        if count == 0:
            recipient = self.recipient(tenant_id, user_key(recipient_id))
            return recipient.unread_total if recipient else 0
        return self._update(
            tenant_id, user_key(recipient_id), recipient_id, [RecipientItem.unread_total.add(-count)]
        ).unread_total

    def store_message(self, tenant_id: str, recipient_id: str, message: DirectMessage, retention_days: int) -> None:
        """1 PutItem."""
        DirectoryMessageItem(
            f"{tenant_prefix(tenant_id)}#INBOX#{recipient_id}",
            f"{message.at}#{message.message_id}",
            message_id=message.message_id,
            from_user_id=message.from_user_id,
            text=message.text,
            reply_to=message.reply_to,
            assist_id=message.assist_id,
            at=message.at,
            ttl=expiry(message.at, retention_days),
        ).save()
