"""DynamoDB storage of attention rules (docs/attention.md, docs/data-model.md).

A tenant's rules live in the directory table under ``pk = T#<tenant>#ATTNRULE``, one item per rule
(``sk`` = rule id): listing them is one Query (never a Scan), and a tenant has at most 50.
"""

from __future__ import annotations

from chalicelib.adapters.dynamo import AttentionRuleItem
from chalicelib.adapters.store_keys import tenant_prefix
from chalicelib.domain.attention import Rule, RuleKind


def _rules_pk(tenant_id: str) -> str:
    return f"{tenant_prefix(tenant_id)}#ATTNRULE"


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


class DynamoAttentionStore:
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
