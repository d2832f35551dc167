"""Raise hand (docs/product.md S16-S20, B4): assistance templates, requests, claims, escalation, and the
directory messages recipients answer with.

Every action reads a constant number of items whatever the tenant's size: the supervisors of the
caller come from the supervision edges (1 Query), their recipients from one BatchGetItem, and
requests are keyed by id. The escalation sweep finds due requests through a sharded, sparse index
(1 Query per shard), never a Scan. The request budget of each action is in docs/assistance.md.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from chalicelib import metrics
from chalicelib.domain import assistance as rules
from chalicelib.domain import coaching as coaching_rules
from chalicelib.domain.assistance import AssistanceRequest, Contact, Delivery, Stage
from chalicelib.domain.coaching import Change, Workitem
from chalicelib.domain.errors import Forbidden, NotFound
from chalicelib.domain.identity import Principal, Role, user_key
from chalicelib.domain.timeline import EntryKind
from chalicelib.services import push_events as ev
from chalicelib.services.analytics import requested_slots
from chalicelib.services.clock import new_id, now_pair
from chalicelib.services.commits import Workitems
from chalicelib.services.delivery import Notifier, Outbox
from chalicelib.services.messagebus import AssistClaimed, AssistEscalated, AssistRequested, Publisher
from chalicelib.services.paging import DEFAULT_LIMIT, page, scope_of
from chalicelib.services.ports import (
    AssistanceStore,
    Clock,
    Inbox,
    Presence,
    Recipient,
    RecipientLookup,
    Supervision,
    TenantConfig,
    UserDirectory,
)
from chalicelib.services.results import (
    AssistId,
    AssistNote,
    AssistSent,
    AssistTemplates,
    ClaimNote,
    Count,
    DirectMessage,
    MessageSent,
    PendingRequest,
    PendingRequests,
    Person,
    RecipientsPage,
)
from chalicelib.settings import Settings

log = logging.getLogger(__name__)

BATCH_GET_MAX = 100
# assist.recipients lists fellow agents through the caller's supervisors (see docs/assistance.md);
# the cap keeps the action's request count bounded whatever a supervisor's span.
MAX_PEER_CANDIDATES = 300
# Due requests handled per shard and sweep; the rest wait for the next sweep (one minute later).
SWEEP_BATCH = 200


class AssistanceService:
    def __init__(
        self,
        settings: Settings,
        workitems: Workitems,
        supervision: Supervision,
        users: UserDirectory,
        recipients: RecipientLookup,
        config: TenantConfig,
        inbox: Inbox,
        notifier: Notifier,
        clock: Clock,
        publish: Publisher,
        store: AssistanceStore | None = None,
    ) -> None:
        self.settings = settings
        self.workitems = workitems
        self.supervision = supervision
        self.users = users
        self.recipients_of = recipients
        self.config = config
        self.inbox = inbox
        self.notifier = notifier
        self.clock = clock
        self._publish = publish
        self._store = store

    @property
    def store(self) -> AssistanceStore:
        if self._store is None:
            raise RuntimeError("AssistanceService needs an AssistanceStore (bootstrap wires DynamoAssistStore)")
        return self._store

    @store.setter
    def store(self, store: AssistanceStore) -> None:
        self._store = store

    # --- templates and recipients (S17, S18) ------------------------------------------------

    def templates(self, caller: Principal) -> AssistTemplates:
        """``assist.templates``: 1 Query."""
        rules.require_agent(caller)
        enabled = [t for t in self.config.templates(caller.tenant_id) if t.enabled]
        return AssistTemplates([(t.template_id, t.text) for t in enabled])

    def recipients(self, caller: Principal, limit: int = DEFAULT_LIMIT, cursor: str | None = None) -> RecipientsPage:
        """``assist.recipients``: 1 Query (the caller's supervisors) + 1 Query per supervisor (their
        agents) + 1 BatchGetItem per 100 people."""
        rules.require_agent(caller)
        tenant = caller.tenant_id
        supervisor_ids = self.supervision.supervisors_of(tenant, caller.user_id)
        peer_ids: list[str] = []
        for supervisor_id in supervisor_ids:
            peer_ids.extend(self.supervision.agents_of(tenant, supervisor_id))
        peer_ids = [p for p in dict.fromkeys(peer_ids) if p != caller.user_id][:MAX_PEER_CANDIDATES]
        contacts = self._contacts(tenant, [*supervisor_ids, *peer_ids])
        supervisors = rules.available_supervisors(contacts[s] for s in supervisor_ids)
        peers = rules.online_peers(caller.user_id, (contacts[p] for p in peer_ids))
        # One ordered list, supervisors first, each by name: a page may hold some of each.
        people = [("s", c) for c in supervisors] + [("a", c) for c in peers]
        rows, next_cursor = page(
            people,
            lambda p: (p[0], p[1].name.lower(), p[1].user_id),
            lambda p: self.notifier.wire.plain(Person(p[1].user_id, p[1].name)),
            scope_of("assist.recipients", tenant, caller.user_id),
            limit,
            cursor,
        )
        return RecipientsPage(
            [body for (kind, _), body in rows if kind == "s"], [body for (kind, _), body in rows if kind == "a"], next_cursor
        )

    # --- requests (S18, S19) ----------------------------------------------------------------

    def request(
        self,
        caller: Principal,
        template_id: str,
        workitem_id: str | None,
        to_user_id: str | None,
        connection_id: str | None = None,
    ) -> AssistSent:
        """``assist.request``: 1 Query (templates) + 1 Query (supervisors) + 1 BatchGetItem
        (their recipients and the chosen user's) + 1 GetItem (policy) + 1 PutItem (a TransactWriteItems
        with the analytics' facts of a hand raised to supervisors, docs/data-model.md), plus 2 UpdateItem
        per recipient reached by unread count, plus 1 GetItem + 1 TransactWriteItems with a workitem."""
        rules.require_agent(caller)
        tenant = caller.tenant_id
        text = rules.pick_template(((t.template_id, t.text, t.enabled) for t in self.config.templates(tenant)), template_id)
        supervisor_ids = self.supervision.supervisors_of(tenant, caller.user_id)
        wanted = [*supervisor_ids, *([to_user_id] if to_user_id else [])]
        recipients = self._recipients(tenant, wanted)
        at, now_ms = now_pair(self.clock)
        contacts = {u: _contact(u, recipients.get(u), now_ms) for u in wanted}
        target = contacts.get(to_user_id) if to_user_id else None
        chosen = rules.choose_recipients(caller.user_id, to_user_id, (contacts[s] for s in supervisor_ids), target)
        policy = self.config.policy(tenant)
        request = rules.new_request(
            tenant,
            new_id("as"),
            caller.user_id,
            template_id,
            text,
            workitem_id,
            to_user_id,
            chosen,
            at,
            _ceil_seconds(now_ms),
            policy.escalation_seconds,
        )
        delivery = rules.deliver(chosen)
        if workitem_id:
            # Checks the caller is the workitem's agent before anything is stored or sent.
            self._on_timeline(
                caller,
                workitem_id,
                EntryKind.ASSIST_REQUESTED,
                caller.user_id,
                Role.AGENT,
                require_agent=True,
                assistId=request.assist_id,
                text=text,
                recipients=delivery.recipients,
            )
        counted = self.store.create(request, policy.retention_days, requested_slots(request))
        self.store.mark_pending(request, list(delivery.recipients))
        box = self.notifier.outbox(tenant, connection_id)
        self._deliver(box, request, delivery, recipients, ev.ASSIST_REQUESTED, AssistNote(request))
        self.notifier.flush(box)
        self._publish(AssistRequested(request, counted))
        return AssistSent(request.assist_id, delivery.recipients)

    def claim(self, caller: Principal, assist_id: str, connection_id: str | None = None) -> AssistId:
        """``assist.claim`` (B4): 1 GetItem + 1 conditional UpdateItem + 1 BatchGetItem per 100
        recipients, plus 1 GetItem + 1 TransactWriteItems with a workitem. The first claim wins."""
        request = self.store.get(caller.tenant_id, assist_id)
        if request is None:
            raise NotFound(f"assistance request {assist_id} not found")
        rules.check_claim(caller, request)
        try:
            request = self.store.claim(request, caller.user_id, now_pair(self.clock)[0])
        except rules.AlreadyClaimed:
            # Lost the race to another claim: read it again (1 GetItem, on this path only) so the
            # refusal names the winner, as check_claim does when the claim was seen first.
            latest = self.store.get(caller.tenant_id, assist_id)
            if latest is None or latest.pending:
                raise
            rules.check_claim(caller, latest)
            raise
        self.store.clear_pending(request)
        if request.workitem_id:
            try:
                self._on_timeline(
                    caller, request.workitem_id, EntryKind.ASSIST_CLAIMED, caller.user_id, caller.role, assistId=assist_id
                )
            except NotFound:  # the workitem expired (retention) since the request: the claim stands
                log.warning("claim of %s: workitem %s is gone, no timeline entry", assist_id, request.workitem_id)
        audience = rules.claim_audience(request)
        # The claimer is looked up in the same batch: the others are told their directory name (W18.4).
        recipients = self._recipients(caller.tenant_id, [*audience, caller.user_id])
        me = recipients.get(caller.user_id)
        note = ClaimNote(assist_id, caller.user_id, (me.name if me is not None else None) or caller.name)
        box = self.notifier.outbox(caller.tenant_id, connection_id)
        for user_id in audience:
            box.to_recipient(recipients.get(user_id), ev.ASSIST_CLAIMED, note)
        self.notifier.flush(box)
        self._publish(AssistClaimed(request, caller.user_id))
        return AssistId(assist_id)

    def pending(self, caller: Principal) -> PendingRequests:
        """``assist.pending`` (W18.2): the requests delivered or escalated to the caller that nobody
        has claimed, oldest first. 1 Query + 1 BatchGetItem (requests) + 1 BatchGetItem (agents' names)."""
        if caller.role not in (Role.SUPERVISOR, Role.ADMIN):
            raise Forbidden("only supervisors and admins have pending requests")
        requests = self.store.pending_for(caller.tenant_id, caller.user_id)
        agents = self._recipients(caller.tenant_id, [r.agent_id for r in requests]) if requests else {}
        return PendingRequests(
            [PendingRequest(r, (agents[r.agent_id].name if r.agent_id in agents else None) or r.agent_id) for r in requests]
        )

    # --- escalation (B4) --------------------------------------------------------------------

    def escalate_due(self) -> dict[str, Any]:
        """The scheduled sweep: 1 Query per shard, then per due request 1 Query (team supervisors
        or admins) + 1 BatchGetItem + 1 conditional UpdateItem (+ unread and timeline writes).

        A request that fails is logged and the others still go; the sweep then fails so the
        schedule reports it, and the failed request, still due, is retried by the next sweep.
        """
        _, now_ms = now_pair(self.clock)
        now_epoch = now_ms // 1000
        summary = {"escalated": 0, "skipped": 0, "failed": 0}
        first_error: Exception | None = None
        try:
            for shard in range(max(1, self.settings.escalation_shards)):
                for request in self.store.due(shard, now_epoch, SWEEP_BATCH):
                    try:
                        done = self._escalate(request, now_epoch)
                    except Exception as exc:
                        log.exception(
                            "escalation of %s (tenant %s, stage %s) failed",
                            request.assist_id,
                            request.tenant_id,
                            request.stage.label,
                        )
                        summary["failed"] += 1
                        first_error = first_error or exc
                        continue
                    summary["escalated" if done else "skipped"] += 1
        except Exception:  # the due requests could not be read: the sweep failed as a whole
            summary["failed"] += 1
            raise
        finally:
            metrics.ESCALATIONS.add(summary["escalated"])
            metrics.ESCALATION_FAILURES.add(summary["failed"])
        if first_error is not None:
            raise RuntimeError(f"{summary['failed']} escalation step(s) failed; they stay due") from first_error
        return summary

    def _escalate(self, request: AssistanceRequest, now_epoch: int) -> bool:
        stage = rules.next_stage(request)
        if stage is None or not request.is_due(now_epoch):
            return False
        tenant = request.tenant_id
        ids = self.supervision.supervisors_of(tenant, request.agent_id) if stage is Stage.TEAM else self.users.admins(tenant)
        recipients = self._recipients(tenant, ids)
        _, now_ms = now_pair(self.clock)
        contacts = [_contact(u, recipients.get(u), now_ms) for u in ids]
        audience = rules.escalation_audience(contacts, request.agent_id)
        after = rules.escalated(request, stage, (c.user_id for c in audience), _ceil_seconds(now_ms))
        if not self.store.escalate(request, after):
            return False  # claimed, or another sweep took this step
        delivery = rules.deliver(audience)
        self.store.mark_pending(after, list(delivery.recipients))
        if request.workitem_id:
            try:
                self._on_timeline_of(
                    tenant,
                    request.workitem_id,
                    EntryKind.ASSIST_REQUESTED,
                    request.agent_id,
                    Role.AGENT,
                    assistId=request.assist_id,
                    escalation=stage.label,
                    recipients=delivery.recipients,
                )
            except NotFound:
                log.warning("escalation of %s: workitem %s is gone, no timeline entry", request.assist_id, request.workitem_id)
        box = self.notifier.outbox(tenant)
        self._deliver(box, after, delivery, recipients, ev.ASSIST_ESCALATED, AssistNote(after, stage=stage.label))
        self.notifier.flush(box)
        self._publish(AssistEscalated(after, stage.label))
        return True

    # --- directory messages (S19, S20) --------------------------------------------------------

    def directory_send(
        self, caller: Principal, to_user_id: str, text: str, reply_to: str | None, connection_id: str | None = None
    ) -> MessageSent:
        """``directory.send``: 1 GetItem (recipient) + 1 GetItem (policy: retention) + 1 PutItem,
        plus 2 UpdateItem when the recipient gets an unread count."""
        tenant = caller.tenant_id
        recipient = self.recipients_of.recipient(tenant, user_key(to_user_id))
        at, now_ms = now_pair(self.clock)
        contact = _contact(to_user_id, recipient, now_ms) if recipient is not None else None
        # Admins need not be directory users (W2.2) but must be able to answer.
        known = recipient is not None and (recipient.in_directory or recipient.role is Role.ADMIN)
        rules.check_direct_message(caller, to_user_id, text, contact, known)
        assist_id = reply_to if reply_to and reply_to.startswith("as_") else None
        message = DirectMessage(new_id("dm"), caller.user_id, text, at, reply_to or None, assist_id)
        self.inbox.store_message(tenant, to_user_id, message, self.config.policy(tenant).retention_days)
        delivery = rules.deliver([contact] if contact else [])
        box = self.notifier.outbox(tenant, connection_id)
        self._deliver_from(
            box, caller.user_id, delivery, {to_user_id: recipient} if recipient else {}, ev.DIRECTORY_MESSAGE, message
        )
        self.notifier.flush(box)
        return MessageSent(message.message_id)

    def unread(self, caller: Principal) -> Count:
        """``directory.unread.get``: 1 GetItem."""
        recipient = self.recipients_of.recipient(caller.tenant_id, user_key(caller.user_id))
        return Count(recipient.unread_total if recipient else 0)

    def read(self, caller: Principal, with_user_id: str) -> Count:
        """``directory.read``: 1 DeleteItem + 1 UpdateItem (or GetItem when nothing was unread)."""
        return Count(self.inbox.mark_read(caller.tenant_id, caller.user_id, with_user_id))

    # --- helpers ------------------------------------------------------------------------------

    def _recipients(self, tenant_id: str, user_ids: Iterable[str]) -> dict[str, Recipient]:
        """Endpoints by user id, 1 BatchGetItem per 100 (the port's limit)."""
        ids = list(dict.fromkeys(user_ids))
        out: dict[str, Recipient] = {}
        for i in range(0, len(ids), BATCH_GET_MAX):
            found = self.recipients_of.recipients(tenant_id, [user_key(u) for u in ids[i : i + BATCH_GET_MAX]])
            out.update({recipient.user_id: recipient for recipient in found.values()})
        return out

    def _contacts(self, tenant_id: str, user_ids: list[str]) -> dict[str, Contact]:
        recipients = self._recipients(tenant_id, user_ids)
        _, now_ms = now_pair(self.clock)
        return {u: _contact(u, recipients.get(u), now_ms) for u in user_ids}

    def _deliver(
        self,
        box: Outbox,
        request: AssistanceRequest,
        delivery: Delivery,
        recipients: dict[str, Recipient],
        event: str,
        data: Any,
    ) -> None:
        self._deliver_from(box, request.agent_id, delivery, recipients, event, data)

    def _deliver_from(
        self, box: Outbox, sender_id: str, delivery: Delivery, recipients: dict[str, Recipient], event: str, data: Any
    ) -> None:
        """Pop-up recipients get ``event``; the others get their unread count from ``sender_id``
        raised (it survives reconnects) and, on any live connection, ``directory.unread``."""
        for user_id in delivery.popup:
            box.to_recipient(recipients.get(user_id), event, data)
        for user_id in delivery.unread:
            count = self.inbox.add_unread(box.tenant_id, user_id, sender_id)
            box.to_recipient(recipients.get(user_id), ev.DIRECTORY_UNREAD, Count(count))

    def _on_timeline(
        self,
        caller: Principal,
        workitem_id: str,
        kind: EntryKind,
        author_id: str,
        author_role: Role,
        *,
        require_agent: bool = False,
        **extra: Any,
    ) -> Change:
        """Append an assistance entry to the workitem's coaching timeline (1 GetItem + 1 transaction)."""

        def decide(w: Workitem) -> Change:
            if require_agent:
                coaching_rules.require_agent_of(caller, w)
            return coaching_rules.record(w, kind, author_id, author_role, self.workitems.now(), **extra)

        return self.workitems.mutate(caller.tenant_id, workitem_id, decide)

    def _on_timeline_of(
        self, tenant_id: str, workitem_id: str, kind: EntryKind, author_id: str, author_role: Role, **extra: Any
    ) -> Change:
        return self.workitems.record(tenant_id, workitem_id, kind, author_id, author_role, **extra)


def _contact(user_id: str, recipient: Recipient | None, now_ms: int) -> Contact:
    if recipient is None:  # never connected and not in the directory (an admin, say): reachable by unread only
        return Contact(user_id, user_id, None, online=False, available=False, notify=True)
    online = bool(recipient.live(now_ms))
    return Contact(
        user_id,
        recipient.name or user_id,
        recipient.role,
        online=online,
        available=online and recipient.presence(now_ms) is Presence.AVAILABLE,
        notify=recipient.notify,
    )


def _ceil_seconds(now_ms: int) -> int:
    """Due times round up, so a request never escalates before its full delay has passed."""
    return -(-now_ms // 1000)
