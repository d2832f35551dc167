"""The web console's hosting in the template: a private, encrypted bucket that only the stack's
CloudFront distribution reads (origin access control, not the legacy origin access identity), served
over HTTPS with index.html at the root."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from tests.infra.build import ROOT, Build, _ref

pytestmark = pytest.mark.infra


def test_the_console_bucket_is_private_and_encrypted(packaged: Build) -> None:
    bucket = packaged.resources["ConsoleBucket"]
    assert bucket["Type"] == "AWS::S3::Bucket"
    props = bucket["Properties"]
    assert props["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True,
        "BlockPublicPolicy": True,
        "IgnorePublicAcls": True,
        "RestrictPublicBuckets": True,
    }
    assert props["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]["ServerSideEncryptionByDefault"]
    assert props["OwnershipControls"]["Rules"] == [{"ObjectOwnership": "BucketOwnerEnforced"}]  # no ACLs at all
    assert "WebsiteConfiguration" not in props  # never the public website endpoint


def test_the_distribution_reads_through_origin_access_control_over_https(packaged: Build) -> None:
    assert not packaged.of_type("AWS::CloudFront::CloudFrontOriginAccessIdentity")  # the legacy OAI
    oac = packaged.resources["ConsoleOriginAccessControl"]["Properties"]["OriginAccessControlConfig"]
    assert (oac["OriginAccessControlOriginType"], oac["SigningBehavior"], oac["SigningProtocol"]) == ("s3", "always", "sigv4")
    config = packaged.resources["ConsoleDistribution"]["Properties"]["DistributionConfig"]
    assert config["Enabled"] is True and config["DefaultRootObject"] == "index.html"
    [origin] = config["Origins"]
    assert origin["DomainName"] == {"Fn::GetAtt": ["ConsoleBucket", "RegionalDomainName"]}
    assert origin["OriginAccessControlId"] == {"Fn::GetAtt": ["ConsoleOriginAccessControl", "Id"]}
    assert origin["S3OriginConfig"] == {"OriginAccessIdentity": ""}
    behaviours = [config["DefaultCacheBehavior"], *config.get("CacheBehaviors", [])]
    for behaviour in behaviours:
        assert behaviour["ViewerProtocolPolicy"] in ("redirect-to-https", "https-only")
        assert behaviour["TargetOriginId"] == origin["Id"]
        assert sorted(behaviour["AllowedMethods"]) == ["GET", "HEAD"]  # a static site: nothing is written through it


def test_only_the_distribution_may_read_the_bucket(packaged: Build) -> None:
    policy = packaged.resources["ConsoleBucketPolicy"]["Properties"]
    assert policy["Bucket"] == _ref("ConsoleBucket")
    statements = policy["PolicyDocument"]["Statement"]
    allows = [s for s in statements if s["Effect"] == "Allow"]
    assert len(allows) == 1
    [allow] = allows
    assert allow["Principal"] == {"Service": "cloudfront.amazonaws.com"}
    assert allow["Action"] == "s3:GetObject"
    assert allow["Resource"] == {"Fn::Sub": "${ConsoleBucket.Arn}/*"}
    source = allow["Condition"]["StringEquals"]["AWS:SourceArn"]["Fn::Sub"]
    assert source == "arn:${AWS::Partition}:cloudfront::${AWS::AccountId}:distribution/${ConsoleDistribution}"
    [deny] = [s for s in statements if s["Effect"] == "Deny"]
    assert deny["Principal"] == "*" and deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


def test_the_functions_cannot_touch_the_console_bucket(packaged: Build) -> None:
    """Only the publish script (an operator's credentials) writes the console; no role of the stack names it."""
    for name, resource in packaged.resources.items():
        if resource["Type"] in ("AWS::IAM::Role", "AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"):
            assert "ConsoleBucket" not in json.dumps(resource), name


def test_the_user_pool_sends_sign_in_back_to_the_stacks_console(packaged: Build) -> None:
    outputs = packaged.template["Outputs"]
    assert outputs["ConsoleUrl"]["Value"] == {"Fn::Sub": "https://${ConsoleDistribution.DomainName}/"}
    assert outputs["ConsoleBucketName"]["Value"] == _ref("ConsoleBucket")
    assert outputs["ConsoleDistributionId"]["Value"] == _ref("ConsoleDistribution")
    client = packaged.resources["ConsoleUserPoolClient"]["Properties"]
    _, with_extra, without = client["CallbackURLs"]["Fn::If"]
    assert outputs["ConsoleUrl"]["Value"] in with_extra and without == [outputs["ConsoleUrl"]["Value"]]


# --- the console's security headers (docs/console.md, "Security headers") -------------------------------


def _resolve(node: Any, template: dict[str, Any], values: dict[str, str]) -> Any:
    """``node`` with the intrinsic functions the console's headers use evaluated: parameters (and
    resources, pseudo parameters) from ``values``, conditions from the template."""
    if isinstance(node, list):
        return [_resolve(n, template, values) for n in node]
    if not isinstance(node, dict):
        return node
    if "Ref" in node:
        return values[node["Ref"]]
    if "Fn::Sub" in node:
        text = node["Fn::Sub"]
        return re.sub(r"\$\{([^}]+)\}", lambda m: values[m.group(1)], text)
    if "Fn::Join" in node:
        separator, parts = node["Fn::Join"]
        return separator.join(_resolve(parts, template, values))
    if "Fn::If" in node:
        condition, then, otherwise = node["Fn::If"]
        return _resolve(then if _holds(condition, template, values) else otherwise, template, values)
    if "Fn::Select" in node:
        index, items = node["Fn::Select"]
        return _resolve(items, template, values)[int(index)]
    if "Fn::Split" in node:
        separator, text = node["Fn::Split"]
        return str(_resolve(text, template, values)).split(separator)
    return {k: _resolve(v, template, values) for k, v in node.items()}


def _holds(condition: Any, template: dict[str, Any], values: dict[str, str]) -> bool:
    if isinstance(condition, str):
        return _holds(template["Conditions"][condition], template, values)
    if "Condition" in condition:
        return _holds(condition["Condition"], template, values)
    if "Fn::Not" in condition:
        return not _holds(condition["Fn::Not"][0], template, values)
    if "Fn::And" in condition:
        return all(_holds(c, template, values) for c in condition["Fn::And"])
    if "Fn::Equals" in condition:
        left, right = (_resolve(v, template, values) for v in condition["Fn::Equals"])
        return bool(left == right)
    raise AssertionError(f"unexpected condition {condition}")


STACK_VALUES = {
    "AWS::Region": "eu-west-1",
    "AWS::URLSuffix": "amazonaws.com",
    "AWS::StackName": "coach",
    "WebsocketAPI": "ws456",
    "CreateUserPool": "false",
    "UserPoolDomainPrefix": "",
    "OidcIssuer": "",
    "ConsoleConnectSources": "",
}


def _policy(packaged: Build, **parameters: str) -> dict[str, Any]:
    config = packaged.resources["ConsoleResponseHeadersPolicy"]["Properties"]["ResponseHeadersPolicyConfig"]
    resolved: dict[str, Any] = _resolve(config, packaged.template, {**STACK_VALUES, **parameters})
    return resolved


def _directives(policy: str) -> dict[str, list[str]]:
    return {words[0]: words[1:] for part in policy.split(";") if (words := part.split())}


def test_the_distribution_serves_the_consoles_security_headers(packaged: Build) -> None:
    config = packaged.resources["ConsoleDistribution"]["Properties"]["DistributionConfig"]
    assert config["DefaultCacheBehavior"]["ResponseHeadersPolicyId"] == _ref("ConsoleResponseHeadersPolicy")
    headers = _policy(packaged)["SecurityHeadersConfig"]
    assert headers["ContentTypeOptions"] == {"Override": True}
    assert headers["FrameOptions"] == {"FrameOption": "DENY", "Override": True}
    assert headers["ReferrerPolicy"] == {"ReferrerPolicy": "no-referrer", "Override": True}
    hsts = headers["StrictTransportSecurity"]
    assert hsts["AccessControlMaxAgeSec"] >= 365 * 24 * 3600 and hsts["Override"] is True
    policy = _directives(headers["ContentSecurityPolicy"]["ContentSecurityPolicy"])
    assert policy["frame-ancestors"] == ["'none'"] and policy["default-src"] == ["'none'"]
    assert not {"'unsafe-inline'", "'unsafe-eval'", "*", "data:", "https:"} & set(policy["script-src"])
    assert len(headers["ContentSecurityPolicy"]["ContentSecurityPolicy"]) <= 1783  # CloudFront's limit


def test_the_policy_is_the_local_stacks_but_for_the_origins_it_connects_to(packaged: Build) -> None:
    """One policy: what devstack/console.py sends, with the stack's origins in connect-src; the
    script-src hash is the one of console/src/index.html's inline script as it is now."""
    from devstack.console import content_security_policy, inline_script_hashes

    index = (ROOT / "console" / "src" / "index.html").read_bytes()
    local = _directives(content_security_policy({}, "ws://127.0.0.1:8000", inline_script_hashes(index)))
    aws = _directives(_policy(packaged)["SecurityHeadersConfig"]["ContentSecurityPolicy"]["ContentSecurityPolicy"])
    assert aws.pop("upgrade-insecure-requests") == []
    assert {k: v for k, v in aws.items() if k != "connect-src"} == {k: v for k, v in local.items() if k != "connect-src"}


@pytest.mark.parametrize(
    ("parameters", "sign_in", "extra"),
    [
        ({}, [], []),
        (
            {"CreateUserPool": "true", "UserPoolDomainPrefix": "acme-coach"},
            ["https://cognito-idp.eu-west-1.amazonaws.com", "https://acme-coach.auth.eu-west-1.amazoncognito.com"],
            [],
        ),
        ({"CreateUserPool": "true"}, ["https://cognito-idp.eu-west-1.amazonaws.com"], []),
        ({"OidcIssuer": "https://login.example.com/tenant-1/v2.0"}, ["https://login.example.com"], []),
        (
            {"OidcIssuer": "https://accounts.google.com", "ConsoleConnectSources": "https://oauth2.googleapis.com"},
            ["https://accounts.google.com"],
            ["https://oauth2.googleapis.com"],
        ),
    ],
)
def test_connect_src_admits_the_apis_the_issuer_and_the_chime_sdk(
    packaged: Build, parameters: dict[str, str], sign_in: list[str], extra: list[str]
) -> None:
    policy = _policy(packaged, **parameters)["SecurityHeadersConfig"]["ContentSecurityPolicy"]["ContentSecurityPolicy"]
    assert _directives(policy)["connect-src"] == [
        "'self'",  # the console's own origin
        "https://*.execute-api.eu-west-1.amazonaws.com",  # the REST API (its id would close a cycle)
        "wss://ws456.execute-api.eu-west-1.amazonaws.com",  # the stack's WebsocketUrl output's origin
        *sign_in,  # the issuer (discovery) and the user pool's sign-in domain (token endpoint)
        "https://*.chime.aws",
        "wss://*.chime.aws",
        *extra,
    ]
    websocket_url = packaged.template["Outputs"]["WebsocketUrl"]["Value"]["Fn::Sub"]
    assert websocket_url.startswith("wss://${WebsocketAPI}.execute-api.${AWS::Region}.${AWS::URLSuffix}/")
