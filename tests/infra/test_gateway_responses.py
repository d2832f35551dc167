"""The REST answers API Gateway gives by itself (no route, too large, throttled, its own failures) are in
the product's error shape on AWS, as the local stack's gateway gives them."""

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
    return {suffix: loader.construct_mapping(node)}


_Loader.add_multi_constructor("!", _tag)


def test_gateway_responses_answer_in_the_error_shape() -> None:
    resources = yaml.load(TEMPLATE.read_text(), Loader=_Loader)["Resources"]  # a SafeLoader subclass
    body = resources["RestAPI"]["Properties"]["DefinitionBody"]
    responses = body["x-amazon-apigateway-gateway-responses"]
    assert {"MISSING_AUTHENTICATION_TOKEN", "DEFAULT_4XX", "DEFAULT_5XX"} <= set(responses)
    assert responses["MISSING_AUTHENTICATION_TOKEN"]["statusCode"] == 404
    for kind, response in responses.items():
        payload = json.loads(response["responseTemplates"]["application/json"])
        assert set(payload) == {"error"} and {"code", "message"} <= set(payload["error"]), kind
        assert "$context" not in json.dumps(payload) and "$input" not in json.dumps(payload), kind


def test_the_packaged_api_carries_them(packaged: Any) -> None:
    api = packaged.resources["RestAPI"]["Properties"]["DefinitionBody"]
    assert api["x-amazon-apigateway-gateway-responses"]["MISSING_AUTHENTICATION_TOKEN"]["statusCode"] == 404
    assert api["paths"], "the merge kept Chalice's routes"


def test_sam_keeps_them_in_the_rest_apis_body(transformed: Any) -> None:
    api = transformed.transformed["Resources"]["RestAPI"]["Properties"]["Body"]
    assert api["x-amazon-apigateway-gateway-responses"]["DEFAULT_5XX"]["responseTemplates"]


def test_gateway_responses_are_readable_by_the_console_only(transformed: Any) -> None:
    """CORS on API Gateway's own answers: the console's CloudFront origin, never a wildcard or an echo."""
    responses = transformed.transformed["Resources"]["RestAPI"]["Properties"]["Body"]["x-amazon-apigateway-gateway-responses"]
    for kind, response in responses.items():
        origin = response["responseParameters"]["gatewayresponse.header.Access-Control-Allow-Origin"]
        assert origin == {"Fn::Sub": "'https://${ConsoleDistribution.DomainName}'"}, kind


def test_every_rest_path_answers_a_preflight(transformed: Any) -> None:
    paths = transformed.transformed["Resources"]["RestAPI"]["Properties"]["Body"]["paths"]
    assert paths
    for path, methods in paths.items():
        assert "options" in methods, f"{path} has no OPTIONS method: a browser's preflight would get 403"
        assert methods["options"]["x-amazon-apigateway-integration"]["type"] == "aws_proxy", path


def test_only_the_rest_function_knows_the_consoles_origins(packaged: Any) -> None:
    variables = packaged.resources["APIHandler"]["Properties"]["Environment"]["Variables"]
    _, with_callback, alone = variables["CONSOLE_ORIGINS"]["Fn::If"]
    assert alone == {"Fn::Sub": "https://${ConsoleDistribution.DomainName}"}
    assert with_callback["Fn::Join"][1][0] == alone
