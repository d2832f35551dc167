"""DynamoDB store of the coaching analytics (the ``AnalyticsStore`` port), on the directory table.

Two kinds of items (docs/data-model.md):

* a **slot**, ``pk = T#<tenant>#ANS#<slot key>``: the fact that won its key, its order and its
  contribution (so a later winner can take it back);
* a **bucket**, ``pk = T#<tenant>#AN#<dim>#<YYYY-MM>``, ``sk = <key>#<YYYY-MM-DD>``: one day's counters of
  one dimension's key, each an attribute changed with ADD (``cm``, ``hp``, ``k37`` ...). A month of one
  dimension is one partition, so a report reads one Query per dimension per month.

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


def bucket_pk(tenant_id: str, dim: an.Dim, month: str) -> str:
    return f"{tenant_prefix(tenant_id)}#AN#{dim.value}#{month}"


def bucket_sk(cell: an.Cell) -> str:
    return f"{cell.key}#{cell.day}"


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
        item = AnalyticsSlotItem(slot_pk(tenant_id, slot.key), "S", order=slot.order, rule=slot.rule.value, cells=slot.encode())
        condition = AnalyticsSlotItem.pk.does_not_exist() if old is None else AnalyticsSlotItem.order == old.order
        with TransactWrite(connection=low_level(AnalyticsSlotItem)) as tx:
            tx.save(item, condition=condition)
            for cell, vector in sorted(an.delta(slot, old).items()):
                bucket = AnalyticsBucketItem(bucket_pk(tenant_id, cell.dim, cell.day[:7]), bucket_sk(cell))
                tx.update(bucket, actions=[Path(name).add(n) for name, n in sorted(vector.items())])

    def buckets(self, tenant_id: str, dims: Sequence[an.Dim], months: Sequence[str]) -> list[tuple[an.Cell, dict[str, int]]]:
        """1 Query per dimension per month (another page per 1 MB of buckets)."""
        client: Any = low_level(AnalyticsBucketItem).client
        table = AnalyticsBucketItem.Meta.table_name
        out: list[tuple[an.Cell, dict[str, int]]] = []
        for dim in dims:
            for month in months:
                params: dict[str, Any] = {
                    "TableName": table,
                    "KeyConditionExpression": "pk = :pk",
                    "ExpressionAttributeValues": {":pk": {"S": bucket_pk(tenant_id, dim, month)}},
                }
                while True:
                    page = client.query(**params)
                    for raw in page.get("Items", []):
                        sk = raw["sk"]["S"]
                        cell = an.Cell(dim, sk[:-11], sk[-10:])
                        out.append((cell, {k: int(v["N"]) for k, v in raw.items() if k not in KEY_ATTRIBUTES and "N" in v}))
                    if "LastEvaluatedKey" not in page:
                        break
                    params["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        return out
