"""The machine-readable contracts stay true (docs/product.md B9, W0.2).

``docs/asyncapi.yaml`` (WebSocket) and ``docs/openapi.yaml`` (REST) are what clients generate code
from, so they must name exactly what the code serves: the actions and events of
``chalicelib.entrypoints.ws`` and the routes of the Chalice app. The wire rules W3-W5 are the floor: every name they
fixes must be documented, whatever else is added.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

import msgspec
import pytest
import yaml

from chalicelib.services import push_events

pytestmark = pytest.mark.unit

DOCS = Path(__file__).resolve().parents[2] / "docs"

# Wire rules W4, plus `ping` (keep-alive).
CONTRACT_ACTIONS = frozenset(
    {
        "presence.set",
        "agents.list",
        "agent.watch",
        "agent.unwatch",
        "workitems.list",
        "monitor.start",
        "monitor.stop",
        "coaching.end",
        "coach.send",
        "coach.react",
        "coach.forward",
        "message.send",
        "workitem.transfer",
        "workitem.end",
        "consult.start",
        "timeline.get",
        "assist.templates",
        "assist.recipients",
        "assist.request",
        "assist.claim",
        "directory.send",
        "directory.unread.get",
        "directory.read",
        "voice.join",
        "voice.monitor",
        "voice.whisper",
        "voice.barge",
        "voice.listen",
        "ping",
    }
)

# Wire rules W4, plus `assist.escalated` (B4).
CONTRACT_EVENTS = frozenset(
    {
        "presence.changed",
        "workitem.assigned",
        "workitem.updated",
        "workitem.ended",
        "coaching.joined",
        "coaching.left",
        "coaching.ended",
        "coach.message",
        "coach.reaction",
        "coach.forwarded",
        "message.received",
        "consult.requested",
        "assist.requested",
        "assist.claimed",
        "assist.escalated",
        "directory.message",
        "directory.unread",
        "voice.coach_room",
        "voice.coach_room_closed",
    }
)

# Wire rules W3 and W5, plus GET /admin/policy, PUT /admin/webhook-secret and the audit export.
CONTRACT_ROUTES = frozenset(
    {
        ("GET", "/health"),
        ("PUT", "/admin/users/{userId}"),
        ("PUT", "/admin/teams/{teamId}"),
        ("PUT", "/admin/templates/{templateId}"),
        ("DELETE", "/admin/templates/{templateId}"),
        ("GET", "/admin/templates"),
        ("PUT", "/admin/policy"),
        ("GET", "/admin/policy"),
        ("PUT", "/admin/webhook-secret"),
        ("GET", "/me/settings"),
        ("PUT", "/me/settings"),
        ("GET", "/agents/{agentId}/workitems"),
        ("GET", "/workitems/{workitemId}/timeline"),
        ("GET", "/workitems/{workitemId}/export"),
        ("POST", "/webhooks/events"),
        ("PUT", "/admin/attention-rules/{ruleId}"),
        ("GET", "/admin/attention-rules"),
        ("DELETE", "/admin/attention-rules/{ruleId}"),
    }
)

ENTRY_KINDS = {
    "customer_message",
    "agent_message",
    "coach_message",
    "supervisor_joined",
    "supervisor_left",
    "coaching_ended",
    "reaction",
    "voice_mode",
    "assist_requested",
    "assist_claimed",
    "transcript",
}
WS_ERROR_CODES = {
    "invalid",
    "unauthorized",
    "forbidden",
    "not_found",
    "conflict",
    "too_large",
    "rate_limited",
    "unavailable",
    "internal",
}
REST_ERROR_CODES = WS_ERROR_CODES - {"internal"}
HTTP_METHODS = {"get", "put", "post", "delete", "patch", "head", "options", "trace"}
# Fields of the client-frame envelope, not of any action.
ENVELOPE = {"action", "requestId"}
# Schemas both documents define; they must be identical so REST and WebSocket clients agree.
SHARED_SCHEMAS = ("Channel", "Role", "Workitem", "EntryKind", "TimelineEntry", "CustomerTimelineEntry")


# --- helpers ----------------------------------------------------------------------------------


def _load(name: str) -> dict[str, Any]:
    with (DOCS / name).open(encoding="utf-8") as f:
        doc = yaml.safe_load(f)
    assert isinstance(doc, dict), f"{name} is not a YAML mapping"
    return doc


def _pointer(doc: dict[str, Any], ref: str) -> Any:
    """Resolve a local JSON reference (``#/a/b``); raise KeyError when it points nowhere."""
    if not ref.startswith("#"):
        raise KeyError(f"{ref}: only references inside the document are allowed")
    node: Any = doc
    for raw in ref[1:].split("/")[1:]:
        token = raw.replace("~1", "/").replace("~0", "~")
        if isinstance(node, list):
            node = node[int(token)]
        elif isinstance(node, dict) and token in node:
            node = node[token]
        else:
            raise KeyError(f"{ref}: no {token!r}")
    return node


def _deref(doc: dict[str, Any], node: Any) -> Any:
    seen: set[str] = set()
    while isinstance(node, dict) and "$ref" in node:
        ref = node["$ref"]
        assert ref not in seen, f"reference cycle at {ref}"
        seen.add(ref)
        node = _pointer(doc, ref)
    return node


def _flatten(doc: dict[str, Any], schema: Any) -> tuple[dict[str, Any], set[str]]:
    """Properties (later ``allOf`` parts refine earlier ones) and required names of an object schema."""
    schema = _deref(doc, schema)
    properties: dict[str, Any] = {}
    required: set[str] = set()
    for part in schema.get("allOf", []):
        part_properties, part_required = _flatten(doc, part)
        for name, prop in part_properties.items():
            properties[name] = {**properties.get(name, {}), **_deref(doc, prop)}
        required |= part_required
    branches = [_flatten(doc, part) for part in schema.get("oneOf", []) if "properties" in _deref(doc, part)]
    if branches:  # one schema per variant (an attention rule's kinds): any branch's field, what all require
        for branch_properties, _ in branches:
            for name, prop in branch_properties.items():
                seen = properties.setdefault(name, dict(prop))
                if "enum" in prop and "enum" in seen and seen is not prop:  # a tag: every branch's value
                    seen["enum"] = list(dict.fromkeys([*seen["enum"], *prop["enum"]]))
        required |= set.intersection(*(branch_required for _, branch_required in branches))
    for name, prop in schema.get("properties", {}).items():
        properties[name] = {**properties.get(name, {}), **_deref(doc, prop)}
    required |= set(schema.get("required", []))
    return properties, required


def _refs(node: Any, where: str = "") -> list[tuple[str, str]]:
    """Every reference in the document: ``$ref`` values and discriminator mappings."""
    found: list[tuple[str, str]] = []
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                found.append((where, value))
            elif key == "mapping" and isinstance(value, dict) and where.endswith("discriminator"):
                found.extend((f"{where}/mapping/{k}", v) for k, v in value.items() if isinstance(v, str))
            else:
                found.extend(_refs(value, f"{where}/{key}"))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            found.extend(_refs(value, f"{where}/{i}"))
    return found


def _operations(doc: dict[str, Any], marker: str) -> dict[str, dict[str, Any]]:
    """Operations carrying ``marker`` (``x-action`` / ``x-event``), keyed by its value; no duplicates."""
    named: dict[str, dict[str, Any]] = {}
    for key, op in doc.get("operations", {}).items():
        if marker in op:
            name = op[marker]
            assert name not in named, f"{marker} {name!r} is on two operations"
            named[name] = {"key": key, **op}
    return named


def _payload(doc: dict[str, Any], message_ref: Any) -> tuple[dict[str, Any], set[str]]:
    message = _deref(doc, message_ref)
    return _flatten(doc, message["payload"])


def _const(properties: dict[str, Any], name: str) -> Any:
    return properties.get(name, {}).get("const")


def _schema(doc: dict[str, Any], name: str) -> dict[str, Any]:
    schemas = doc["components"]["schemas"]
    assert name in schemas, f"components.schemas.{name} is missing"
    return schemas[name]


def _enum(doc: dict[str, Any], schema: Any) -> set[Any]:
    return set(_deref(doc, schema)["enum"])


def _model_schema(model: Any) -> dict[str, Any]:
    """The JSON Schema msgspec derives from a frame Struct (what it accepts on the wire)."""
    schema: dict[str, Any] = msgspec.json.schema(model)
    definition: dict[str, Any] = schema["$defs"][schema["$ref"].rsplit("/", 1)[-1]]
    return definition


# --- fixtures ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def asyncapi() -> dict[str, Any]:
    return _load("asyncapi.yaml")


@pytest.fixture(scope="module")
def openapi() -> dict[str, Any]:
    return _load("openapi.yaml")


@pytest.fixture(scope="module")
def protocol() -> Any:
    return importlib.import_module("chalicelib.entrypoints.ws")


@pytest.fixture(scope="module")
def actions(asyncapi: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return _operations(asyncapi, "x-action")


@pytest.fixture(scope="module")
def events(asyncapi: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return _operations(asyncapi, "x-event")


# --- both documents ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["asyncapi.yaml", "openapi.yaml"])
def test_every_reference_resolves_inside_its_document(name: str) -> None:
    doc = _load(name)
    broken = []
    for where, ref in _refs(doc):
        try:
            _pointer(doc, ref)
        except (KeyError, IndexError, ValueError) as exc:
            broken.append(f"{where}: {exc}")
    assert not broken, "\n".join(broken)


@pytest.mark.parametrize("name", SHARED_SCHEMAS)
def test_shared_schemas_are_identical_in_both_documents(name: str, asyncapi: dict[str, Any], openapi: dict[str, Any]) -> None:
    assert _schema(asyncapi, name) == _schema(openapi, name)


# --- AsyncAPI ---------------------------------------------------------------------------------


def test_asyncapi_version(asyncapi: dict[str, Any]) -> None:
    assert asyncapi["asyncapi"] == "3.0.0"


def test_asyncapi_documents_every_contract_action_and_event(
    actions: dict[str, dict[str, Any]], events: dict[str, dict[str, Any]]
) -> None:
    assert CONTRACT_ACTIONS - set(actions) == set(), "actions missing from docs/asyncapi.yaml"
    assert CONTRACT_EVENTS - set(events) == set(), "events missing from docs/asyncapi.yaml"


def test_asyncapi_actions_are_the_protocols(actions: dict[str, dict[str, Any]], protocol: Any) -> None:
    served = set(protocol.ACTIONS)
    assert set(actions) - served == set(), "documented but not served"
    assert served - set(actions) == set(), "served but not documented"


def test_asyncapi_events_are_the_protocols(events: dict[str, dict[str, Any]], protocol: Any) -> None:
    emitted = set(push_events.EVENTS)
    assert set(events) - emitted == set(), "documented but not in protocol.EVENTS"
    assert emitted - set(events) == set(), "in protocol.EVENTS but not documented"


def test_action_required_fields_match_the_models(
    asyncapi: dict[str, Any], actions: dict[str, dict[str, Any]], protocol: Any
) -> None:
    mismatches = {}
    for name, model in protocol.ACTIONS.items():
        if name not in actions:
            continue  # reported by test_asyncapi_actions_are_the_protocols
        _, documented = _payload(asyncapi, actions[name]["messages"][0])
        wanted = set(_model_schema(model).get("required", [])) if model is not None else set()
        documented, wanted = documented - ENVELOPE, wanted - ENVELOPE
        if documented != wanted:
            mismatches[name] = {"docs only": sorted(documented - wanted), "model only": sorted(wanted - documented)}
    assert not mismatches, mismatches


def test_action_fields_of_the_models_are_documented(
    asyncapi: dict[str, Any], actions: dict[str, dict[str, Any]], protocol: Any
) -> None:
    missing = {}
    for name, model in protocol.ACTIONS.items():
        if name not in actions or model is None:
            continue
        documented, _ = _payload(asyncapi, actions[name]["messages"][0])
        fields = set(_model_schema(model).get("properties", {})) - ENVELOPE
        if fields - set(documented):
            missing[name] = sorted(fields - set(documented))
    assert not missing, missing


def test_each_action_frame_names_its_action_and_envelope(asyncapi: dict[str, Any], actions: dict[str, dict[str, Any]]) -> None:
    for name, op in actions.items():
        assert op["action"] == "send", name
        assert len(op["messages"]) == 1, name
        properties, required = _payload(asyncapi, op["messages"][0])
        assert _const(properties, "action") == name
        assert required >= ENVELOPE, f"{name}: the envelope fields must be required"


def test_each_action_is_answered_by_its_ack_or_an_error(asyncapi: dict[str, Any], actions: dict[str, dict[str, Any]]) -> None:
    for name, op in actions.items():
        replies = [_payload(asyncapi, ref) for ref in op["reply"]["messages"]]
        kinds = sorted(_const(properties, "type") for properties, _ in replies)
        assert kinds == ["ack", "error"], f"{name}: replies are {kinds}"
        for properties, required in replies:
            assert {"type", "requestId"} <= required, name
            if _const(properties, "type") == "ack":
                assert "data" in required and properties["data"].get("type") == "object", name
            else:
                assert "error" in required, name


def test_each_event_frame_names_its_event(asyncapi: dict[str, Any], events: dict[str, dict[str, Any]]) -> None:
    for name, op in events.items():
        assert op["action"] == "receive", name
        assert len(op["messages"]) == 1, name
        properties, required = _payload(asyncapi, op["messages"][0])
        assert _const(properties, "type") == "event", name
        assert _const(properties, "event") == name
        assert {"type", "event", "data", "at"} <= required, name
        assert properties["data"].get("type") == "object", name


def test_asyncapi_reusable_objects(asyncapi: dict[str, Any]) -> None:
    workitem, workitem_required = _flatten(asyncapi, _schema(asyncapi, "Workitem"))
    assert {
        "workitemId",
        "channel",
        "agentId",
        "customer",
        "subject",
        "status",
        "createdAt",
        "coaching",
    } <= workitem_required
    assert _enum(asyncapi, workitem["channel"]) == {"chat", "sms", "social", "voice", "email"}

    entry, entry_required = _flatten(asyncapi, _schema(asyncapi, "TimelineEntry"))
    assert {"workitemId", "seq", "kind", "at", "authorId", "authorRole"} <= entry_required
    assert _enum(asyncapi, entry["kind"]) == ENTRY_KINDS
    assert {"messageId", "text", "forwardedFrom", "reaction"} <= set(entry)

    _, room_required = _flatten(asyncapi, _schema(asyncapi, "Room"))
    assert {"meetingId", "attendeeId", "joinToken", "mediaRegion", "capabilities"} <= room_required

    error, error_required = _flatten(asyncapi, _schema(asyncapi, "Error"))
    assert {"code", "message"} <= error_required
    assert {"retryable", "details"} <= set(error)
    assert _enum(asyncapi, error["code"]) == WS_ERROR_CODES


# --- OpenAPI ----------------------------------------------------------------------------------


def _documented_routes(openapi: dict[str, Any]) -> set[tuple[str, str]]:
    return {(method.upper(), path) for path, item in openapi["paths"].items() for method in item if method in HTTP_METHODS}


def test_openapi_version(openapi: dict[str, Any]) -> None:
    assert str(openapi["openapi"]).startswith("3.1")


def test_openapi_is_a_valid_document(openapi: dict[str, Any]) -> None:
    # Imported here, not skipped when missing: requirements-dev.txt pins it, and a skip would hide an invalid document.
    from openapi_spec_validator import validate

    validate(openapi)


def test_openapi_documents_every_contract_route(openapi: dict[str, Any]) -> None:
    assert CONTRACT_ROUTES - _documented_routes(openapi) == set()


def test_openapi_routes_are_the_apps(openapi: dict[str, Any]) -> None:
    app = importlib.import_module("app").app
    served = {(method.upper(), path) for path, entries in app.routes.items() for method in entries}
    documented = _documented_routes(openapi)
    assert documented - served == set(), "documented but not served"
    assert served - documented == set(), "served but not documented"


def test_openapi_security_and_errors(openapi: dict[str, Any]) -> None:
    assert openapi["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"
    error, _ = _flatten(openapi, _schema(openapi, "Error"))
    body, body_required = _flatten(openapi, error["error"])
    assert {"code", "message"} <= body_required
    assert _enum(openapi, body["code"]) >= REST_ERROR_CODES
    for path, item in openapi["paths"].items():
        for method, op in item.items():
            if method not in HTTP_METHODS:
                continue
            if op.get("security") == []:
                continue  # GET /health
            assert "401" in op["responses"], f"{method.upper()} {path} must document 401"


def test_openapi_every_store_backed_route_documents_unavailable(openapi: dict[str, Any]) -> None:
    """A route that reads or writes the store can answer 503 `unavailable` when the store does not answer."""
    for path, item in openapi["paths"].items():
        for method, op in item.items():
            if method in HTTP_METHODS and op.get("security") != []:
                assert "503" in op["responses"], f"{method.upper()} {path} must document 503"
    body = openapi["components"]["responses"]["Unavailable"]["content"]["application/json"]["example"]["error"]
    assert (body["code"], body["retryable"]) == ("unavailable", True)


def test_openapi_webhook_events(openapi: dict[str, Any]) -> None:
    op = openapi["paths"]["/webhooks/events"]["post"]
    assert op["security"] == [{"webhookSignature": []}]
    scheme = openapi["components"]["securitySchemes"]["webhookSignature"]
    assert (scheme["type"], scheme["in"], scheme["name"]) == ("apiKey", "header", "X-Coaching-Signature")
    assert {"200", "401", "404", "409"} <= set(op["responses"])
    body = _deref(openapi, op["requestBody"]["content"]["application/json"]["schema"])
    types = set()
    for variant in body["oneOf"]:
        properties, required = _flatten(openapi, variant)
        assert {"eventId", "tenantId", "type", "data"} <= required
        types.add(_const(properties, "type"))
    assert types == {"workitem.assigned", "workitem.message", "workitem.transferred", "workitem.ended"}


def test_openapi_every_operation_documents_400(openapi: dict[str, Any]) -> None:
    """Every route refuses a body that is not UTF-8 (W7.3), and every path id is checked: 400 everywhere."""
    for path, item in openapi["paths"].items():
        for method, op in item.items():
            if method in HTTP_METHODS:
                assert "400" in op["responses"], f"{method.upper()} {path} must document 400"


def _rest_bodies() -> dict[str, Any]:
    from chalicelib.entrypoints import rest

    return {
        "putUser": rest.UserBody,
        "putTeam": rest.TeamBody,
        "putTemplate": rest.TemplateBody,
        "putAttentionRule": rest.AttentionRuleBody,
        "putPolicy": rest.PolicyBody,
        "putWebhookSecret": rest.WebhookSecretBody,
        "putMySettings": rest.SettingsBody,
        "putWebhookSubscription": rest.SubscriptionBody,
        "rotateWebhookSecret": rest.RotateSecretBody,
        "putSmsSettings": rest.SmsSettingsBody,
        "putAmazonConnect": rest.AmazonConnectBody,
    }


def test_openapi_request_bodies_require_what_the_models_require(openapi: dict[str, Any]) -> None:
    """A field the model defaults is optional in the document, and the reverse (PUT /admin/templates
    once marked `enabled` required while the code defaulted it)."""
    bodies = _rest_bodies()
    seen = set()
    for item in openapi["paths"].values():
        for method, op in item.items():
            if method not in HTTP_METHODS or "requestBody" not in op or op["operationId"] == "postWebhookEvent":
                continue
            seen.add(op["operationId"])
            model = bodies[op["operationId"]]
            properties, required = _flatten(openapi, op["requestBody"]["content"]["application/json"]["schema"])
            wanted = _model_schema(model)
            assert required == set(wanted.get("required", [])), op["operationId"]
            assert set(wanted["properties"]) <= set(properties), op["operationId"]
            for name, field in wanted["properties"].items():
                if "default" in field:
                    assert _deref(openapi, properties[name]).get("default") == field["default"], (op["operationId"], name)
    assert seen == set(bodies)


# The model's patterns are Python's; the document's are JSON Schema's (ECMA-262): `\Z` is written `$`, and
# the astral ranges of invisible characters are left out (the field's description names them).
_ASTRAL_INVISIBLE = "\\U0001d173-\\U0001d17a\\U000e0000-\\U000e0fff"
_CONSTRAINTS = ("minLength", "maxLength", "minimum", "maximum", "minItems", "maxItems", "enum", "default")


def _documented_pattern(python_pattern: str) -> str:
    return python_pattern.replace(_ASTRAL_INVISIBLE, "").replace("\\Z", "$")


def test_openapi_request_bodies_constrain_what_the_models_constrain(openapi: dict[str, Any]) -> None:
    """Every bound and pattern a body model enforces is in the document, so a request the document calls
    valid is not refused for a rule it does not state (Schemathesis found four that were)."""
    bodies = _rest_bodies()
    for item in openapi["paths"].values():
        for method, op in item.items():
            if method not in HTTP_METHODS or op.get("operationId") not in bodies:
                continue
            properties, _ = _flatten(openapi, op["requestBody"]["content"]["application/json"]["schema"])
            for name, wanted in _model_schema(bodies[op["operationId"]])["properties"].items():
                documented = _deref(openapi, properties[name])
                items = [alt["items"] for alt in documented.get("anyOf", [])] or [documented.get("items")]
                for field, want, got in ((name, wanted, documented), *((f"{name}[]", wanted.get("items"), i) for i in items)):
                    if not want:
                        continue
                    where = f"{op['operationId']}.{field}"
                    for key in _CONSTRAINTS:
                        if key not in want:
                            continue
                        if key in ("minLength", "maxLength") and "enum" in got:  # the listed values bound it
                            assert all(want.get("minLength", 0) <= len(v) <= want.get("maxLength", len(v)) for v in got["enum"])
                            continue
                        assert got.get(key) == want[key] or (key == "enum" and set(got[key]) >= set(want[key])), where
                    if "pattern" in want:
                        assert got.get("pattern") == _documented_pattern(want["pattern"]), where
