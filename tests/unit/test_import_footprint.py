"""Importing ``app`` (every Lambda function's cold start) loads only what every handler needs.

pydantic is gone (frames and bodies are msgspec Structs), PyJWT is imported by token verification
only, and no AWS SDK beyond botocore (through PynamoDB) is loaded: see docs/performance.md section 3.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
NOT_AT_IMPORT = {"pydantic", "pydantic_core", "jwt", "cryptography", "boto3", "aws_xray_sdk", "wrapt"}


def test_importing_app_loads_no_library_the_handlers_do_not_all_need() -> None:
    probe = (
        "import json, sys; import app; "
        "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules} | "
        "{m for m in sys.modules if 'chime' in m.lower() or 'mediapipeline' in m.lower()})))"
    )
    done = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=60, check=True)
    loaded = set(json.loads(done.stdout))
    assert "msgspec" in loaded and "pynamodb" in loaded
    assert not loaded & NOT_AT_IMPORT, sorted(loaded & NOT_AT_IMPORT)
    assert not [m for m in loaded if "chime" in m.lower() or "mediapipeline" in m.lower()]


def test_importing_app_loads_no_voice_rules() -> None:
    """Only voice actions and SIP media events need the voice rules: the ports name their records in
    signatures only (a TYPE_CHECKING import), so the other handlers' cold start does not pay for them."""
    probe = "import json, sys; import app; print(json.dumps(sorted(m for m in sys.modules if m.startswith('chalicelib'))))"
    done = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=60, check=True)
    loaded = set(json.loads(done.stdout))
    assert "chalicelib.services.ports" in loaded
    assert not loaded & {"chalicelib.domain.voice", "chalicelib.domain.pstn", "chalicelib.services.voice"}


@pytest.mark.parametrize("module", ["chalicelib.logs", "chalicelib.metrics"])
def test_the_structured_logs_and_metrics_cost_no_import_beyond_the_standard_library(module: str) -> None:
    probe = (
        f"import json, sys; before = set(sys.modules); import {module}; "
        "print(json.dumps(sorted({m.split('.')[0] for m in set(sys.modules) - before})))"
    )
    done = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=60, check=True)
    loaded = set(json.loads(done.stdout)) - {"chalicelib"}
    assert loaded <= sys.stdlib_module_names, sorted(loaded - sys.stdlib_module_names)
