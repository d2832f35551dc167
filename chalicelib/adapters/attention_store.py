"""DynamoDB storage of attention rules and alerts (docs/attention.md, docs/data-model.md).

Everything lives in the directory table, in two partitions per tenant:

* ``T#<tenant>#ATTNRULE``: one item per rule (``sk`` = rule id); listing them is one Query, and a
  tenant has at most 50.
* ``T#<tenant>#ATTN``: the alerts. ``A#<alertId>`` is an open or acked alert, ``S#<workitem>#<rule>``
  the slot that lets a (workitem, rule) pair hold one active alert at a time, ``X#<alertId>`` a cleared
  alert (kept two days, so a redelivered stream record cannot raise it again) and ``COUNT`` how many
  are active (at most ``MAX_OPEN_ALERTS``). Raising and clearing are one transaction each over those
  items; listing a tenant's active alerts is one Query of ``A#`` (a few hundred small items: one page).
"""

from __future__ import annotations

import random
import time
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any, Literal

from pynamodb.exceptions import DoesNotExist, TransactWriteError, UpdateError
from pynamodb.transactions import TransactWrite

from chalicelib.adapters.analytics_store import BACKOFF_CAP_SECONDS, MAX_ATTEMPTS, SlotConflict, add_slot
from chalicelib.adapters.dynamo import AttentionAlertItem, AttentionCountItem, AttentionRuleItem, AttentionSlotItem, EntryItem
from chalicelib.adapters.pynamodb_compat import low_level
from chalicelib.adapters.store_keys import cancel_codes, entry_sk, tenant_prefix, workitem_pk
from chalicelib.domain.analytics import Slot
from chalicelib.domain.attention import Alert, AlertState, ClearReason, Rule, RuleKind
from chalicelib.domain.sentiment import Sentiment

# A cleared alert's id is kept this long: longer than a stream record can be handed over again (24 h).
CLEARED_KEPT = timedelta(days=2)
_ATTEMPTS = 3  # a transaction that lost a race for the counter is tried again (TransactionConflict)

Raised = Literal["raised", "exists", "full"]


def _rules_pk(tenant_id: str) -> str:
    return f"{tenant_prefix(tenant_id)}#ATTNRULE"


def _alerts_pk(tenant_id: str) -> str:
    return f"{tenant_prefix(tenant_id)}#ATTN"


def _slot_sk(workitem_id: str, rule_id: str) -> str:
    return f"S#{workitem_id}#{rule_id}"


def _to_rule(item: AttentionRuleItem) -> Rule:
    return Rule(
        item.sk,
        RuleKind(item.kind),
        bool(item.enabled),
        int(item.severity),
        phrases=tuple(str(p) for p in item.phrases or ()),
        speakers=tuple(str(s) for s in item.speakers or ()),
        negative_in_a_row=int(item.negative_in_a_row) if item.negative_in_a_row is not None else None,
        seconds=int(item.seconds) if item.seconds is not None else None,
    )


def _to_alert(tenant_id: str, item: AttentionAlertItem) -> Alert:
    return Alert(
        tenant_id,
        item.alert_id,
        item.workitem_id,
        item.agent_id,
        item.rule_id,
        RuleKind(item.kind),
        int(item.severity),
        item.raised_at,
        item.reason,
        AlertState(item.state),
        acked_by=item.acked_by,
        acked_at=item.acked_at,
        cleared_reason=ClearReason(item.cleared_reason) if item.cleared_reason else None,
        cleared_at=item.cleared_at,
    )


def _alert_item(a: Alert, sk: str, ttl: datetime | None = None) -> AttentionAlertItem:
    return AttentionAlertItem(
        _alerts_pk(a.tenant_id),
        sk,
        alert_id=a.alert_id,
        workitem_id=a.workitem_id,
        agent_id=a.agent_id,
        rule_id=a.rule_id,
        kind=a.kind.value,
        severity=a.severity,
        raised_at=a.raised_at,
        reason=a.reason,
        state=a.state.value,
        acked_by=a.acked_by,
        acked_at=a.acked_at,
        cleared_reason=a.cleared_reason.value if a.cleared_reason else None,
        cleared_at=a.cleared_at,
        ttl=ttl,
    )


