"""SIP media application events: parsing, call-to-workitem routing, decisions and action responses.

The events copy the shapes in the Amazon Chime SDK Developer Guide (PSTN audio service pages).
"""

from __future__ import annotations

import ast
import copy
import re
from pathlib import Path
from typing import Any

import pytest

from chalicelib.domain import pstn
from chalicelib.domain.errors import Invalid
from chalicelib.domain.pstn import CallAction, SmaEvent

pytestmark = pytest.mark.unit

CALL_ID = "bbff30c5-866a-41b5-8d0a-5d23d5e19f3e"


def _event(event_type: str, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "SchemaVersion": "1.0",
        "Sequence": 1,
        "InvocationEventType": event_type,
        "CallDetails": {
            "TransactionId": "tx-1",
            "AwsAccountId": "111122223333",
            "AwsRegion": "us-east-1",
            "SipRuleId": "rule-1",
            "SipMediaApplicationId": "sma-1",
            "Participants": [
                {
                    "CallId": CALL_ID,
                    "ParticipantTag": "LEG-A",
                    "To": "+12065550100",
                    "From": "+15105550101",
                    "Direction": "Inbound",
                    "StartTimeInMilliseconds": "1644539405907",
                    "Status": "Connected",
                }
            ],
        },
    }
    body.update(extra)
    return body


def inbound_with_headers(headers: dict[str, str]) -> dict[str, Any]:
    event = _event("NEW_INBOUND_CALL")
    event["CallDetails"]["Participants"][0]["SipHeaders"] = headers
    return event


def with_arguments(event_type: str, arguments: dict[str, str], action_type: str) -> dict[str, Any]:
    event = _event(event_type, ActionData={"Type": action_type, "Parameters": {"Arguments": arguments}})
    event["CallDetails"]["Participants"][0]["Direction"] = "Outbound"
    return event


# ------------------------------------------------------------------------------------------- parsing


def test_parse_inbound_call_with_sip_headers() -> None:
    inv = pstn.parse_event(inbound_with_headers({"X-Workitem-Id": "w-42", "X-Tenant-Id": "acme", "Diversion": "x"}))
    assert inv.event is SmaEvent.NEW_INBOUND_CALL
    assert (inv.schema_version, inv.sequence, inv.transaction_id) == ("1.0", 1, "tx-1")
    assert inv.sip_media_application_id == "sma-1" and inv.aws_region == "us-east-1"
    assert inv.call_id == CALL_ID
    leg = inv.caller
    assert leg is not None
    assert (leg.participant_tag, leg.direction, leg.status) == ("LEG-A", "Inbound", "Connected")
    assert (leg.from_number, leg.to_number) == ("+15105550101", "+12065550100")
    assert leg.sip_header("x-workitem-id") == "w-42"  # header names are case-insensitive
    assert leg.sip_header("X-Missing") is None


def test_parse_accepts_the_older_sip_application_id_spelling() -> None:
    event = _event("NEW_INBOUND_CALL")
    details = event["CallDetails"]
    details["SipApplicationId"] = details.pop("SipMediaApplicationId")
    assert pstn.parse_event(event).sip_media_application_id == "sma-1"


def test_parse_call_update_request_arguments() -> None:
    inv = pstn.parse_event(
        with_arguments("CALL_UPDATE_REQUESTED", {"workitemId": "w-1", "tenantId": "acme"}, "CallUpdateRequest")
    )
    assert inv.event is SmaEvent.CALL_UPDATE_REQUESTED
    assert inv.action_type == "CallUpdateRequest"
    assert inv.arguments == {"workitemId": "w-1", "tenantId": "acme"}


