"""DynamoDB store of assistance requests (the ``AssistanceStore`` port of
``chalicelib.services.assistance``), on the ``assistance`` table.

One item per request, ``pk = T#<tenant>#AS#<assistId>``. While a request waits for an escalation
step it also carries the keys of the sparse ``due`` GSI:

* ``duepk = DUE#<n>`` - one of ``settings.escalation_shards`` shards, chosen by a stable hash of the
  request id, so the sweep's reads and the index's writes spread over several partitions instead
  of one hot key;
* ``duesk = <due epoch seconds, 12 digits>#<tenant>#<assistId>`` - sorted by due time, so
  "everything due by now" is one key-condition Query per shard (``duesk < <now + 1>``), never a Scan.

Claiming, or the last escalation step, REMOVEs both keys: the request leaves the index.
Every state change is conditional, so a claim and a sweep racing each other cannot both win.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from pynamodb.exceptions import DoesNotExist, PutError, TransactWriteError, UpdateError
from pynamodb.transactions import TransactWrite

from chalicelib.adapters.analytics_store import add_slot
from chalicelib.adapters.dynamo import AssistItem, PendingMarkItem
from chalicelib.adapters.pynamodb_compat import low_level
from chalicelib.adapters.storage_errors import response_code
from chalicelib.adapters.store_keys import cancel_codes
from chalicelib.domain.analytics import Slot
from chalicelib.domain.assistance import AlreadyClaimed, AssistanceRequest, AssistStatus, Stage
from chalicelib.services.ports import AlreadyExists
from chalicelib.settings import Settings

SK = "AS"


def assist_pk(tenant_id: str, assist_id: str) -> str:
    return f"T#{tenant_id}#AS#{assist_id}"


def due_sk(due_epoch: int, tenant_id: str, assist_id: str) -> str:
    return f"{due_epoch:012d}#{tenant_id}#{assist_id}"


def pending_pk(tenant_id: str, user_id: str) -> str:
    return f"T#{tenant_id}#PA#{user_id}"


# The newest pending marks ``assist.pending`` reads (a supervisor never has more open raised hands).
PENDING_MAX = 100
PENDING_MARK_DAYS = 7


def _conditional_failed(exc: PutError | UpdateError) -> bool:
    return response_code(exc) == "ConditionalCheckFailedException"


class DynamoAssistStore:
    def __init__(self, settings: Settings) -> None:
        self._shards = max(1, settings.escalation_shards)

    def shard_of(self, assist_id: str) -> int:
        """Stable across processes (unlike ``hash``), so every writer agrees on a request's shard."""
        return zlib.crc32(assist_id.encode()) % self._shards

    def create(self, request: AssistanceRequest, retention_days: int, counted: Sequence[Slot] = ()) -> bool:
        """1 PutItem (conditional: a request id is never reused); with ``counted`` (the analytics' new
        facts of the request), 1 TransactWriteItems that stores them with it instead. True when they
        were stored; False when they were not (a race on their buckets, which the request does not
        wait for): the request is then stored alone and the caller counts them."""
        created = datetime.fromisoformat(request.created_at.replace("Z", "+00:00"))
        item = AssistItem(
            assist_pk(request.tenant_id, request.assist_id),
            SK,
            tenant_id=request.tenant_id,
            assist_id=request.assist_id,
            agent_id=request.agent_id,
            template_id=request.template_id,
            text=request.text,
            workitem_id=request.workitem_id,
            target=request.target,
            recipients=list(request.recipients),
            status=request.status.value,
            stage=int(request.stage),
            claimed_by=request.claimed_by,
            created_at=request.created_at,
            due_at=request.due_at,
            escalation_seconds=request.escalation_seconds,
            ttl=created + timedelta(days=retention_days),
        )
        if request.escalates and request.due_at is not None:
            item.duepk = f"DUE#{self.shard_of(request.assist_id)}"
            item.duesk = due_sk(request.due_at, request.tenant_id, request.assist_id)
        if counted:
            try:
                with TransactWrite(connection=low_level(AssistItem)) as tx:
                    tx.save(item, condition=AssistItem.pk.does_not_exist())
                    for slot in counted:
                        add_slot(tx, request.tenant_id, slot)
                return True
            except TransactWriteError as exc:
                codes = cancel_codes(exc)
                if codes and codes[0] == "ConditionalCheckFailed":
                    raise AlreadyExists(request.assist_id) from exc
                if not codes or not any(c in ("ConditionalCheckFailed", "TransactionConflict") for c in codes):
                    raise
        try:
            item.save(condition=AssistItem.pk.does_not_exist())
        except PutError as exc:
            if _conditional_failed(exc):
                raise AlreadyExists(request.assist_id) from exc
            raise
        return not counted

    def get(self, tenant_id: str, assist_id: str) -> AssistanceRequest | None:
        """1 GetItem (strongly consistent: claims are decided on it)."""
        try:
            return to_request(AssistItem.get(assist_pk(tenant_id, assist_id), SK, consistent_read=True))
        except DoesNotExist:
            return None

    def claim(self, request: AssistanceRequest, supervisor_id: str, at: str | None = None) -> AssistanceRequest:
        """1 UpdateItem, conditional on ``status = pending``: of two racing claims exactly one
        passes; the other gets :class:`AlreadyClaimed`. The request leaves the due index. Returns
        the request as written (ALL_NEW), with recipients an escalation may have added meanwhile."""
        item = AssistItem(assist_pk(request.tenant_id, request.assist_id), SK)
        claimed_at: list[Any] = [AssistItem.claimed_at.set(at)] if at else []
        try:
            item.update(
                actions=[
                    AssistItem.status.set(AssistStatus.CLAIMED.value),
                    AssistItem.claimed_by.set(supervisor_id),
                    *claimed_at,
                    AssistItem.due_at.remove(),
                    AssistItem.duepk.remove(),
                    AssistItem.duesk.remove(),
                ],
                condition=AssistItem.status == AssistStatus.PENDING.value,
            )
        except UpdateError as exc:
            if _conditional_failed(exc):
                raise AlreadyClaimed("the assistance request was already claimed") from exc
            raise
        return to_request(item)

    def due(self, shard: int, now_epoch: int, limit: int) -> list[AssistanceRequest]:
        """1 Query on the ``due`` GSI shard (more pages only past 1 MB): every request whose
        ``duesk`` sorts before the next second, i.e. ``due_at <= now``."""
        hits = AssistItem.due.query(f"DUE#{shard}", AssistItem.duesk < f"{now_epoch + 1:012d}", limit=limit)
        return [to_request(i) for i in hits]

    def escalate(self, before: AssistanceRequest, after: AssistanceRequest) -> bool:
        """1 UpdateItem, conditional on the request still pending at ``before``'s stage. The new
        recipients and stage are written; the due key moves to the next step, or is removed when
        escalation is exhausted. False when a claim (or another sweep) came first."""
        item = AssistItem(assist_pk(before.tenant_id, before.assist_id), SK)
        recipients: Any = list(after.recipients)  # ListAttribute's stubs type elements as attributes
        actions: list[Any] = [
            AssistItem.stage.set(int(after.stage)),
            AssistItem.recipients.set(recipients),
        ]
        if after.escalates and after.due_at is not None:
            actions += [
                AssistItem.due_at.set(after.due_at),
                AssistItem.duepk.set(f"DUE#{self.shard_of(after.assist_id)}"),
                AssistItem.duesk.set(due_sk(after.due_at, after.tenant_id, after.assist_id)),
            ]
        else:
            actions += [AssistItem.due_at.remove(), AssistItem.duepk.remove(), AssistItem.duesk.remove()]
        try:
            item.update(
                actions=actions,
                condition=(AssistItem.status == AssistStatus.PENDING.value) & (AssistItem.stage == int(before.stage)),
            )
        except UpdateError as exc:
            if _conditional_failed(exc):
                return False
            raise
        return True

    def mark_pending(self, request: AssistanceRequest, user_ids: list[str]) -> None:
        """1 BatchWriteItem per 25 users: the request waits for them (``assist.pending``). A mark
        expires after PENDING_MARK_DAYS even if nobody claims the request."""
        created = datetime.fromisoformat(request.created_at.replace("Z", "+00:00"))
        with PendingMarkItem.batch_write() as batch:
            for user_id in dict.fromkeys(user_ids):
                batch.save(
                    PendingMarkItem(
                        pending_pk(request.tenant_id, user_id),
                        f"{request.created_at}#{request.assist_id}",
                        assist_id=request.assist_id,
                        ttl=created + timedelta(days=PENDING_MARK_DAYS),
                    )
                )

    def clear_pending(self, request: AssistanceRequest) -> None:
        """1 BatchWriteItem per 25 recipients: a claimed request waits for nobody."""
        with PendingMarkItem.batch_write() as batch:
            for user_id in dict.fromkeys(request.recipients):
                batch.delete(PendingMarkItem(pending_pk(request.tenant_id, user_id), f"{request.created_at}#{request.assist_id}"))

    def pending_for(self, tenant_id: str, user_id: str) -> list[AssistanceRequest]:
        """1 Query (the user's newest marks) + 1 BatchGetItem per 100 requests: those still pending,
        oldest first (a mark whose claim is being cleared is filtered by the request's status)."""
        marks = list(PendingMarkItem.query(pending_pk(tenant_id, user_id), scan_index_forward=False, limit=PENDING_MAX))
        keys = [(assist_pk(tenant_id, m.assist_id), SK) for m in reversed(marks)]
        found: dict[str, AssistanceRequest] = {}
        for i in range(0, len(keys), 100):
            for item in AssistItem.batch_get(keys[i : i + 100]):
                found[item.assist_id] = to_request(item)
        ordered = [found.get(m.assist_id) for m in reversed(marks)]
        return [r for r in ordered if r is not None and r.pending]


def to_request(item: AssistItem) -> AssistanceRequest:
    return AssistanceRequest(
        tenant_id=item.tenant_id,
        assist_id=item.assist_id,
        agent_id=item.agent_id,
        template_id=item.template_id,
        text=item.text,
        workitem_id=item.workitem_id,
        target=item.target,
        recipients=tuple(str(r) for r in item.recipients or ()),
        created_at=item.created_at,
        escalation_seconds=int(item.escalation_seconds or 0),
        status=AssistStatus(item.status),
        stage=Stage(int(item.stage or 0)),
        claimed_by=item.claimed_by,
        due_at=int(item.due_at) if item.due_at is not None else None,
        claimed_at=item.claimed_at,
    )
