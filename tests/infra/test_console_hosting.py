"""The web console's hosting in the template: a private, encrypted bucket that only the stack's
CloudFront distribution reads (origin access control, not the legacy origin access identity), served
over HTTPS with index.html at the root."""

from __future__ import annotations

import json

import pytest

from tests.infra.build import Build, _ref

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
