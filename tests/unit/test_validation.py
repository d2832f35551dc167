"""Decoding frames and bodies into msgspec Structs (chalicelib.entrypoints.validation).

Types are strict (msgspec's strict mode): these tables pin what is accepted and refused, the
``from``/``from_`` alias, strings that are not valid Unicode, the rules for text, names and secrets, and
refusals that name every offending field without echoing the value.
"""

from __future__ import annotations

import json
from typing import Any

import msgspec
import pytest

from chalicelib.domain.errors import Invalid
from chalicelib.entrypoints import rest, ws
from chalicelib.entrypoints.validation import MAX_SEQ, validate

pytestmark = pytest.mark.unit

# Strict types: an int field takes only a JSON integer, a bool field only true/false.
INTS: list[tuple[Any, int | None]] = [
    (5, 5),
    (0, 0),
    (MAX_SEQ, MAX_SEQ),
    (MAX_SEQ + 1, None),
    (10**1022, None),
    (-1, None),
    (True, None),
    (False, None),
    (5.0, None),
    (-0.0, None),
    (1e3, None),
    (5.5, None),
    (float("nan"), None),
    ("5", None),
    (" 120 ", None),
    ("\t5\n", None),
    ("+5", None),
    ("05", None),
    ("9_0", None),
    ("1_000", None),
    ("5.0", None),
    ("\u0665", None),
    ("\u0661\u0662", None),
    ("\uff15", None),
    ("", None),
    (None, None),
    ([], None),
    ({}, None),
]

BOOLS: list[tuple[Any, bool | None]] = [
    (True, True),
    (False, False),
    (0, None),
    (1, None),
    (0.0, None),
    (1.0, None),
    ("0", None),
    ("1", None),
    ("yes", None),
    ("no", None),
    ("on", None),
    ("off", None),
    ("true", None),
    ("false", None),
    ("", None),
    (None, None),
    ([], None),
]


@pytest.mark.parametrize(("value", "expected"), INTS, ids=[repr(v)[:24] for v, _ in INTS])
def test_int_fields_take_only_json_integers_within_bounds(value: Any, expected: int | None) -> None:
    frame = {"action": "timeline.get", "workitemId": "wi-1", "after": value}
    if expected is None:
        with pytest.raises(Invalid) as refused:
            validate(ws.TimelineGet, frame, "frame")
        assert [p["field"] for p in refused.value.details["problems"]] == ["after"]
    else:
        parsed = validate(ws.TimelineGet, frame, "frame")
        assert parsed.after == expected and type(parsed.after) is int


@pytest.mark.parametrize(("value", "expected"), BOOLS, ids=[repr(v)[:24] for v, _ in BOOLS])
def test_bool_fields_take_only_json_booleans(value: Any, expected: bool | None) -> None:
    if expected is None:
        with pytest.raises(Invalid) as refused:
            validate(rest.SettingsBody, {"agentMessageNotification": value}, "body")
        assert refused.value.details["problems"][0]["field"] == "agentMessageNotification"
    else:
        assert validate(rest.SettingsBody, {"agentMessageNotification": value}, "body").agentMessageNotification is expected


def test_strict_types_in_every_body() -> None:
    good = {"recordCoaching": True, "escalationSeconds": 120, "retentionDays": 30}
    assert validate(rest.PolicyBody, good, "body").escalationSeconds == 120
    for field, value in (
        ("recordCoaching", 0),
        ("recordCoaching", "yes"),
        ("recordCoaching", "off"),
        ("escalationSeconds", " 120 "),
        ("escalationSeconds", "9_0"),
        ("escalationSeconds", 120.0),
        ("retentionDays", "\u0663\u0660"),
        ("retentionDays", True),
    ):
        with pytest.raises(Invalid) as refused:
            validate(rest.PolicyBody, {**good, field: value}, "body")
        assert [p["field"] for p in refused.value.details["problems"]] == [field]
    with pytest.raises(Invalid, match="enabled"):
        validate(rest.TemplateBody, {"text": "hi", "enabled": 1}, "body")


def test_a_renamed_field_is_read_by_either_name() -> None:
    base = {"workitemId": "wi-1", "text": "hi"}
    assert validate(rest.MessageData, {**base, "from": "agent"}, "body").from_ == "agent"
    assert validate(rest.MessageData, {**base, "from_": "agent"}, "body").from_ == "agent"
    assert validate(rest.MessageData, {**base, "from": "customer", "from_": "agent"}, "body").from_ == "customer"
    with pytest.raises(Invalid, match="from"):
        validate(rest.MessageData, {**base, "from": "supervisor", "from_": "agent"}, "body")


def test_a_webhook_payload_keeps_its_wire_names() -> None:
    event = rest.validate_webhook(
        {
            "eventId": "e-1",
            "tenantId": "t1",
            "type": "workitem.message",
            "data": {"workitemId": "wi-1", "from": "customer", "text": "hi", "extra": 1},
        }
    )
    assert event["data"] == {"workitemId": "wi-1", "from": "customer", "text": "hi"}
    assigned = rest.validate_webhook(
        {
            "eventId": "e-2",
            "tenantId": "t1",
            "type": "workitem.assigned",
            "data": {
                "workitemId": "wi-2",
                "channel": "chat",
                "agentId": "agent-1",
                "customer": {"id": "c-1", "name": "Ann", "x": 1},
            },
        }
    )
    assert assigned["data"] == {
        "workitemId": "wi-2",
        "channel": "chat",
        "agentId": "agent-1",
        "customer": {"id": "c-1", "name": "Ann"},
        "subject": None,
    }


