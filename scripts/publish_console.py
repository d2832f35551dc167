"""Upload the web console to a deployed stack, with a config.json written from the stack's outputs.

    make publish-console STACK=supervisor-coaching-prod [REGION=eu-west-1] [CLIENT_ID=...]

Run after every deploy (stack create or update). It reads the stack's outputs and parameters
(``cloudformation:DescribeStacks``), writes ``config.json`` (the REST and WebSocket URLs, and how to
sign in: the stack's Cognito user pool, the OIDC issuer you named, or neither), uploads
``console/dist`` (``make console``) to the stack's console bucket, and invalidates the CloudFront
cache. ``index.html`` and ``config.json`` are served with ``no-cache`` (a new build is visible at
once); the assets are cached for a day. With your own issuer, pass the console's client id
(``--client-id``; default: the stack's ``OidcAudience``) and register the printed console URL as a
redirect URI there. Needs s3:PutObject on the bucket and cloudfront:CreateInvalidation.
"""

from __future__ import annotations

import argparse
import json
import mimetypes
import sys
import time
from pathlib import Path
from typing import Any

PROJECT = Path(__file__).resolve().parent.parent
NO_CACHE = "no-cache"
ASSET_CACHE = "public, max-age=86400"


def stack_values(cloudformation: Any, stack: str) -> tuple[dict[str, str], dict[str, str]]:
    """The stack's (outputs, parameters) by key."""
    described = cloudformation.describe_stacks(StackName=stack)["Stacks"][0]
    outputs = {o["OutputKey"]: o["OutputValue"] for o in described.get("Outputs", [])}
    parameters = {p["ParameterKey"]: p.get("ParameterValue", "") for p in described.get("Parameters", [])}
    return outputs, parameters


def console_config(outputs: dict[str, str], parameters: dict[str, str], client_id: str = "") -> dict[str, Any]:
    """config.json for the console served by this stack (docs/console.md lists the fields)."""
    for needed in ("RestApiUrl", "WebsocketUrl", "ConsoleUrl"):
        if not outputs.get(needed):
            raise SystemExit(f"the stack has no {needed} output: is it deployed from this version's template?")
    config: dict[str, Any] = {
        "apiUrl": outputs["RestApiUrl"].rstrip("/"),  # the console's paths start with "/"
        "wsUrl": outputs["WebsocketUrl"],
        "signIn": "local",  # no issuer: a token minted with the shared secret is pasted in
        "voice": "chime",
    }
    redirect = outputs["ConsoleUrl"]
    if outputs.get("OidcIssuerUrl"):  # the stack's Cognito user pool
        oidc: dict[str, Any] = {
            "issuer": outputs["OidcIssuerUrl"],
            "clientId": outputs["ConsoleClientId"],
            "redirectUri": redirect,
            "scopes": "openid email profile",
            "roleClaim": "cognito:groups",
            "tenantClaim": "custom:tid",
        }
        if outputs.get("SignInUrl"):
            domain = outputs["SignInUrl"].rstrip("/")
            oidc["authorizationEndpoint"] = f"{domain}/oauth2/authorize"
            oidc["tokenEndpoint"] = f"{domain}/oauth2/token"
        config["signIn"], config["oidc"] = "oidc", oidc
    elif parameters.get("OidcIssuer"):  # an issuer you bring: endpoints from its discovery document
        client = client_id or parameters.get("OidcAudience", "")
        if not client:
            raise SystemExit("the stack names an OIDC issuer but no client id: pass --client-id (CLIENT_ID=...)")
        config["signIn"], config["oidc"] = (
            "oidc",
            {
                "issuer": parameters["OidcIssuer"],
                "clientId": client,
                "redirectUri": redirect,
                "scopes": "openid email profile",
                "roleClaim": parameters.get("OidcRoleClaim") or "role",
                "tenantClaim": parameters.get("OidcTenantClaim") or "tid",
            },
        )
    return config


def upload(s3: Any, bucket: str, dist: Path, config: dict[str, Any]) -> list[str]:
    """Upload the build (without its own config.json and size report) and the stack's config.json."""
    if not (dist / "index.html").exists():
        raise SystemExit(f"{dist}/index.html is missing: run `make console` first")
    keys = []
    for path in sorted(p for p in dist.rglob("*") if p.is_file()):
        key = path.relative_to(dist).as_posix()
        if key in ("config.json", "build-sizes.json"):
            continue
        content_type = mimetypes.guess_type(key)[0] or "application/octet-stream"
        cache = NO_CACHE if key == "index.html" else ASSET_CACHE
        s3.upload_file(str(path), bucket, key, ExtraArgs={"ContentType": content_type, "CacheControl": cache})
        keys.append(key)
    s3.put_object(
        Bucket=bucket,
        Key="config.json",
        Body=json.dumps(config, indent=2).encode(),
        ContentType="application/json",
        CacheControl=NO_CACHE,
    )
    keys.append("config.json")
    return keys


def publish_console(session: Any, stack: str, dist: Path, client_id: str = "") -> tuple[str, dict[str, Any], list[str]]:
    """Upload and invalidate; return (console URL, config, uploaded keys)."""
    outputs, parameters = stack_values(session.client("cloudformation"), stack)
    config = console_config(outputs, parameters, client_id)
    if not outputs.get("ConsoleBucketName"):
        raise SystemExit("the stack has no ConsoleBucketName output: is it deployed from this version's template?")
    keys = upload(session.client("s3"), outputs["ConsoleBucketName"], dist, config)
    session.client("cloudfront").create_invalidation(
        DistributionId=outputs["ConsoleDistributionId"],
        InvalidationBatch={"Paths": {"Quantity": 1, "Items": ["/*"]}, "CallerReference": f"publish-{time.time_ns()}"},
    )
    return outputs["ConsoleUrl"], config, keys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--stack", required=True, help="the deployed stack's name")
    parser.add_argument("--region", default="", help="the stack's Region (default: your AWS configuration's)")
    parser.add_argument("--client-id", default="", help="with your own OIDC issuer: the console's client id")
    parser.add_argument("--dist", default=PROJECT / "console" / "dist", type=Path, help="what `make console` built")
    args = parser.parse_args(argv)
    import boto3

    session = boto3.session.Session(region_name=args.region or None)
    if not session.region_name:
        parser.error("no Region: pass REGION=... (make) or --region, or configure a default Region")
    url, config, keys = publish_console(session, args.stack, args.dist, args.client_id)
    print(f"uploaded {len(keys)} files; sign-in: {config['signIn']}")
    print(f"console: {url}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