def test_parse_transaction_attributes_and_errors() -> None:
    event = _event(
        "ACTION_FAILED",
        ActionData={
            "Type": "JoinChimeMeeting",
            "Parameters": {"JoinToken": "t", "CallId": CALL_ID},
            "ErrorType": "MeetingNotFound",
            "ErrorMessage": "meeting ended",
        },
    )
    event["CallDetails"]["TransactionAttributes"] = {"tenantId": "acme", "workitemId": "w-1"}
    inv = pstn.parse_event(event)
    assert inv.transaction_attributes == {"tenantId": "acme", "workitemId": "w-1"}
    assert (inv.error_type, inv.error_message) == ("MeetingNotFound", "meeting ended")
    assert inv.action_parameters["CallId"] == CALL_ID


def test_unknown_event_types_parse_as_other() -> None:
    inv = pstn.parse_event(_event("SOMETHING_NEW"))
    assert inv.event is SmaEvent.OTHER and inv.raw_event_type == "SOMETHING_NEW"
    assert pstn.decide(inv).action is CallAction.NOTHING


@pytest.mark.parametrize(
    "event",
    [
        None,
        "NEW_INBOUND_CALL",
        {},
        {"InvocationEventType": "HANGUP", "CallDetails": {}},
        {"InvocationEventType": "HANGUP", "CallDetails": {"TransactionId": "t", "Participants": "LEG-A"}},
        {"InvocationEventType": "HANGUP", "Sequence": "x", "CallDetails": {"TransactionId": "t"}},
        {"InvocationEventType": "HANGUP", "CallDetails": {"TransactionId": "t"}, "ActionData": []},
    ],
)
def test_malformed_events_are_invalid(event: Any) -> None:
    with pytest.raises(Invalid):
        pstn.parse_event(event)


def test_parse_does_not_mutate_the_event() -> None:
    event = inbound_with_headers({"X-Workitem-Id": "w-42", "X-Tenant-Id": "acme"})
    before = copy.deepcopy(event)
    pstn.parse_event(event)
    assert event == before


# ------------------------------------------------------------------------------------------- routing


def test_route_from_inbound_sip_headers() -> None:
    routing = pstn.route(pstn.parse_event(inbound_with_headers({"X-Workitem-Id": "w-42", "X-Tenant-Id": "acme"})))
    assert routing == pstn.CallRouting(tenant_id="acme", workitem_id="w-42", source="sip_headers")
    assert routing.transaction_attributes() == {"tenantId": "acme", "workitemId": "w-42"}


def test_route_from_outbound_call_arguments() -> None:
    inv = pstn.parse_event(with_arguments("NEW_OUTBOUND_CALL", {"workitemId": "w-7", "tenantId": "acme"}, "CallCreateRequest"))
    assert pstn.route(inv) == pstn.CallRouting("acme", "w-7", "arguments")


def test_transaction_attributes_win_over_headers() -> None:
    event = inbound_with_headers({"X-Workitem-Id": "w-forged", "X-Tenant-Id": "other"})
    event["CallDetails"]["TransactionAttributes"] = {"tenantId": "acme", "workitemId": "w-1"}
    assert pstn.route(pstn.parse_event(event)) == pstn.CallRouting("acme", "w-1", "attributes")


def test_ids_never_mix_sources() -> None:
    # The tenant from a header must not pair with a workitem from an argument.
    event = with_arguments("CALL_UPDATE_REQUESTED", {"workitemId": "w-1"}, "CallUpdateRequest")
    event["CallDetails"]["Participants"][0]["SipHeaders"] = {"X-Tenant-Id": "acme"}
    assert pstn.route(pstn.parse_event(event)) is None


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"X-Tenant-Id": "acme"},
        {"X-Workitem-Id": "w-1"},
        {"X-Workitem-Id": "", "X-Tenant-Id": "acme"},
        {"X-Workitem-Id": "w 1; drop", "X-Tenant-Id": "acme"},
        {"X-Workitem-Id": "w" * 200, "X-Tenant-Id": "acme"},
    ],
)
def test_missing_or_unusable_routing_hangs_up(headers: dict[str, str]) -> None:
    inv = pstn.parse_event(inbound_with_headers(headers))
    assert pstn.route(inv) is None
    decision = pstn.decide(inv)
    assert decision.action is CallAction.REJECT_UNROUTED
    assert decision.default_response() == {
        "SchemaVersion": "1.0",
        "Actions": [{"Type": "Hangup", "Parameters": {"SipResponseCode": "480", "CallId": CALL_ID}}],
    }


