"""The Lambda deployment zip: built by ``infra/package.py`` into a temporary folder, then measured.

With ``BENCH_ZIP=<path>`` the built zip is also copied there (``bench.cold_start`` uses it).
``infra/package.py`` runs ``chalice package`` offline and removes what the Lambda Python runtime
already provides (boto3, botocore and their dependencies). Building needs the wheels of
requirements.txt from PyPI or pip's cache; when the build fails, an existing ``dist/deployment.zip``
is measured instead, and when there is none the figure is skipped with the reason.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path
from typing import Any

from bench.common import ROOT, cli, emit

MB = 1024 * 1024
BUILD_TIMEOUT = 300


def measure(path: Path, source: str, build_s: float | None) -> dict[str, Any]:
    with zipfile.ZipFile(path) as zf:
        infos = zf.infolist()
    return {
        "zip_mb": round(path.stat().st_size / MB, 2),
        "zip_detail": {
            "source": source,
            "bytes": path.stat().st_size,
            "unzipped_mb": round(sum(i.file_size for i in infos) / MB, 2),
            "files": len(infos),
            "build_s": build_s,
        },
    }


def run(quick: bool) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="bench-zip-") as tmp:
        out = Path(tmp) / "dist"
        started = time.perf_counter()
        try:
            done = subprocess.run(
                [sys.executable, "infra/package.py", "--stage", "prod", "--out", str(out)],
                cwd=ROOT,
                capture_output=True,
                text=True,
                timeout=BUILD_TIMEOUT,
                check=False,
            )
            failure = None if done.returncode == 0 else (done.stdout + done.stderr)[-1500:]
        except subprocess.TimeoutExpired:
            failure = f"infra/package.py did not finish within {BUILD_TIMEOUT}s"
        built = out / "deployment.zip"
        if failure is None and built.exists():
            keep = os.environ.get("BENCH_ZIP")
            if keep:  # bench.cold_start unpacks it for the Lambda layouts
                shutil.copyfile(built, keep)
            return measure(built, "infra/package.py --stage prod (built by the bench)", round(time.perf_counter() - started, 1))
    existing = ROOT / "dist" / "deployment.zip"
    if existing.exists():
        result = measure(existing, "dist/deployment.zip (existing; the bench's build failed)", None)
        if os.environ.get("BENCH_ZIP"):
            shutil.copyfile(existing, os.environ["BENCH_ZIP"])
        result["zip_detail"]["build_failure"] = failure
        return result
    return {"zip_mb": None, "zip_detail": {"skipped": f"could not build the zip: {failure}"}}


def main() -> None:
    args = cli(__doc__.splitlines()[0])
    emit(run(args.quick), args.out)


if __name__ == "__main__":
    main()
