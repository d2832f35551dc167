"""Count a tenant's retained coaching history into its analytics (docs/operations.md, "Analytics rebuild").

    .venv/bin/python scripts/rebuild_analytics.py --stack supervisor-coaching-prod --tenant acme [--region eu-west-1]

Reads every retained timeline and assistance request of the tenant (paged Scans of the workitems and
assistance tables, filtered to the tenant: run it off-peak on a large table) and counts each fact that
is not counted yet. A fact counted already is skipped, so running it twice changes nothing; it fills
in tenants that existed before the analytics, and assistance events whose count failed (their log
line says so). Days whose timelines expired (``retentionDays``) keep the numbers they had.

Needs dynamodb:Scan on the workitems and assistance tables, dynamodb:Query on the workitems table,
dynamodb:GetItem, PutItem and UpdateItem on the directory table, and cloudformation:DescribeStackResources.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

TABLES = {
    "DirectoryTable": "DIRECTORY_TABLE",
    "WorkitemsTable": "WORKITEMS_TABLE",
    "ConnectionsTable": "CONNECTIONS_TABLE",
    "AssistanceTable": "ASSISTANCE_TABLE",
    "IdempotencyTable": "IDEMPOTENCY_TABLE",
}


class DynamoRetainedHistory:
    """A tenant's retained workitems and assistance requests: paged Scans of the two tables, filtered
    to the tenant. Here, not in chalicelib: no function of the stack ever Scans (nor may: its roles
    grant no dynamodb:Scan)."""

    def workitems(self, tenant_id: str) -> Iterator[tuple[str, str]]:
        from chalicelib.adapters.dynamo import WorkitemItem

        prefix = f"T#{tenant_id}#W#"
        for raw in _scan(WorkitemItem, "begins_with(pk, :p) AND sk = :w", {":p": {"S": prefix}, ":w": {"S": "W"}}):
            yield raw["workitem_id"]["S"], raw["agent_id"]["S"]

    def requests(self, tenant_id: str) -> Iterator[Any]:
        from chalicelib.adapters.assist_repository import to_request
        from chalicelib.adapters.dynamo import AssistItem

        for raw in _scan(AssistItem, "begins_with(pk, :p)", {":p": {"S": f"T#{tenant_id}#AS#"}}):
            yield to_request(AssistItem.from_raw_data(raw))


def _scan(model: Any, condition: str, values: dict[str, Any]) -> Iterator[dict[str, Any]]:
    from chalicelib.adapters.pynamodb_compat import low_level

    client: Any = low_level(model).client
    params: dict[str, Any] = {"TableName": model.Meta.table_name, "FilterExpression": condition}
    params["ExpressionAttributeValues"] = values
    while True:
        page = client.scan(**params)
        yield from page.get("Items", [])
        if "LastEvaluatedKey" not in page:
            return
        params["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def stack_tables(cloudformation: Any, stack: str) -> dict[str, str]:
    """The stack's table names, as the settings' environment variables."""
    found = {
        r["LogicalResourceId"]: r.get("PhysicalResourceId", "")
        for r in cloudformation.describe_stack_resources(StackName=stack)["StackResources"]
    }
    missing = [name for name in TABLES if not found.get(name)]
    if missing:
        raise SystemExit(f"the stack has no {', '.join(missing)}: is it deployed from this version's template?")
    return {variable: found[name] for name, variable in TABLES.items()}


def rebuild(env: dict[str, str], tenant_id: str) -> dict[str, int]:
    from chalicelib import bootstrap
    from chalicelib import settings as settings_module
    from chalicelib.entrypoints.wire import WIRE

    services = bootstrap.build(settings_module.load(env), wire=WIRE)
    return bootstrap.rebuild_analytics(services, tenant_id, DynamoRetainedHistory())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--stack", required=True)
    parser.add_argument("--tenant", required=True)
    parser.add_argument("--region")
    args = parser.parse_args(argv)
    import boto3

    session = boto3.session.Session(region_name=args.region)
    env = {**stack_tables(session.client("cloudformation"), args.stack), "AWS_REGION": session.region_name or ""}
    print(json.dumps(rebuild(env, args.tenant)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