def test_constrained_strings_refuse_lone_surrogates_elsewhere_they_pass() -> None:
    for frame, field in (
        ({"action": "coach.send", "workitemId": "wi-1", "text": "a\ud800"}, "text"),
        ({"action": "ping", "requestId": "\udfff"}, "requestId"),
        ({"action": "presence.set", "state": "\ud800"}, "state"),
        ({"action": "timeline.get", "workitemId": "wi-1", "after": "\ud800"}, "after"),
        ({"action": "assist.request", "templateId": "t", "to": {"userId": "u", "\ud800": 1}}, "to"),
    ):
        schema = ws.ACTIONS[str(frame["action"])]
        with pytest.raises(Invalid) as refused:
            validate(schema, frame, "frame")
        assert refused.value.details["problems"][0]["field"].split(".")[0] == field
        json.dumps(refused.value.to_dict())  # the refusal itself can always be sent
    # an unconstrained string, an ignored key, a free-form payload: taken as they are
    assert validate(ws.Empty, {"action": "ping\ud800", "\ud800": 1, "x": "\ud800"}, "frame").action == "ping\ud800"
    body = validate(
        rest.WebhookBody, {"eventId": "e", "tenantId": "t", "type": "workitem.ended", "data": {"\ud800": "\ud800"}}, "body"
    )
    assert body.data == {"\ud800": "\ud800"}
    nested = validate(
        rest.AssignedData,
        {"workitemId": "w", "channel": "chat", "agentId": "a", "customer": {"id": "c", "name": "n", "\ud800": 1}},
        "body",
    )
    assert nested.customer.name == "n"


def test_every_offending_field_is_named_in_field_order() -> None:
    with pytest.raises(Invalid) as refused:
        validate(rest.TeamBody, {"name": "", "supervisors": ["ok", "a#b"], "agents": [1], "x": "ignored"}, "body")
    problems = refused.value.details["problems"]
    assert [p["field"] for p in problems] == ["name", "supervisors.1", "agents.0"]
    assert refused.value.message.startswith("name: ")
    with pytest.raises(Invalid) as missing:
        validate(rest.AssignedData, {"channel": "fax", "customer": {"id": "c"}}, "body")
    assert [p["field"] for p in missing.value.details["problems"]] == ["workitemId", "channel", "agentId", "customer.name"]


def test_refusals_name_the_allowed_values_and_never_echo_the_value() -> None:
    with pytest.raises(Invalid) as refused:
        validate(
            ws.CoachReact,
            {"action": "coach.react", "workitemId": "w", "messageId": "m", "reaction": "<b>heart</b>"},
            "frame",
        )
    assert refused.value.message == "reaction: Input should be 'thumbs_up' or 'thumbs_down'"
    with pytest.raises(Invalid) as target:
        validate(ws.AssistRequest, {"action": "assist.request", "templateId": "t", "to": "<b>all</b>"}, "frame")
    assert target.value.message == "to: Input should be 'supervisors' or an object"
    with pytest.raises(Invalid) as extra:
        validate(ws.AssistRequest, {"action": "assist.request", "templateId": "t", "to": {"userId": "u", "admin": True}}, "frame")
    assert extra.value.details["problems"] == [{"field": "to.admin", "problem": "Extra inputs are not permitted"}]
    for err in (refused.value, target.value):
        assert "<b>" not in json.dumps(err.to_dict())


@pytest.mark.parametrize("data", [[1], "x", 5, None, True, 1.5])
def test_anything_but_an_object_is_refused_as_a_whole(data: Any) -> None:
    with pytest.raises(Invalid) as refused:
        validate(rest.UserBody, data, "body")
    assert refused.value.details["problems"][0]["field"] == "body"
    assert refused.value.message.startswith("body: Expected `object`")


def test_every_frame_and_body_is_a_frozen_struct() -> None:
    models: list[type[Any]] = [
        *ws.ACTIONS.values(),
        ws.UserTarget,
        rest.WebhookBody,
        *rest.WEBHOOK_DATA.values(),
        rest.UserBody,
        rest.TeamBody,
        rest.TemplateBody,
        rest.PolicyBody,
        rest.WebhookSecretBody,
        rest.SettingsBody,
        rest.CustomerBody,
    ]
    for model in models:
        assert issubclass(model, msgspec.Struct) and model.__struct_config__.frozen, model
    assert ws.UserTarget.__struct_config__.forbid_unknown_fields


@pytest.mark.parametrize("bad", [b"\xff", b"\xc0\xaf", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"\xe2\x82"])
def test_bytes_that_are_not_utf8_are_invalid_wherever_they_sit(bad: bytes) -> None:
    """A frame, a REST body or a webhook whose bytes are not UTF-8 (in a string, a key, or bare) is
    refused as invalid, never an internal error (msgspec raises UnicodeDecodeError for them)."""
    from chalicelib.entrypoints.validation import decode

    for raw in (b'{"action":"ping","x":"' + bad + b'"}', b'{"' + bad + b'":1}', bad, b"[" + bad + b"]"):
        with pytest.raises(Invalid, match="UTF-8"):
            decode(raw, "frame", 1024)


def test_the_policy_body_takes_the_sentiment_languages_of_the_domain() -> None:
    from typing import get_args

    from chalicelib.domain.sentiment import LANGUAGES
    from chalicelib.entrypoints.rest import SentimentLanguage

    assert get_args(SentimentLanguage) == LANGUAGES
