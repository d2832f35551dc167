"""Build what a user deploys: the CloudFormation (SAM) template and the Lambda zip, offline.

``chalice package`` does most of the work: it imports ``app.py``, builds the zip from ``app.py``,
``chalicelib/``, ``vendor/`` and the wheels of ``requirements.txt``, and merges
``infra/merge-template.yaml`` into the generated template. Two things it cannot do, done here:

* Leave out what the Lambda Python runtime already provides. PynamoDB depends on botocore, so
  Chalice vendors botocore and its dependencies (about 20 MB unzipped) although every Lambda
  Python runtime ships boto3 and botocore. Chalice has no exclusion setting (no ``.chaliceignore``),
  so they are removed from the zip afterwards.
* Check the result: the zip stays under the size budget and holds nothing but the application
  and its runtime dependencies (no tests, local stack, infra, docs, dev tools).

Needs no AWS account or credentials: nothing here or in ``chalice package`` calls AWS. It does
need PyPI (or a pip cache) for the wheels of requirements.txt.

Usage: python infra/package.py [--stage prod] [--out dist]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

PROJECT = Path(__file__).resolve().parent.parent
MERGE_TEMPLATE = Path("infra") / "merge-template.yaml"
TEMPLATE_NAME = "sam.yaml"  # Chalice writes YAML because the merge template is YAML
ZIP_NAME = "deployment.zip"
MAX_ZIP_BYTES = 15 * 1024 * 1024
MAX_CONSOLE_TEMPLATE_BYTES = 1024 * 1024  # CloudFormation's limit for a template read from S3
MAX_INLINE_TEMPLATE_BYTES = 51_200  # ... and for one passed inline (CLI without --s3-bucket)

# Top-level zip entries provided by the Lambda Python runtime (boto3, botocore and the packages
# they depend on). Matched case-insensitively against the first path component, with or without
# a ``-<version>.dist-info`` suffix.
RUNTIME_PROVIDED = ("boto3", "botocore", "s3transfer", "jmespath", "dateutil", "python_dateutil",
                    "urllib3", "six")

# First path components that must never be in the zip: project directories that are not part of
# the application, and development-only distributions.
FORBIDDEN_TOP_LEVEL = ("tests", "devstack", "infra", "bench", "docs", "scripts", "seeds", "dist",
                       ".chalice", ".git", "node_modules", "moto", "pytest", "_pytest", "pluggy",
                       "hypothesis", "mypy", "ruff", "cfnlint", "websockets", "aiohttp", "importlinter",
                       "mypy_boto3_dynamodb", "boto3_stubs", "botocore_stubs", "flask", "werkzeug")


def _distribution(top: str) -> str:
    """``botocore-1.44.5.dist-info`` -> ``botocore``; ``six.py`` -> ``six``; ``app.py`` -> ``app``."""
    name = top.split("-", 1)[0] if top.endswith((".dist-info", ".data")) else top
    return name.removesuffix(".py").lower()


def is_runtime_provided(path: str) -> bool:
    return _distribution(path.split("/", 1)[0]) in RUNTIME_PROVIDED


CHALICE_RUNTIME = ("chalice/app.py", "chalice/__init__.py", "chalice/__pycache__/app.cpython-311.pyc",
                   "chalice/__pycache__/__init__.cpython-311.pyc")


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
    return bad


def bytecode_entry(name: str, source: bytes) -> tuple[str, bytes] | None:
    """``__pycache__/<module>.cpython-311.pyc`` for a source file, or None when it does not compile.

    Lambda's code folder is read-only, so Python cannot cache bytecode there: without it every cold
    start compiles the app and its dependencies again. The pyc is hash-based and unchecked (PEP 552),
    so it is valid whatever timestamps the zip carries; this interpreter must be the Lambda runtime's
    Python (3.11), which ``packaging`` checks below.
    """
    import importlib.util

    if sys.version_info[:2] != (3, 11):
        return None
    try:
        code = compile(source, name, "exec", dont_inherit=True, optimize=0)
    except (SyntaxError, ValueError):
        return None
    folder, _, filename = name.rpartition("/")
    pyc = f"{folder}/__pycache__/{filename[:-3]}.cpython-311.pyc" if folder else f"__pycache__/{filename[:-3]}.cpython-311.pyc"
    data = importlib._bootstrap_external._code_to_hash_pyc(  # type: ignore[attr-defined]
        code, importlib.util.source_hash(source), checked=False)
    return pyc, bytes(data)


def slim_zip(path: Path) -> tuple[int, int]:
    """Rewrite ``path`` without runtime-provided packages and stale bytecode, adding fresh bytecode
    for every module; return sizes before/after."""
    before = path.stat().st_size
    fd, tmp_name = tempfile.mkstemp(suffix=".zip", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        with zipfile.ZipFile(path) as src, zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as dst:
            for info in src.infolist():
                name = info.filename
                if is_runtime_provided(name) or "/__pycache__/" in f"/{name}" or name.endswith(".pyc"):
                    continue
                data = src.read(name)
                dst.writestr(info, data, compress_type=zipfile.ZIP_DEFLATED, compresslevel=9)
                compiled = bytecode_entry(name, data) if name.endswith(".py") else None
                if compiled:
                    pyc = zipfile.ZipInfo(compiled[0], date_time=info.date_time)
                    pyc.external_attr = info.external_attr
                    dst.writestr(pyc, compiled[1], compress_type=zipfile.ZIP_DEFLATED, compresslevel=9)
        tmp.chmod(0o644)  # mkstemp creates the file private; the zip is meant to be shared
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)
    return before, path.stat().st_size


def chalice_executable() -> str:
    """The ``chalice`` next to this interpreter (the project's virtualenv), else the one on PATH."""
    beside = Path(sys.executable).with_name("chalice")
    if beside.exists():
        return str(beside)
    found = shutil.which("chalice")
    if found is None:
        raise SystemExit("chalice is not installed: run `make install`")
    return found


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


def package(out: Path, stage: str = "prod", project: Path = PROJECT) -> tuple[Path, Path]:
    """Run ``chalice package`` with the merge template into ``out``; return (template, zip)."""
    if out.exists():
        shutil.rmtree(out)
    cmd = [chalice_executable(), "package", "--pkg-format", "cloudformation", "--stage", stage,
           "--merge-template", str(MERGE_TEMPLATE), str(out)]
    subprocess.run(cmd, cwd=project, env=offline_env(), check=True)  # noqa: S603 - fixed arguments
    template, zip_path = out / TEMPLATE_NAME, out / ZIP_NAME
    for produced in (template, zip_path):
        if not produced.exists():
            raise SystemExit(f"chalice package did not write {produced}")
    slim_zip(zip_path)
    return template, zip_path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--stage", default="prod", help="Chalice stage of .chalice/config.json (default: prod)")
    parser.add_argument("--out", default="dist", type=Path, help="output directory (default: dist)")
    args = parser.parse_args(argv)
    out = args.out if args.out.is_absolute() else PROJECT / args.out

    template, zip_path = package(out, args.stage)

    with zipfile.ZipFile(zip_path) as zf:
        bad = problems_in_zip(zf.namelist())
    size = zip_path.stat().st_size
    digest = hashlib.sha256(zip_path.read_bytes()).hexdigest()
    template_size = template.stat().st_size
    print(f"{template}: {template_size:,} bytes")
    print(f"{zip_path}: {size / 1024 / 1024:.1f} MB, sha256 {digest}")
    print(f"upload it as, for example, s3://<your bucket>/supervisor-coaching/{digest[:12]}/{ZIP_NAME}")
    if template_size > MAX_INLINE_TEMPLATE_BYTES:
        print(f"note: the template is over {MAX_INLINE_TEMPLATE_BYTES:,} bytes; with the AWS CLI pass "
              "--s3-bucket to `aws cloudformation deploy` (the console uploads it to S3 by itself)")
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
