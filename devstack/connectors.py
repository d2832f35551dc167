"""Local stand-ins for what AWS does when a connector's event arrives (docs/connectors.md): a
``POST /_local/...`` with the message AWS would publish runs the same function, in the envelope
Lambda hands it. Local only: on AWS no route reaches these functions.

``POST /_local/sns/sms-inbound``: the body is the SNS message of an inbound text (End User Messaging
SMS's JSON); the ``sms_inbound`` function gets it in an SNS notification of a local topic. 202 with
the function's outcome after it ran; 400 in the contract's error shape when the body is not an
inbound text (the function would only log it).

``POST /_local/events``: the body is an EventBridge event (an Amazon Connect contact event); the
``connect_events`` function gets it as EventBridge would hand it. 202 with the outcome; 400 when the
function refused it (its reason). The local stack's ConnectInstanceArns and account are
``DEVSTACK_CONNECT_INSTANCE`` (a demo instance by default) and ``000000000000``.

``POST /_local/sns/connect-chat``: the body is one streamed Amazon Connect chat item (the SNS message
Connect publishes: a Connect Participant ``Item``); the ``connect_events`` function gets it in an SNS
notification of a local topic. 202 with the outcome; 400 when the body is not a chat item. The local
stack starts no streaming (no Amazon Connect): post the items a chat of a connected contact would bring.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from chalice.app import Chalice
from chalice.local import LambdaContext

SMS_INBOUND_HANDLER = "sms_inbound"
CONNECT_HANDLER = "connect_events"
LOCAL_ACCOUNT = "000000000000"
MAX_BODY_BYTES = 256 * 1024

Route = Callable[[bytes], tuple[int, Any]]


def _invalid(message: str) -> tuple[int, Any]:
    return 400, {"error": {"code": "invalid", "message": message}}


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def sns_event(topic_arn: str, message: str) -> dict[str, Any]:
    """The Lambda event SNS delivers for one notification (Lambda's spelling of its fields)."""
    return {
        "Records": [
            {
                "EventSource": "aws:sns",
                "EventVersion": "1.0",
                "EventSubscriptionArn": f"{topic_arn}:{uuid.uuid4()}",
                "Sns": {
                    "Type": "Notification",
                    "MessageId": str(uuid.uuid4()),
                    "TopicArn": topic_arn,
                    "Subject": None,
                    "Message": message,
                    "Timestamp": _now(),
                    "SignatureVersion": "1",
                    "Signature": "",
                    "SigningCertUrl": "",
                    "UnsubscribeUrl": "",
                    "MessageAttributes": {},
                },
            }
        ]
    }


def _sns_route(handler: Any, function_name: str, topic_arn: str, read: Callable[[str], object]) -> Route:
    """A route whose body is one SNS message of ``topic_arn``: refused 400 (the reason) when ``read``
    refuses it, else handed to the function in an SNS notification; 202 with the outcome."""
    from chalicelib.domain.errors import Invalid

    def route(body: bytes) -> tuple[int, Any]:
        if len(body) > MAX_BODY_BYTES:
            return _invalid("the body is larger than an SNS message may be (256 KiB)")
        try:
            message = body.decode("utf-8")
            read(message)
        except UnicodeDecodeError:
            return _invalid("the body is not UTF-8")
        except Invalid as exc:
            return _invalid(str(exc))
        context = LambdaContext(function_name=function_name, memory_size=1024, max_runtime_ms=60_000)
        result = handler(sns_event(topic_arn, message), context)
        return 202, {"outcome": (result.get("outcomes") or ["invalid"])[0]}

    return route


def routes(app: Chalice, region: str) -> dict[str, Route]:
    """The local POST routes of the connectors the app has functions for."""
    from chalicelib.entrypoints.aws_payloads import chat_item, inbound_text

    out: dict[str, Route] = {}
    handler = app.handler_map.get(SMS_INBOUND_HANDLER)
    if handler is not None:
        topic = f"arn:aws:sns:{region}:{LOCAL_ACCOUNT}:local-inbound-sms"
        out["/_local/sns/sms-inbound"] = _sns_route(
            handler, SMS_INBOUND_HANDLER, topic, lambda message: inbound_text(message, datetime.now(UTC))
        )
    connect = app.handler_map.get(CONNECT_HANDLER)
    if connect is not None:

        def bus_event(body: bytes) -> tuple[int, Any]:
            import json

            if len(body) > MAX_BODY_BYTES:
                return _invalid("the body is larger than an EventBridge event may be (256 KiB)")
            try:
                event = json.loads(body)
            except (UnicodeDecodeError, ValueError, RecursionError):
                return _invalid("the body is not JSON")
            if not isinstance(event, dict) or "Records" in event:
                return _invalid("the body must be an EventBridge event (a JSON object with source, detail-type and detail)")
            context = LambdaContext(function_name=CONNECT_HANDLER, memory_size=1024, max_runtime_ms=60_000)
            outcome = connect(event, context).get("outcome")
            if outcome == "invalid":
                return _invalid("the function refused the event: not an Amazon Connect contact event of a listed instance")
            return 202, {"outcome": outcome}

        out["/_local/events"] = bus_event
        chat_topic = f"arn:aws:sns:{region}:{LOCAL_ACCOUNT}:local-connect-chat"
        out["/_local/sns/connect-chat"] = _sns_route(connect, CONNECT_HANDLER, chat_topic, chat_item)
    return out
