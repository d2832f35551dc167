"""X-Ray behind the stack's EnableTracing (docs/operations.md, "Tracing"): the functions patch botocore (so
every boto3 and PynamoDB call is a subsegment) only when the stack turns tracing on; otherwise the X-Ray
SDK is never even imported, and ``import app`` never imports it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from chalicelib import settings

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]

PROBE = """
import json, sys
from chalicelib import bootstrap, settings
from chalicelib.entrypoints.wire import WIRE
from tests.support.fakes import MemoryStorage
configured = settings.load({{"COACHING_TRACING": {tracing!r}, "COACHING_JWT_SECRET": "x" * 32}})
bootstrap.build(configured, wire=WIRE, storage=MemoryStorage(configured))
import botocore.client
call = botocore.client.BaseClient._make_api_call
print(json.dumps({{"sdk": "aws_xray_sdk" in sys.modules, "patched": "FunctionWrapper" in type(call).__name__}}))
"""


def _built_with(tracing: str) -> dict[str, bool]:
    done = subprocess.run(
        [sys.executable, "-c", PROBE.format(tracing=tracing)], cwd=ROOT, capture_output=True, text=True, timeout=60, check=True
    )
    result: dict[str, bool] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def test_the_sdk_is_patched_when_the_stack_traces() -> None:
    assert _built_with("active") == {"sdk": True, "patched": True}


@pytest.mark.parametrize("value", ["off", "", "Active", "true"])
def test_nothing_is_imported_or_patched_otherwise(value: str) -> None:
    assert _built_with(value) == {"sdk": False, "patched": False}


def test_the_setting_reads_the_stacks_variable() -> None:
    assert settings.load({"COACHING_TRACING": "active"}).tracing is True
    assert settings.load({}).tracing is False
