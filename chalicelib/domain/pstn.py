"""The customer's phone leg: reading SIP media application events and answering them (V2, V5 in docs/product.md).

A PSTN caller reaches a voice workitem through an Amazon Chime SDK SIP media application (SMA). The
SMA invokes a Lambda function for every telephony event and runs the *actions* that function returns.
This module is the pure half of that Lambda: it turns the invocation event into typed values, finds
which tenant and workitem the call belongs to, decides what the handler should do, and builds the
action responses. Creating the contact room and the customer's attendee is I/O and lives in the
voice service; nothing here talks to AWS.

Shapes follow the Amazon Chime SDK Developer Guide pages:

- "Understanding telephony events for Amazon Chime SDK PSTN audio service" — the envelope
  (``SchemaVersion``, ``Sequence``, ``InvocationEventType``, ``CallDetails.TransactionId``,
  ``CallDetails.Participants[].CallId / ParticipantTag / To / From / Direction / Status``).
- "Using SIP headers in the Amazon Chime SDK PTSN audio service" (sic) — custom headers must start with
  ``x-`` and arrive in ``CallDetails.Participants[].SipHeaders`` of the ``NEW_INBOUND_CALL`` event.
- "Updating in-progress calls" / UpdateSipMediaApplicationCall — ``CALL_UPDATE_REQUESTED`` carries the
  caller's arguments in ``ActionData.Parameters.Arguments``. For CreateSipMediaApplicationCall the
  ``ArgumentsMap`` reaches ``NEW_OUTBOUND_CALL`` in the same place (``ActionData.Parameters.Arguments``,
  as AWS's own amazon-chime-sdk-click-to-call sample reads it).
- The transaction-attributes pages (e.g. "Handling ACTION_SUCCESSFUL events") — key/value pairs
  returned as ``TransactionAttributes`` come back in ``CallDetails.TransactionAttributes`` of every
  later invocation of the same transaction; we use them to remember the routing.
- "JoinChimeMeeting" — parameters ``JoinToken`` (required), ``CallId``, ``ParticipantTag``
  (ignored when ``CallId`` is given) and ``MeetingId`` (required for meetings created through the
  Chime SDK Meetings namespace, which ours are).
- "Hangup" — parameters ``CallId``, ``ParticipantTag``, ``SipResponseCode`` (``0`` normal
  termination, ``480`` unavailable, ``486`` busy).
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .errors import Invalid
from .ids import is_id

SCHEMA_VERSION = "1.0"

# Names the product uses to carry routing through the phone network and the SMA.
WORKITEM_HEADER = "X-Workitem-Id"
TENANT_HEADER = "X-Tenant-Id"
WORKITEM_ARGUMENT = "workitemId"
TENANT_ARGUMENT = "tenantId"

LEG_A = "LEG-A"
LEG_B = "LEG-B"

# SipResponseCode values the Hangup action accepts.
SIP_NORMAL = "0"
SIP_UNAVAILABLE = "480"
SIP_BUSY = "486"
_SIP_CODES = frozenset({SIP_NORMAL, SIP_UNAVAILABLE, SIP_BUSY})

# Header values come from SIP infrastructure outside our control: only ids (the one id rule) are
# accepted, so nothing odd reaches a DynamoDB key or a Chime ExternalMeetingId.


class SmaEvent(enum.StrEnum):
    """``InvocationEventType`` values the PSTN audio service sends (OTHER for anything newer)."""

    NEW_INBOUND_CALL = "NEW_INBOUND_CALL"
    NEW_OUTBOUND_CALL = "NEW_OUTBOUND_CALL"
    RINGING = "RINGING"
    CALL_ANSWERED = "CALL_ANSWERED"
    ACTION_SUCCESSFUL = "ACTION_SUCCESSFUL"
    ACTION_FAILED = "ACTION_FAILED"
    ACTION_INTERRUPTED = "ACTION_INTERRUPTED"
    DIGITS_RECEIVED = "DIGITS_RECEIVED"
    CALL_UPDATE_REQUESTED = "CALL_UPDATE_REQUESTED"
    HANGUP = "HANGUP"
    INVALID_LAMBDA_RESPONSE = "INVALID_LAMBDA_RESPONSE"
    OTHER = "OTHER"

    @classmethod
    def parse(cls, raw: str) -> SmaEvent:
        try:
            return cls(raw)
        except ValueError:
            return cls.OTHER


@dataclass(frozen=True)
class CallParticipant:
    """One leg of the call as ``CallDetails.Participants[]`` describes it."""

    call_id: str
    participant_tag: str
    direction: str = ""
    status: str = ""
    from_number: str = ""
    to_number: str = ""
    sip_headers: Mapping[str, str] = field(default_factory=dict)

    def sip_header(self, name: str) -> str | None:
        """The value of SIP header ``name`` (SIP header names are case-insensitive)."""
        wanted = name.lower()
        for key, value in self.sip_headers.items():
            if key.lower() == wanted:
                return value
        return None


@dataclass(frozen=True)
class SmaInvocation:
    """A parsed SIP media application invocation event."""

    schema_version: str
    sequence: int
    event: SmaEvent
    raw_event_type: str
    transaction_id: str
    sip_media_application_id: str = ""
    aws_region: str = ""
    participants: tuple[CallParticipant, ...] = ()
    action_type: str = ""
    action_parameters: Mapping[str, Any] = field(default_factory=dict)
    arguments: Mapping[str, str] = field(default_factory=dict)
    transaction_attributes: Mapping[str, str] = field(default_factory=dict)
    error_type: str = ""
    error_message: str = ""

    def participant(self, tag: str) -> CallParticipant | None:
        for p in self.participants:
            if p.participant_tag.upper() == tag.upper():
                return p
        return None

    @property
    def caller(self) -> CallParticipant | None:
        """The customer's leg: LEG-A (the leg that reached, or was placed by, the SMA)."""
        return self.participant(LEG_A) or (self.participants[0] if self.participants else None)

    @property
    def call_id(self) -> str:
        """The customer leg's CallId ('' when the event names no participant)."""
        leg = self.caller
        return leg.call_id if leg else ""


