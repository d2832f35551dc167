"""In-memory implementations of the storage ports the services drive.

Each fake keeps the semantics of its DynamoDB adapter in ``chalicelib/adapters`` (what is written
together, which write is conditional and what a failed condition raises, what an update creates,
how a query orders and limits), not its requests: the service tests run on them in the fast tier,
and the same tests run on the DynamoDB adapters on moto in the integration tier (``world`` is
parametrized by backend in tests/conftest.py), so a fake that drifts from its adapter fails there.
The adapters' own tests (request counts, streams, faults, DynamoDB Local) stay on moto and
DynamoDB Local.

Everything is copied in and out (``copy.deepcopy``), as a store returns fresh objects: a service
that changes what it read does not change what is stored. One lock makes every method atomic, as
one DynamoDB request (or transaction) is.
"""

from __future__ import annotations

import copy
import threading
import time
import zlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from chalicelib.domain import analytics as an
from chalicelib.domain.assistance import AlreadyClaimed, AssistanceRequest, AssistStatus
from chalicelib.domain.attention import Alert, AlertState, Rule
from chalicelib.domain.coaching import Change, Channel, Status, Workitem
from chalicelib.domain.errors import Conflict
from chalicelib.domain.fairness import Health
from chalicelib.domain.identity import Principal, Role, user_key
from chalicelib.domain.sentiment import Sentiment
from chalicelib.domain.timeline import EntryKind, TimelineEntry
from chalicelib.domain.transcript import PipelineOwner
from chalicelib.domain.webhooks import Subscription
from chalicelib.services.ports import (
    CONNECTION_LIFETIME_MS,
    AlreadyExists,
    ClaimedElsewhere,
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
    WorkitemRead,
)
from chalicelib.services.results import DirectMessage
from chalicelib.settings import Settings

# Message kinds that get a message index item (reactions and forwards find their message by id).
_INDEXED = (EntryKind.COACH_MESSAGE, EntryKind.AGENT_MESSAGE, EntryKind.CUSTOMER_MESSAGE)
SUPERVISING_ROLES = (Role.SUPERVISOR, Role.ADMIN)


def _role(raw: str | None) -> Role | None:
    try:
        return Role(raw) if raw else None
    except ValueError:
        return None


@dataclass
class RecipientRecord:
    """The attributes of one endpoint item (what an UpdateItem can set on it)."""

    tenant_id: str
    user_id: str
    role: str | None = None
    name: str | None = None
    in_directory: bool | None = None
    notify: bool | None = None
    presence: str | None = None
    conns: set[str] = field(default_factory=set)
    watchers: set[str] = field(default_factory=set)
    workitem_count: int = 0
    unread_total: int = 0
    revoked_at: int | None = None

    def to_recipient(self, key: str) -> Recipient:
        try:
            presence = Presence(self.presence) if self.presence else Presence.AVAILABLE
        except ValueError:
            presence = Presence.AVAILABLE
        return Recipient(
            tenant_id=self.tenant_id,
            key=key,
            user_id=self.user_id,
            role=_role(self.role),
            name=self.name,
            in_directory=bool(self.in_directory),
            notify=self.notify is not False,
            presence_state=presence,
            connections=sorted((Connection.parse(t) for t in self.conns), key=lambda c: c.connected_at),
            watchers=[Watcher.parse(t) for t in sorted(self.watchers)],
            workitem_count=max(0, self.workitem_count),
            unread_total=max(0, self.unread_total),
            revoked_at=self.revoked_at,
        )


@dataclass
class Committed:
    """One committed write of a workitem item that carries a fan-out note (what the stream yields):
    ``before`` is None for a new item (an INSERT record has no old image)."""

    before: Workitem | None
    after: Workitem
    note: str


