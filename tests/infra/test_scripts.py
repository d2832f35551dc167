"""scripts/publish.py (make publish) against moto's S3, scripts/mint-token against moto's SSM,
scripts/replay_stream_failures.py against moto's SQS and DynamoDB Streams."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import boto3
import pytest
from moto import mock_aws

from chalicelib.adapters.tokens import TokenVerifier
from chalicelib.domain.errors import Unauthorized
from chalicelib.domain.identity import Role

pytestmark = pytest.mark.infra

ROOT = Path(__file__).resolve().parents[2]
SECRET = "s3cr3t-value-that-must-never-be-printed-0123456789abcdef"


def _load(name: str) -> Any:
    spec = importlib.util.spec_from_file_location(f"scripts_{name}", ROOT / "scripts" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # a dataclass looks its module up there
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for key in list(os.environ):
        if key.startswith("AWS_"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", os.devnull)
    with mock_aws():
        yield


@pytest.fixture
def dist(tmp_path: Path) -> Path:
    (tmp_path / "deployment.zip").write_bytes(b"PK zip bytes " * 100)
    (tmp_path / "sam.yaml").write_text("Transform: AWS::Serverless-2016-10-31\nResources: {}\n")
    return tmp_path


# ------------------------------------------------------------------------------------- publish


def test_publish_uploads_both_files_and_prints_a_quick_create_link(
    aws: None, dist: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    s3 = boto3.client("s3", region_name="eu-west-1")
    s3.create_bucket(Bucket="code-bucket", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    publish = _load("publish")

    assert (
        publish.main(["--bucket", "code-bucket", "--region", "eu-west-1", "--stack", "coaching-test", "--dist", str(dist)]) == 0
    )

    digest = hashlib.sha256((dist / "deployment.zip").read_bytes()).hexdigest()[:12]
    code_key = f"supervisor-coaching/{digest}/deployment.zip"
    template_key = f"supervisor-coaching/{digest}/sam.yaml"
    assert s3.get_object(Bucket="code-bucket", Key=code_key)["Body"].read() == (dist / "deployment.zip").read_bytes()
    assert s3.get_object(Bucket="code-bucket", Key=template_key)["Body"].read() == (dist / "sam.yaml").read_bytes()

    link = capsys.readouterr().out.strip().splitlines()[-1]
    url = urlsplit(link)
    assert url.netloc == "eu-west-1.console.aws.amazon.com" and url.path == "/cloudformation/home"
    assert parse_qs(url.query) == {"region": ["eu-west-1"]}
    route, _, query = url.fragment.partition("?")
    assert route == "/stacks/create/review"
    params = parse_qs(query)
    assert params["stackName"] == ["coaching-test"]
    assert params["param_CodeBucket"] == ["code-bucket"]
    assert params["param_CodeKey"] == [code_key]
    assert params["templateURL"] == [f"https://code-bucket.s3.eu-west-1.amazonaws.com/{template_key}"]


def test_publish_refuses_a_bucket_in_another_region(aws: None, dist: Path) -> None:
    boto3.client("s3", region_name="us-east-1").create_bucket(Bucket="virginia-bucket")
    with pytest.raises(SystemExit, match="is in us-east-1, not eu-west-1"):
        _load("publish").main(["--bucket", "virginia-bucket", "--region", "eu-west-1", "--dist", str(dist)])


def test_publish_needs_a_build_first(aws: None, tmp_path: Path) -> None:
    boto3.client("s3", region_name="us-east-1").create_bucket(Bucket="code-bucket-2")
    with pytest.raises(SystemExit, match="run `make package` first"):
        _load("publish").main(["--bucket", "code-bucket-2", "--region", "us-east-1", "--dist", str(tmp_path)])


# ---------------------------------------------------------------------------------- mint-token


@pytest.fixture
def secret_parameter(aws: None) -> str:
    name = "/supervisor-coaching/prod/jwt-secret"
    boto3.client("ssm", region_name="eu-west-1").put_parameter(Name=name, Value=SECRET, Type="SecureString")
    return name


def test_mint_token_prints_a_token_the_stack_accepts_and_never_the_secret(
    secret_parameter: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code = _load("mint_token").main(
        [
            "--tenant",
            "acme",
            "--user",
            "alice",
            "--role",
            "admin",
            "--name",
            "Alice",
            "--region",
            "eu-west-1",
            "--parameter",
            secret_parameter,
        ]
    )
    assert code == 0
    captured = capsys.readouterr()
    assert SECRET not in captured.out + captured.err
    token = captured.out.strip()
    assert "\n" not in token
    principal = TokenVerifier(lambda: SECRET).verify(token)
    assert (principal.tenant_id, principal.user_id, principal.role, principal.name) == ("acme", "alice", Role.ADMIN, "Alice")
    with pytest.raises(Unauthorized):
        TokenVerifier(lambda: "another-secret-of-the-same-length-0123456789abcdef").verify(token)


def test_mint_token_customer_tokens_name_their_workitem(secret_parameter: str, capsys: pytest.CaptureFixture[str]) -> None:
    mint_token = _load("mint_token")
    with pytest.raises(SystemExit):
        mint_token.main(["--tenant", "acme", "--user", "c1", "--role", "customer", "--region", "eu-west-1"])
    assert (
        mint_token.main(
            [
                "--tenant",
                "acme",
                "--user",
                "c1",
                "--role",
                "customer",
                "--workitem",
                "W1",
                "--region",
                "eu-west-1",
                "--parameter",
                secret_parameter,
            ]
        )
        == 0
    )
    principal = TokenVerifier(lambda: SECRET).verify(capsys.readouterr().out.strip())
    assert principal.workitem_id == "W1" and principal.role is Role.CUSTOMER


def test_mint_token_explains_a_missing_parameter_without_a_traceback(aws: None) -> None:
    with pytest.raises(SystemExit) as exc:
        _load("mint_token").main(
            ["--tenant", "acme", "--user", "alice", "--role", "admin", "--region", "eu-west-1", "--parameter", "/nope"]
        )
    assert "cannot read SSM parameter /nope: ParameterNotFound" in str(exc.value)


def test_mint_token_wrapper_runs(tmp_path: Path) -> None:
    proc = subprocess.run(
        [str(ROOT / "scripts" / "mint-token"), "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, "PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin"},
    )
    assert proc.returncode == 0, proc.stderr
    assert "--tenant" in proc.stdout


# --------------------------------------------------- packaging needs only requirements-package.txt


def _requirement_names(path: Path) -> set[str]:
    names: set[str] = set()
    for line in path.read_text().splitlines():
        entry = line.split("#", 1)[0].strip()
        if entry.startswith("-r "):
            names |= _requirement_names(path.parent / entry[3:].strip())
        elif entry:
            names.add(entry.split("==", 1)[0].split("[", 1)[0].lower())
    return names


def test_packaging_and_publishing_import_only_what_requirements_package_installs() -> None:
    """`make package` / `make publish` run with requirements-package.txt alone (no dev tools)."""
    import ast

    # import name -> distribution, for the distributions whose import name differs
    distribution = {"yaml": "pyyaml", "jwt": "pyjwt"}
    allowed = _requirement_names(ROOT / "requirements-package.txt") | {"chalicelib", "devstack"}
    # mint-token uses the local stack's token minting (kept out of the Lambda package): that module too.
    for script in (
        "infra/package.py",
        "scripts/publish.py",
        "scripts/mint_token.py",
        "devstack/tokens.py",
        "devstack/__init__.py",
    ):
        tree = ast.parse((ROOT / script).read_text())
        for node in ast.walk(tree):
            names = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else ([node.module] if isinstance(node, ast.ImportFrom) and node.module and node.level == 0 else [])
            )
            for name in names:
                top = name.split(".")[0]
                if top in sys.stdlib_module_names or top == "__future__":
                    continue
                assert distribution.get(top, top) in allowed, f"{script} imports {name}, not in requirements-package.txt"
    assert {"chalice", "boto3", "pyyaml", "pynamodb", "pyjwt", "msgspec"} <= allowed
    assert not {"pytest", "moto", "cfn-lint", "aws-sam-translator", "policy-sentry"} & allowed


# ------------------------------------------------------------------------- replay_stream_failures


class _Failures:
    """A table with a stream on moto and ``count`` items written, and an SQS queue for the failures."""

    def __init__(self, count: int) -> None:
        self.streams, self.arn, self.records = _stream_with_records(count)
        self.shard = self.streams.describe_stream(StreamArn=self.arn)["StreamDescription"]["Shards"][0]["ShardId"]
        self.sqs = boto3.client("sqs", region_name="us-east-1")
        self.url = self.sqs.create_queue(QueueName="fanout-failures")["QueueUrl"]

    def fail(self, first: int, last: int, arrived: str) -> None:
        """Lambda's failure record for the batch of records ``first`` to ``last``."""
        body = _failure_record(self.arn, self.shard, self.records[first], self.records[last], arrived)
        self.sqs.send_message(QueueUrl=self.url, MessageBody=body)

    def left(self) -> int:
        attributes = self.sqs.get_queue_attributes(QueueUrl=self.url, AttributeNames=["All"])["Attributes"]
        return int(attributes["ApproximateNumberOfMessages"]) + int(attributes["ApproximateNumberOfMessagesNotVisible"])


