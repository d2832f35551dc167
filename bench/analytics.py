"""Coaching analytics: the cost of a 90-day read in a tenant of 500 agents, and the writes per event.

A tenant's buckets for 90 UTC days are written straight to the table as the store keeps them (500
agents with some coaching on every day, 50 supervisors, 5 templates: about 61,000 day buckets, each
with its month roll-up and, for agents and supervisors, the user's own copy), then ``GET /analytics/coaching``'s
service call is timed and its DynamoDB requests counted, for an admin grouping by agent (the largest
answer) and by day, and for a supervisor of 10 agents. The write cost per coaching event is counted
on the real store: a supervisor's join, a coach message, a reaction, and each one delivered again.
On DynamoDB Local when ``--store ddblocal`` finds it, else on moto in-process.
"""

from __future__ import annotations

import time
from datetime import date, timedelta
from typing import Any

from bench.common import cli, emit, summary_ms
from bench.ddb_requests import _environment, _store

AGENTS = 500
SUPERVISORS = 50
TEMPLATES = 5
DAYS = 90


def _seed(tenant: str, start: date, days: int, agents: int) -> int:
    """Day buckets as the store keeps them (the tenant's day bucket and month roll-up of each, and the
    agent's or supervisor's own day bucket), in batches of 25. Returns how many day buckets."""
    from chalicelib.adapters.analytics_store import places
    from chalicelib.adapters.dynamo import AnalyticsBucketItem
    from chalicelib.adapters.pynamodb_compat import low_level
    from chalicelib.domain.analytics import Cell, Dim

    client: Any = low_level(AnalyticsBucketItem).client
    table = AnalyticsBucketItem.Meta.table_name
    counters = {"mw": 3, "cm": 7, "hp": 2, "nh": 1, "fw": 1, "ar": 1, "ac": 1, "k42": 1}
    stored: dict[tuple[str, str], dict[str, int]] = {}
    cells = 0
    for n in range(days):
        day = (start + timedelta(days=n)).isoformat()
        keys = [(Dim.TENANT, "")]
        keys += [(Dim.AGENT, f"agent-{a}") for a in range(agents)]
        keys += [(Dim.SUPERVISOR, f"sup-{s}") for s in range(SUPERVISORS)]
        keys += [(Dim.TEMPLATE, f"tpl-{t}") for t in range(TEMPLATES)]
        keys += [(Dim.AGENT_TEMPLATE, f"agent-{a}/tpl-{a % TEMPLATES}") for a in range(0, agents, 4)]
        for dim, key in keys:
            cells += 1
            for place in places(tenant, Cell(dim, key, day)):
                target = stored.setdefault(place, {})
                for name, count in counters.items():
                    target[name] = target.get(name, 0) + count
    items = []
    for (pk, sk), vector in stored.items():
        item = {"pk": {"S": pk}, "sk": {"S": sk}} | {k: {"N": str(v)} for k, v in vector.items()}
        items.append({"PutRequest": {"Item": item}})
    for i in range(0, len(items), 25):
        pending: dict[str, Any] = {table: items[i : i + 25]}
        while pending:
            pending = client.batch_write_item(RequestItems=pending).get("UnprocessedItems") or {}
    return cells