@dataclass(frozen=True)
class CallRouting:
    """Which tenant and workitem a phone call belongs to, and where we learnt it."""

    tenant_id: str
    workitem_id: str
    source: str  # "attributes" | "arguments" | "sip_headers"

    def transaction_attributes(self) -> dict[str, str]:
        """Attributes to return with our actions so every later invocation carries the routing."""
        return {TENANT_ARGUMENT: self.tenant_id, WORKITEM_ARGUMENT: self.workitem_id}


class CallAction(enum.StrEnum):
    """What the SMA handler should do with an invocation."""

    JOIN_CONTACT_ROOM = "join_contact_room"  # create/find the contact room, answer with JoinChimeMeeting
    REMEMBER_ROUTING = "remember_routing"  # outbound call placed: keep routing in transaction attributes
    REJECT_UNROUTED = "reject_unrouted"  # no workitem for this call: hang up, nobody is billed
    HANG_UP_FAILED = "hang_up_failed"  # joining the meeting failed: hang up the caller
    CUSTOMER_LEFT = "customer_left"  # the caller hung up: end voice for the workitem
    NOTHING = "nothing"  # acknowledge with no actions


@dataclass(frozen=True)
class CallDecision:
    action: CallAction
    call_id: str
    routing: CallRouting | None = None

    def default_response(self) -> dict[str, Any]:
        """The response when the handler has nothing to add (everything but JOIN_CONTACT_ROOM).

        JOIN_CONTACT_ROOM needs a join token, which only the voice service can create, so it has no
        default; asking for one is a programming error.
        """
        attributes = self.routing.transaction_attributes() if self.routing else None
        if self.action is CallAction.JOIN_CONTACT_ROOM:
            raise ValueError("JOIN_CONTACT_ROOM needs join_meeting_response(...) with a join token")
        if self.action is CallAction.REJECT_UNROUTED:
            return hangup_response(self.call_id, SIP_UNAVAILABLE)
        if self.action is CallAction.HANG_UP_FAILED:
            return hangup_response(self.call_id, SIP_NORMAL, transaction_attributes=attributes)
        return empty_response(transaction_attributes=attributes)


