"""Attention (docs/product.md W11, docs/attention.md): the tenant's rules.

Admins keep the rules here; the rules themselves (bounds, matching, alert states, the ranked queue)
are the domain's (``chalicelib/domain/attention.py``).
"""

from __future__ import annotations

from typing import Any

from chalicelib.domain.attention import Rule, can_add_rule
from chalicelib.domain.errors import NotFound
from chalicelib.domain.identity import Principal
from chalicelib.services.clock import iso
from chalicelib.services.directory import require_admin
from chalicelib.services.ports import AttentionStore, Clock, Created


class AttentionService:
    def __init__(self, store: AttentionStore, clock: Clock) -> None:
        self.store = store
        self.clock = clock

    def put_rule(self, caller: Principal, rule: Rule) -> dict[str, Any] | Created:
        """1 Query + 1 PutItem. A new rule is :class:`Created` (201); at most 50 a tenant."""
        require_admin(caller)
        existing = [r.rule_id for r in self.store.rules(caller.tenant_id)]
        can_add_rule(existing, rule.rule_id)
        self.store.put_rule(caller.tenant_id, rule, iso(self.clock.now()))
        body = {"rule": rule}
        return body if rule.rule_id in existing else Created(body)

    def list_rules(self, caller: Principal) -> dict[str, Any]:
        """1 Query."""
        require_admin(caller)
        return {"rules": sorted(self.store.rules(caller.tenant_id), key=lambda r: r.rule_id)}

    def delete_rule(self, caller: Principal, rule_id: str) -> None:
        """1 DeleteItem."""
        require_admin(caller)
        if not self.store.delete_rule(caller.tenant_id, rule_id):
            raise NotFound(f"attention rule {rule_id} not found")
