"""3. Cold start: importing ``app`` in a fresh interpreter vs a bare Chalice app that imports boto3.

Each sample is a new ``python`` process that times one import with ``time.perf_counter`` around it
and prints the result (interpreter start-up is in neither figure):

* app  - ``import app``
* bare - ``import bare_app``, a file holding only ``import boto3``, ``from chalice import Chalice``
         and ``app = Chalice(app_name="bare")``

Two unmeasured runs of each come first, then ``N`` = 15 measured pairs alternating which goes
first; each figure is the median. Three layouts:

* ``cold_start`` (the target) - the project's virtualenv, working directory the repository root
  (app) or a temporary folder (bare); bytecode caches warm, as on a developer's machine (the
  unmeasured runs write them: a ``PYTHONDONTWRITEBYTECODE`` inherited from the shell is dropped).
* ``cold_start_lambda`` - what Lambda runs: the deployment zip (``bench.zip_size`` builds it) unpacked
  into a task folder, the interpreter started with ``-S`` and only the task folder plus the packages
  the Lambda Python runtime provides (boto3, botocore and their dependencies, with their bytecode)
  on ``sys.path``, and ``PYTHONDONTWRITEBYTECODE=1`` because ``/var/task`` is read-only: the zip
  holds no ``.pyc`` (infra/package.py strips them), so every cold start compiles the app and its
  vendored packages from source. The bare app gets the same treatment (its own copy of Chalice's
  runtime module from the zip).
* ``cold_start_lambda_pyc`` - the same, with both task folders precompiled
  (``compileall --invalidation-mode unchecked-hash``): what shipping bytecode in the zip would give.

The app run also reports whether any Chime SDK module was imported, whether PyJWT or pydantic was
(neither should be: tokens are verified with a lazy import, frames are msgspec Structs) and whether
importing created a botocore client (rule Q2 in docs/product.md: importing app loads no Chime/pipelines client and no
unused SDK), and, from a separate probe run in the same rounds, where the time goes layer by layer
(``app_breakdown_ms``: chalice, pynamodb + botocore, msgspec, chalicelib's modules).
"""

from __future__ import annotations

import argparse
import compileall
import importlib.util
import json
import os
import py_compile
import shutil
import statistics
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path
from typing import Any

from bench.common import ROOT, bench_env, emit

RUNS = 15
WARMUP = 2
# What the Lambda Python runtime provides next to the function's code (infra/package.py: RUNTIME_PROVIDED).
RUNTIME_PACKAGES = ("boto3", "botocore", "s3transfer", "jmespath", "dateutil", "urllib3", "six")

BARE_APP = """import boto3
from chalice import Chalice

app = Chalice(app_name="bare")
"""

# The timed probe: nothing but the clock around the import.
PROBE = """
import json, sys, time
sys.path[:0] = {paths!r}
before = set(sys.modules)
started = time.perf_counter()
import {module}
elapsed = time.perf_counter() - started
loaded = sorted(set(sys.modules) - before)
print(json.dumps({{"seconds": elapsed, "modules": len(loaded), "boto3": "boto3" in sys.modules,
                  "jwt": "jwt" in sys.modules, "pydantic": "pydantic" in sys.modules,
                  "chime": [m for m in loaded if "chime" in m.lower() or "mediapipeline" in m.lower()]}}))
"""

# Run once, untimed: does importing create any botocore client (e.g. a Chime or DynamoDB client)?
CLIENTS_PROBE = """
import json, sys
sys.path[:0] = {paths!r}
import botocore.session
created = []
_create = botocore.session.Session.create_client
def _counting(self, *a, **k):
    created.append(a[0] if a else k.get("service_name"))
    return _create(self, *a, **k)
botocore.session.Session.create_client = _counting
import {module}
print(json.dumps({{"clients": created}}))
"""


