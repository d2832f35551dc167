"""The wire format lives at the edge (``chalicelib/entrypoints``): the domain and the use cases hold no
camelCase key, no ``to_wire`` and no HTTP status. Their records are rendered by ``entrypoints/wire.py``
and the AWS payloads they act on (SNS, EventBridge, SQS records) are read in ``entrypoints/aws_payloads.py``.

The few camelCase strings left below are formats already persisted by deployed stacks (renaming one
would need a data migration), each with the reason it stays."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
INNER = [*sorted((ROOT / "chalicelib" / "domain").glob("*.py")), *sorted((ROOT / "chalicelib" / "services").glob("*.py"))]
CAMEL = re.compile(r"[a-z][a-z0-9]*[A-Z][A-Za-z0-9]*\Z")

PERSISTED = {
    # A voice workitem's state (the workitem item's ``voice`` attribute): stored as JSON by every stack
    # since voice landed; read back on each voice action.
    "chalicelib/domain/voice.py": {
        "meetingId",
        "mediaRegion",
        "meetingArn",
        "mediaPlacement",
        "agentId",
        "agentAttendeeId",
        "pipelineId",
        "contactAttendeeId",
        "coachAttendeeId",
        "contactGen",
        "coachGen",
    },
    # The arguments the SIP media application hands back on every invocation of a PSTN call: set when
    # the call was placed, so a call in progress during an upgrade still carries the old names.
    "chalicelib/domain/pstn.py": {"workitemId", "tenantId"},
    # A timeline entry's extra field (``supervisor_joined`` / ``supervisor_left``), stored with the
    # entry and returned as stored by timeline.get.
    "chalicelib/domain/coaching.py": {"supervisorId", "agentId"},
    # The same extra fields read back by the coaching analytics: the workitem's agent on a join or a
    # coach message (``agentId``), the coach message's author on a reaction or a forward
    # (``supervisorId``); stored with the entries, so a rebuild reads them from retained timelines.
    "chalicelib/domain/analytics.py": {"agentId", "supervisorId"},
    # A transcript line's extra fields, stored with the entry and returned as stored (as supervisorId
    # above), and the call's transcript pipelines in the voice state's JSON (beside voice.py's keys).
    "chalicelib/domain/transcript.py": {"utteranceId", "startMs", "endMs", "streamPipelineId", "insightsPipelineId"},
}


def _docstrings(tree: ast.AST) -> set[int]:
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                found.add(id(first.value))
    return found


def camel_strings(source: str) -> list[tuple[int, str]]:
    """Each string constant that is a whole camelCase name (docstrings aside), with its line."""
    tree = ast.parse(source)
    skip = _docstrings(tree)
    return [
        (node.lineno, node.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in skip and CAMEL.match(node.value)
    ]


def test_no_camel_case_key_in_the_domain_or_the_services() -> None:
    found = []
    for path in INNER:
        name = str(path.relative_to(ROOT))
        allowed = PERSISTED.get(name, set())
        found += [f"{name}:{line}: {text!r}" for line, text in camel_strings(path.read_text()) if text not in allowed]
    assert not found, "render wire names in chalicelib/entrypoints (wire.py, aws_payloads.py):\n" + "\n".join(found)


def test_every_persisted_exception_is_still_needed() -> None:
    for name, allowed in PERSISTED.items():
        present = {text for _, text in camel_strings((ROOT / name).read_text())}
        assert allowed <= present, f"{name} no longer uses {sorted(allowed - present)}: drop them from PERSISTED"


def _is_http_status(node: ast.Assign) -> bool:
    named = any(isinstance(t, ast.Name) and t.id in {"status", "status_code"} for t in node.targets)
    return named and isinstance(node.value, ast.Constant) and isinstance(node.value.value, int)


def test_no_wire_method_or_http_status_in_the_domain_or_the_services() -> None:
    found = []
    for path in INNER:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef) and node.name == "to_wire":
                found.append(f"{path.name}:{node.lineno}: def to_wire")
            if isinstance(node, ast.Assign) and _is_http_status(node):
                found.append(f"{path.name}:{node.lineno}: an HTTP status")
    assert not found, found


def test_the_check_sees_a_camel_case_key_but_not_a_docstring_or_a_sentence() -> None:
    source = '"""Reads ``messageId``."""\nbody = {"inboundMessageId": 1, "text": "see messageId"}\nx.get("messageId")\n'
    assert camel_strings(source) == [(2, "inboundMessageId"), (3, "messageId")]


def test_the_check_sees_an_http_status() -> None:
    assignments = [n for n in ast.parse("status = 400\nstatus = 'open'\ncode = 400").body if isinstance(n, ast.Assign)]
    assert [_is_http_status(n) for n in assignments] == [True, False, False]
