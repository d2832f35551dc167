"""Mint a client token for a deployed stack, with the JWT secret read from SSM Parameter Store.

    scripts/mint-token --tenant acme --user alice --role admin [--region eu-west-1]
        [--parameter /supervisor-coaching/prod/jwt-secret] [--ttl 3600] [--name Alice] [--workitem W1]

Prints the token and nothing else (use it as ``TOKEN=$(scripts/mint-token ...)``). The secret is
never printed, logged or written anywhere. For the first admin of a tenant, smoke tests, and
integrations that cannot mint their own tokens; your identity provider or token service should
issue the tokens of real users. Needs ssm:GetParameter on the parameter (and kms:Decrypt when it
is encrypted with your own key), through the usual AWS credentials.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

PROJECT = Path(__file__).resolve().parent.parent
ROLES = ("admin", "supervisor", "agent", "customer")
MAX_TTL_SECONDS = 24 * 3600


def read_secret(parameter: str, region: str) -> str:
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError

    ssm = boto3.client("ssm", region_name=region or None)
    try:
        value: str = ssm.get_parameter(Name=parameter, WithDecryption=True)["Parameter"]["Value"]
    except ClientError as exc:
        error = exc.response.get("Error", {})
        raise SystemExit(f"cannot read SSM parameter {parameter}: {error.get('Code')} {error.get('Message')}") from None
    except BotoCoreError as exc:
        raise SystemExit(f"cannot read SSM parameter {parameter}: {exc}") from None
    if not value:
        raise SystemExit(f"SSM parameter {parameter} is empty")
    return value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--tenant", required=True, help="tenant id (the tid claim)")
    parser.add_argument("--user", required=True, help="user id (the sub claim)")
    parser.add_argument("--role", required=True, choices=ROLES)
    parser.add_argument("--name", default=None, help="display name (optional)")
    parser.add_argument("--workitem", default=None, help="workitem id (wid claim; customers only, required for them)")
    parser.add_argument("--ttl", type=int, default=3600, help=f"seconds the token is valid (at most {MAX_TTL_SECONDS})")
    parser.add_argument("--parameter", default="/supervisor-coaching/prod/jwt-secret", help="the stack's JwtSecretParameterName")
    parser.add_argument("--region", default="", help="the stack's Region (default: your AWS configuration's)")
    args = parser.parse_args(argv)

    sys.path.insert(0, str(PROJECT))
    from chalicelib.domain.ids import ID_PATTERN
    from devstack.tokens import mint

    for label, value in (("--tenant", args.tenant), ("--user", args.user)):
        if not ID_PATTERN.match(value):
            parser.error(f"{label} must be 1-128 characters: letters, digits and . _ : @ + -")
    if (args.role == "customer") != bool(args.workitem):
        parser.error("--workitem is required for --role customer and only for it")
    if args.workitem and not ID_PATTERN.match(args.workitem):
        parser.error("--workitem must be 1-128 characters: letters, digits and . _ : @ + -")
    if not 0 < args.ttl <= MAX_TTL_SECONDS:
        parser.error(f"--ttl must be between 1 and {MAX_TTL_SECONDS}")

    secret = read_secret(args.parameter, args.region)
    print(mint(secret, sub=args.user, tid=args.tenant, role=args.role, name=args.name, wid=args.workitem, ttl_seconds=args.ttl))
    return 0


if __name__ == "__main__":
    sys.exit(main())
