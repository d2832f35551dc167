"""docs/deploy.md against the repository and the template it describes."""

from __future__ import annotations

import re

import pytest

from tests.infra.build import ROOT, Build

pytestmark = pytest.mark.infra

DOC = ROOT / "docs" / "deploy.md"
BUILT = {
    "dist/sam.yaml",
    "dist/deployment.zip",
    "sam.yaml",
    "deployment.zip",
    "dist/",
    "config.json",
}  # written by `make console` and by `make publish-console`


def _text() -> str:
    return DOC.read_text()


def test_every_file_the_guide_names_is_in_the_repository() -> None:
    named = set(re.findall(r"`([A-Za-z0-9_.-]+(?:/[A-Za-z0-9_.-]+)*\.(?:md|yaml|yml|py|txt|json|sh))`", _text()))
    named |= set(re.findall(r"`((?:scripts|infra|tests|docs|chalicelib)/[A-Za-z0-9_./-]*)`", _text()))
    missing = sorted(n for n in named - BUILT if not (ROOT / n).exists())
    assert not missing, f"docs/deploy.md names files that are not in the repository: {missing}"


def test_every_make_target_the_guide_names_exists() -> None:
    targets = set(re.findall(r"^([a-z][a-z-]*):", (ROOT / "Makefile").read_text(), re.M))
    used = set(re.findall(r"\bmake ([a-z][a-z-]*)", _text()))
    assert used and used <= targets, f"unknown make targets: {sorted(used - targets)}"


def test_every_stack_parameter_is_explained(packaged: Build) -> None:
    text = _text()
    missing = sorted(p for p in packaged.template["Parameters"] if f"`{p}`" not in text)
    assert not missing, f"docs/deploy.md does not explain {missing}"


def test_the_guide_names_the_runtime_the_package_builds_for(packaged: Build) -> None:
    runtimes = {f["Properties"]["Runtime"] for f in packaged.resources.values() if f.get("Type") == "AWS::Serverless::Function"}
    assert len(runtimes) == 1
    assert f"`{runtimes.pop()}`" in _text()


def test_every_output_the_guide_names_exists(packaged: Build) -> None:
    outputs = set(packaged.template["Outputs"])
    named = set(re.findall(r"`(\w+(?:Url|Name|Arn|Endpoint))`", _text()))
    parameters = set(packaged.template["Parameters"])
    unknown = sorted(
        n
        for n in named
        if n.endswith(("Url", "TableName", "BucketName", "Endpoint"))
        and n not in outputs
        and n not in parameters
        and n not in ("EndpointURL",)
    )
    assert not unknown, f"docs/deploy.md names outputs the stack does not have: {unknown}"


# The service name the deployer-permission table uses for a resource type's prefix.
SERVICE_NAMES = {
    "ApiGateway": "API Gateway",
    "ApiGatewayV2": "API Gateway",
    "CloudFront": "CloudFront",
    "CloudWatch": "CloudWatch",
    "Cognito": "Cognito user pools",
    "DynamoDB": "DynamoDB",
    "Events": "EventBridge",
    "IAM": "IAM",
    "Lambda": "Lambda",
    "Logs": "CloudWatch Logs",
    "S3": "S3",
    "SNS": "SNS",
    "SQS": "SQS",
}


def test_the_deployer_permissions_cover_every_service_the_stack_creates(transformed: Build) -> None:
    section = _text().split("## Deployer permissions", 1)[1].split("\n## ", 1)[0]
    listed = set(re.findall(r"^\| ([A-Za-z][\w ]+?) \|", section, re.M)) - {"Service"}
    services = {t.split("::")[1] for t in (r["Type"] for r in transformed.transformed["Resources"].values())}
    unknown = sorted(s for s in services if s not in SERVICE_NAMES)
    assert not unknown, f"name the deployer's rights for {unknown} in docs/deploy.md and SERVICE_NAMES here"
    missing = sorted({SERVICE_NAMES[s] for s in services} - listed)
    assert not missing, f"docs/deploy.md's deployer permissions lack {missing}"
    assert "iam:PassRole" in section.replace("`PassRole`", "iam:PassRole") and "CreateServiceLinkedRole" in section
    assert "/account" in section  # API Gateway's account setting (SetApiGatewayLogsRole)


def test_the_voice_regions_are_those_where_meetings_and_media_pipelines_both_run() -> None:
    """The Regions the guide names for voice: those AWS's endpoint data (botocore's) lists for both the
    Chime SDK meetings and media pipelines."""
    from botocore.loaders import create_loader

    [aws] = [p for p in create_loader().load_data("endpoints")["partitions"] if p["partition"] == "aws"]

    def regions(service: str) -> set[str]:
        return {r for r in aws["services"][service]["endpoints"] if "fips" not in r}

    expected = regions("meetings-chime") & regions("media-pipelines-chime")
    assert "ap-south-1" in expected
    named = _text().split("<!-- voice-regions -->", 1)[1].split("<!-- /voice-regions -->", 1)[0]
    assert set(re.findall(r"`([a-z]{2}-[a-z]+-\d)`", named)) == expected


def test_the_guide_states_the_zips_size(packaged: Build) -> None:
    assert packaged.zip_path is not None
    size_mb = packaged.zip_path.stat().st_size / 1024 / 1024
    [stated] = re.findall(r"deployment\.zip`: the code of every function \(about (\d+(?:\.\d+)?) MB\)", _text())
    assert abs(float(stated) - size_mb) <= 1, f"docs/deploy.md says about {stated} MB; the zip is {size_mb:.1f} MB"


def test_the_guide_names_node_and_npm_as_prerequisites() -> None:
    tools = _text().split("1. **Tools.**", 1)[1].split("2. **", 1)[0]
    assert "Node.js" in tools and "npm" in tools
