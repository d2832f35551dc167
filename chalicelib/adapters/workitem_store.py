"""The workitems table behind the ``WorkitemStore`` port (``chalicelib.services.ports``): workitems,
their timeline entries, message index items and inbound idempotency keys.

Every method documents the DynamoDB requests it makes; docs/data-model.md sums them per action and
tests/integration/test_request_budget.py holds the code to those sums.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from pynamodb.exceptions import DoesNotExist, PutError, TransactWriteError
from pynamodb.transactions import TransactWrite

from chalicelib.adapters.dynamo import (
    EntryItem,
    IdempotencyItem,
    MessageRefItem,
    RecipientItem,
    WorkitemItem,
)
from chalicelib.adapters.pynamodb_compat import low_level
from chalicelib.adapters.storage_errors import response_code
from chalicelib.adapters.store_keys import (
    cancel_codes,
    customer_sk,
    entry_sk,
    expiry,
    recipient_pk,
    sms_customer_pk,
    tenant_prefix,
    workitem_pk,
)
from chalicelib.domain.coaching import Change, Channel, EndedBy, Status, Workitem
from chalicelib.domain.identity import Role, user_key
from chalicelib.domain.timeline import EntryKind, TimelineEntry
from chalicelib.services.ports import (
    AlreadyExists,
    CounterDelta,
    DuplicateEvent,
    Idempotency,
    StaleWorkitem,
)

IDEMPOTENCY_TTL_SECONDS = 7 * 24 * 3600


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
        active_at=item.active_at or "",
        waiting_since=item.waiting_since,
        last_text=item.last_text or "",
        last_author=item.last_author or "",
        monitor_names={k: str(v) for k, v in (item.monitor_names.as_dict() if item.monitor_names else {}).items()},
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
        active_at=w.active_at or None,
        waiting_since=w.waiting_since,
        last_text=w.last_text or None,
        last_author=w.last_author or None,
        monitor_names=dict(w.monitor_names) or None,
    )
    if w.channel is Channel.SMS and w.status is Status.ACTIVE:
        item.gsi2pk = sms_customer_pk(w.tenant_id, w.customer_id)
        item.gsi2sk = f"{w.active_at or w.created_at}#{w.workitem_id}"
    if w.is_open:
        item.gsi1pk = f"{tenant_prefix(w.tenant_id)}#AGENT#{w.agent_id}"
        item.gsi1sk = f"{w.created_at}#{w.workitem_id}"
    elif w.ended_at:
        item.ttl = expiry(w.ended_at, retention_days)
    return item


def to_entry(item: EntryItem, workitem_id: str) -> TimelineEntry:
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
        extra={
            **(dict(item.extra.as_dict()) if item.extra else {}),
            **({"delivery": item.delivery} if item.delivery else {}),
            **({"sentiment": item.sentiment} if item.sentiment else {}),
        },
    )


def _to_entry_item(tenant_id: str, e: TimelineEntry, retention_days: int) -> EntryItem:
    return EntryItem(
        pk=workitem_pk(tenant_id, e.workitem_id),
        sk=entry_sk(e.seq),
        lsi1sk=customer_sk(e.customer_seq) if e.customer_seq is not None else None,
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
        ttl=expiry(e.at, retention_days),
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

    def get_many(self, tenant_id: str, workitem_ids: Iterable[str]) -> dict[str, Workitem]:
        """1 BatchGetItem per 100 workitems (eventually consistent: for lists, not decisions)."""
        wanted = list(dict.fromkeys(workitem_ids))
        out: dict[str, Workitem] = {}
        for i in range(0, len(wanted), 100):
            keys = [(workitem_pk(tenant_id, w), "W") for w in wanted[i : i + 100]]
            for item in WorkitemItem.batch_get(keys):
                out[item.workitem_id] = to_workitem(item)
        return out

    def get_with_message(self, tenant_id: str, workitem_id: str, message_id: str) -> tuple[Workitem | None, TimelineEntry | None]:
        """1 BatchGetItem: the workitem and the message index item together."""
        workitem, messages = self.get_with_messages(tenant_id, workitem_id, [message_id])
        return workitem, messages.get(message_id)

    def get_with_messages(
        self, tenant_id: str, workitem_id: str, message_ids: list[str]
    ) -> tuple[Workitem | None, dict[str, TimelineEntry]]:
        """1 BatchGetItem (strongly consistent): the workitem and the index items of those messages
        that exist, by message id."""
        pk = workitem_pk(tenant_id, workitem_id)
        workitem: Workitem | None = None
        messages: dict[str, TimelineEntry] = {}
        table = WorkitemItem.Meta.table_name
        keys = [{"pk": {"S": pk}, "sk": {"S": "W"}}]
        keys += [{"pk": {"S": pk}, "sk": {"S": f"M#{m}"}} for m in dict.fromkeys(message_ids)]
        raw_items: list[dict[str, Any]] = []
        for _ in range(3):  # unprocessed keys are rare; retry them a few times
            client: Any = low_level(WorkitemItem).client
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
                message_id = raw["sk"]["S"].removeprefix("M#")
                messages[message_id] = TimelineEntry(
                    workitem_id=workitem_id,
                    seq=int(ref.seq),
                    kind=EntryKind(ref.kind),
                    at=ref.at,
                    author_id=ref.author_id,
                    author_role=Role(ref.author_role),
                    message_id=message_id,
                    text=ref.text,
                )
        return workitem, messages

    def create(
        self,
        workitem: Workitem,
        *,
        idempotency: Idempotency | None = None,
        counters: Iterable[CounterDelta] = (),
        fanout: str | None = None,
    ) -> None:
        """1 TransactWriteItems: the workitem (with the fan-out note the service wrote for it), its
        agent's counter and the event id."""
        item = _to_workitem_item(workitem, workitem.retention_days)
        item.fanout = fanout
        with_idem = idempotency is not None
        try:
            with TransactWrite(connection=low_level(WorkitemItem)) as tx:
                if idempotency:
                    tx.save(_idempotency_item(idempotency), condition=IdempotencyItem.pk.does_not_exist())
                tx.save(item, condition=WorkitemItem.pk.does_not_exist())
                _add_counters(tx, counters)
        except TransactWriteError as exc:
            codes = cancel_codes(exc)
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
            with TransactWrite(connection=low_level(WorkitemItem)) as tx:
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
                                ttl=expiry(e.at, retention_days),
                            ),
                            # A message id is written once: a resend racing its first send loses (W18.6).
                            condition=MessageRefItem.sk.does_not_exist(),
                        )
                _add_counters(tx, counters)
        except TransactWriteError as exc:
            codes = cancel_codes(exc)
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
                EntryItem.customer_view.query(pk, EntryItem.lsi1sk > customer_sk(after), limit=limit + 1, consistent_read=True)
            )
        else:
            items = list(
                EntryItem.query(
                    pk,
                    EntryItem.sk.between(entry_sk(after + 1), entry_sk(9_999_999_999)),
                    limit=limit + 1,
                    consistent_read=True,
                )
            )
        entries = [to_entry(i, workitem_id) for i in items[:limit]]
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
        entries = [to_entry(i, workitem_id) for i in items[:limit]]
        entries.reverse()
        return entries, len(items) > limit

    def open_for_agent(self, tenant_id: str, agent_id: str) -> list[Workitem]:
        """1 Query on the sparse open-workitems GSI (more pages only past 1 MB)."""
        return [to_workitem(i) for i in WorkitemItem.open_by_agent.query(f"{tenant_prefix(tenant_id)}#AGENT#{agent_id}")]

    def active_sms(self, tenant_id: str, customer_id: str) -> Workitem | None:
        """1 Query on the sparse active-SMS GSI, newest activity first, ``Limit 1``. The index is
        eventually consistent: the caller reads the workitem again (strongly) before it decides."""
        items = WorkitemItem.active_sms.query(sms_customer_pk(tenant_id, customer_id), scan_index_forward=False, limit=1)
        for item in items:
            return to_workitem(item)
        return None


def _idempotency_item(idem: Idempotency) -> IdempotencyItem:
    now = datetime.now().astimezone()
    return IdempotencyItem(
        pk=f"{tenant_prefix(idem.tenant_id)}#EVT#{idem.event_id}",
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
