"""DynamoDB implementations of the service ports (``chalicelib.services.ports``).

Every method documents the DynamoDB requests it makes; docs/data-model.md sums them per action and
tests/integration/test_request_budget.py holds the code to those sums.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from typing import Any

from pynamodb.connection import Connection as DdbConnection
from pynamodb.exceptions import DoesNotExist, PutError, TransactWriteError, UpdateError
from pynamodb.transactions import TransactWrite

from chalicelib.adapters.dynamo import (
    AdminItem,
    ConnectionItem,
    DirectoryEdge,
    DirectoryMessageItem,
    EntryItem,
    IdempotencyItem,
    MessageRefItem,
    PolicyItem,
    RecipientItem,
    TeamItem,
    TemplateItem,
    UnreadItem,
    WorkitemItem,
)
from chalicelib.adapters.storage_errors import response_code
from chalicelib.domain.coaching import Change, Channel, EndedBy, Status, Workitem
from chalicelib.domain.identity import Principal, Role, user_key
from chalicelib.domain.timeline import EntryKind, TimelineEntry
from chalicelib.services.fanout import encode_note
from chalicelib.services.ports import (
    CONNECTION_LIFETIME_MS,
    AlreadyExists,
    Connection,
    CounterDelta,
    DuplicateEvent,
    Idempotency,
    Policy,
    Presence,
    Recipient,
    StaleWorkitem,
    Team,
    Template,
    Watcher,
)
from chalicelib.settings import Settings

IDEMPOTENCY_TTL_SECONDS = 7 * 24 * 3600


def _t(tenant_id: str) -> str:
    return f"T#{tenant_id}"


def workitem_pk(tenant_id: str, workitem_id: str) -> str:
    return f"{_t(tenant_id)}#W#{workitem_id}"


def recipient_pk(tenant_id: str, key: str) -> str:
    return f"{_t(tenant_id)}#{key}"


def _entry_sk(seq: int) -> str:
    return f"E#{seq:010d}"


def _customer_sk(seq: int) -> str:
    return f"C#{seq:010d}"


def _expiry(iso: str, days: int) -> datetime:
    return datetime.fromisoformat(iso.replace("Z", "+00:00")) + timedelta(days=days)


def _ddb(model: Any) -> DdbConnection:
    ddb: DdbConnection = model._get_connection().connection
    return ddb


def _cancel_codes(exc: TransactWriteError) -> list[str | None]:
    return [r.code if r else None for r in (exc.cancellation_reasons or [])]


# --- workitems ---------------------------------------------------------------------------------


def to_workitem(item: WorkitemItem) -> Workitem:
    return Workitem(
        tenant_id=item.tenant_id,
        workitem_id=item.workitem_id,
        channel=Channel(item.channel),
        agent_id=item.agent_id,
        customer_id=item.customer_id,
        customer_name=item.customer_name,
        created_at=item.created_at,
        subject=item.subject or "",
        status=Status(item.status),
        monitors={k: str(v) for k, v in (item.monitors.as_dict() if item.monitors else {}).items()},
        seq=int(item.seq or 0),
        customer_seq=int(item.customer_seq or 0),
        version=int(item.version or 0),
        ended_at=item.ended_at,
        ended_by=EndedBy(item.ended_by) if item.ended_by else None,
        voice=dict(item.voice.as_dict()) if item.voice else {},
        retention_days=int(item.retention_days or 90),
        record_coaching=bool(item.record_coaching),
    )


def _to_workitem_item(w: Workitem, retention_days: int) -> WorkitemItem:
    item = WorkitemItem(
        pk=workitem_pk(w.tenant_id, w.workitem_id),
        sk="W",
        tenant_id=w.tenant_id,
        workitem_id=w.workitem_id,
        channel=w.channel.value,
        agent_id=w.agent_id,
        customer_id=w.customer_id,
        customer_name=w.customer_name,
        subject=w.subject or None,
        status=w.status.value,
        created_at=w.created_at,
        ended_at=w.ended_at,
        ended_by=w.ended_by.value if w.ended_by else None,
        monitors=dict(w.monitors) or None,
        voice=dict(w.voice) or None,
        seq=w.seq,
        customer_seq=w.customer_seq,
        version=w.version,
        retention_days=w.retention_days,
        record_coaching=w.record_coaching,
    )
    if w.is_open:
        item.gsi1pk = f"{_t(w.tenant_id)}#AGENT#{w.agent_id}"
        item.gsi1sk = f"{w.created_at}#{w.workitem_id}"
    elif w.ended_at:
        item.ttl = _expiry(w.ended_at, retention_days)
    return item


def _to_entry(item: EntryItem, workitem_id: str) -> TimelineEntry:
    return TimelineEntry(
        workitem_id=workitem_id,
        seq=int(item.seq),
        kind=EntryKind(item.kind),
        at=item.at,
        author_id=item.author_id,
        author_role=Role(item.author_role),
        customer_seq=int(item.customer_seq) if item.customer_seq is not None else None,
        message_id=item.message_id,
        text=item.text,
        forwarded_from=item.forwarded_from,
        reaction=item.reaction,
        extra={**(dict(item.extra.as_dict()) if item.extra else {}), **({"delivery": item.delivery} if item.delivery else {})},
    )


def _to_entry_item(tenant_id: str, e: TimelineEntry, retention_days: int) -> EntryItem:
    return EntryItem(
        pk=workitem_pk(tenant_id, e.workitem_id),
        sk=_entry_sk(e.seq),
        lsi1sk=_customer_sk(e.customer_seq) if e.customer_seq is not None else None,
        kind=e.kind.value,
        at=e.at,
        author_id=e.author_id,
        author_role=e.author_role.value,
        seq=e.seq,
        customer_seq=e.customer_seq,
        message_id=e.message_id,
        text=e.text,
        forwarded_from=e.forwarded_from,
        reaction=e.reaction,
        extra=dict(e.extra) or None,
        ttl=_expiry(e.at, retention_days),
    )


class DynamoWorkitemStore:
    """Workitems, timelines and the message index: one partition per workitem."""

    def get(self, tenant_id: str, workitem_id: str) -> Workitem | None:
        """1 GetItem (strongly consistent: decisions are made on it)."""
        try:
            item = WorkitemItem.get(workitem_pk(tenant_id, workitem_id), "W", consistent_read=True)
        except DoesNotExist:
            return None
        return to_workitem(item)

    def get_with_message(self, tenant_id: str, workitem_id: str, message_id: str) -> tuple[Workitem | None, TimelineEntry | None]:
        """1 BatchGetItem: the workitem and the message index item together."""
        pk = workitem_pk(tenant_id, workitem_id)
        workitem: Workitem | None = None
        message: TimelineEntry | None = None
        table = WorkitemItem.Meta.table_name
        keys = [{"pk": {"S": pk}, "sk": {"S": "W"}}, {"pk": {"S": pk}, "sk": {"S": f"M#{message_id}"}}]
        raw_items: list[dict[str, Any]] = []
        for _ in range(3):  # unprocessed keys are rare; retry them a few times
            client: Any = _ddb(WorkitemItem).client
            out = client.batch_get_item(RequestItems={table: {"Keys": keys, "ConsistentRead": True}})
            raw_items.extend(out.get("Responses", {}).get(table, []))
            keys = out.get("UnprocessedKeys", {}).get(table, {}).get("Keys", [])
            if not keys:
                break
        for raw in raw_items:
            if raw["sk"]["S"] == "W":
                workitem = to_workitem(WorkitemItem.from_raw_data(raw))
            else:
                ref = MessageRefItem.from_raw_data(raw)
                message = TimelineEntry(
                    workitem_id=workitem_id,
                    seq=int(ref.seq),
                    kind=EntryKind(ref.kind),
                    at=ref.at,
                    author_id=ref.author_id,
                    author_role=Role(ref.author_role),
                    message_id=message_id,
                    text=ref.text,
                )
        return workitem, message

    def create(
        self, workitem: Workitem, *, idempotency: Idempotency | None = None, counters: Iterable[CounterDelta] = ()
    ) -> None:
        """1 TransactWriteItems: the workitem, its agent's counter and the event id."""
        item = _to_workitem_item(workitem, workitem.retention_days)
        item.fanout = encode_note(Change(workitem, workitem), None)  # outbound webhooks learn of it from the stream
        with_idem = idempotency is not None
        try:
            with TransactWrite(connection=_ddb(WorkitemItem)) as tx:
                if idempotency:
                    tx.save(_idempotency_item(idempotency), condition=IdempotencyItem.pk.does_not_exist())
                tx.save(item, condition=WorkitemItem.pk.does_not_exist())
                _add_counters(tx, counters)
        except TransactWriteError as exc:
            codes = _cancel_codes(exc)
            if with_idem and codes and codes[0] == "ConditionalCheckFailed":
                raise DuplicateEvent(idempotency.event_id if idempotency else "") from exc
            if "ConditionalCheckFailed" in codes:
                raise AlreadyExists(workitem.workitem_id) from exc
            raise

    def commit(
        self,
        change: Change,
        *,
        idempotency: Idempotency | None = None,
        counters: Iterable[CounterDelta] = (),
        fanout: str | None = None,
    ) -> None:
        """1 TransactWriteItems: the workitem (conditional on its version, with the change's fan-out
        note for the stream), new entries, message index items, agents' counters and the inbound
        event id, all or nothing."""
        w = change.after
        retention_days = w.retention_days
        item = _to_workitem_item(w, retention_days)
        item.fanout = fanout
        try:
            with TransactWrite(connection=_ddb(WorkitemItem)) as tx:
                if idempotency:
                    tx.save(_idempotency_item(idempotency), condition=IdempotencyItem.pk.does_not_exist())
                tx.save(item, condition=WorkitemItem.version == change.before.version)
                for e in change.entries:
                    tx.save(_to_entry_item(w.tenant_id, e, retention_days), condition=EntryItem.sk.does_not_exist())
                    if e.message_id and e.kind in (EntryKind.COACH_MESSAGE, EntryKind.AGENT_MESSAGE, EntryKind.CUSTOMER_MESSAGE):
                        tx.save(
                            MessageRefItem(
                                pk=workitem_pk(w.tenant_id, w.workitem_id),
                                sk=f"M#{e.message_id}",
                                seq=e.seq,
                                kind=e.kind.value,
                                author_id=e.author_id,
                                author_role=e.author_role.value,
                                text=e.text,
                                at=e.at,
                                ttl=_expiry(e.at, retention_days),
                            )
                        )
                _add_counters(tx, counters)
        except TransactWriteError as exc:
            codes = _cancel_codes(exc)
            if idempotency and codes and codes[0] == "ConditionalCheckFailed":
                raise DuplicateEvent(idempotency.event_id) from exc
            code = response_code(exc)
            if (
                "ConditionalCheckFailed" in codes
                or (code == "TransactionCanceledException" and "TransactionConflict" in codes)
                or code in ("TransactionConflictException", "TransactionInProgressException")
            ):
                raise StaleWorkitem(w.workitem_id) from exc  # a lost race: the caller reads again
            raise

    def mark_event(self, idempotency: Idempotency) -> None:
        """1 PutItem: record an event that changed nothing (so a redelivery is recognised)."""
        try:
            _idempotency_item(idempotency).save(condition=IdempotencyItem.pk.does_not_exist())
        except PutError as exc:
            if response_code(exc) == "ConditionalCheckFailedException":
                raise DuplicateEvent(idempotency.event_id) from exc
            raise

    def timeline(
        self, tenant_id: str, workitem_id: str, *, after: int, limit: int, customer: bool
    ) -> tuple[list[TimelineEntry], bool]:
        """1 Query: on the table (staff view) or on the customer-view LSI."""
        pk = workitem_pk(tenant_id, workitem_id)
        if customer:
            items = list(
                EntryItem.customer_view.query(pk, EntryItem.lsi1sk > _customer_sk(after), limit=limit + 1, consistent_read=True)
            )
        else:
            items = list(
                EntryItem.query(
                    pk,
                    EntryItem.sk.between(_entry_sk(after + 1), _entry_sk(9_999_999_999)),
                    limit=limit + 1,
                    consistent_read=True,
                )
            )
        entries = [_to_entry(i, workitem_id) for i in items[:limit]]
        return entries, len(items) > limit

    def latest(self, tenant_id: str, workitem_id: str, limit: int) -> tuple[list[TimelineEntry], bool]:
        """1 Query, newest first, returned oldest first."""
        items = list(
            EntryItem.query(
                workitem_pk(tenant_id, workitem_id),
                EntryItem.sk.startswith("E#"),
                scan_index_forward=False,
                limit=limit + 1,
                consistent_read=True,
            )
        )
        entries = [_to_entry(i, workitem_id) for i in items[:limit]]
        entries.reverse()
        return entries, len(items) > limit

    def open_for_agent(self, tenant_id: str, agent_id: str) -> list[Workitem]:
        """1 Query on the sparse open-workitems GSI (more pages only past 1 MB)."""
        return [to_workitem(i) for i in WorkitemItem.open_by_agent.query(f"{_t(tenant_id)}#AGENT#{agent_id}")]