def run(quick: bool, store: str) -> dict[str, Any]:
    _environment()
    from chalicelib import bootstrap
    from chalicelib.adapters import dynamo, sdk_budget
    from chalicelib.adapters.analytics_store import DynamoAnalyticsStore
    from chalicelib.adapters.dynamo import create_tables
    from chalicelib.domain import analytics as an
    from chalicelib.domain.identity import Principal, Role
    from chalicelib.domain.timeline import EntryKind, TimelineEntry
    from chalicelib.entrypoints.wire import WIRE
    from chalicelib.services.ports import Team
    from tests.support.ddbcount import count_dynamodb
    from tests.support.world import test_settings

    agents = 100 if quick else AGENTS
    days = 30 if quick else DAYS
    samples = 3 if quick else 10
    end = date(2026, 11, 30)
    start = end - timedelta(days=days - 1)
    with _store(store) as (store_name, endpoint):
        settings = test_settings(dynamodb_endpoint=endpoint) if endpoint else test_settings()
        create_tables(settings, wait=endpoint is not None)
        services = bootstrap.build(settings, wire=WIRE)
        # DynamoDB Local on two shared cores can take longer than the functions' 3 s read timeout to
        # answer a 1 MB page (DynamoDB answers one in tens of ms): the requests are what is measured.
        dynamo.configure(settings, sdk_budget.TABLE_ADMIN)
        seeded_at = time.perf_counter()
        buckets = _seed("bench", start, days, agents)
        seed_s = time.perf_counter() - seeded_at
        # sup-0 supervises agents 0-9 (one team)
        team = Team("team-0", "Team 0", ["sup-0"], [f"agent-{a}" for a in range(10)])
        services.directory.directory.put_team("bench", team, f"{end.isoformat()}T00:00:00.000Z")
        query_agent = an.parse_query(start.isoformat(), end.isoformat(), "agent")
        query_day = an.parse_query(start.isoformat(), end.isoformat(), "day")
        admin = Principal("bench", "admin-1", Role.ADMIN)
        supervisor = Principal("bench", "sup-0", Role.SUPERVISOR)
        reads: dict[str, Any] = {}
        for label, caller, query in (
            ("admin_by_agent", admin, query_agent),
            ("admin_by_day", admin, query_day),
            ("supervisor_by_day", supervisor, query_day),
            ("supervisor_by_agent", supervisor, query_agent),
        ):
            times = []
            requests: dict[str, int] = {}
            rows = 0
            for _ in range(samples):
                began = time.perf_counter()
                with count_dynamodb() as log:
                    report = services.analytics.coaching(caller, query)
                times.append(time.perf_counter() - began)
                requests = dict(log.by_operation())
                rows = len(report.rows)
            reads[label] = {"rows": rows, "requests": requests, "requests_total": sum(requests.values()), **summary_ms(times)}

        store_ = DynamoAnalyticsStore()
        at = f"{end.isoformat()}T10:00:00.000Z"
        entries = {
            "join": TimelineEntry(
                "wi-b", 1, EntryKind.SUPERVISOR_JOINED, at, "sup-0", Role.SUPERVISOR, extra={"agentId": "agent-0"}
            ),
            "coach_message": TimelineEntry(
                "wi-b", 2, EntryKind.COACH_MESSAGE, at, "sup-0", Role.SUPERVISOR, message_id="m1", extra={"agentId": "agent-0"}
            ),
            "reaction": TimelineEntry(
                "wi-b",
                3,
                EntryKind.REACTION,
                at,
                "agent-0",
                Role.AGENT,
                message_id="m1",
                reaction="thumbs_up",
                extra={"supervisorId": "sup-0"},
            ),
        }
        writes: dict[str, Any] = {}
        for name, entry in entries.items():
            for round_ in ("first", "again"):
                began = time.perf_counter()
                with count_dynamodb() as log:
                    for slot in an.entry_slots("wi-b", "agent-0", entry):
                        store_.apply("bench", slot)
                writes[f"{name} ({round_})"] = {
                    "requests": dict(log.by_operation()),
                    "ms": round((time.perf_counter() - began) * 1000, 1),
                }
        bootstrap.install(None)
    return {
        "store": store_name,
        "tenant": {"agents": agents, "supervisors": SUPERVISORS, "templates": TEMPLATES, "days": days, "buckets": buckets},
        "seed_s": round(seed_s, 1),
        "reads": reads,
        "writes_per_event": writes,
    }


def main() -> None:
    args = cli(__doc__.splitlines()[0], stores=True)
    emit({"analytics": run(args.quick, args.store)}, args.out)  # bench/__main__ merges each step's keys


if __name__ == "__main__":
    main()
