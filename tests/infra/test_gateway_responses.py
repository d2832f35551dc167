"""The REST answers API Gateway gives by itself (no route, too large, throttled, its own failures) are in
the product's error shape, as the local stack's gateway gives them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

pytestmark = pytest.mark.infra

TEMPLATE = Path(__file__).resolve().parents[2] / "infra" / "merge-template.yaml"


class _Loader(yaml.SafeLoader):
    pass


def _tag(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> Any:
    if isinstance(node, yaml.ScalarNode):
        return {suffix: loader.construct_scalar(node)}
    if isinstance(node, yaml.SequenceNode):
        return {suffix: loader.construct_sequence(node)}
    return {suffix: loader.construct_mapping(node)}  # type: ignore[arg-type]


_Loader.add_multi_constructor("!", _tag)


def test_gateway_responses_answer_in_the_error_shape() -> None:
    resources = yaml.load(TEMPLATE.read_text(), Loader=_Loader)["Resources"]  # a SafeLoader subclass
    responses = {r["Properties"]["ResponseType"]: r["Properties"] for r in resources.values()
                 if r.get("Type") == "AWS::ApiGateway::GatewayResponse"}
    assert {"MISSING_AUTHENTICATION_TOKEN", "DEFAULT_4XX", "DEFAULT_5XX"} <= set(responses)
    assert responses["MISSING_AUTHENTICATION_TOKEN"]["StatusCode"] == "404"
    for kind, props in responses.items():
        assert props["RestApiId"] == {"Ref": "RestAPI"}, kind
        body = json.loads(props["ResponseTemplates"]["application/json"])
        assert set(body) == {"error"} and {"code", "message"} <= set(body["error"]), kind
        assert "$context" not in json.dumps(body) and "$input" not in json.dumps(body), kind
