"""DynamoDB store of the coaching analytics (the ``AnalyticsStore`` port), on the directory table.

Two kinds of items (docs/data-model.md):

* a **slot**, ``pk = T#<tenant>#ANS#<slot key>``: the fact that won its key, its order and its
  contribution (so a later winner can take it back);
* a **bucket**: counters (``cm``, ``hp``, ``k37`` ...), each an attribute changed with ADD. A day's
  counters of one dimension's key are kept three times over, so that every report reads few items:
  the tenant's **day bucket** (``pk = T#<tenant>#AN#<dim>#<YYYY-MM>``, ``sk = <YYYY-MM-DD>#<key>``), its
  **month roll-up** (``pk = T#<tenant>#AN#<dim>#<YYYY>``, ``sk = <YYYY-MM>#<key>``), and, for an agent's
  or a supervisor's buckets, the **user's own** day bucket (``pk = T#<tenant>#ANU#<user>#<YYYY>``,
  ``sk = <YYYY-MM-DD>#<dim>#<key>``). Sort keys start with the period, so a range of days or months
  is one Query (:class:`chalicelib.domain.analytics.Read`).

Applying a slot is one TransactWriteItems: the slot, conditional on the stored one being the one it
was decided against (absent, or the same order), and an ADD on each bucket it changes. A slot that
was applied already fails its condition and changes nothing; a transaction that lost a race (another
batch wrote the same slot or bucket) is decided again on fresh state.
"""

from __future__ import annotations

import random
import time
from collections.abc import Sequence
from typing import Any

from pynamodb.exceptions import DoesNotExist, TransactWriteError
from pynamodb.expressions.operand import Path
from pynamodb.expressions.update import Action
from pynamodb.transactions import TransactWrite

from chalicelib.adapters.dynamo import AnalyticsBucketItem, AnalyticsSlotItem
from chalicelib.adapters.pynamodb_compat import low_level
from chalicelib.adapters.store_keys import cancel_codes, tenant_prefix
from chalicelib.domain import analytics as an

MAX_ATTEMPTS = 8
BACKOFF_CAP_SECONDS = 0.05
KEY_ATTRIBUTES = frozenset({"pk", "sk"})


def slot_pk(tenant_id: str, key: str) -> str:
    return f"{tenant_prefix(tenant_id)}#ANS#{key}"


def bucket_pk(tenant_id: str, dim: an.Dim, period: str) -> str:
    """The tenant's partition of ``dim``: a month's day buckets (``YYYY-MM``) or a year's month
    roll-ups (``YYYY``)."""
    return f"{tenant_prefix(tenant_id)}#AN#{dim.value}#{period}"


def owner_pk(tenant_id: str, owner: str, year: str) -> str:
    return f"{tenant_prefix(tenant_id)}#ANU#{owner}#{year}"


def places(tenant_id: str, cell: an.Cell) -> list[tuple[str, str]]:
    """Every (pk, sk) that keeps a day bucket's counters: the tenant's day bucket and month roll-up,
    and the user's own day bucket."""
    out = [
        (bucket_pk(tenant_id, cell.dim, cell.day[:7]), f"{cell.day}#{cell.key}"),
        (bucket_pk(tenant_id, cell.dim, cell.day[:4]), f"{cell.day[:7]}#{cell.key}"),
    ]
    owner = an.owner_of(cell)
    if owner is not None:
        out.append((owner_pk(tenant_id, owner, cell.day[:4]), f"{cell.day}#{cell.dim.value}#{cell.key}"))
    return out


def add_slot(tx: TransactWrite, tenant_id: str, slot: an.Slot, old: an.Slot | None = None) -> None:
    """Put ``slot`` into the transaction ``tx``: the slot, conditional on the stored one being ``old``
    (absent when None), and an ADD on every bucket item its difference changes (one update per item:
    days of a month share a roll-up)."""
    item = AnalyticsSlotItem(slot_pk(tenant_id, slot.key), "S", order=slot.order, rule=slot.rule.value, cells=slot.encode())
    condition = AnalyticsSlotItem.pk.does_not_exist() if old is None else AnalyticsSlotItem.order == old.order
    changes: dict[tuple[str, str], dict[str, int]] = {}
    for cell, vector in an.delta(slot, old).items():
        for place in places(tenant_id, cell):
            target = changes.setdefault(place, {})
            for name, n in vector.items():
                target[name] = target.get(name, 0) + n
    tx.save(item, condition=condition)
    for (pk, sk), totals in sorted(changes.items()):
        actions: list[Action] = [Path(name).add(n) for name, n in sorted(totals.items()) if n]
        if actions:
            tx.update(AnalyticsBucketItem(pk, sk), actions=actions)