def _idempotency_item(idem: Idempotency) -> IdempotencyItem:
    now = datetime.now().astimezone()
    return IdempotencyItem(
        pk=f"{_t(idem.tenant_id)}#EVT#{idem.event_id}",
        event_type=idem.event_type,
        applied_at=now.isoformat(),
        ttl=now + timedelta(seconds=IDEMPOTENCY_TTL_SECONDS),
    )


def _add_counters(tx: TransactWrite, counters: Iterable[CounterDelta]) -> None:
    for c in counters:
        tx.update(
            RecipientItem(recipient_pk(c.tenant_id, user_key(c.user_id)), "U"),
            actions=[
                RecipientItem.workitem_count.add(c.delta),
                RecipientItem.tenant_id.set(c.tenant_id),
                RecipientItem.user_id.set(c.user_id),
            ],
        )


# --- directory ---------------------------------------------------------------------------------


def _to_recipient(item: RecipientItem, key: str) -> Recipient:
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
            out[wanted[item.pk]] = _to_recipient(item, wanted[item.pk])
        return out

    def recipient(self, tenant_id: str, key: str) -> Recipient | None:
        """1 GetItem."""
        try:
            return _to_recipient(RecipientItem.get(recipient_pk(tenant_id, key), "U"), key)
        except DoesNotExist:
            return None

    def _update(self, tenant_id: str, key: str, user_id: str, actions: list[Any]) -> Recipient:
        item = RecipientItem(recipient_pk(tenant_id, key), "U")
        item.update(actions=[RecipientItem.tenant_id.set(tenant_id), RecipientItem.user_id.set(user_id), *actions])
        return _to_recipient(item, key)

    def put_user(self, tenant_id: str, user_id: str, name: str, role: Role, now: str) -> tuple[Role | None, Recipient]:
        """1 UpdateItem (ALL_OLD: the previous role) + 1 Put/DeleteItem on the admin index."""
        key = user_key(user_id)
        out = _ddb(RecipientItem).update_item(
            RecipientItem.Meta.table_name,
            recipient_pk(tenant_id, key),
            "U",
            return_values="ALL_OLD",
            actions=[
                RecipientItem.tenant_id.set(tenant_id),
                RecipientItem.user_id.set(user_id),
                RecipientItem.name.set(name),
                RecipientItem.role.set(role.value),
                RecipientItem.in_directory.set(True),
                RecipientItem.updated_at.set(now),
            ],
        )
        old = _role(out.get("Attributes", {}).get("role", {}).get("S"))
        admin = AdminItem(f"{_t(tenant_id)}#ADMINS", user_id)
        if role is Role.ADMIN:
            admin.save()
        else:
            admin.delete()
        return old, Recipient(tenant_id, key, user_id, role=role, name=name, in_directory=True)

    def role_changed(self, tenant_id: str, user_id: str, role: Role) -> list[str]:
        """1 Query on the supervision GSI (the user's edges as a supervisor) + BatchWriteItem re-putting
        those whose ``suspended`` flag disagrees with ``role`` (one request per 25: grows with the
        user's own teams, never with the tenant). Returns every agent of a user who may not
        supervise, so a retried demotion finishes the clean-up an earlier attempt began."""
        suspend = role not in SUPERVISING_ROLES
        edges = list(DirectoryEdge.by_supervisor.query(f"{_t(tenant_id)}#S#{user_id}"))
        with DirectoryEdge.batch_write() as batch:
            for edge in edges:
                if bool(edge.suspended) != suspend:
                    edge.suspended = True if suspend else None
                    batch.save(edge)
        return list(dict.fromkeys(e.agent_id for e in edges)) if suspend else []

    def revoke(self, tenant_id: str, user_id: str, at: int) -> Recipient:
        """1 UpdateItem (ALL_NEW: the connections to close come back with it)."""
        return self._update(tenant_id, user_key(user_id), user_id, [RecipientItem.revoked_at.set(at)])

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
            AdminItem(f"{_t(principal.tenant_id)}#ADMINS", principal.user_id).save()
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
        """1 UpdateItem (DELETE from the connection set)."""
        try:
            return self._update(
                principal.tenant_id, principal.recipient_key, principal.user_id, [RecipientItem.conns.delete({connection.token})]
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
        pk = f"{_t(tenant_id)}#TEAM#{team.team_id}"
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
            pk=f"{_t(tenant_id)}#A#{agent_id}",
            sk=f"S#{supervisor_id}#T#{team_id}",
            gsi1pk=f"{_t(tenant_id)}#S#{supervisor_id}",
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
            f"{_t(tenant_id)}#A#{agent_id}",
            DirectoryEdge.sk.startswith(f"S#{supervisor_id}#"),
            filter_condition=_ACTIVE_EDGE,
            limit=1,
            consistent_read=True,
        )
        return any(True for _ in hits)

    def supervisors_of(self, tenant_id: str, agent_id: str) -> list[str]:
        """1 Query."""
        edges = DirectoryEdge.query(
            f"{_t(tenant_id)}#A#{agent_id}", DirectoryEdge.sk.startswith("S#"), filter_condition=_ACTIVE_EDGE
        )
        return list(dict.fromkeys(e.supervisor_id for e in edges))

    def agents_of(self, tenant_id: str, supervisor_id: str) -> list[str]:
        """1 Query on the supervision GSI."""
        edges = DirectoryEdge.by_supervisor.query(f"{_t(tenant_id)}#S#{supervisor_id}", filter_condition=_ACTIVE_EDGE)
        return list(dict.fromkeys(e.agent_id for e in edges))

    # templates, policy, admins

    def templates(self, tenant_id: str) -> list[Template]:
        """1 Query."""
        return [Template(i.sk, i.text, bool(i.enabled)) for i in TemplateItem.query(f"{_t(tenant_id)}#TPL")]

    def put_template(self, tenant_id: str, template: Template, now: str) -> None:
        """1 PutItem."""
        TemplateItem(
            f"{_t(tenant_id)}#TPL", template.template_id, text=template.text, enabled=template.enabled, updated_at=now
        ).save()

    def delete_template(self, tenant_id: str, template_id: str) -> bool:
        """1 DeleteItem (ALL_OLD tells whether it existed)."""
        ddb = _ddb(TemplateItem)
        out = ddb.delete_item(TemplateItem.Meta.table_name, f"{_t(tenant_id)}#TPL", template_id, return_values="ALL_OLD")
        return bool(out.get("Attributes"))

    def policy(self, tenant_id: str) -> Policy:
        """1 GetItem; defaults come from the deployment's settings."""
        d = Policy(
            escalation_seconds=self._settings.default_escalation_seconds, retention_days=self._settings.default_retention_days
        )
        try:
            item = PolicyItem.get(f"{_t(tenant_id)}#POLICY", "POLICY")
        except DoesNotExist:
            return d
        return Policy(
            record_coaching=bool(item.record_coaching),
            escalation_seconds=int(item.escalation_seconds) if item.escalation_seconds is not None else d.escalation_seconds,
            retention_days=int(item.retention_days) if item.retention_days is not None else d.retention_days,
            webhook_secret=item.webhook_secret,
        )

    def put_policy(self, tenant_id: str, policy: Policy, now: str) -> None:
        """1 UpdateItem (keeps the webhook secret)."""
        PolicyItem(f"{_t(tenant_id)}#POLICY", "POLICY").update(
            actions=[
                PolicyItem.record_coaching.set(policy.record_coaching),
                PolicyItem.escalation_seconds.set(policy.escalation_seconds),
                PolicyItem.retention_days.set(policy.retention_days),
                PolicyItem.updated_at.set(now),
            ]
        )

    def set_webhook_secret(self, tenant_id: str, secret: str, now: str) -> None:
        """1 UpdateItem."""
        PolicyItem(f"{_t(tenant_id)}#POLICY", "POLICY").update(
            actions=[PolicyItem.webhook_secret.set(secret), PolicyItem.updated_at.set(now)]
        )

    def admins(self, tenant_id: str) -> list[str]:
        """1 Query."""
        return [i.sk for i in AdminItem.query(f"{_t(tenant_id)}#ADMINS")]

    # directory messages and unread counts

    def add_unread(self, tenant_id: str, recipient_id: str, sender_id: str) -> int:
        """2 UpdateItem: the per-sender count, then the total (ALL_NEW returns it)."""
        pk = recipient_pk(tenant_id, user_key(recipient_id))
        UnreadItem(pk, f"UNREAD#{sender_id}").update(actions=[UnreadItem.unread_count.add(1)])
        return self._update(tenant_id, user_key(recipient_id), recipient_id, [RecipientItem.unread_total.add(1)]).unread_total

    def mark_read(self, tenant_id: str, recipient_id: str, sender_id: str) -> int:
        """1 DeleteItem (ALL_OLD gives the count) + 1 UpdateItem on the total (ALL_NEW)."""
        pk = recipient_pk(tenant_id, user_key(recipient_id))
        out = _ddb(UnreadItem).delete_item(UnreadItem.Meta.table_name, pk, f"UNREAD#{sender_id}", return_values="ALL_OLD")
        count = int(out.get("Attributes", {}).get("count", {}).get("N", "0"))
        if count == 0:
            recipient = self.recipient(tenant_id, user_key(recipient_id))
            return recipient.unread_total if recipient else 0
        return self._update(
            tenant_id, user_key(recipient_id), recipient_id, [RecipientItem.unread_total.add(-count)]
        ).unread_total

    def store_message(self, tenant_id: str, recipient_id: str, message: dict[str, Any], retention_days: int) -> None:
        """1 PutItem."""
        DirectoryMessageItem(
            f"{_t(tenant_id)}#INBOX#{recipient_id}",
            f"{message['at']}#{message['messageId']}",
            message_id=message["messageId"],
            from_user_id=message["fromUserId"],
            text=message["text"],
            reply_to=message.get("replyTo"),
            assist_id=message.get("assistId"),
            at=message["at"],
            ttl=_expiry(message["at"], retention_days),
        ).save()


