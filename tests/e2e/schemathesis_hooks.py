"""Schemathesis's sign-in for the bounded run of docs/openapi.yaml against the local stack
(tests/e2e/test_openapi_conformance.py, loaded through ``SCHEMATHESIS_HOOKS``).

Every request gets a freshly minted admin token of a tenant of the run's own (``ST_TENANT``), signed
with the stack's secret (``ST_JWT_SECRET``): a revocation the run makes (``POST
/admin/users/{userId}/revoke`` on the caller's id, which Schemathesis reads from the token) ends only
the tokens issued before it, as it does for a real admin, instead of every later request of the run.

Integers are written as JSON integers in the cases meant to be valid: JSON Schema counts ``2717.0`` as an
integer, while the API (docs/product.md W7.4) takes only ``2717``, a lexical rule no schema keyword can
state (the document says it in words). Cases meant to be invalid are left as they are.

Two answers are right although a check calls them wrong, and only they are let through:

* whether a webhook URL may be a target depends on where its host leads (link-local, metadata, on AWS
  private addresses: docs/webhooks.md), which no schema can say, so a URL of the documented shape may
  still be refused: that refusal (400 naming ``url``) of ``PUT /admin/webhook-subscriptions/{id}``;
* a CORS preflight (``OPTIONS``) answers 204 on a path whose resource was just deleted: it says which
  methods the browser may send there, nothing about the resource;
* ``GET /analytics/coaching`` refuses a range whose days are each well formed but whose ``from`` is after
  its ``to``, or which covers more than 366 days (rules between two parameters, stated in words in the
  operation's 400): that refusal, with its documented message, when the case's range really breaks it.
"""

from __future__ import annotations

import json
import os
from datetime import date
from typing import Any

import schemathesis
from schemathesis.generation.modes import GenerationMode

from devstack.tokens import mint

ADMIN = "openapi-admin"


@schemathesis.auth(refresh_interval=None)
class FreshAdminToken:
    def get(self, case: Any, context: Any) -> str:
        return mint(os.environ["ST_JWT_SECRET"], sub=ADMIN, tid=os.environ["ST_TENANT"], role="admin", ttl_seconds=600)

    def set(self, case: Any, data: str, context: Any) -> None:
        case.headers = {**(case.headers or {}), "Authorization": f"Bearer {data}"}


def _integers_as_written(value: Any) -> Any:
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {key: _integers_as_written(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_integers_as_written(item) for item in value]
    return value


@schemathesis.hook
def map_case(context: Any, case: Any) -> Any:
    meta = case.meta
    if meta is not None and meta.generation.mode == GenerationMode.POSITIVE and isinstance(case.body, dict | list):
        case.body = _integers_as_written(case.body)
    return case


ANALYTICS = "GET /analytics/coaching"
MAX_DAYS = 366


def _range_refusal(query: Any) -> str | None:
    """The documented message refusing this query's range, or None when its range is allowed."""
    try:
        first, last = date.fromisoformat(query["from"]), date.fromisoformat(query["to"])
    except (TypeError, KeyError, ValueError):
        return None
    if first > last:
        return "from must not be after to"
    if (last - first).days + 1 > MAX_DAYS:
        return f"the range may cover at most {MAX_DAYS} days"
    return None


@schemathesis.hook
def filter_failure(context: Any, failure: Any, case: Any, response: Any) -> bool:
    """Keep every failure but the three above."""
    code = getattr(failure, "code", "")
    if code == "ST301" and case.method.upper() == "OPTIONS":
        return False
    label = case.operation.label
    if code != "ST202" or label not in ("PUT /admin/webhook-subscriptions/{subscriptionId}", ANALYTICS):
        return True
    try:
        message = json.loads(response.content)["error"]["message"]
    except (ValueError, KeyError, TypeError):
        return True
    if response.status_code != 400 or not isinstance(message, str):
        return True
    if label == ANALYTICS:
        expected = _range_refusal(case.query or {})
        return expected is None or message != expected
    return not message.startswith("url ")
