"""One id rule for every place an id enters: tokens, WebSocket frames, REST path parameters and the
SIP (PSTN) handler all accept and refuse exactly the same strings."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest

from chalicelib.adapters.tokens import principal_from_claims
from chalicelib.domain import pstn
from chalicelib.domain.errors import Invalid, Unauthorized
from chalicelib.domain.ids import ID_REGEX, is_id
from chalicelib.entrypoints import rest
from chalicelib.entrypoints.validation import Id

pytestmark = pytest.mark.unit

GOOD = ["a", "wi-1", "agent.2", "15551234567+1", "user+tag@example.com", "urn:x:1", "A_b", "9" * 128]
BAD = [
    "",
    "-a",
    "+",
    "+15551234567",
    "a#b",
    "a/b",
    "a%23b",
    "a%2Fb",
    "a b",
    "é",
    "a\n",
    "a\x00",
    "x" * 129,
    "a?b",
    "a\\b",
    "tpl-1#evil",
    "a\u202eb",
    "a\uff03b",
]


def by_token(value: str) -> bool:
    try:
        principal_from_claims({"sub": value, "tid": value, "role": "customer", "wid": value})
    except Unauthorized:
        return False
    return True


def by_frame(value: str) -> bool:
    try:
        msgspec.convert(value, Id)
    except msgspec.ValidationError:
        return False
    return True


def by_path(value: str) -> bool:
    try:
        rest.check_id(value, "id")
    except Invalid:
        return False
    return True


def by_phone_call(value: str) -> bool:
    event: dict[str, Any] = {
        "SchemaVersion": "1.0",
        "Sequence": 1,
        "InvocationEventType": "NEW_INBOUND_CALL",
        "CallDetails": {
            "TransactionId": "tx-1",
            "AwsAccountId": "1",
            "AwsRegion": "us-east-1",
            "SipMediaApplicationId": "sma-1",
            "Participants": [
                {
                    "CallId": "call-1",
                    "ParticipantTag": "LEG-A",
                    "To": "+12065550100",
                    "From": "+15105550101",
                    "Direction": "Inbound",
                    "StartTimeInMilliseconds": "1",
                    "SipHeaders": {"X-Workitem-Id": value, "X-Tenant-Id": value},
                }
            ],
        },
    }
    routing = pstn.route(pstn.parse_event(event))
    return routing is not None and routing.workitem_id == value


CHECKS = [by_token, by_frame, by_path, by_phone_call]


@pytest.mark.parametrize("value", GOOD)
def test_every_entry_accepts_the_same_ids(value: str) -> None:
    assert is_id(value)
    assert [check(value) for check in CHECKS] == [True] * len(CHECKS)


@pytest.mark.parametrize("value", BAD)
def test_every_entry_refuses_the_same_ids(value: str) -> None:
    assert not is_id(value)
    assert [check(value) for check in CHECKS] == [False] * len(CHECKS)


def test_the_rule_is_defined_once() -> None:
    """No module but chalicelib/domain/ids.py spells the id alphabet."""
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    spelled = [
        p.relative_to(root).as_posix()
        for p in (root / "chalicelib").rglob("*.py")
        if "A-Za-z0-9._:@" in p.read_text() or "A-Za-z0-9_.:@" in p.read_text()
    ]
    assert spelled == ["chalicelib/domain/ids.py"]
    assert ID_REGEX.endswith("\\Z")


def test_the_rest_document_gives_every_path_parameter_the_id_rule_and_limit_a_maximum() -> None:
    from pathlib import Path

    import yaml

    doc = yaml.safe_load((Path(__file__).resolve().parents[2] / "docs" / "openapi.yaml").read_text())
    ecma = ID_REGEX.removesuffix("\\Z") + "$"
    seen = 0
    for item in doc["paths"].values():
        params = list(item.get("parameters", []))
        params += [p for op in item.values() if isinstance(op, dict) for p in op.get("parameters", [])]
        for param in params:
            if param["in"] == "path":
                seen += 1
                assert param["schema"]["pattern"] == ecma, param
                assert param["schema"]["maxLength"] == 128, param
            if param["name"] == "limit":
                assert param["schema"]["maximum"] == 200, param
    assert seen >= 6


def test_the_websocket_document_gives_every_id_field_the_id_rule_and_every_integer_its_bounds() -> None:
    """Every field the frame schemas check with the id rule, and every bounded integer, says so in the
    AsyncAPI document (msgspec derives the schemas the frames are checked with)."""
    from chalicelib.entrypoints import ws
    from tests.unit.test_contract_docs import _load, _model_schema, _operations, _payload

    doc = _load("asyncapi.yaml")
    actions = _operations(doc, "x-action")
    ecma = ID_REGEX.removesuffix("\\Z") + "$"
    problems: list[str] = []
    for name, model in ws.ACTIONS.items():
        documented, _ = _payload(doc, actions[name]["messages"][0])
        for field, schema in _model_schema(model).get("properties", {}).items():
            variants = schema.get("anyOf", [schema])
            for variant in variants:
                if variant.get("pattern") == ID_REGEX and documented.get(field, {}).get("pattern") != ecma:
                    problems.append(f"{name}.{field}: pattern")
                if variant.get("type") == "integer":
                    for bound in ("minimum", "maximum"):
                        if bound in variant and documented.get(field, {}).get(bound) != variant[bound]:
                            problems.append(f"{name}.{field}: {bound}")
    assert not problems, problems