# --- connections -------------------------------------------------------------------------------


class DynamoConnectionRegistry:
    """Connection id → identity, for frames that arrive without the authorizer's context."""

    def put(self, principal: Principal, connection: Connection) -> None:
        """1 PutItem (expires with API Gateway's 2 h connection limit)."""
        ConnectionItem(
            connection.connection_id,
            tenant_id=principal.tenant_id,
            user_id=principal.user_id,
            role=principal.role.value,
            workitem_id=principal.workitem_id,
            name=principal.name,
            connected_at=connection.connected_at,
            exp=principal.expires_at,
            iat=principal.issued_at,
            ttl=datetime.fromtimestamp((connection.connected_at + CONNECTION_LIFETIME_MS) / 1000).astimezone(),
        ).save()

    def expiry(self, connection_id: str) -> int | None:
        """1 GetItem (strongly consistent: a refresh a moment ago counts)."""
        try:
            item = ConnectionItem.get(connection_id, consistent_read=True, attributes_to_get=["exp"])
        except DoesNotExist:
            return None
        return int(item.exp) if item.exp is not None else None

    def get(self, connection_id: str) -> Principal | None:
        """1 GetItem."""
        try:
            item = ConnectionItem.get(connection_id)
        except DoesNotExist:
            return None
        if item.connected_at + CONNECTION_LIFETIME_MS < time.time() * 1000:
            return None
        return Principal(
            item.tenant_id,
            item.user_id,
            Role(item.role),
            item.workitem_id,
            item.name,
            expires_at=int(item.exp) if item.exp is not None else None,
            issued_at=int(item.iat) if item.iat is not None else None,
        )

    def delete(self, connection_id: str) -> None:
        """1 DeleteItem."""
        ConnectionItem(connection_id).delete()