class MemoryTables:
    """The state every fake shares, as the adapters share tables: the workitem store's counters
    update directory endpoints, and the webhook store updates timeline entries."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.recipients: dict[tuple[str, str], RecipientRecord] = {}
        self.workitems: dict[tuple[str, str], Workitem] = {}
        # (tenant, workitem) -> {seq: entry}; delivery statuses are an attribute of the entry item.
        self.entries: dict[tuple[str, str], dict[int, TimelineEntry]] = {}
        self.deliveries: dict[tuple[str, str, int], str] = {}
        self.sentiments: dict[tuple[str, str, int], str] = {}
        self.messages: dict[tuple[str, str, str], TimelineEntry] = {}
        self.events: set[tuple[str, str]] = set()
        # Committed workitem changes with a note, in commit order, until the world's pump takes them.
        self.stream: list[Committed] = []

    def update_recipient(self, tenant_id: str, key: str, user_id: str) -> RecipientRecord:
        """The record an UpdateItem writes to: created when missing, ``tenant_id``/``user_id`` set."""
        record = self.recipients.get((tenant_id, key))
        if record is None:
            record = self.recipients[(tenant_id, key)] = RecipientRecord(tenant_id, user_id)
        record.tenant_id, record.user_id = tenant_id, user_id
        return record

    def take_stream(self) -> list[Committed]:
        with self.lock:
            out, self.stream = self.stream, []
            return out


class MemoryWorkitemStore:
    """``WorkitemStore``: a transaction is all or nothing; the idempotency key is checked first."""

    def __init__(self, tables: MemoryTables) -> None:
        self._t = tables

    def get(self, tenant_id: str, workitem_id: str) -> Workitem | None:
        with self._t.lock:
            return copy.deepcopy(self._t.workitems.get((tenant_id, workitem_id)))

    def get_many(self, tenant_id: str, workitem_ids: Iterable[str]) -> dict[str, Workitem]:
        with self._t.lock:
            return {
                w: copy.deepcopy(self._t.workitems[(tenant_id, w)]) for w in workitem_ids if (tenant_id, w) in self._t.workitems
            }

    def get_with_message(self, tenant_id: str, workitem_id: str, message_id: str) -> tuple[Workitem | None, TimelineEntry | None]:
        read = self.read(tenant_id, workitem_id, message_id=message_id)
        return read.workitem, read.message

    def read(
        self, tenant_id: str, workitem_id: str, *, message_id: str | None = None, recipients: Iterable[str] = ()
    ) -> WorkitemRead:
        with self._t.lock:
            message = None if message_id is None else copy.deepcopy(self._t.messages.get((tenant_id, workitem_id, message_id)))
            found = {
                key: record.to_recipient(key)
                for key in dict.fromkeys(recipients)
                if (record := self._t.recipients.get((tenant_id, key))) is not None
            }
            return WorkitemRead(self.get(tenant_id, workitem_id), message, found)

    def get_with_messages(
        self, tenant_id: str, workitem_id: str, message_ids: list[str]
    ) -> tuple[Workitem | None, dict[str, TimelineEntry]]:
        with self._t.lock:
            found = {m: self._t.messages.get((tenant_id, workitem_id, m)) for m in message_ids}
            return self.get(tenant_id, workitem_id), {m: copy.deepcopy(e) for m, e in found.items() if e is not None}

    def create(
        self,
        workitem: Workitem,
        *,
        idempotency: Idempotency | None = None,
        counters: Iterable[CounterDelta] = (),
        fanout: str | None = None,
    ) -> None:
        key = (workitem.tenant_id, workitem.workitem_id)
        with self._t.lock:
            if idempotency and (idempotency.tenant_id, idempotency.event_id) in self._t.events:
                raise DuplicateEvent(idempotency.event_id)
            if key in self._t.workitems:
                raise AlreadyExists(workitem.workitem_id)
            self._mark(idempotency)
            self._t.workitems[key] = copy.deepcopy(workitem)
            self._add_counters(counters)
            if fanout is not None:
                self._t.stream.append(Committed(None, copy.deepcopy(workitem), fanout))  # an INSERT record has no old image

    def commit(
        self,
        change: Change,
        *,
        idempotency: Idempotency | None = None,
        counters: Iterable[CounterDelta] = (),
        fanout: str | None = None,
    ) -> None:
        w = change.after
        key = (w.tenant_id, w.workitem_id)
        with self._t.lock:
            if idempotency and (idempotency.tenant_id, idempotency.event_id) in self._t.events:
                raise DuplicateEvent(idempotency.event_id)
            stored = self._t.workitems.get(key)
            entries = self._t.entries.get(key, {})
            taken = any(e.message_id and e.kind in _INDEXED and (*key, e.message_id) in self._t.messages for e in change.entries)
            stale = stored is None or stored.version != change.before.version
            if stale or taken or any(e.seq in entries for e in change.entries):
                raise StaleWorkitem(w.workitem_id)  # a lost race: the caller reads again
            self._mark(idempotency)
            self._t.workitems[key] = copy.deepcopy(w)
            timeline = self._t.entries.setdefault(key, {})
            for e in change.entries:
                timeline[e.seq] = copy.deepcopy(e)
                if e.message_id and e.kind in _INDEXED:
                    # The index item keeps what a reaction or forward needs, not the whole entry.
                    self._t.messages[(*key, e.message_id)] = TimelineEntry(
                        workitem_id=w.workitem_id,
                        seq=e.seq,
                        kind=e.kind,
                        at=e.at,
                        author_id=e.author_id,
                        author_role=e.author_role,
                        message_id=e.message_id,
                        text=e.text,
                    )
            self._add_counters(counters)
            if fanout is not None:
                self._t.stream.append(Committed(copy.deepcopy(stored), copy.deepcopy(w), fanout))

    def mark_event(self, idempotency: Idempotency) -> None:
        with self._t.lock:
            if (idempotency.tenant_id, idempotency.event_id) in self._t.events:
                raise DuplicateEvent(idempotency.event_id)
            self._mark(idempotency)

    def timeline(
        self, tenant_id: str, workitem_id: str, *, after: int, limit: int, customer: bool
    ) -> tuple[list[TimelineEntry], bool]:
        with self._t.lock:
            stored = self._t.entries.get((tenant_id, workitem_id), {})
            if customer:  # the customer-view index: entries with a customer seq, in that order
                items = sorted(
                    (e for e in stored.values() if e.customer_seq is not None and e.customer_seq > after),
                    key=lambda e: e.customer_seq or 0,
                )
            else:
                items = [stored[s] for s in sorted(stored) if s > after]
            entries = [self._entry(tenant_id, e) for e in items[:limit]]
            return entries, len(items) > limit

    def latest(self, tenant_id: str, workitem_id: str, limit: int) -> tuple[list[TimelineEntry], bool]:
        with self._t.lock:
            stored = self._t.entries.get((tenant_id, workitem_id), {})
            seqs = sorted(stored, reverse=True)
            entries = [self._entry(tenant_id, stored[s]) for s in seqs[:limit]]
            entries.reverse()
            return entries, len(seqs) > limit

    def open_for_agent(self, tenant_id: str, agent_id: str) -> list[Workitem]:
        with self._t.lock:
            hits = [w for (tid, _), w in self._t.workitems.items() if tid == tenant_id and w.agent_id == agent_id and w.is_open]
            return [copy.deepcopy(w) for w in sorted(hits, key=lambda w: f"{w.created_at}#{w.workitem_id}")]

    def active_sms(self, tenant_id: str, customer_id: str) -> Workitem | None:
        with self._t.lock:
            hits = [
                w
                for (tid, _), w in self._t.workitems.items()
                if tid == tenant_id and w.channel is Channel.SMS and w.customer_id == customer_id and w.status is Status.ACTIVE
            ]
            if not hits:
                return None
            return copy.deepcopy(max(hits, key=lambda w: f"{w.active_at or w.created_at}#{w.workitem_id}"))

    def _entry(self, tenant_id: str, e: TimelineEntry) -> TimelineEntry:
        key = (tenant_id, e.workitem_id, e.seq)
        delivery, sentiment = self._t.deliveries.get(key), self._t.sentiments.get(key)
        out = copy.deepcopy(e)
        if delivery:
            out = replace(out, extra={**out.extra, "delivery": delivery})
        return replace(out, extra={**out.extra, "sentiment": sentiment}) if sentiment else out

    def _mark(self, idempotency: Idempotency | None) -> None:
        if idempotency:
            self._t.events.add((idempotency.tenant_id, idempotency.event_id))

    def _add_counters(self, counters: Iterable[CounterDelta]) -> None:
        for c in counters:
            self._t.update_recipient(c.tenant_id, user_key(c.user_id), c.user_id).workitem_count += c.delta


@dataclass
class _Edge:
    agent_id: str
    supervisor_id: str
    team_id: str
    suspended: bool = False


class MemoryDirectory:
    """``Directory``: users, customer endpoints, teams and supervision edges, templates, policy,
    unread counts. Updates create the endpoint they write to, as UpdateItem does."""

    def __init__(self, tables: MemoryTables, settings: Settings) -> None:
        self._t = tables
        self._settings = settings
        self._edges: dict[tuple[str, str, str, str], _Edge] = {}  # (tenant, agent, supervisor, team)
        self._teams: dict[tuple[str, str], Team] = {}
        self._templates: dict[tuple[str, str], Template] = {}
        self._policies: dict[str, dict[str, Any]] = {}
        self._admins: dict[str, set[str]] = {}
        self._unread: dict[tuple[str, str, str], int] = {}
        self.inbox: dict[tuple[str, str], list[DirectMessage]] = {}

    # endpoints and users

    def recipients(self, tenant_id: str, keys: Iterable[str], consistent: bool = False) -> dict[str, Recipient]:
        with self._t.lock:
            out: dict[str, Recipient] = {}
            for key in dict.fromkeys(keys):
                record = self._t.recipients.get((tenant_id, key))
                if record is not None:
                    out[key] = record.to_recipient(key)
            return out

    def recipient(self, tenant_id: str, key: str) -> Recipient | None:
        with self._t.lock:
            record = self._t.recipients.get((tenant_id, key))
            return record.to_recipient(key) if record else None

    def _update(self, tenant_id: str, key: str, user_id: str, apply: Callable[[RecipientRecord], object]) -> Recipient:
        with self._t.lock:
            record = self._t.update_recipient(tenant_id, key, user_id)
            apply(record)
            return record.to_recipient(key)

    def put_user(
        self, tenant_id: str, user_id: str, name: str, role: Role, now: str, *, keep_admin: str | None = None
    ) -> tuple[Role | None, Recipient]:
        key = user_key(user_id)
        with self._t.lock:
            if keep_admin is not None and keep_admin not in self._admins.get(tenant_id, set()):
                raise Conflict(f"{keep_admin} is no longer an admin")  # the transaction's condition
            existing = self._t.recipients.get((tenant_id, key))
            old = _role(existing.role) if existing else None
            record = self._t.update_recipient(tenant_id, key, user_id)
            record.name, record.role, record.in_directory = name, role.value, True
            admins = self._admins.setdefault(tenant_id, set())
            if role is Role.ADMIN:
                admins.add(user_id)
            else:
                admins.discard(user_id)
        return old, Recipient(tenant_id, key, user_id, role=role, name=name, in_directory=True)

    def role_changed(self, tenant_id: str, user_id: str, role: Role) -> list[str]:
        suspend = role not in SUPERVISING_ROLES
        with self._t.lock:
            edges = self._by_supervisor(tenant_id, user_id)
            for edge in edges:
                edge.suspended = suspend
            return list(dict.fromkeys(e.agent_id for e in edges)) if suspend else []

    def revoke(self, tenant_id: str, user_id: str, at: int) -> Recipient | None:
        with self._t.lock:
            if (tenant_id, user_key(user_id)) not in self._t.recipients:
                return None  # the condition: the record exists
            return self._update(tenant_id, user_key(user_id), user_id, lambda r: setattr(r, "revoked_at", at))

    def enroll(self, principal: Principal, now: str) -> bool:
        key = user_key(principal.user_id)
        with self._t.lock:
            existing = self._t.recipients.get((principal.tenant_id, key))
            if existing is not None and existing.in_directory:
                return False  # the condition: not a directory user yet
            record = self._t.update_recipient(principal.tenant_id, key, principal.user_id)
            record.name, record.role, record.in_directory = principal.name or principal.user_id, principal.role.value, True
            if principal.role is Role.ADMIN:
                self._admins.setdefault(principal.tenant_id, set()).add(principal.user_id)
            return True

    def connect(self, principal: Principal, connection: Connection) -> Recipient:
        def apply(r: RecipientRecord) -> None:
            r.conns.add(connection.token)
            if not principal.is_customer:  # role and name only if not there yet (if_not_exists)
                r.role = r.role or principal.role.value
                if principal.name:
                    r.name = r.name or principal.name

        return self._update(principal.tenant_id, principal.recipient_key, principal.user_id, apply)

    def disconnect(self, principal: Principal, connection: Connection) -> Recipient | None:
        return self._update(
            principal.tenant_id,
            principal.recipient_key,
            principal.user_id,
            lambda r: r.conns.difference_update(connection.tokens),
        )

    def forget(self, tenant_id: str, key: str, connections: Iterable[Connection], watchers: Iterable[Watcher]) -> None:
        # Conditional on the endpoint existing: forgetting never creates one, and fails (the adapter's
        # condition check fails) when there is none; callers log it. Nothing to forget writes nothing.
        tokens, watches = {c.token for c in connections}, {w.token for w in watchers}
        if not tokens and not watches:
            return
        with self._t.lock:
            record = self._t.recipients.get((tenant_id, key))
            if record is None:
                raise LookupError(f"no endpoint {key} in tenant {tenant_id}")
            record.conns -= tokens
            record.watchers -= watches

    def set_presence(self, tenant_id: str, user_id: str, state: Presence) -> Recipient:
        return self._update(tenant_id, user_key(user_id), user_id, lambda r: setattr(r, "presence", state.value))

    def watch(self, tenant_id: str, agent_id: str, watcher: Watcher, add: bool) -> None:
        def apply(r: RecipientRecord) -> None:
            if add:
                r.watchers.add(watcher.token)
            else:
                r.watchers.discard(watcher.token)

        self._update(tenant_id, user_key(agent_id), agent_id, apply)

    def set_notify(self, tenant_id: str, user_id: str, notify: bool) -> Recipient:
        return self._update(tenant_id, user_key(user_id), user_id, lambda r: setattr(r, "notify", notify))

    # teams

    def put_team(
        self, tenant_id: str, team: Team, now: str, removed: Callable[[list[tuple[str, str]]], None] | None = None
    ) -> None:
        with self._t.lock:
            old = self._teams.get((tenant_id, team.team_id))
            old_edges = {(s, a) for s in old.supervisors for a in old.agents} if old else set()
            new_edges = {(s, a) for s in team.supervisors for a in team.agents}
            for sup, agent in new_edges - old_edges:
                self._edges[(tenant_id, agent, sup, team.team_id)] = _Edge(agent, sup, team.team_id)
            for sup, agent in old_edges - new_edges:
                self._edges.pop((tenant_id, agent, sup, team.team_id), None)
        if removed is not None and old_edges - new_edges:
            removed(sorted(old_edges - new_edges))
        with self._t.lock:
            self._teams[(tenant_id, team.team_id)] = copy.deepcopy(team)

    def _of_agent(self, tenant_id: str, agent_id: str) -> list[_Edge]:
        """The agent's edges in table order (``sk = S#<supervisor>#T#<team>``)."""
        hits = [e for (tid, a, _, _), e in self._edges.items() if tid == tenant_id and a == agent_id]
        return sorted(hits, key=lambda e: f"S#{e.supervisor_id}#T#{e.team_id}")

    def _by_supervisor(self, tenant_id: str, supervisor_id: str) -> list[_Edge]:
        """The supervisor's edges in index order (``A#<agent>#T#<team>``)."""
        hits = [e for (tid, _, s, _), e in self._edges.items() if tid == tenant_id and s == supervisor_id]
        return sorted(hits, key=lambda e: f"A#{e.agent_id}#T#{e.team_id}")

    def supervises(self, tenant_id: str, supervisor_id: str, agent_id: str) -> bool:
        with self._t.lock:
            return any(e.supervisor_id == supervisor_id and not e.suspended for e in self._of_agent(tenant_id, agent_id))

    def supervisors_of(self, tenant_id: str, agent_id: str) -> list[str]:
        with self._t.lock:
            return list(dict.fromkeys(e.supervisor_id for e in self._of_agent(tenant_id, agent_id) if not e.suspended))

    def agents_of(self, tenant_id: str, supervisor_id: str) -> list[str]:
        with self._t.lock:
            return list(dict.fromkeys(e.agent_id for e in self._by_supervisor(tenant_id, supervisor_id) if not e.suspended))

    # templates, policy, admins

    def templates(self, tenant_id: str) -> list[Template]:
        with self._t.lock:
            return [t for (tid, tpl), t in sorted(self._templates.items()) if tid == tenant_id]

    def put_template(self, tenant_id: str, template: Template, now: str) -> None:
        with self._t.lock:
            self._templates[(tenant_id, template.template_id)] = template

    def delete_template(self, tenant_id: str, template_id: str) -> bool:
        with self._t.lock:
            return self._templates.pop((tenant_id, template_id), None) is not None

    def policy(self, tenant_id: str) -> Policy:
        d = Policy(
            escalation_seconds=self._settings.default_escalation_seconds, retention_days=self._settings.default_retention_days
        )
        with self._t.lock:
            item = self._policies.get(tenant_id)
            if item is None:
                return d
            return Policy(
                record_coaching=bool(item.get("record_coaching")),
                escalation_seconds=item.get("escalation_seconds", d.escalation_seconds),
                retention_days=item.get("retention_days", d.retention_days),
                webhook_secret=item.get("webhook_secret"),
                transcribe_calls=bool(item.get("transcribe_calls")),
                sentiment_language=item.get("sentiment_language", d.sentiment_language),
            )

    def put_policy(self, tenant_id: str, policy: Policy, now: str) -> None:
        with self._t.lock:  # keeps the webhook secret
            self._policies.setdefault(tenant_id, {}).update(
                record_coaching=policy.record_coaching,
                escalation_seconds=policy.escalation_seconds,
                retention_days=policy.retention_days,
                transcribe_calls=policy.transcribe_calls,
                sentiment_language=policy.sentiment_language,
            )

    def set_webhook_secret(self, tenant_id: str, secret: str, now: str) -> None:
        with self._t.lock:
            self._policies.setdefault(tenant_id, {})["webhook_secret"] = secret

    def admins(self, tenant_id: str, limit: int | None = None) -> list[str]:
        with self._t.lock:
            return sorted(self._admins.get(tenant_id, set()))[:limit]

    # directory messages and unread counts

    def add_unread(self, tenant_id: str, recipient_id: str, sender_id: str) -> int:
        with self._t.lock:
            key = (tenant_id, recipient_id, sender_id)
            self._unread[key] = self._unread.get(key, 0) + 1
            record = self._t.update_recipient(tenant_id, user_key(recipient_id), recipient_id)
            record.unread_total += 1
            return record.to_recipient(user_key(recipient_id)).unread_total

    def mark_read(self, tenant_id: str, recipient_id: str, sender_id: str) -> int:
        with self._t.lock:
            count = self._unread.pop((tenant_id, recipient_id, sender_id), 0)
            if count == 0:
                found = self.recipient(tenant_id, user_key(recipient_id))
                return found.unread_total if found else 0
            record = self._t.update_recipient(tenant_id, user_key(recipient_id), recipient_id)
            record.unread_total -= count
            return record.to_recipient(user_key(recipient_id)).unread_total

    def store_message(self, tenant_id: str, recipient_id: str, message: DirectMessage, retention_days: int) -> None:
        with self._t.lock:
            self.inbox.setdefault((tenant_id, recipient_id), []).append(copy.deepcopy(message))


