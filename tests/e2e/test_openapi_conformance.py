"""docs/openapi.yaml stays true to the code (docs/product.md B9, W0.2): Schemathesis runs every operation
of the document against the local stack, with every check (server errors, status codes, content types,
response schemas, headers, bad data refused, good data accepted, authentication, methods) and every phase
(examples, coverage, fuzzing, then the stateful phase that chains operations through the document's
links), bounded by a fixed number of cases per operation and a fixed seed.

It signs in as an admin of a tenant of its own (tests/e2e/schemathesis_hooks.py), seeded with a team, a
template, a workitem and a webhook subscription (tests/e2e/schemathesis.toml names their ids). Inbound webhooks need a signature
it cannot make, so ``POST /webhooks/events`` is exercised unsigned only (401, as documented); signed ones
are fuzzed by tests/integration/test_fuzz.py.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from typing import TYPE_CHECKING

import pytest

from tests.e2e.conftest import REPO_ROOT
from tests.e2e.tenant import Tenant

if TYPE_CHECKING:
    from tests.e2e.conftest import Stack

pytestmark = pytest.mark.e2e

EXAMPLES_PER_OPERATION = 10
SEED = 20261207
UNSIGNED = "POST /webhooks/events"


def test_the_openapi_document_is_true_to_the_local_stack(stack: Stack, tmp_path: object) -> None:
    tenant = Tenant(stack)
    tenant.teams(("team-1", ("sup-1",), ("agent-1",)))
    tenant.template("tp-1", "Please join me on this one")
    tenant.assign("wi-1", "chat", "agent-1")
    subscription = {"url": "http://127.0.0.1:9/hook", "events": ["workitem.ended"], "enabled": True}
    tenant.admin("PUT", "/admin/webhook-subscriptions/sub-1", subscription)  # nothing it wants happens
    command = [
        sys.executable,
        "-m",
        "schemathesis.cli",
        "--config-file",
        str(REPO_ROOT / "tests" / "e2e" / "schemathesis.toml"),
        "run",
        str(REPO_ROOT / "docs" / "openapi.yaml"),
        "--url",
        stack.base_url,
        "--checks",
        "all",
        "--phases",
        "examples,coverage,fuzzing,stateful",
        "--max-examples",
        str(EXAMPLES_PER_OPERATION),
        "--seed",
        str(SEED),
        "--workers",
        "2",
        "--no-color",
        "--output-truncate",
        "false",
    ]
    env = {
        **os.environ,
        "SCHEMATHESIS_HOOKS": "tests.e2e.schemathesis_hooks",
        "ST_JWT_SECRET": stack.jwt_secret,
        "ST_TENANT": tenant.tid,
        "PYTHONPATH": str(REPO_ROOT),
    }
    started = time.monotonic()
    run = subprocess.run(command, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=300, check=False)
    output = run.stdout + run.stderr
    print(f"schemathesis: exit {run.returncode} in {time.monotonic() - started:.1f} s")
    print(output[-3000:])
    assert run.returncode == 0, output[-20000:]
    summary = re.search(r"Selected: (\d+)/(\d+)\s+Tested: (\d+)", output)
    assert summary is not None and summary.group(1) == summary.group(2) == summary.group(3), "not every operation ran"
    assert re.search(r"Stateful \(in [\d.]+s\)", output) and "Scenarios:" in output, "the stateful phase did not run"
    # Signed in for real: only the unsigned webhook route answered nothing but 401.
    unauthenticated = re.findall(r"^\s+- ([A-Z]+ \S+)$", output.split("Authentication failed", 1)[-1].split("💡", 1)[0], re.M)
    assert "Authentication failed" not in output or unauthenticated == [UNSIGNED], unauthenticated