def _stream_with_records(count: int) -> tuple[Any, str, list[dict[str, Any]]]:
    """A table with a stream on moto, ``count`` items written: (streams client, stream ARN, records)."""
    dynamodb = boto3.client("dynamodb", region_name="us-east-1")
    arn = dynamodb.create_table(
        TableName="workitems",
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
        StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
    )["TableDescription"]["LatestStreamArn"]
    for i in range(count):
        dynamodb.put_item(TableName="workitems", Item={"pk": {"S": f"W#{i}"}, "n": {"N": str(i)}})
    # moto answers the Streams API on its regional host only (botocore would pick one from the ARN).
    streams = boto3.client(
        "dynamodbstreams", region_name="us-east-1", endpoint_url="https://streams.dynamodb.us-east-1.amazonaws.com"
    )
    shard = streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"][0]["ShardId"]
    iterator = streams.get_shard_iterator(StreamArn=arn, ShardId=shard, ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
    return streams, arn, streams.get_records(ShardIterator=iterator)["Records"]


def _failure_record(arn: str, shard: str, first: dict[str, Any], last: dict[str, Any], arrived: str) -> str:
    """What Lambda sends the stream mapping's on-failure destination (coordinates, not records)."""
    return json.dumps(
        {
            "requestContext": {"requestId": "r-1", "condition": "RetryAttemptsExhausted", "approximateInvokeCount": 3},
            "responseContext": {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"},
            "version": "1.0",
            "timestamp": arrived,
            "DDBStreamBatchInfo": {
                "shardId": shard,
                "startSequenceNumber": first["dynamodb"]["SequenceNumber"],
                "endSequenceNumber": last["dynamodb"]["SequenceNumber"],
                "approximateArrivalOfFirstRecord": arrived,
                "approximateArrivalOfLastRecord": arrived,
                "batchSize": 2,
                "streamArn": arn,
            },
        }
    )


def test_replay_reads_a_failed_batch_back_from_the_stream_and_runs_fanout_on_it(aws: None) -> None:
    from datetime import UTC, datetime, timedelta

    script = _load("replay_stream_failures")
    f = _Failures(4)
    now = datetime.now(UTC)
    f.fail(1, 2, (now - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ"))
    f.fail(0, 0, (now - timedelta(hours=25)).strftime("%Y-%m-%dT%H:%M:%SZ"))  # trimmed from the stream by now
    f.sqs.send_message(QueueUrl=f.url, MessageBody="not a failure record")
    events: list[dict[str, Any]] = []

    def invoke(event: dict[str, Any]) -> dict[str, Any]:
        events.append(event)
        return {"FunctionError": "", "Payload": {"batchItemFailures": []}}

    lines: list[str] = []
    summary = script.replay(f.sqs, f.streams, invoke, f.url, now=now, out=lines.append)
    # The batch's two records, as the event source mapping hands them to Fanout (JSON: numbers, not datetimes).
    assert [[r["dynamodb"]["Keys"]["pk"]["S"] for r in e["Records"]] for e in events] == [["W#1", "W#2"]]
    assert isinstance(events[0]["Records"][0]["dynamodb"]["ApproximateCreationDateTime"], int)
    assert len(summary.replayed) == 1 and len(summary.expired) == 1 and summary.unreadable == 1
    assert any("trimmed from the stream" in line for line in lines)
    assert f.left() == 2  # the replayed message is gone; the other two stay for a person to look at


def test_a_batch_fanout_fails_again_stays_in_the_queue(aws: None) -> None:
    from datetime import UTC, datetime

    script = _load("replay_stream_failures")
    f = _Failures(2)
    now = datetime.now(UTC)
    f.fail(0, 1, now.strftime("%Y-%m-%dT%H:%M:%SZ"))
    handed_back = {"batchItemFailures": [{"itemIdentifier": f.records[1]["dynamodb"]["SequenceNumber"]}]}
    summary = script.replay(
        f.sqs, f.streams, lambda event: {"FunctionError": "", "Payload": handed_back}, f.url, now=now, out=lambda _: None
    )
    assert summary.failed and not summary.replayed and f.left() == 1