class DynamoAttentionStore:
    # --- rules ----------------------------------------------------------------------------------------

    def rules(self, tenant_id: str) -> list[Rule]:
        """1 Query (at most 50 small items: one page)."""
        return [_to_rule(i) for i in AttentionRuleItem.query(_rules_pk(tenant_id))]

    def put_rule(self, tenant_id: str, rule: Rule, now: str) -> None:
        """1 PutItem (the whole rule: fields of the kind it had before go)."""
        AttentionRuleItem(
            _rules_pk(tenant_id),
            rule.rule_id,
            kind=rule.kind.value,
            enabled=rule.enabled,
            severity=rule.severity,
            phrases=list(rule.phrases) or None,
            speakers=list(rule.speakers) or None,
            negative_in_a_row=rule.negative_in_a_row,
            seconds=rule.seconds,
            updated_at=now,
        ).save()

    def delete_rule(self, tenant_id: str, rule_id: str) -> bool:
        """1 DeleteItem (ALL_OLD tells whether it existed)."""
        out = AttentionRuleItem._get_connection().delete_item(_rules_pk(tenant_id), rule_id, return_values="ALL_OLD")
        return bool(out.get("Attributes"))

    # --- sentiment ------------------------------------------------------------------------------------

    def set_sentiment(self, tenant_id: str, workitem_id: str, seq: int, sentiment: Sentiment) -> bool:
        """1 UpdateItem of the entry, conditional on it existing (False: it is gone). Not a workitem item:
        the stream's consumer is not invoked for it (the event source mapping's filter)."""
        item = EntryItem(workitem_pk(tenant_id, workitem_id), entry_sk(seq))
        try:
            item.update(actions=[EntryItem.sentiment.set(sentiment.value)], condition=EntryItem.pk.exists())
        except UpdateError as exc:
            if exc.cause_response_code == "ConditionalCheckFailedException":
                return False
            raise
        return True

    # --- alerts ---------------------------------------------------------------------------------------

    def raise_alert(self, alert: Alert, max_active: int, counted: Sequence[Slot] = ()) -> Raised:
        """1 TransactWriteItems: the slot of (workitem, rule) is free, the alert id was never raised
        (neither active nor cleared), and the tenant has fewer than ``max_active`` active alerts; with
        ``counted`` (the analytics' facts of the raise), those go in the same transaction, so the raise
        is counted exactly when it happens. A fact counted before (an id raised again after its cleared
        copy expired) is left out; a transaction that lost a race is tried again."""
        pk = _alerts_pk(alert.tenant_id)
        A, S, C = AttentionAlertItem, AttentionSlotItem, AttentionCountItem
        for attempt in range(MAX_ATTEMPTS + 1):  # one more for a raise whose fact was counted before
            try:
                with TransactWrite(connection=low_level(A)) as tx:
                    tx.save(
                        S(pk, _slot_sk(alert.workitem_id, alert.rule_id), alert_id=alert.alert_id),
                        condition=S.pk.does_not_exist(),
                    )
                    tx.save(_alert_item(alert, f"A#{alert.alert_id}"), condition=A.pk.does_not_exist())
                    tx.condition_check(A, pk, f"X#{alert.alert_id}", condition=A.pk.does_not_exist())
                    tx.update(
                        C(pk, "COUNT"), actions=[C.active.add(1)], condition=C.active.does_not_exist() | (C.active < max_active)
                    )
                    for slot in counted:
                        add_slot(tx, alert.tenant_id, slot)
            except TransactWriteError as exc:
                # The request lists condition checks, puts, then updates: the X# check, the slot and
                # alert puts, the facts' slots, then the counter (and the facts' buckets).
                codes, n = cancel_codes(exc), len(counted)
                if "ConditionalCheckFailed" in codes[:3]:
                    return "exists"
                if len(codes) > 3 + n and codes[3 + n] == "ConditionalCheckFailed":
                    return "full"
                if "ConditionalCheckFailed" in codes[3 : 3 + n]:
                    counted = ()  # counted before: the raise alone
                    continue
                if _try_again(codes, attempt):
                    continue
                raise
            return "raised"
        raise SlotConflict(f"the raise of alert {alert.alert_id} kept losing races")

    def alerts(self, tenant_id: str) -> list[Alert]:
        """1 Query of the tenant's active alerts (at most ``MAX_OPEN_ALERTS``)."""
        items = AttentionAlertItem.query(_alerts_pk(tenant_id), AttentionAlertItem.sk.startswith("A#"))
        return [_to_alert(tenant_id, i) for i in items]

    def alert(self, tenant_id: str, alert_id: str) -> Alert | None:
        """1 consistent GetItem of an active alert; else 1 more of a cleared one."""
        for prefix in ("A#", "X#"):
            try:
                return _to_alert(
                    tenant_id, AttentionAlertItem.get(_alerts_pk(tenant_id), f"{prefix}{alert_id}", consistent_read=True)
                )
            except DoesNotExist:
                continue
        return None

    def active_of(self, tenant_id: str, workitem_id: str) -> list[str]:
        """1 Query of the workitem's slots: the ids of its active alerts."""
        items = AttentionSlotItem.query(
            _alerts_pk(tenant_id), AttentionSlotItem.sk.startswith(f"S#{workitem_id}#"), consistent_read=True
        )
        return [i.alert_id for i in items]

    def ack(self, acked: Alert, counted: Sequence[Slot] = ()) -> bool:
        """1 conditional UpdateItem: only an open alert becomes acked (False: it was not open). With
        ``counted`` (the analytics' facts of the ack), 1 TransactWriteItems instead: the same update and
        those facts, so only the ack that wins is counted, and once."""
        A = AttentionAlertItem
        actions: list[Any] = [
            A.state.set(AlertState.ACKED.value),
            A.acked_by.set(acked.acked_by or ""),
            A.acked_at.set(acked.acked_at or ""),
        ]
        item = A(_alerts_pk(acked.tenant_id), f"A#{acked.alert_id}")
        condition = A.state == AlertState.OPEN.value
        for attempt in range(MAX_ATTEMPTS):
            if not counted:
                break
            try:
                with TransactWrite(connection=low_level(A)) as tx:
                    tx.update(item, actions=actions, condition=condition)
                    for slot in counted:
                        add_slot(tx, acked.tenant_id, slot)
            except TransactWriteError as exc:
                # The request lists puts, then updates: the facts' slots, the alert, the facts' buckets.
                codes, n = cancel_codes(exc), len(counted)
                if len(codes) > n and codes[n] == "ConditionalCheckFailed":
                    return False
                if "ConditionalCheckFailed" in codes[:n]:
                    counted = ()  # counted before: the ack alone
                    continue
                if _try_again(codes, attempt):
                    continue
                raise
            return True
        try:
            item.update(actions=actions, condition=condition)
        except UpdateError as exc:
            if exc.cause_response_code == "ConditionalCheckFailedException":
                return False
            raise
        return True

    def clear(self, cleared: Alert) -> bool:
        """1 TransactWriteItems: the active alert and its slot go, the cleared alert is kept two days,
        the count goes down. False when it was cleared already."""
        pk = _alerts_pk(cleared.tenant_id)
        A, S, C = AttentionAlertItem, AttentionSlotItem, AttentionCountItem
        kept = datetime.fromisoformat(cleared.cleared_at or cleared.raised_at) + CLEARED_KEPT
        for attempt in range(_ATTEMPTS):
            try:
                with TransactWrite(connection=low_level(A)) as tx:
                    tx.delete(S(pk, _slot_sk(cleared.workitem_id, cleared.rule_id)), condition=S.alert_id == cleared.alert_id)
                    tx.delete(A(pk, f"A#{cleared.alert_id}"), condition=A.pk.exists())
                    tx.save(_alert_item(cleared, f"X#{cleared.alert_id}", kept))
                    tx.update(C(pk, "COUNT"), actions=[C.active.add(-1)])
            except TransactWriteError as exc:
                codes = cancel_codes(exc)
                if "ConditionalCheckFailed" in codes:
                    return False
                if "TransactionConflict" in codes and attempt + 1 < _ATTEMPTS:
                    continue
                raise
            return True
        raise AssertionError("unreachable")


def _try_again(codes: list[str | None], attempt: int) -> bool:
    """Whether a transaction that lost a race (``TransactionConflict``) is tried again, after a jitter."""
    if "TransactionConflict" not in codes or attempt + 1 >= MAX_ATTEMPTS:
        return False
    time.sleep(random.uniform(0, BACKOFF_CAP_SECONDS / (1 + attempt)))  # noqa: S311 - jitter
    return True