class MemoryConnectionRegistry:
    """``ConnectionRegistry``: connection id -> identity, gone after API Gateway's 2 h limit."""

    def __init__(self) -> None:
        self._items: dict[str, tuple[Principal, Connection]] = {}
        self._lock = threading.Lock()

    def put(self, principal: Principal, connection: Connection) -> None:
        with self._lock:
            self._items[connection.connection_id] = (copy.deepcopy(principal), connection)

    def expiry(self, connection_id: str) -> int | None:
        with self._lock:
            item = self._items.get(connection_id)
            return item[0].expires_at if item else None

    def get(self, connection_id: str) -> Principal | None:
        with self._lock:
            item = self._items.get(connection_id)
        if item is None or item[1].connected_at + CONNECTION_LIFETIME_MS < time.time() * 1000:
            return None
        p = item[0]
        # What the item stores: no ``federated`` flag (a stored connection is never enrolled again).
        return Principal(p.tenant_id, p.user_id, p.role, p.workitem_id, p.name, expires_at=p.expires_at, issued_at=p.issued_at)

    def delete(self, connection_id: str) -> None:
        with self._lock:
            self._items.pop(connection_id, None)


class MemoryAssistStore:
    """``AssistanceStore``: every state change conditional on the request still pending (at the
    stage read), the due index sharded as the adapter shards it."""

    def __init__(self, settings: Settings, analytics: MemoryAnalyticsStore | None = None) -> None:
        self._shards = max(1, settings.escalation_shards)
        self._items: dict[tuple[str, str], AssistanceRequest] = {}
        self._marks: dict[tuple[str, str], dict[str, str]] = {}  # (tenant, user) -> assistId -> requested at
        self._lock = threading.Lock()
        self.analytics = analytics  # where a request's counted facts go (none: they are not counted here)

    def shard_of(self, assist_id: str) -> int:
        return zlib.crc32(assist_id.encode()) % self._shards

    def create(self, request: AssistanceRequest, retention_days: int, counted: Sequence[an.Slot] = ()) -> bool:
        with self._lock:
            key = (request.tenant_id, request.assist_id)
            if key in self._items:
                raise AlreadyExists(request.assist_id)
            self._items[key] = request
        if counted and self.analytics is None:
            return False
        for slot in counted:
            self.analytics.apply(request.tenant_id, slot)  # type: ignore[union-attr]
        return True

    def get(self, tenant_id: str, assist_id: str) -> AssistanceRequest | None:
        with self._lock:
            return self._items.get((tenant_id, assist_id))

    def claim(self, request: AssistanceRequest, supervisor_id: str, at: str | None = None) -> AssistanceRequest:
        with self._lock:
            key = (request.tenant_id, request.assist_id)
            stored = self._items.get(key)
            if stored is None or stored.status is not AssistStatus.PENDING:
                raise AlreadyClaimed("the assistance request was already claimed")
            claimed = replace(stored, status=AssistStatus.CLAIMED, claimed_by=supervisor_id, due_at=None, claimed_at=at)
            self._items[key] = claimed
            return claimed

    def due(self, shard: int, now_epoch: int, limit: int) -> list[AssistanceRequest]:
        with self._lock:
            hits = [
                r
                for r in self._items.values()
                if r.escalates and r.due_at is not None and r.due_at <= now_epoch and self.shard_of(r.assist_id) == shard
            ]
        hits.sort(key=lambda r: f"{r.due_at:012d}#{r.tenant_id}#{r.assist_id}")
        return hits[:limit]

    def escalate(self, before: AssistanceRequest, after: AssistanceRequest) -> bool:
        with self._lock:
            key = (before.tenant_id, before.assist_id)
            stored = self._items.get(key)
            if stored is None or stored.status is not AssistStatus.PENDING or stored.stage != before.stage:
                return False
            due_at = after.due_at if after.escalates else None
            self._items[key] = replace(stored, stage=after.stage, recipients=tuple(after.recipients), due_at=due_at)
            return True

    def mark_pending(self, request: AssistanceRequest, user_ids: list[str]) -> None:
        with self._lock:
            for user_id in user_ids:
                self._marks.setdefault((request.tenant_id, user_id), {})[request.assist_id] = request.created_at

    def clear_pending(self, request: AssistanceRequest) -> None:
        with self._lock:
            for user_id in request.recipients:
                self._marks.get((request.tenant_id, user_id), {}).pop(request.assist_id, None)

    def pending_for(self, tenant_id: str, user_id: str) -> list[AssistanceRequest]:
        with self._lock:
            marks = sorted(self._marks.get((tenant_id, user_id), {}).items(), key=lambda m: (m[1], m[0]))
            found = [self._items.get((tenant_id, assist_id)) for assist_id, _ in marks]
        return [r for r in found if r is not None and r.pending]


