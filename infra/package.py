"""Build what a user deploys: the CloudFormation (SAM) template and the Lambda zip, offline.

``chalice package`` does most of the work: it imports ``app.py``, builds the zip from ``app.py``,
``chalicelib/``, ``vendor/`` and the wheels of ``requirements.txt``, and merges
``infra/merge-template.yaml`` into the generated template. Two things it cannot do, done here:

* Leave out what the Lambda Python runtime already provides. PynamoDB depends on botocore, so
  Chalice vendors botocore and its dependencies (about 20 MB unzipped) although every Lambda
  Python runtime ships boto3 and botocore. Chalice has no exclusion setting (no ``.chaliceignore``),
  so they are removed from the zip afterwards.
* Compile the bytecode Lambda cannot write itself (its code folder is read-only). Chalice takes
  the runtime (and the ABI of the wheels it downloads) from the Python that runs it, so this script
  runs on ``LAMBDA_RUNTIME``'s Python (the project's .venv) and refuses any other: the ``.pyc``
  files, the native wheels and the ``Runtime`` of every function then agree.
* Write a template CloudFormation accepts: Chalice's YAML shares one ``{'Ref': 'WebsocketAPI'}``
  mapping between ten resources, which ``yaml.safe_dump`` writes as an anchor and aliases, and
  CloudFormation refuses YAML aliases. The template is written again without them. The WebSocket
  API's deployment gets a logical id that changes with its routes, integrations and authorizer,
  so CloudFormation creates a new deployment (and the stage points at it) when any of them change.
* Check the result: the zip stays under the size budget and holds nothing but the application
  and its runtime dependencies (no tests, local stack, infra, docs, dev tools).

Needs no AWS account or credentials: nothing here or in ``chalice package`` calls AWS. It does
need PyPI (or a pip cache) for the wheels of requirements.txt, and only the packages of
requirements-package.txt (``make package`` installs nothing else).

Usage: python infra/package.py [--stage prod] [--out dist]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import yaml

PROJECT = Path(__file__).resolve().parent.parent
MERGE_TEMPLATE = Path("infra") / "merge-template.yaml"
TEMPLATE_NAME = "sam.yaml"  # Chalice writes YAML because the merge template is YAML
ZIP_NAME = "deployment.zip"
MAX_ZIP_BYTES = 15 * 1024 * 1024
MAX_CONSOLE_TEMPLATE_BYTES = 1024 * 1024  # CloudFormation's limit for a template read from S3
MAX_INLINE_TEMPLATE_BYTES = 51_200  # ... and for one passed inline (CLI without --s3-bucket)

# The Lambda runtime of every function. python3.14 is the newest one Chalice 1.34 knows and AWS
# has released, but nothing here can compile its bytecode or load its wheels to test the zip;
# python3.13 has the same end of support (AWS's runtime lifecycle, which tests/infra reads from
# cfn-lint's data) and is verified end to end by the infra tests.
LAMBDA_RUNTIME = "python3.13"
RUNTIME_VERSION = LAMBDA_RUNTIME.removeprefix("python")  # "3.13"
BYTECODE_TAG = "cpython-" + RUNTIME_VERSION.replace(".", "")  # "cpython-313"
LAMBDA_TASK_ROOT = "/var/task"  # where Lambda unpacks the zip: the file names tracebacks show

# Top-level zip entries provided by the Lambda Python runtime (boto3, botocore and the packages
# they depend on). Matched case-insensitively against the first path component, with or without
# a ``-<version>.dist-info`` suffix.
RUNTIME_PROVIDED = ("boto3", "botocore", "s3transfer", "jmespath", "dateutil", "python_dateutil", "urllib3", "six")

# First path components that must never be in the zip: project directories that are not part of
# the application, and development-only distributions.
FORBIDDEN_TOP_LEVEL = (
    "tests",
    "devstack",
    "infra",
    "bench",
    "docs",
    "scripts",
    "seeds",
    "dist",
    ".chalice",
    ".git",
    "node_modules",
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
    "mypy_boto3_dynamodb",
    "boto3_stubs",
    "botocore_stubs",
    "flask",
    "werkzeug",
    "samtranslator",
    "policy_sentry",
    "pydantic",
    "pydantic_core",
)

# Resources whose content decides what the WebSocket API's deployment holds.
WEBSOCKET_DEPLOYMENT = "WebsocketAPIDeployment"
WEBSOCKET_DEPLOYED_TYPES = (
    "AWS::ApiGatewayV2::Route",
    "AWS::ApiGatewayV2::Integration",
    "AWS::ApiGatewayV2::Authorizer",
    "AWS::ApiGatewayV2::RouteResponse",
    "AWS::ApiGatewayV2::IntegrationResponse",
    "AWS::ApiGatewayV2::Model",
)


def _distribution(top: str) -> str:
    """``botocore-1.44.5.dist-info`` -> ``botocore``; ``six.py`` -> ``six``; ``app.py`` -> ``app``."""
    name = top.split("-", 1)[0] if top.endswith((".dist-info", ".data")) else top
    return name.removesuffix(".py").lower()


def is_runtime_provided(path: str) -> bool:
    return _distribution(path.split("/", 1)[0]) in RUNTIME_PROVIDED


CHALICE_RUNTIME = (
    "chalice/app.py",
    "chalice/__init__.py",
    f"chalice/__pycache__/app.{BYTECODE_TAG}.pyc",
    f"chalice/__pycache__/__init__.{BYTECODE_TAG}.pyc",
)


def problems_in_zip(names: list[str]) -> list[str]:
    """Entries that must not be deployed (empty list when the zip is clean)."""
    bad = []
    for name in names:
        top = name.split("/", 1)[0]
        dist = _distribution(top)
        if dist in FORBIDDEN_TOP_LEVEL or dist in RUNTIME_PROVIDED:
            bad.append(name)
        elif top == "chalice" and name not in CHALICE_RUNTIME:
            bad.append(name)  # only Chalice's runtime module belongs in Lambda, never its CLI
        elif name.endswith(".pyc") and f".{BYTECODE_TAG}.pyc" not in name:
            bad.append(name)  # bytecode of another Python than the runtime's
    return bad


# --------------------------------------------------------------------------------- the runtime


def runtime_python() -> str | None:
    """This interpreter when it is of the Lambda runtime's version (the project's .venv is), else None.

    The zip is built by the runtime's own Python: Chalice takes the functions' ``Runtime`` and the
    ABI of the wheels it vendors from the interpreter that runs it, and the bytecode in the zip is
    compiled by it, so all three agree with no patching of Chalice."""
    return sys.executable if f"{sys.version_info[0]}.{sys.version_info[1]}" == RUNTIME_VERSION else None


def chalice_command() -> list[str]:
    """The command line of Chalice's CLI on this interpreter; append Chalice's arguments."""
    return [sys.executable, "-c", "import sys; from chalice.cli import main; sys.exit(main())"]


# ------------------------------------------------------------------------------------- the zip


def slim_zip(path: Path, python: str | None) -> tuple[int, int]:
    """Rewrite ``path`` without runtime-provided packages and stale bytecode, adding bytecode for
    every module compiled by ``python`` (the runtime's version); return sizes before/after.

    Lambda's code folder is read-only, so Python cannot cache bytecode there: without it every cold
    start compiles the app and its dependencies again. The pyc files are hash-based and unchecked
    (PEP 552), so they are valid whatever timestamps the zip carries.
    """
    before = path.stat().st_size
    fd, tmp_name = tempfile.mkstemp(suffix=".zip", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        with tempfile.TemporaryDirectory() as work, zipfile.ZipFile(path) as src:
            root = Path(work)
            kept = []
            for info in src.infolist():
                name = info.filename
                if is_runtime_provided(name) or "/__pycache__/" in f"/{name}" or name.endswith(".pyc"):
                    continue
                kept.append(info)
                if name.endswith(".py"):
                    target = root / name
                    target.parent.mkdir(parents=True, exist_ok=True)
                    target.write_bytes(src.read(name))
            compiled = _compile(root, python) if python else {}
            with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as dst:
                for info in kept:
                    dst.writestr(info, src.read(info.filename), compress_type=zipfile.ZIP_DEFLATED, compresslevel=9)
                    pyc = compiled.get(info.filename)
                    if pyc is not None:
                        entry = zipfile.ZipInfo(pyc[0], date_time=info.date_time)
                        entry.external_attr = info.external_attr
                        dst.writestr(entry, pyc[1], compress_type=zipfile.ZIP_DEFLATED, compresslevel=9)
        tmp.chmod(0o644)  # mkstemp creates the file private; the zip is meant to be shared
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)
    return before, path.stat().st_size


def _compile(root: Path, python: str) -> dict[str, tuple[str, bytes]]:
    """Compile every module under ``root`` with ``python``: {source name: (pyc name, bytes)}.

    A module that does not compile (a test fixture of a dependency, say) simply gets no pyc."""
    subprocess.run(  # noqa: S603
        [
            python,
            "-m",
            "compileall",
            "-q",
            "-j",
            "0",
            "--invalidation-mode",
            "unchecked-hash",
            "-s",
            str(root),
            "-p",
            LAMBDA_TASK_ROOT,
            str(root),
        ],
        check=False,
        capture_output=True,
    )
    compiled = {}
    for pyc in root.rglob(f"*.{BYTECODE_TAG}.pyc"):
        source = pyc.parent.parent / (pyc.name.split(".", 1)[0] + ".py")
        if pyc.parent.name == "__pycache__" and source.exists():
            compiled[source.relative_to(root).as_posix()] = (pyc.relative_to(root).as_posix(), pyc.read_bytes())
    return compiled


# -------------------------------------------------------------------------------- the template


class _NoAliasDumper(yaml.SafeDumper):
    """YAML without anchors or aliases: CloudFormation refuses both."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def dump_template(template: dict[str, Any]) -> str:
    return yaml.dump(template, Dumper=_NoAliasDumper, sort_keys=False, allow_unicode=True, width=120)


def _rename(node: Any, old: str, new: str) -> Any:
    """``node`` with every Ref / GetAtt / DependsOn naming ``old`` naming ``new`` instead."""
    if isinstance(node, dict):
        out = {}
        for key, value in node.items():
            if key == "Ref" and value == old:
                out[key] = new
            elif key == "Fn::GetAtt" and isinstance(value, list) and value and value[0] == old:
                out[key] = [new, *value[1:]]
            elif key == "DependsOn":
                out[key] = new if value == old else [new if v == old else v for v in value] if isinstance(value, list) else value
            else:
                out[key] = _rename(value, old, new)
        return out
    if isinstance(node, list):
        return [_rename(v, old, new) for v in node]
    if isinstance(node, str) and "${" + old in node:
        return node.replace("${" + old + "}", "${" + new + "}").replace("${" + old + ".", "${" + new + ".")
    return node


def websocket_deployment_id(resources: dict[str, Any]) -> str:
    """``WebsocketAPIDeployment`` + a hash of everything the deployment publishes to the stage."""
    deployed = {
        name: resource for name, resource in sorted(resources.items()) if resource.get("Type") in WEBSOCKET_DEPLOYED_TYPES
    }
    digest = hashlib.sha256(json.dumps(deployed, sort_keys=True).encode()).hexdigest()[:10]
    return WEBSOCKET_DEPLOYMENT + digest


def finish_template(template: dict[str, Any]) -> dict[str, Any]:
    """Chalice's template as it is deployed: the WebSocket deployment under a content-hashed id."""
    resources = template.get("Resources", {})
    if WEBSOCKET_DEPLOYMENT not in resources:
        return template
    new_id = websocket_deployment_id(resources)
    finished: dict[str, Any] = _rename(template, WEBSOCKET_DEPLOYMENT, new_id)
    finished["Resources"] = {(new_id if k == WEBSOCKET_DEPLOYMENT else k): v for k, v in finished["Resources"].items()}
    return finished


# ------------------------------------------------------------------------------------- package


def offline_env() -> dict[str, str]:
    """The environment for ``chalice package``: no way to reach an AWS account, a Region set."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(
        AWS_ACCESS_KEY_ID="packaging-needs-no-credentials",
        AWS_SECRET_ACCESS_KEY="packaging-needs-no-credentials",  # noqa: S106 - a placeholder, not a secret
        AWS_DEFAULT_REGION=os.environ.get("AWS_DEFAULT_REGION", "us-east-1"),
        AWS_CONFIG_FILE=os.devnull,
        AWS_SHARED_CREDENTIALS_FILE=os.devnull,
        AWS_EC2_METADATA_DISABLED="true",
    )
    return env


def package(out: Path, stage: str = "prod", project: Path = PROJECT) -> tuple[Path, Path, str | None]:
    """Run ``chalice package`` with the merge template into ``out``; return (template, zip, the
    interpreter that compiled the bytecode or None)."""
    if runtime_python() is None:
        raise SystemExit(
            f"packaging needs Python {RUNTIME_VERSION}, the Lambda runtime's version (this is "
            f"{sys.version_info[0]}.{sys.version_info[1]}): run it from the project's .venv (make package)"
        )
    if out.exists():
        shutil.rmtree(out)
    # Chalice caches the vendored dependencies here, including a build where a wheel could not be
    # had: never reuse one, a zip without msgspec deploys and fails on the first request.
    shutil.rmtree(project / ".chalice" / "deployments", ignore_errors=True)
    cmd = [
        *chalice_command(),
        "package",
        "--pkg-format",
        "cloudformation",
        "--stage",
        stage,
        "--merge-template",
        str(MERGE_TEMPLATE),
        str(out),
    ]
    proc = subprocess.run(  # noqa: S603 - fixed arguments
        cmd,
        cwd=project,
        env=offline_env(),
        check=False,
        capture_output=True,
        text=True,
    )
    sys.stdout.write(proc.stdout + proc.stderr)
    if proc.returncode != 0:
        raise SystemExit(f"chalice package failed (exit {proc.returncode})")
    if "Could not install dependencies" in proc.stdout + proc.stderr:
        raise SystemExit(f"chalice package could not get every dependency's wheel for {LAMBDA_RUNTIME}")
    template, zip_path = out / TEMPLATE_NAME, out / ZIP_NAME
    for produced in (template, zip_path):
        if not produced.exists():
            raise SystemExit(f"chalice package did not write {produced}")
    # Chalice's YAML holds no tags (intrinsics are plain Fn:: mappings), so safe_load reads it all.
    template.write_text(dump_template(finish_template(yaml.safe_load(template.read_text()))))
    slim_zip(zip_path, sys.executable)
    return template, zip_path, sys.executable


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--stage", default="prod", help="Chalice stage of .chalice/config.json (default: prod)")
    parser.add_argument("--out", default="dist", type=Path, help="output directory (default: dist)")
    args = parser.parse_args(argv)
    out = args.out if args.out.is_absolute() else PROJECT / args.out

    template, zip_path, _python = package(out, args.stage)

    with zipfile.ZipFile(zip_path) as zf:
        bad = problems_in_zip(zf.namelist())
    size = zip_path.stat().st_size
    digest = hashlib.sha256(zip_path.read_bytes()).hexdigest()
    template_size = template.stat().st_size
    print(f"{template}: {template_size:,} bytes")
    print(f"{zip_path}: {size / 1024 / 1024:.1f} MB, sha256 {digest}, runtime {LAMBDA_RUNTIME}")
    print("publish it with: make publish BUCKET=<a bucket of yours in the stack's Region>")
    if template_size > MAX_INLINE_TEMPLATE_BYTES:
        print(
            f"note: the template is over {MAX_INLINE_TEMPLATE_BYTES:,} bytes; with the AWS CLI pass "
            "--s3-bucket to `aws cloudformation deploy` (the console and `make publish` use S3)"
        )
    failed = False
    if bad:
        print("ERROR: the zip holds files that must not be deployed:", *bad[:20], sep="\n  ")
        failed = True
    if size > MAX_ZIP_BYTES:
        print(f"ERROR: the zip is {size:,} bytes, over the {MAX_ZIP_BYTES:,}-byte budget")
        failed = True
    if template_size > MAX_CONSOLE_TEMPLATE_BYTES:
        print(f"ERROR: the template is over CloudFormation's {MAX_CONSOLE_TEMPLATE_BYTES:,}-byte limit")
        failed = True
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