# Run a few times, untimed by the target: where the app's import time goes, one import after another.
BREAKDOWN_PROBE = """
import json, sys, time
sys.path[:0] = {paths!r}
steps = {{}}
for name in ("chalice.app", "pynamodb.models", "msgspec", "chalicelib.bootstrap", "chalicelib.entrypoints.ws",
             "chalicelib.entrypoints.rest", "{module}"):
    started = time.perf_counter()
    __import__(name)
    steps[name] = time.perf_counter() - started
print(json.dumps(steps))
"""
BREAKDOWN_LABELS = {
    "chalice.app": "chalice (the bare app pays this too)",
    "pynamodb.models": "pynamodb + botocore (the bare app pays botocore via boto3)",
    "msgspec": "msgspec",
    "chalicelib.bootstrap": "chalicelib.bootstrap (services, adapters, DynamoDB models, the domain modules and ports)",
    "chalicelib.entrypoints.ws": "chalicelib.entrypoints.ws (frame Structs, validation, the router)",
    "chalicelib.entrypoints.rest": "chalicelib.entrypoints.rest (REST body Structs)",
    "app": "app.py (routes)",
}


def breakdown(samples: list[dict[str, float]]) -> dict[str, float]:
    """Median incremental import time (ms) of each layer, from BREAKDOWN_PROBE runs."""
    layers = {
        BREAKDOWN_LABELS.get(name, name): round(statistics.median(s[name] for s in samples) * 1000, 1) for name in samples[0]
    }
    layers["sum of the medians"] = round(sum(layers.values()), 1)
    return layers


class Probe:
    """How to import one module in a fresh interpreter."""

    def __init__(self, module: str, cwd: Path, paths: list[str], *, isolated: bool = False) -> None:
        self.module = module
        self.cwd = cwd
        self.paths = paths
        self.isolated = isolated  # -S and no bytecode writing: the Lambda layout

    def run(self, template: str = PROBE) -> dict[str, Any]:
        env = bench_env()
        env.pop("PYTHONPATH", None)
        cmd = [sys.executable]
        if self.isolated:
            cmd.append("-S")
            env["PYTHONDONTWRITEBYTECODE"] = "1"
        else:
            # Warm caches as documented: a PYTHONDONTWRITEBYTECODE inherited from the caller's shell would
            # make the app (but not the bare app, whose packages are precompiled) compile from source.
            env.pop("PYTHONDONTWRITEBYTECODE", None)
        cmd += ["-c", template.format(paths=self.paths, module=self.module)]
        done = subprocess.run(cmd, cwd=self.cwd, env=env, capture_output=True, text=True, timeout=120, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"import {self.module} failed:\n{done.stderr[-2000:]}")
        result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
        return result


def compare(app: Probe, bare: Probe, runs: int, *, layers: bool = False) -> dict[str, Any]:
    """Median import times of ``app`` and ``bare``; with ``layers``, each round also runs the (untimed
    for the figure) layer-by-layer probe, so the breakdown is taken under the same conditions."""
    for _ in range(WARMUP):
        app.run()
        bare.run()
    samples: dict[str, list[dict[str, Any]]] = {"app": [], "bare": []}
    layer_samples: list[dict[str, float]] = []
    for i in range(runs):
        for name, probe in (("app", app), ("bare", bare)) if i % 2 == 0 else (("bare", bare), ("app", app)):
            samples[name].append(probe.run())
        if layers:
            layer_samples.append(app.run(BREAKDOWN_PROBE))
    app_s = statistics.median(r["seconds"] for r in samples["app"])
    bare_s = statistics.median(r["seconds"] for r in samples["bare"])
    last = samples["app"][-1]
    return {
        "app_s": round(app_s, 4),
        "bare_s": round(bare_s, 4),
        "ratio": round(app_s / bare_s, 2),
        "runs": runs,
        "app_all_s": [round(r["seconds"], 4) for r in samples["app"]],
        "bare_all_s": [round(r["seconds"], 4) for r in samples["bare"]],
        "app_modules_imported": last["modules"],
        "bare_modules_imported": samples["bare"][-1]["modules"],
        "app_imports_boto3": last["boto3"],
        "app_imports_jwt": last["jwt"],
        "app_imports_pydantic": last["pydantic"],
        "app_chime_modules": last["chime"],
        **({"app_breakdown_ms": breakdown(layer_samples)} if layer_samples else {}),
    }