class MemoryWebhookStore:
    """``SubscriptionStore``: subscriptions, the SMS origination identity, and delivery statuses
    written on the timeline's entries (shared with :class:`MemoryWorkitemStore`)."""

    def __init__(self, tables: MemoryTables) -> None:
        self._t = tables
        self._subs: dict[tuple[str, str], Subscription] = {}
        self._sms: dict[str, str] = {}
        self._numbers: dict[str, str] = {}  # tenant -> the number its customers text
        self._claims: dict[tuple[str, str], str] = {}  # (kind, key) -> tenant
        self._instances: dict[str, str] = {}  # tenant -> its Amazon Connect instance
        self._agents: dict[str, dict[str, str]] = {}  # instance -> {Connect user id: user id}
        self._contacts: dict[str, tuple[str, str, str]] = {}  # initial contact -> (tenant, contact, connected at)
        self._lane: dict[tuple[str, int], tuple[int, str]] = {}  # (tenant, place) -> (until ms, holder)

    def list(self, tenant_id: str) -> list[Subscription]:
        with self._t.lock:
            return [s for (tid, _), s in sorted(self._subs.items()) if tid == tenant_id]

    def get(self, tenant_id: str, subscription_id: str) -> Subscription | None:
        with self._t.lock:
            return self._subs.get((tenant_id, subscription_id))

    def put(self, sub: Subscription, now: str) -> None:
        with self._t.lock:
            self._subs[(sub.tenant_id, sub.subscription_id)] = replace(sub, health=Health())

    def delete(self, tenant_id: str, subscription_id: str) -> bool:
        with self._t.lock:
            return self._subs.pop((tenant_id, subscription_id), None) is not None

    def sms_origination(self, tenant_id: str) -> str | None:
        with self._t.lock:
            return self._sms.get(tenant_id)

    def set_sms_origination(self, tenant_id: str, identity: str, now: str) -> None:
        with self._t.lock:
            self._sms[tenant_id] = identity

    def sms_settings(self, tenant_id: str) -> tuple[str | None, str | None]:
        with self._t.lock:
            return self._sms.get(tenant_id), self._numbers.get(tenant_id)

    def set_sms_settings(self, tenant_id: str, identity: str, number: str | None, previous: str | None, now: str) -> None:
        with self._t.lock:
            if number and self._claims.get(("SMS", number), tenant_id) != tenant_id:
                raise ClaimedElsewhere(number)
            if previous and previous != number and self._claims.get(("SMS", previous)) == tenant_id:
                del self._claims[("SMS", previous)]
            if number:
                self._claims[("SMS", number)] = tenant_id
                self._numbers[tenant_id] = number
            else:
                self._numbers.pop(tenant_id, None)
            self._sms[tenant_id] = identity

    def claimant(self, kind: str, key: str) -> str | None:
        with self._t.lock:
            return self._claims.get((kind.upper(), key))

    def connect_instance(self, tenant_id: str) -> str | None:
        with self._t.lock:
            return self._instances.get(tenant_id)

    def set_connect(self, tenant_id: str, instance_arn: str, agents: dict[str, str], previous: str | None, now: str) -> None:
        with self._t.lock:
            if self._claims.get(("CONNECT", instance_arn), tenant_id) != tenant_id:
                raise ClaimedElsewhere(instance_arn)
            if previous and previous != instance_arn and self._claims.get(("CONNECT", previous)) == tenant_id:
                del self._claims[("CONNECT", previous)]
                self._agents.pop(previous, None)
            self._claims[("CONNECT", instance_arn)] = tenant_id
            self._agents[instance_arn] = dict(agents)
            self._instances[tenant_id] = instance_arn

    def connect_claim(self, instance_arn: str) -> tuple[str, dict[str, str]] | None:
        with self._t.lock:
            tenant = self._claims.get(("CONNECT", instance_arn))
            return None if tenant is None else (tenant, dict(self._agents.get(instance_arn, {})))

    def contact(self, initial_contact_id: str) -> tuple[str, str, str] | None:
        with self._t.lock:
            return self._contacts.get(initial_contact_id)

    def set_contact(self, initial_contact_id: str, tenant_id: str, contact_id: str, connected_at: str) -> bool:
        with self._t.lock:
            known = self._contacts.get(initial_contact_id)
            if known is not None and known[2] > connected_at:
                return False
            self._contacts[initial_contact_id] = (tenant_id, contact_id, connected_at)
            return True

    def set_delivery(self, tenant_id: str, workitem_id: str, seq: int, status: str) -> TimelineEntry | None:
        """``failed`` never replaces ``sent``; None when the entry is gone or already sent."""
        with self._t.lock:
            entry = self._t.entries.get((tenant_id, workitem_id), {}).get(seq)
            key = (tenant_id, workitem_id, seq)
            if entry is None or (status == "failed" and self._t.deliveries.get(key) == "sent"):
                return None
            self._t.deliveries[key] = status
            return replace(copy.deepcopy(entry), extra={**entry.extra, "delivery": status})

    def set_health(self, tenant_id: str, subscription_id: str, health: Health) -> None:
        with self._t.lock:
            sub = self._subs.get((tenant_id, subscription_id))
            if sub is not None:
                self._subs[(tenant_id, subscription_id)] = replace(sub, health=health)

    def claim_probe(self, tenant_id: str, subscription_id: str, seen_open_until: int, until: int) -> bool:
        with self._t.lock:
            sub = self._subs.get((tenant_id, subscription_id))
            if sub is None or sub.health.open_until != seen_open_until:
                return False
            self._subs[(tenant_id, subscription_id)] = replace(sub, health=sub.health._replace(open_until=until))
            return True

    def take_lane(self, tenant_id: str, holder: str, now_ms: int, places: int, lease_ms: int) -> tuple[int | None, int]:
        with self._t.lock:
            busy = {n: until for (tid, n), (until, _) in self._lane.items() if tid == tenant_id and until >= now_ms}
            for place in range(places):
                if place not in busy:
                    self._lane[(tenant_id, place)] = (now_ms + lease_ms, holder)
                    return place, 0
            return None, min(busy[n] for n in range(places))

    def leave_lane(self, tenant_id: str, holder: str, place: int) -> None:
        with self._t.lock:
            if self._lane.get((tenant_id, place), (0, ""))[1] == holder:
                del self._lane[(tenant_id, place)]


