"""The packaged build the infra tests share: ``make package`` output, its SAM transform and
cfn-lint's findings, built once per test session (shared between xdist workers), and helpers to
read the template."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

try:
    import fcntl
except ImportError:  # not POSIX: each xdist worker then builds its own copy
    fcntl = None  # type: ignore[assignment]

from chalicelib import settings as settings_module

ROOT = Path(__file__).resolve().parents[2]
MAX_ZIP_BYTES = 15 * 1024 * 1024
RUNTIME = "python3.13"
BYTECODE_TAG = "cpython-313"
REGION = "us-east-1"
# Values for the template's parameters when it is transformed (SAM needs them for CodeUri).
SAMPLE_PARAMETERS = {"CodeBucket": "code-bucket", "CodeKey": "supervisor-coaching/deployment.zip"}

# cfn-lint checks resource types and properties per Region; these are commercial Regions where the
# product can run (Chime SDK meetings, API Gateway WebSockets, DynamoDB PITR).
LINT_REGIONS = [
    "us-east-1",
    "us-east-2",
    "us-west-1",
    "us-west-2",
    "ca-central-1",
    "eu-west-1",
    "eu-west-2",
    "eu-central-1",
    "eu-north-1",
    "ap-southeast-1",
    "ap-southeast-2",
    "ap-northeast-1",
    "ap-south-1",
    "sa-east-1",
]

# Copied into the scratch project: everything but VCS, tool installs, caches and build output, so
# the "nothing but the app in the zip" checks mean something.
COPY_IGNORE = shutil.ignore_patterns(
    ".git",
    ".venv",
    "venv",
    ".ddblocal",
    "node_modules",
    "dist",
    "deployments",
    "__pycache__",
    ".mypy_cache",
    ".ruff_cache",
    ".pytest_cache",
    ".hypothesis",
    ".import_linter_cache",
    ".test-reports",
    "*.pyc",
)

# Settings read from the environment that a deployed stack must not set: local-stack endpoints and
# literal secrets (in AWS only parameter *names* are configured), and what Lambda itself provides.
NOT_FROM_TEMPLATE = {
    "DYNAMODB_ENDPOINT",
    "WEBSOCKET_ENDPOINT",
    "COACHING_JWT_SECRET",
    "COACHING_WEBHOOK_SECRET",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
}

# Zip entries (first path component) that are never part of the Lambda: project directories
# outside the app, and development-only distributions (requirements-dev.txt).
NOT_IN_ZIP = {
    "tests",
    "devstack",
    "infra",
    "bench",
    "docs",
    "scripts",
    "seeds",
    ".chalice",
    "dist",
    "moto",
    "pytest",
    "_pytest",
    "pluggy",
    "hypothesis",
    "mypy",
    "ruff",
    "cfnlint",
    "websockets",
    "aiohttp",
    "importlinter",
    "boto3",
    "botocore",
    "s3transfer",
    "flask",
    "werkzeug",
    "mypy_boto3_dynamodb",
    "boto3_stubs",
    "botocore_stubs",
    "yaml",
    "xdist",
    "pydantic",
    "pydantic_core",
    "samtranslator",
    "policy_sentry",
}


# ------------------------------------------------------------------------------------ the build


@dataclass
class Build:
    returncode: int
    output: str
    template: dict[str, Any] = field(default_factory=dict)
    zip_path: Path | None = None
    lint: list[dict[str, Any]] = field(default_factory=list)
    transformed: dict[str, Any] = field(default_factory=dict)
    transform_error: str = ""
    template_text: str = ""

    @property
    def resources(self) -> dict[str, Any]:
        resources: dict[str, Any] = self.template.get("Resources", {})
        return resources

    def of_type(self, cfn_type: str) -> dict[str, Any]:
        return {k: v for k, v in self.resources.items() if v.get("Type") == cfn_type}


@contextlib.contextmanager
def _exclusive(lock_path: Path) -> Iterator[None]:
    """One xdist worker builds while the others wait, then reuse its result."""
    if fcntl is None:
        yield
        return
    with lock_path.open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _shared_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    run_id = os.environ.get("PYTEST_XDIST_TESTRUNUID")
    base = tmp_path_factory.getbasetemp()
    shared = base.parent / f"infra-package-{run_id}" if run_id else base / "infra-package"
    shared.mkdir(parents=True, exist_ok=True)
    return shared


def sam_transform(template: dict[str, Any]) -> dict[str, Any]:
    """What CloudFormation makes of the template's SAM transform (aws-sam-translator, offline).

    The managed-policy loader is only asked for SAM policy templates naming AWS managed
    policies by name; the template names none (its policies are written out), so it gets none.
    """
    os.environ.setdefault("AWS_DEFAULT_REGION", REGION)  # the translator reads the Region from botocore
    from samtranslator.translator.transform import transform

    class NoManagedPolicies:
        def load(self) -> dict[str, str]:
            return {}

    transformed: dict[str, Any] = transform(template, dict(SAMPLE_PARAMETERS), NoManagedPolicies())
    return transformed


def _build(shared: Path) -> None:
    project, out = shared / "project", shared / "project" / "dist"
    shutil.copytree(ROOT, project, ignore=COPY_IGNORE, symlinks=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    proc = subprocess.run(
        [sys.executable, "infra/package.py", "--stage", "prod", "--out", str(out)],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    result: dict[str, Any] = {"returncode": proc.returncode, "output": proc.stdout + proc.stderr}
    template = out / "sam.yaml"
    if template.exists():
        linted = [str(template)]
        try:
            transformed = sam_transform(yaml.safe_load(template.read_text()))
            (out / "transformed.json").write_text(json.dumps(transformed, indent=1))
            linted.append(str(out / "transformed.json"))
        except Exception as exc:  # reported by the test that needs it
            result["transform_error"] = f"{type(exc).__name__}: {exc}"
        cfn_lint = Path(sys.executable).with_name("cfn-lint")
        lint = subprocess.run(
            [str(cfn_lint) if cfn_lint.exists() else "cfn-lint", "--format", "json", "--regions", *LINT_REGIONS, "--", *linted],
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        try:
            result["lint"] = json.loads(lint.stdout or "[]")
        except json.JSONDecodeError:
            result["lint"] = [{"Level": "Error", "Message": f"cfn-lint did not run: {lint.stdout}{lint.stderr}"}]
    (shared / "result.json").write_text(json.dumps(result))


@pytest.fixture(scope="session")
def build(tmp_path_factory: pytest.TempPathFactory) -> Build:
    shared = _shared_dir(tmp_path_factory)
    with _exclusive(shared / ".lock"):
        if not (shared / "result.json").exists():
            _build(shared)
    result = json.loads((shared / "result.json").read_text())
    out = shared / "project" / "dist"
    built = Build(returncode=result["returncode"], output=result["output"], lint=result.get("lint", []))
    built.transform_error = result.get("transform_error", "")
    if (out / "sam.yaml").exists():
        built.template_text = (out / "sam.yaml").read_text()
        built.template = yaml.safe_load(built.template_text)
    if (out / "transformed.json").exists():
        built.transformed = json.loads((out / "transformed.json").read_text())
    if (out / "deployment.zip").exists():
        built.zip_path = out / "deployment.zip"
    return built


@pytest.fixture(scope="session")
def packaged(build: Build) -> Build:
    """The build, for tests that need its output: fails them with the packaging log otherwise."""
    if not build.template or build.zip_path is None:
        pytest.fail(f"make package produced no template/zip (exit {build.returncode}):\n{build.output}")
    return build


@pytest.fixture(scope="session")
def zip_names(packaged: Build) -> list[str]:
    assert packaged.zip_path is not None
    with zipfile.ZipFile(packaged.zip_path) as zf:
        return zf.namelist()


# -------------------------------------------------------------------------- template helpers


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _ref(name: str) -> dict[str, str]:
    return {"Ref": name}


def _get_att_arn(name: str) -> dict[str, list[str]]:
    return {"Fn::GetAtt": [name, "Arn"]}


def _statements(build: Build) -> list[tuple[str, dict[str, Any]]]:
    """Every identity-policy statement of the template, both branches of any Fn::If."""
    found: list[tuple[str, dict[str, Any]]] = []

    def add(owner: str, document: dict[str, Any]) -> None:
        for statement in _as_list(document.get("Statement", [])):
            branches = statement["Fn::If"][1:] if isinstance(statement, dict) and "Fn::If" in statement else [statement]
            found.extend((owner, b) for b in branches if isinstance(b, dict) and "Effect" in b)

    for name, resource in build.resources.items():
        props = resource.get("Properties", {})
        if resource.get("Type") == "AWS::IAM::Role":
            for policy in props.get("Policies", []):
                add(name, policy["PolicyDocument"])
        elif resource.get("Type") in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"):
            add(name, props["PolicyDocument"])
        elif resource.get("Type") == "AWS::Serverless::Function":
            for policy in _as_list(props.get("Policies", [])):
                if isinstance(policy, dict) and "Statement" in policy:
                    add(name, policy)
    return found


def _allowed(build: Build) -> list[tuple[str, dict[str, Any]]]:
    return [(owner, s) for owner, s in _statements(build) if s["Effect"] == "Allow"]


def _table_id(key: str) -> str:
    return f"{key.capitalize()}Table"  # "directory" -> "DirectoryTable"


def _index_names(model: type[Any]) -> set[str]:
    schema: dict[str, Any] = dict(model._get_schema())
    return {i["index_name"] for i in schema["global_secondary_indexes"] + schema["local_secondary_indexes"]}


def _functions(build: Build) -> dict[str, Any]:
    return build.of_type("AWS::Serverless::Function")


def _environment(build: Build, function: str) -> dict[str, Any]:
    """A function's environment as SAM builds it: Globals, then the function's own variables."""
    env = dict(build.template.get("Globals", {}).get("Function", {}).get("Environment", {}).get("Variables", {}))
    env.update(_functions(build)[function]["Properties"].get("Environment", {}).get("Variables", {}))
    return env


def _names_referenced(node: Any) -> set[str]:
    """Logical ids a template fragment depends on (Ref, Fn::GetAtt, ${...} in Fn::Sub)."""
    names: set[str] = set()
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "Ref" and isinstance(value, str):
                names.add(value)
            elif key == "Fn::GetAtt":
                names.add(value[0] if isinstance(value, list) else value.split(".")[0])
            elif key == "Fn::Sub":
                text = value if isinstance(value, str) else value[0]
                names.update(m.split(".")[0] for m in re.findall(r"\$\{([^}!][^}]*)\}", text))
                if isinstance(value, list):
                    names |= _names_referenced(value[1])
            else:
                names |= _names_referenced(value)
    elif isinstance(node, list):
        for item in node:
            names |= _names_referenced(item)
    return names


def _settings_env_names() -> set[str]:
    """Every environment variable chalicelib.settings.load() reads."""
    seen: set[str] = set()

    class Recorder(dict[str, str]):
        def get(self, key: str, default: Any = None) -> Any:
            seen.add(key)
            return default

    settings_module.load(Recorder())
    return seen


def _adapter_calls(path: str, pattern: str) -> set[str]:
    return set(re.findall(pattern, (ROOT / path).read_text()))


def _camel(snake: str) -> str:
    return "".join(part.capitalize() for part in snake.split("_"))


def load_template(path: Path) -> dict[str, Any]:
    """A CloudFormation YAML template with its short-form intrinsics as JSON's (``!Sub`` -> ``Fn::Sub``)."""

    class Loader(yaml.SafeLoader):
        pass

    def intrinsic(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> dict[str, Any]:
        key = suffix if suffix in ("Ref", "Condition") else f"Fn::{suffix}"
        if isinstance(node, yaml.ScalarNode):
            return {key: loader.construct_scalar(node)}
        if isinstance(node, yaml.SequenceNode):
            return {key: loader.construct_sequence(node, deep=True)}
        return {key: loader.construct_mapping(node, deep=True)}

    Loader.add_multi_constructor("!", intrinsic)
    loaded: dict[str, Any] = yaml.load(path.read_text(), Loader=Loader)
    return loaded


def _merge_template() -> dict[str, Any]:
    return load_template(ROOT / "infra" / "merge-template.yaml")


@pytest.fixture(scope="session")
def transformed(packaged: Build) -> Build:
    """The build whose template AWS's SAM translator expanded (fails the test otherwise)."""
    if not packaged.transformed:
        pytest.fail(f"aws-sam-translator refused the template: {packaged.transform_error}")
    return packaged