class SlotConflict(Exception):
    """A slot could not be applied in MAX_ATTEMPTS transactions (every one lost a race)."""


class DynamoAnalyticsStore:
    def apply(self, tenant_id: str, slot: an.Slot) -> bool:
        """1 TransactWriteItems (the slot and its buckets); a FIRST or LATEST slot reads the stored one
        first (1 GetItem). Retried on fresh state when it lost a race."""
        for attempt in range(MAX_ATTEMPTS):
            old = None if slot.rule is an.Rule.ONCE else self._get(tenant_id, slot)
            if not an.wins(slot, old):
                return False
            try:
                self._write(tenant_id, slot, old)
                return True
            except TransactWriteError as exc:
                codes = cancel_codes(exc)
                if slot.rule is an.Rule.ONCE and codes and codes[0] == "ConditionalCheckFailed":
                    return False  # applied before: the same fact delivered again
                if not codes or not any(c in ("ConditionalCheckFailed", "TransactionConflict") for c in codes):
                    raise
            time.sleep(random.uniform(0, BACKOFF_CAP_SECONDS / (1 + attempt)))  # noqa: S311 - jitter
        raise SlotConflict(f"slot {slot.key} kept losing races")

    def _get(self, tenant_id: str, slot: an.Slot) -> an.Slot | None:
        try:
            item = AnalyticsSlotItem.get(slot_pk(tenant_id, slot.key), "S", consistent_read=True)
        except DoesNotExist:
            return None
        return an.Slot.decode(slot.key, an.Rule(item.rule), int(item.order), item.cells)

    def _write(self, tenant_id: str, slot: an.Slot, old: an.Slot | None) -> None:
        with TransactWrite(connection=low_level(AnalyticsSlotItem)) as tx:
            add_slot(tx, tenant_id, slot, old)

    def read(self, tenant_id: str, reads: Sequence[an.Read]) -> list[tuple[an.Cell, dict[str, int]]]:
        """1 Query per read (another page per 1 MB of buckets)."""
        client: Any = low_level(AnalyticsBucketItem).client
        table = AnalyticsBucketItem.Meta.table_name
        out: list[tuple[an.Cell, dict[str, int]]] = []
        for r in reads:
            if r.owner is not None:
                pk = owner_pk(tenant_id, r.owner, r.first[:4])
            else:
                pk = bucket_pk(tenant_id, _dim(r), r.first[:4] if r.months else r.first[:7])
            params: dict[str, Any] = {
                "TableName": table,
                "KeyConditionExpression": "pk = :pk AND sk BETWEEN :a AND :b",
                # every sort key is "<period>#...": '$' sorts right after '#'
                "ExpressionAttributeValues": {":pk": {"S": pk}, ":a": {"S": f"{r.first}#"}, ":b": {"S": f"{r.last}$"}},
            }
            while True:
                page = client.query(**params)
                for raw in page.get("Items", []):
                    out.append((_cell(r, raw["sk"]["S"]), _counters(raw, r.sign)))
                if "LastEvaluatedKey" not in page:
                    break
                params["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        return out


def _cell(r: an.Read, sk: str) -> an.Cell:
    period, _, rest = sk.partition("#")
    if r.owner is not None:
        dim, _, key = rest.partition("#")
        return an.Cell(an.Dim(dim), key, period)
    return an.Cell(_dim(r), rest, period)


def _dim(r: an.Read) -> an.Dim:
    if r.dim is None:
        raise ValueError("a read of the tenant's partitions names its dimension")
    return r.dim


def _counters(raw: dict[str, Any], sign: int) -> dict[str, int]:
    return {k: sign * int(v["N"]) for k, v in raw.items() if k not in KEY_ATTRIBUTES and "N" in v}
