"""Small helpers shared by the benchmarks: percentiles, the machine, result files, arguments."""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0-100) by the nearest-rank method: an observed value, never interpolated."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


def summary_ms(seconds: Sequence[float]) -> dict[str, Any]:
    """p50 / p90 / p99 / max in milliseconds of latencies given in seconds."""
    ms = [s * 1000 for s in seconds]
    return {
        "n": len(ms),
        "p50_ms": round(percentile(ms, 50), 2),
        "p90_ms": round(percentile(ms, 90), 2),
        "p99_ms": round(percentile(ms, 99), 2),
        "max_ms": round(max(ms), 2) if ms else math.nan,
    }


def machine() -> dict[str, Any]:
    """What the numbers were measured on."""
    info: dict[str, Any] = {
        "cpus": os.cpu_count(),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "machine": platform.machine(),
    }
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                info["cpu_model"] = line.split(":", 1)[1].strip()
                break
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                info["memory_gb"] = round(int(line.split()[1]) / 1024 / 1024, 1)
                break
    except OSError:
        pass
    return info


def cli(description: str, *, stores: bool = False) -> argparse.Namespace:
    """``--out FILE`` (JSON result; stdout when absent), ``--quick`` (a smaller, faster run) and, for
    the stack benchmarks, ``--store moto|ddblocal``."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--out", type=Path, help="write the result as JSON here")
    parser.add_argument("--quick", action="store_true", help="fewer samples / smaller tenant, for a smoke run")
    if stores:
        parser.add_argument(
            "--store",
            choices=("moto", "ddblocal"),
            default="ddblocal",
            help="the stack's store: its embedded moto server, or DynamoDB Local via DYNAMODB_ENDPOINT",
        )
        parser.add_argument(
            "--trace", action="store_true", help="run the stack under bench.stack_trace: per-SDK-call timings and GC pauses"
        )
    return parser.parse_args()


def emit(result: dict[str, Any], out: Path | None) -> None:
    text = json.dumps(result, indent=2, sort_keys=False)
    if out is None:
        print(text)
    else:
        out.write_text(text + "\n")


def bench_env() -> dict[str, str]:
    """The environment for the stack and helpers: no real AWS identity can leak into a benchmark."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(
        AWS_ACCESS_KEY_ID="bench",
        AWS_SECRET_ACCESS_KEY="bench",  # a dummy credential for moto
        AWS_DEFAULT_REGION="us-east-1",
        AWS_REGION="us-east-1",
        AWS_CONFIG_FILE=os.devnull,
        AWS_SHARED_CREDENTIALS_FILE=os.devnull,
        AWS_EC2_METADATA_DISABLED="true",
        PYTHONPATH=str(ROOT),
    )
    env.pop("DYNAMODB_ENDPOINT", None)
    return env
