"""1. DynamoDB requests per action, in a small and a large tenant, next to the documented budget.

The whole product runs in-process on moto (``mock_aws``; ``--store ddblocal`` uses AWS's DynamoDB
Local engine instead) and is driven through the real Lambda entry points by ``tests.support`` (the
same world the integration tests use): one call of every WebSocket action and webhook type
(``tests.support.scenario.actions``, the four webhook types, ``$connect``/``$disconnect`` of a user
and of a customer, and assist.request/claim on a workitem), each counted with botocore event hooks
(:mod:`bench.ddbhooks`) and cross-checked against ``tests.support.ddbcount``. The same calls run
in a tenant of 10 bulk agents and one of 10,000, whose teams have the same size (4 agents + 1
supervisor for the bulk, 2 + 2 for the acting cast), so any difference between the two columns
means a request that grows with tenant size.

Budgets come from the access-pattern table of docs/data-model.md (``tests.support.budgets``); an
action without a row there has budget ``null``.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from bench import ddbhooks
from bench.common import ROOT, cli, emit

SMALL_USERS = 10
LARGE_USERS = 10_000
QUICK_LARGE_USERS = 1_000

# Rows measured under another name than their budget row in docs/data-model.md.
BUDGET_ROW = {
    "$connect (customer)": "$connect",
    "$disconnect (customer)": "$disconnect",
    "assist.request (with workitem)": "assist.request",
    "assist.claim (with workitem)": "assist.claim",
}


def _environment() -> None:
    for key, value in {
        "AWS_ACCESS_KEY_ID": "bench",
        "AWS_SECRET_ACCESS_KEY": "bench",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_REGION": "us-east-1",
        "LOG_LEVEL": "WARNING",
    }.items():
        os.environ[key] = value
    for key in ("AWS_SESSION_TOKEN", "AWS_PROFILE", "DYNAMODB_ENDPOINT"):
        os.environ.pop(key, None)
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))


class Meter:
    """Runs one call under both counters and keeps the result (or the failure) per row."""

    def __init__(self) -> None:
        self.rows: dict[str, dict[str, Any]] = {}

    def __call__(self, name: str, call: Callable[[], Any]) -> Any:
        from tests.support.ddbcount import count_dynamodb

        result = None
        error = None
        with ddbhooks.counting() as hooks, count_dynamodb() as patched:
            try:
                result = call()
            except Exception as exc:  # a failing action is reported, not hidden
                error = f"{type(exc).__name__}: {str(exc)[:300]}"
        row: dict[str, Any] = {"count": hooks.total, "ops": hooks.by_operation(), "attempts": hooks.attempts}
        if patched.total != hooks.total:
            row["mismatch"] = f"event hooks counted {hooks.total}, _make_api_call counted {patched.total}"
        if error:
            row["error"] = error
        self.rows[name] = row
        return result


def _extras(world: Any, cast: Any, tid: str, meter: Meter) -> None:
    """Rows ``scenario.actions`` does not cover: the connection routes, and assistance on a workitem
    (the scenario's assist.request names none; naming one adds the timeline entry's requests)."""
    a, s = cast.agent, cast.sup

    # $connect / $disconnect: a second connection of a directory user, and the chat's customer.
    conn = meter("$connect", lambda: world.connect("agent-2", "agent", tid))
    customer = meter("$connect (customer)", lambda: world.connect("cust-wi-1", "customer", tid, wid="wi-1"))
    if conn is not None:
        meter("$disconnect", conn.disconnect)
    if customer is not None:
        meter("$disconnect (customer)", customer.disconnect)

    services = world.services
    if getattr(services.assistance, "_store", "wired") is None:  # older bootstraps did not wire it
        from chalicelib.adapters.assist_repository import DynamoAssistStore

        services.assistance.store = DynamoAssistStore(world.settings)
        world.notes.add("bootstrap.build does not wire the assistance store: the bench wires DynamoAssistStore")
    ack = meter(
        "assist.request (with workitem)", lambda: a.ok("assist.request", templateId="tpl-1", workitemId="wi-1", to="supervisors")
    )
    if ack is not None:
        meter("assist.claim (with workitem)", lambda: s.ok("assist.claim", assistId=ack["assistId"]))


def measure(world: Any, tid: str, bulk_users: int) -> tuple[dict[str, dict[str, Any]], dict[str, Any]]:
    from tests.support.scenario import Cast, actions, bulk_tenant

    started = time.perf_counter()
    bulk_tenant(world, tid, bulk_users)
    built = time.perf_counter()
    cast = Cast(world, tid)
    meter = Meter()
    for name, call in actions(cast):
        meter(name, call)

    meter("webhook workitem.assigned", lambda: world.assign("wi-new", tid=tid))
    for kind, data in (
        ("workitem.message", {"workitemId": "wi-new", "from": "customer", "text": "hi"}),
        ("workitem.transferred", {"workitemId": "wi-new", "toAgentId": "agent-2"}),
        ("workitem.ended", {"workitemId": "wi-new", "endedBy": "system"}),
    ):

        def call(kind: str = kind, data: dict[str, Any] = data) -> Any:
            status, body = world.webhook(kind, data, tid=tid)
            if status != 200:
                raise RuntimeError(f"webhook {kind} -> HTTP {status}: {body}")
            return body

        meter(f"webhook {kind}", call)
    _extras(world, cast, tid, meter)
    tenant = {
        "bulk_agents": bulk_users,
        "bulk_supervisors": (bulk_users + 3) // 4,
        "open_workitems": bulk_users + 3,
        "users": bulk_users + (bulk_users + 3) // 4 + 4,
        "team_size": "bulk teams: 4 agents + 1 supervisor; acting team: 2 agents + 2 supervisors",
        "build_s": round(built - started, 1),
        "measure_s": round(time.perf_counter() - built, 1),
    }
    return meter.rows, tenant


@contextmanager
def _store(kind: str) -> Iterator[tuple[str, str | None]]:
    """(description, endpoint): moto in-process (``mock_aws``), or DynamoDB Local when asked and available."""
    if kind == "ddblocal":
        from bench.stack import dynamodb_local

        with dynamodb_local() as endpoint:
            if endpoint is not None:
                yield "DynamoDB Local", endpoint
                return
    from moto import mock_aws

    with mock_aws():
        yield "moto in-process (mock_aws)", None


def run(quick: bool, store: str = "moto") -> dict[str, Any]:
    _environment()
    ddbhooks.install()  # before the first botocore client exists
    from chalicelib import bootstrap
    from chalicelib.adapters.dynamo import create_tables
    from tests.support.budgets import budgets
    from tests.support.world import World, test_settings

    large_users = QUICK_LARGE_USERS if quick else LARGE_USERS
    with _store(store) as (store_name, endpoint):
        settings = test_settings(dynamodb_endpoint=endpoint) if endpoint else test_settings()
        create_tables(settings, wait=endpoint is not None)
        world = World(settings)
        world.notes = set()  # type: ignore[attr-defined]
        try:
            small, small_tenant = measure(world, "small", SMALL_USERS)
            large, large_tenant = measure(world, "large", large_users)
        finally:
            bootstrap.install(None)
        notes = sorted(world.notes)  # type: ignore[attr-defined]

    budget = budgets()
    table: dict[str, dict[str, Any]] = {}
    detail: dict[str, dict[str, Any]] = {}
    problems: list[str] = []
    for name in small:
        s, big = small[name], large.get(name, {})
        limit = budget.get(BUDGET_ROW.get(name, name))
        table[name] = {"small": s["count"], "large": big.get("count"), "budget": limit}
        detail[name] = {
            "ops_small": s["ops"],
            "ops_large": big.get("ops"),
            "http_attempts_small": s["attempts"],
            "http_attempts_large": big.get("attempts"),
        }
        for key in ("error", "mismatch"):
            for size, row in (("small", s), ("large", big)):
                if key in row:
                    detail[name][f"{key}_{size}"] = row[key]
                    problems.append(f"{name} ({size}): {row[key]}")
        if s["count"] != big.get("count"):
            problems.append(f"{name}: {s['count']} requests in the small tenant, {big.get('count')} in the large one")
        if limit is not None and max(s["count"], big.get("count") or 0) > limit:
            problems.append(f"{name}: over its budget of {limit}")
    missing = sorted(set(budget) - {BUDGET_ROW.get(n, n) for n in table})
    return {
        "ddb_requests": table,
        "ddb_requests_detail": {
            "store": store_name,
            "tenants": {"small": small_tenant, "large": large_tenant},
            "by_operation": detail,
            "budget_rows_not_measured": missing,
            "problems": problems,
            "notes": notes,
            "coach_send_target_met": table.get("coach.send", {}).get("small") is not None
            and max(table["coach.send"]["small"], table["coach.send"]["large"] or 0) <= 3,
            "no_growth_with_tenant_size": all(r["small"] == r["large"] for r in table.values()),
        },
    }


def main() -> None:
    args = cli(__doc__.splitlines()[0], stores=True)
    emit(run(args.quick, args.store), args.out)


if __name__ == "__main__":
    main()