class MemoryAnalyticsStore:
    """The analytics store in memory: one ledger of slots and buckets per tenant."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.ledgers: dict[str, an.Ledger] = {}

    def apply(self, tenant_id: str, slot: an.Slot) -> bool:
        with self._lock:
            return self.ledgers.setdefault(tenant_id, an.Ledger()).apply(slot)

    def read(self, tenant_id: str, reads: Sequence[an.Read]) -> list[tuple[an.Cell, dict[str, int]]]:
        with self._lock:
            return self.ledgers.get(tenant_id, an.Ledger()).read(reads)


class MemoryAttentionStore:
    """Attention rules, as the DynamoDB store keeps them (one partition per tenant, sorted by id)."""

    def __init__(self, tables: MemoryTables, analytics: MemoryAnalyticsStore | None = None) -> None:
        self._t = tables
        self.analytics = analytics  # where the facts of a raise or an ack go (none: not counted here)
        self._rules: dict[tuple[str, str], Rule] = {}
        self._alerts: dict[tuple[str, str], Alert] = {}  # every alert ever raised, cleared ones too
        self._slots: dict[tuple[str, str, str], str] = {}  # (tenant, workitem, rule) -> its active alert

    def rules(self, tenant_id: str) -> list[Rule]:
        with self._t.lock:
            return [r for (tid, _), r in sorted(self._rules.items()) if tid == tenant_id]

    def put_rule(self, tenant_id: str, rule: Rule, now: str) -> None:
        with self._t.lock:
            self._rules[(tenant_id, rule.rule_id)] = rule

    def delete_rule(self, tenant_id: str, rule_id: str) -> bool:
        with self._t.lock:
            return self._rules.pop((tenant_id, rule_id), None) is not None

    def set_sentiment(self, tenant_id: str, workitem_id: str, seq: int, sentiment: Sentiment) -> bool:
        with self._t.lock:
            if self._t.entries.get((tenant_id, workitem_id), {}).get(seq) is None:
                return False
            self._t.sentiments[(tenant_id, workitem_id, seq)] = sentiment.value
            return True

    def raise_alert(self, alert: Alert, max_active: int, counted: Sequence[an.Slot] = ()) -> str:
        with self._t.lock:
            slot = (alert.tenant_id, alert.workitem_id, alert.rule_id)
            if slot in self._slots or (alert.tenant_id, alert.alert_id) in self._alerts:
                return "exists"
            if sum(1 for (t, _), a in self._alerts.items() if t == alert.tenant_id and a.active) >= max_active:
                return "full"
            self._slots[slot] = alert.alert_id
            self._alerts[(alert.tenant_id, alert.alert_id)] = alert
            self._count(alert.tenant_id, counted)
            return "raised"

    def _count(self, tenant_id: str, counted: Sequence[an.Slot]) -> None:
        for slot in counted if self.analytics is not None else ():
            self.analytics.apply(tenant_id, slot)  # type: ignore[union-attr]

    def alerts(self, tenant_id: str) -> list[Alert]:
        with self._t.lock:
            return [a for (t, _), a in sorted(self._alerts.items()) if t == tenant_id and a.active]

    def alert(self, tenant_id: str, alert_id: str) -> Alert | None:
        with self._t.lock:
            return self._alerts.get((tenant_id, alert_id))

    def active_of(self, tenant_id: str, workitem_id: str) -> list[str]:
        with self._t.lock:
            return [a for (t, w, _), a in sorted(self._slots.items()) if (t, w) == (tenant_id, workitem_id)]

    def ack(self, acked: Alert, counted: Sequence[an.Slot] = ()) -> bool:
        with self._t.lock:
            key = (acked.tenant_id, acked.alert_id)
            if key not in self._alerts or self._alerts[key].state is not AlertState.OPEN:
                return False
            self._alerts[key] = acked
            self._count(acked.tenant_id, counted)
            return True

    def clear(self, cleared: Alert) -> bool:
        with self._t.lock:
            slot = (cleared.tenant_id, cleared.workitem_id, cleared.rule_id)
            key = (cleared.tenant_id, cleared.alert_id)
            if self._slots.get(slot) != cleared.alert_id or not self._alerts[key].active:
                return False
            del self._slots[slot]
            self._alerts[key] = cleared
            return True


class MemoryPipelineIndex:
    """DynamoPipelineIndex in memory: one item per pipeline, overwritten by a second start."""

    def __init__(self) -> None:
        self._items: dict[str, PipelineOwner] = {}
        self._lock = threading.Lock()

    def remember(self, pipeline_id: str, owner: PipelineOwner, expires_at: int) -> None:
        with self._lock:
            self._items[pipeline_id] = owner

    def owner(self, pipeline_id: str) -> PipelineOwner | None:
        with self._lock:
            return self._items.get(pipeline_id)


@dataclass
class MemoryStorage:
    """Every storage port in memory, sharing one set of tables (what ``bootstrap.build`` takes)."""

    settings: Settings
    tables: MemoryTables = field(default_factory=MemoryTables)

    def __post_init__(self) -> None:
        self.workitems = MemoryWorkitemStore(self.tables)
        self.directory = MemoryDirectory(self.tables, self.settings)
        self.registry = MemoryConnectionRegistry()
        self.analytics = MemoryAnalyticsStore()
        self.assistance = MemoryAssistStore(self.settings, self.analytics)
        self.webhooks = MemoryWebhookStore(self.tables)
        self.attention = MemoryAttentionStore(self.tables, self.analytics)
        self.pipelines = MemoryPipelineIndex()