# ------------------------------------------------------------------------------------------- decisions


def test_routed_inbound_call_joins_the_contact_room() -> None:
    decision = pstn.decide(pstn.parse_event(inbound_with_headers({"X-Workitem-Id": "w-1", "X-Tenant-Id": "acme"})))
    assert decision.action is CallAction.JOIN_CONTACT_ROOM
    assert decision.call_id == CALL_ID and decision.routing is not None
    with pytest.raises(ValueError, match="join token"):
        decision.default_response()


def test_outbound_call_remembers_routing_then_joins_when_answered() -> None:
    placed = pstn.decide(
        pstn.parse_event(with_arguments("NEW_OUTBOUND_CALL", {"workitemId": "w-7", "tenantId": "acme"}, "CallCreateRequest"))
    )
    assert placed.action is CallAction.REMEMBER_ROUTING and placed.call_id == CALL_ID
    assert placed.default_response() == {
        "SchemaVersion": "1.0",
        "Actions": [],
        "TransactionAttributes": {"tenantId": "acme", "workitemId": "w-7"},
    }
    answered = _event("CALL_ANSWERED")
    answered["CallDetails"]["TransactionAttributes"] = {"tenantId": "acme", "workitemId": "w-7"}
    decision = pstn.decide(pstn.parse_event(answered))
    assert decision.action is CallAction.JOIN_CONTACT_ROOM
    assert decision.routing == pstn.CallRouting("acme", "w-7", "attributes")


def test_outbound_call_without_routing_does_nothing_until_answered() -> None:
    decision = pstn.decide(pstn.parse_event(_event("NEW_OUTBOUND_CALL")))
    assert (decision.action, decision.call_id, decision.routing) == (CallAction.NOTHING, CALL_ID, None)
    assert pstn.decide(pstn.parse_event(_event("CALL_ANSWERED"))).action is CallAction.REJECT_UNROUTED


def test_failed_join_hangs_up() -> None:
    event = _event("ACTION_FAILED", ActionData={"Type": "JoinChimeMeeting", "Parameters": {"CallId": CALL_ID}})
    decision = pstn.decide(pstn.parse_event(event))
    assert decision.action is CallAction.HANG_UP_FAILED
    assert decision.default_response()["Actions"] == [
        {"Type": "Hangup", "Parameters": {"SipResponseCode": "0", "CallId": CALL_ID}}
    ]


def test_hangup_means_the_customer_left() -> None:
    event = _event("HANGUP", ActionData={"Type": "Hangup", "Parameters": {"CallId": CALL_ID, "ParticipantTag": "LEG-A"}})
    event["CallDetails"]["Participants"][0]["Status"] = "Disconnected"
    event["CallDetails"]["TransactionAttributes"] = {"tenantId": "acme", "workitemId": "w-1"}
    decision = pstn.decide(pstn.parse_event(event))
    assert decision.action is CallAction.CUSTOMER_LEFT
    assert decision.routing == pstn.CallRouting("acme", "w-1", "attributes")
    assert decision.default_response()["Actions"] == []


@pytest.mark.parametrize("event_type", ["RINGING", "ACTION_SUCCESSFUL", "DIGITS_RECEIVED", "INVALID_LAMBDA_RESPONSE"])
def test_other_events_need_no_action(event_type: str) -> None:
    decision = pstn.decide(pstn.parse_event(_event(event_type)))
    assert decision.action is CallAction.NOTHING
    assert decision.default_response() == {"SchemaVersion": "1.0", "Actions": []}


# ------------------------------------------------------------------------------------------- responses


