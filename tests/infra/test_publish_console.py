"""scripts/publish_console.py (make publish-console) against moto's CloudFormation, S3 and CloudFront."""

from __future__ import annotations

import importlib.util
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

pytestmark = pytest.mark.infra

ROOT = Path(__file__).resolve().parents[2]
REGION = "eu-west-1"


def _load() -> Any:
    spec = importlib.util.spec_from_file_location("scripts_publish_console", ROOT / "scripts" / "publish_console.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


publish_console = _load()


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[boto3.session.Session]:
    for key in list(os.environ):
        if key.startswith("AWS_"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", os.devnull)
    with mock_aws():
        yield boto3.session.Session(region_name=REGION)


@pytest.fixture
def dist(tmp_path: Path) -> Path:
    (tmp_path / "assets").mkdir()
    (tmp_path / "index.html").write_text("<!doctype html><div id=app></div>")
    (tmp_path / "config.json").write_text('{"signIn": "local"}')
    (tmp_path / "build-sizes.json").write_text("{}")
    (tmp_path / "assets" / "main.js").write_text("console.log(1)")
    (tmp_path / "assets" / "app.css").write_text("body{}")
    return tmp_path


def _stack(session: boto3.session.Session, outputs: dict[str, str], parameters: dict[str, str]) -> str:
    """A stack whose outputs and parameters look like the real one's (moto echoes literal outputs)."""
    s3 = session.client("s3")
    s3.create_bucket(Bucket="console-bucket", CreateBucketConfiguration={"LocationConstraint": REGION})
    distribution = session.client("cloudfront").create_distribution(
        DistributionConfig={
            "CallerReference": "test",
            "Comment": "",
            "Enabled": True,
            "Origins": {
                "Quantity": 1,
                "Items": [
                    {"Id": "o", "DomainName": "console-bucket.s3.amazonaws.com", "S3OriginConfig": {"OriginAccessIdentity": ""}}
                ],
            },
            "DefaultCacheBehavior": {"TargetOriginId": "o", "ViewerProtocolPolicy": "redirect-to-https"},
        }
    )["Distribution"]
    base = {
        "RestApiUrl": "https://abc.execute-api.eu-west-1.amazonaws.com/api/",
        "WebsocketUrl": "wss://def.execute-api.eu-west-1.amazonaws.com/api",
        "ConsoleUrl": "https://d111.cloudfront.net/",
        "ConsoleBucketName": "console-bucket",
        "ConsoleDistributionId": distribution["Id"],
    }
    template = {
        "Parameters": {k: {"Type": "String", "Default": ""} for k in parameters},
        "Resources": {"Nothing": {"Type": "AWS::SNS::Topic"}},
        "Outputs": {k: {"Value": v} for k, v in {**base, **outputs}.items()},
    }
    session.client("cloudformation").create_stack(
        StackName="coaching",
        TemplateBody=json.dumps(template),
        Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in parameters.items()],
    )
    return str(distribution["Id"])


def _object(session: boto3.session.Session, key: str) -> dict[str, Any]:
    return session.client("s3").get_object(Bucket="console-bucket", Key=key)


def test_uploads_the_build_with_a_config_for_the_stacks_user_pool(aws: boto3.session.Session, dist: Path) -> None:
    distribution_id = _stack(
        aws,
        {
            "OidcIssuerUrl": "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_abc",
            "ConsoleClientId": "client123",
            "SignInUrl": "https://coach.auth.eu-west-1.amazoncognito.com",
        },
        {"OidcIssuer": "", "OidcRoleClaim": "role", "OidcTenantClaim": "tid"},
    )
    url, config, keys = publish_console.publish_console(aws, "coaching", dist)
    assert url == "https://d111.cloudfront.net/"
    assert sorted(keys) == ["assets/app.css", "assets/main.js", "config.json", "index.html"]  # no size report
    uploaded = json.loads(_object(aws, "config.json")["Body"].read())
    assert uploaded == config
    assert config["apiUrl"] == "https://abc.execute-api.eu-west-1.amazonaws.com/api"  # paths start with "/"
    assert config["wsUrl"] == "wss://def.execute-api.eu-west-1.amazonaws.com/api"
    assert config["signIn"] == "oidc" and config["voice"] == "chime"
    assert config["oidc"] == {
        "issuer": "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_abc",
        "clientId": "client123",
        "redirectUri": "https://d111.cloudfront.net/",
        "scopes": "openid email profile",
        "roleClaim": "cognito:groups",
        "tenantClaim": "custom:tid",
        "authorizationEndpoint": "https://coach.auth.eu-west-1.amazoncognito.com/oauth2/authorize",
        "tokenEndpoint": "https://coach.auth.eu-west-1.amazoncognito.com/oauth2/token",
    }
    index = _object(aws, "index.html")
    assert index["ContentType"] == "text/html" and index["CacheControl"] == "no-cache"
    assert _object(aws, "config.json")["CacheControl"] == "no-cache"
    script = _object(aws, "assets/main.js")
    assert script["ContentType"] in ("text/javascript", "application/javascript")
    assert script["CacheControl"] == "public, max-age=86400"
    invalidations = aws.client("cloudfront").list_invalidations(DistributionId=distribution_id)["InvalidationList"]
    assert invalidations["Quantity"] == 1


def test_an_issuer_you_bring_uses_discovery_and_the_stacks_claim_names(aws: boto3.session.Session, dist: Path) -> None:
    _stack(
        aws,
        {},
        {
            "OidcIssuer": "https://login.example.com/tenant",
            "OidcAudience": "aud-client",
            "OidcRoleClaim": "roles",
            "OidcTenantClaim": "org",
        },
    )
    _, config, _ = publish_console.publish_console(aws, "coaching", dist)
    assert config["signIn"] == "oidc"
    assert config["oidc"]["issuer"] == "https://login.example.com/tenant"
    assert config["oidc"]["clientId"] == "aud-client"
    assert (config["oidc"]["roleClaim"], config["oidc"]["tenantClaim"]) == ("roles", "org")
    assert "authorizationEndpoint" not in config["oidc"]  # read from the issuer's discovery document
    _, config, _ = publish_console.publish_console(aws, "coaching", dist, client_id="other-client")
    assert config["oidc"]["clientId"] == "other-client"


def test_no_issuer_means_pasted_tokens_and_a_missing_build_is_refused(
    aws: boto3.session.Session, dist: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    _stack(aws, {}, {"OidcIssuer": ""})
    _, config, _ = publish_console.publish_console(aws, "coaching", dist)
    assert config["signIn"] == "local" and "oidc" not in config
    with pytest.raises(SystemExit, match="make console"):
        publish_console.publish_console(aws, "coaching", tmp_path_factory.mktemp("empty"))


def test_an_old_stack_without_console_outputs_is_refused() -> None:
    with pytest.raises(SystemExit, match="ConsoleUrl"):
        publish_console.console_config({"RestApiUrl": "https://x/api/", "WebsocketUrl": "wss://x/api"}, {})