def _runtime_folder(target: Path) -> None:
    """Links to the runtime-provided packages of this virtualenv (with their bytecode), like /var/runtime."""
    target.mkdir()
    for name in RUNTIME_PACKAGES:
        spec = importlib.util.find_spec(name)
        if spec is None or spec.origin is None:
            raise RuntimeError(f"{name} is not installed")
        source = Path(spec.origin).parent if spec.submodule_search_locations else Path(spec.origin)
        (target / source.name).symlink_to(source)


def lambda_layouts(zip_path: Path, tmp: Path, runs: int) -> dict[str, Any]:
    task, bare, runtime = tmp / "task", tmp / "bare-task", tmp / "runtime"
    with zipfile.ZipFile(zip_path) as zf:
        zf.extractall(task)
    bare.mkdir()
    shutil.copytree(task / "chalice", bare / "chalice")
    (bare / "bare_app.py").write_text(BARE_APP)
    _runtime_folder(runtime)
    app_probe = Probe("app", task, [str(task), str(runtime)], isolated=True)
    bare_probe = Probe("bare_app", bare, [str(bare), str(runtime)], isolated=True)
    if list(task.rglob("*.pyc")):
        raise RuntimeError("the deployment zip holds bytecode; the as-packaged layout would not compile from source")
    result = {"cold_start_lambda": compare(app_probe, bare_probe, runs)}
    for folder in (task, bare):
        if not compileall.compile_dir(
            str(folder), quiet=1, workers=1, invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH
        ):
            raise RuntimeError(f"could not compile {folder}")
    result["cold_start_lambda_pyc"] = compare(app_probe, bare_probe, runs, layers=True)
    return result


def run(quick: bool, zip_path: Path | None) -> dict[str, Any]:
    runs = 5 if quick else RUNS
    with tempfile.TemporaryDirectory(prefix="bench-cold-") as tmp:
        folder = Path(tmp)
        bare_dir = folder / "bare"
        bare_dir.mkdir()
        (bare_dir / "bare_app.py").write_text(BARE_APP)
        app = Probe("app", ROOT, [str(ROOT)])
        venv = compare(app, Probe("bare_app", bare_dir, [str(bare_dir)]), runs, layers=True)
        venv["app_clients_created_at_import"] = app.run(CLIENTS_PROBE)["clients"]
        result: dict[str, Any] = {
            "cold_start": {k: venv[k] for k in ("app_s", "bare_s", "ratio")},
            "cold_start_detail": {
                "layout": "project virtualenv, warm bytecode caches",
                **{k: v for k, v in venv.items() if k not in ("app_s", "bare_s", "ratio")},
            },
        }
        if zip_path is not None and zip_path.exists():
            try:
                result.update(lambda_layouts(zip_path, folder, runs))
            except Exception as exc:  # reported, the main figure stands
                result["cold_start_lambda"] = {"skipped": f"{type(exc).__name__}: {str(exc)[:500]}"}
        else:
            result["cold_start_lambda"] = {"skipped": "no deployment zip (run bench.zip_size with --keep)"}
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument(
        "--zip",
        type=Path,
        default=Path(os.environ.get("BENCH_ZIP", "")) if os.environ.get("BENCH_ZIP") else None,
        help="the deployment zip for the Lambda layouts (default: $BENCH_ZIP)",
    )
    args = parser.parse_args()
    emit(run(args.quick, args.zip), args.out)


if __name__ == "__main__":
    main()