def test_join_meeting_response_shape() -> None:
    response = pstn.join_meeting_response(
        CALL_ID, "join-token", "meeting-1", transaction_attributes={"tenantId": "acme", "workitemId": "w-1"}
    )
    assert response == {
        "SchemaVersion": "1.0",
        "Actions": [
            {
                "Type": "JoinChimeMeeting",
                "Parameters": {"JoinToken": "join-token", "MeetingId": "meeting-1", "CallId": CALL_ID},
            }
        ],
        "TransactionAttributes": {"tenantId": "acme", "workitemId": "w-1"},
    }


def test_join_meeting_needs_token_and_meeting() -> None:
    with pytest.raises(ValueError):
        pstn.join_meeting_response(CALL_ID, "", "meeting-1")
    with pytest.raises(ValueError):
        pstn.join_meeting_response(CALL_ID, "token", "")


@pytest.mark.parametrize("code", ["0", "480", "486"])
def test_hangup_response_shape(code: str) -> None:
    assert pstn.hangup_response(CALL_ID, code) == {
        "SchemaVersion": "1.0",
        "Actions": [{"Type": "Hangup", "Parameters": {"SipResponseCode": code, "CallId": CALL_ID}}],
    }


def test_hangup_defaults_to_normal_termination_and_refuses_other_codes() -> None:
    assert pstn.hangup_response(CALL_ID)["Actions"][0]["Parameters"]["SipResponseCode"] == "0"
    with pytest.raises(ValueError):
        pstn.hangup_response(CALL_ID, "503")


def test_actions_without_call_id_target_the_invoking_leg() -> None:
    assert pstn.hangup_action("") == {"Type": "Hangup", "Parameters": {"SipResponseCode": "0"}}


def test_empty_response() -> None:
    assert pstn.empty_response() == {"SchemaVersion": "1.0", "Actions": []}