# --------------------------------------------------------------------------------------------- parsing


def _mapping(value: Any, what: str) -> Mapping[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise Invalid(f"SMA event field {what} must be an object")
    return value


def _str_map(value: Any, what: str) -> dict[str, str]:
    return {str(k): str(v) for k, v in _mapping(value, what).items() if v is not None}


def _participants(raw: Any) -> tuple[CallParticipant, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise Invalid("SMA event field CallDetails.Participants must be a list")
    legs = []
    for item in raw:
        p = _mapping(item, "CallDetails.Participants[]")
        legs.append(
            CallParticipant(
                call_id=str(p.get("CallId", "")),
                participant_tag=str(p.get("ParticipantTag", "")),
                direction=str(p.get("Direction", "")),
                status=str(p.get("Status", "")),
                from_number=str(p.get("From", "")),
                to_number=str(p.get("To", "")),
                sip_headers=_str_map(p.get("SipHeaders"), "Participants[].SipHeaders"),
            )
        )
    return tuple(legs)


def parse_event(event: Any) -> SmaInvocation:
    """Parse a SIP media application invocation; raise :class:`Invalid` when it is not one.

    Unknown event types parse as :attr:`SmaEvent.OTHER` (the handler answers them with no actions)
    so that a new event type from AWS never breaks a live call.
    """
    body = _mapping(event, "event")
    details = _mapping(body.get("CallDetails"), "CallDetails")
    transaction_id = details.get("TransactionId")
    if not isinstance(transaction_id, str) or not transaction_id:
        raise Invalid("not a SIP media application event: CallDetails.TransactionId is missing")
    raw_type = str(body.get("InvocationEventType", ""))
    try:
        sequence = int(body.get("Sequence", 0))
    except (TypeError, ValueError) as exc:
        raise Invalid("SMA event field Sequence must be a number") from exc

    action = _mapping(body.get("ActionData"), "ActionData")
    parameters = _mapping(action.get("Parameters"), "ActionData.Parameters")
    return SmaInvocation(
        schema_version=str(body.get("SchemaVersion", "")),
        sequence=sequence,
        event=SmaEvent.parse(raw_type),
        raw_event_type=raw_type,
        transaction_id=transaction_id,
        sip_media_application_id=str(details.get("SipMediaApplicationId") or details.get("SipApplicationId") or ""),
        aws_region=str(details.get("AwsRegion", "")),
        participants=_participants(details.get("Participants")),
        action_type=str(action.get("Type", "")),
        action_parameters=dict(parameters),
        arguments=_str_map(parameters.get("Arguments"), "ActionData.Parameters.Arguments"),
        transaction_attributes=_str_map(details.get("TransactionAttributes"), "CallDetails.TransactionAttributes"),
        error_type=str(action.get("ErrorType") or body.get("ErrorType") or ""),
        error_message=str(action.get("ErrorMessage") or body.get("ErrorMessage") or ""),
    )


def _clean_id(value: str | None) -> str | None:
    if value is None:
        return None
    value = value.strip()
    return value if is_id(value) else None


def route(invocation: SmaInvocation) -> CallRouting | None:
    """Find the tenant and workitem of a call, or None when the call carries no usable routing.

    Looked up in order: our own transaction attributes (set on an earlier invocation), the call
    arguments (``ArgumentsMap`` of CreateSipMediaApplicationCall or ``Arguments`` of
    UpdateSipMediaApplicationCall), then the customer leg's custom SIP headers. Both ids must come
    from the same place, so a header can never pair with an argument from another source.
    """
    sources: list[tuple[str, str | None, str | None]] = [
        (
            "attributes",
            invocation.transaction_attributes.get(TENANT_ARGUMENT),
            invocation.transaction_attributes.get(WORKITEM_ARGUMENT),
        ),
        ("arguments", invocation.arguments.get(TENANT_ARGUMENT), invocation.arguments.get(WORKITEM_ARGUMENT)),
    ]
    leg = invocation.caller
    if leg is not None:
        sources.append(("sip_headers", leg.sip_header(TENANT_HEADER), leg.sip_header(WORKITEM_HEADER)))
    for source, tenant, workitem in sources:
        tenant_id, workitem_id = _clean_id(tenant), _clean_id(workitem)
        if tenant_id and workitem_id:
            return CallRouting(tenant_id=tenant_id, workitem_id=workitem_id, source=source)
    return None


def decide(invocation: SmaInvocation) -> CallDecision:
    """What the SMA handler should do with ``invocation`` (pure: the handler performs it)."""
    routing = route(invocation)
    call_id = invocation.call_id
    event = invocation.event

    if event in (SmaEvent.NEW_INBOUND_CALL, SmaEvent.CALL_ANSWERED, SmaEvent.CALL_UPDATE_REQUESTED):
        # CALL_ANSWERED is the outbound leg picking up; CALL_UPDATE_REQUESTED lets the backend move a
        # held call into the contact room later (UpdateSipMediaApplicationCall).
        if routing is None:
            return CallDecision(CallAction.REJECT_UNROUTED, call_id)
        return CallDecision(CallAction.JOIN_CONTACT_ROOM, call_id, routing)
    if event is SmaEvent.NEW_OUTBOUND_CALL:
        # The response to NEW_OUTBOUND_CALL runs no actions; it only stores the routing.
        if routing is None:
            return CallDecision(CallAction.NOTHING, call_id)
        return CallDecision(CallAction.REMEMBER_ROUTING, call_id, routing)
    if event is SmaEvent.ACTION_FAILED and invocation.action_type == "JoinChimeMeeting":
        return CallDecision(CallAction.HANG_UP_FAILED, call_id, routing)
    if event is SmaEvent.HANGUP:
        return CallDecision(CallAction.CUSTOMER_LEFT, call_id, routing)
    return CallDecision(CallAction.NOTHING, call_id, routing)


# ------------------------------------------------------------------------------------------- responses


def sma_response(*actions: Mapping[str, Any], transaction_attributes: Mapping[str, str] | None = None) -> dict[str, Any]:
    """A Lambda response for the SIP media application: ``{"SchemaVersion": "1.0", "Actions": [...]}``."""
    body: dict[str, Any] = {"SchemaVersion": SCHEMA_VERSION, "Actions": [dict(a) for a in actions]}
    if transaction_attributes:
        body["TransactionAttributes"] = dict(transaction_attributes)
    return body


def join_meeting_action(call_id: str, join_token: str, meeting_id: str) -> dict[str, Any]:
    """The JoinChimeMeeting action that puts call leg ``call_id`` into a Chime SDK meeting."""
    if not join_token or not meeting_id:
        raise ValueError("JoinChimeMeeting needs a join token and a meeting id")
    parameters: dict[str, str] = {"JoinToken": join_token, "MeetingId": meeting_id}
    if call_id:
        parameters["CallId"] = call_id
    return {"Type": "JoinChimeMeeting", "Parameters": parameters}


def hangup_action(call_id: str, sip_code: str = SIP_NORMAL) -> dict[str, Any]:
    """The Hangup action for call leg ``call_id`` (``0`` normal, ``480`` unavailable, ``486`` busy)."""
    if sip_code not in _SIP_CODES:
        raise ValueError(f"Hangup supports SipResponseCode 0, 480 or 486, not {sip_code!r}")
    parameters: dict[str, str] = {"SipResponseCode": sip_code}
    if call_id:
        parameters["CallId"] = call_id
    return {"Type": "Hangup", "Parameters": parameters}


def join_meeting_response(
    call_id: str,
    join_token: str,
    meeting_id: str,
    *,
    transaction_attributes: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """Answer the call by joining the customer's leg to the contact room."""
    return sma_response(join_meeting_action(call_id, join_token, meeting_id), transaction_attributes=transaction_attributes)


def hangup_response(
    call_id: str, sip_code: str = SIP_NORMAL, *, transaction_attributes: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """Hang up call leg ``call_id``. On an unanswered inbound call nobody is charged."""
    return sma_response(hangup_action(call_id, sip_code), transaction_attributes=transaction_attributes)


def empty_response(*, transaction_attributes: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Acknowledge an invocation without running any action."""
    return sma_response(transaction_attributes=transaction_attributes)
