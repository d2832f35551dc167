"""scripts/publish.py (make publish) against moto's S3, scripts/mint-token against moto's SSM."""

from __future__ import annotations

import hashlib
import importlib.util
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