def test_domain_module_is_pure() -> None:
    tree = ast.parse(Path(pstn.__file__).read_text(encoding="utf-8"))
    imported = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    imported |= {node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    roots = {name.split(".")[0] for name in imported}
    assert not roots & {"boto3", "botocore", "chalice", "pynamodb", "jwt", "msgspec", "pydantic"}
    assert not any(name.startswith(("chalicelib.adapters", "chalicelib.services")) for name in imported)


def test_the_customer_leg_is_found_by_its_tag_in_any_case_among_several() -> None:
    event = _event("HANGUP")
    other = {**event["CallDetails"]["Participants"][0], "CallId": "other-leg", "ParticipantTag": "LEG-B"}
    event["CallDetails"]["Participants"] = [other, {**event["CallDetails"]["Participants"][0], "ParticipantTag": "leg-a"}]
    invocation = pstn.parse_event(event)
    assert invocation.call_id == CALL_ID  # LEG-A, though listed second and in lower case
    assert invocation.participant("LEG-B") is not None and invocation.participant("leg-c") is None


def test_a_failed_join_with_routing_hangs_up_and_keeps_the_routing_for_the_next_event() -> None:
    event = _event("ACTION_FAILED", ActionData={"Type": "JoinChimeMeeting", "Parameters": {"CallId": CALL_ID}})
    event["CallDetails"]["TransactionAttributes"] = {"tenantId": "acme", "workitemId": "w-1"}
    decision = pstn.decide(pstn.parse_event(event))
    assert (decision.action, decision.call_id, decision.routing) == (
        CallAction.HANG_UP_FAILED,
        CALL_ID,
        pstn.CallRouting("acme", "w-1", "attributes"),
    )
    assert decision.default_response() == {
        "SchemaVersion": "1.0",
        "Actions": [{"Type": "Hangup", "Parameters": {"SipResponseCode": "0", "CallId": CALL_ID}}],
        "TransactionAttributes": {"tenantId": "acme", "workitemId": "w-1"},
    }


def test_another_failed_action_needs_nothing_and_keeps_the_routing() -> None:
    event = _event("ACTION_FAILED", ActionData={"Type": "PlayAudio", "Parameters": {"CallId": CALL_ID}})
    event["CallDetails"]["TransactionAttributes"] = {"tenantId": "acme", "workitemId": "w-1"}
    decision = pstn.decide(pstn.parse_event(event))
    assert (decision.action, decision.call_id, decision.routing) == (
        CallAction.NOTHING,
        CALL_ID,
        pstn.CallRouting("acme", "w-1", "attributes"),
    )
    assert decision.default_response() == {
        "SchemaVersion": "1.0",
        "Actions": [],
        "TransactionAttributes": {"tenantId": "acme", "workitemId": "w-1"},
    }
    with pytest.raises(ValueError, match="JOIN_CONTACT_ROOM"):
        pstn.CallDecision(CallAction.JOIN_CONTACT_ROOM, CALL_ID).default_response()


def test_fields_an_event_leaves_out_read_as_empty_not_as_a_word() -> None:
    bare = {"CallDetails": {"TransactionId": "tx-1", "Participants": [{}]}}
    invocation = pstn.parse_event(bare)
    assert invocation.participants == (pstn.CallParticipant("", "", "", "", "", "", {}),)
    assert (invocation.schema_version, invocation.sequence, invocation.raw_event_type) == ("", 0, "")
    assert (invocation.sip_media_application_id, invocation.aws_region, invocation.action_type) == ("", "", "")
    assert (invocation.error_type, invocation.error_message) == ("", "")
    assert invocation.event is SmaEvent.OTHER and invocation.call_id == ""


@pytest.mark.parametrize(
    ("path", "where"),
    [
        (("CallDetails",), "CallDetails"),
        (("CallDetails", "Participants", 0), "CallDetails.Participants[]"),
        (("CallDetails", "Participants", 0, "SipHeaders"), "Participants[].SipHeaders"),
        (("CallDetails", "TransactionAttributes"), "CallDetails.TransactionAttributes"),
        (("ActionData",), "ActionData"),
        (("ActionData", "Parameters"), "ActionData.Parameters"),
        (("ActionData", "Parameters", "Arguments"), "ActionData.Parameters.Arguments"),
    ],
)
def test_a_field_that_is_not_an_object_is_named_in_the_refusal(path: tuple[Any, ...], where: str) -> None:
    event = _event("HANGUP", ActionData={"Type": "Hangup", "Parameters": {"Arguments": {}}})
    target: Any = event
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = ["not", "an", "object"]
    with pytest.raises(Invalid, match=rf"^SMA event field {re.escape(where)} must be an object$"):
        pstn.parse_event(event)


def test_what_the_event_says_about_the_application_region_action_and_error() -> None:
    event = _event(
        "ACTION_FAILED",
        ActionData={"Type": "JoinChimeMeeting", "Parameters": {"Arguments": {"workitemId": "w-1", "n": None}}},
        ErrorType="InvalidActionParameter",
        ErrorMessage="bad token",
    )
    event["CallDetails"]["TransactionAttributes"] = {"tenantId": "acme", "skip": None}
    invocation = pstn.parse_event(event)
    assert (invocation.sip_media_application_id, invocation.aws_region, invocation.action_type) == (
        "sma-1",
        "us-east-1",
        "JoinChimeMeeting",
    )
    assert (invocation.error_type, invocation.error_message) == ("InvalidActionParameter", "bad token")
    assert invocation.arguments == {"workitemId": "w-1"} and invocation.transaction_attributes == {"tenantId": "acme"}
    older = _event("HANGUP")
    del older["CallDetails"]["SipMediaApplicationId"]
    older["CallDetails"]["SipApplicationId"] = "sma-old"
    assert pstn.parse_event(older).sip_media_application_id == "sma-old"
    del older["CallDetails"]["SipApplicationId"]
    assert pstn.parse_event(older).sip_media_application_id == ""
