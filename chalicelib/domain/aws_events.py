"""The envelopes AWS services invoke the connector functions with, read strictly (docs/product.md W14).

Two shapes reach the connectors (docs/connectors.md):

* **SNS → Lambda**: ``{"Records": [{"EventSource": "aws:sns", "Sns": {"Type": "Notification",
  "MessageId", "TopicArn", "Timestamp", "Message", "MessageAttributes"}}]}``. Lambda spells
  ``SigningCertUrl``/``UnsubscribeUrl`` where an HTTP subscription gets ``...URL``: neither is read
  (see :class:`Notification` on why the signature is not checked).
* **EventBridge → Lambda**: ``{"version", "id", "detail-type", "source", "account", "time",
  "region", "resources", "detail"}``.

Nothing here trusts a field for more than its shape: which topic, account, Region and resources are
acceptable is the caller's configuration, checked by the services. Every refusal is
:class:`Invalid` with a message that names the field and never echoes its value. Fields beyond those
read are accepted and ignored, as AWS adds fields over time.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from .errors import Invalid

# SNS's largest message (256 KiB), and the longest ids and ARNs we accept.
MAX_SNS_MESSAGE_BYTES = 256 * 1024
MAX_ARN_CHARS = 2048
MAX_ATTRIBUTES = 32
_SNS_TOPIC_ARN = re.compile(r"arn:aws[a-z-]*:sns:[a-z0-9-]+:\d{12}:[A-Za-z0-9_-]{1,256}\Z")
_ACCOUNT = re.compile(r"\d{12}\Z")
_REGION = re.compile(r"[a-z]{2}(-[a-z]+)+-\d{1,2}\Z")
_TOKEN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,255}\Z")
# AWS's ISO-8601 forms: 2021-08-29T18:39:44Z, 2021-09-08T13:28:24.656Z (or with +00:00).
_AWS_TIME = re.compile(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d{1,9}))?(Z|[+-]\d\d:\d\d)\Z")


def aws_time(value: object, name: str) -> datetime:
    """One of AWS's ISO-8601 timestamps, as an aware UTC datetime."""
    found = _AWS_TIME.match(value) if isinstance(value, str) else None
    if found is None:
        raise Invalid(f"{name} must be an ISO-8601 timestamp such as 2021-09-08T13:28:24.656Z")
    seconds, fraction, offset = found.groups()
    text = seconds + (f".{fraction[:6].ljust(6, '0')}" if fraction else "") + ("+00:00" if offset == "Z" else offset)
    try:
        return datetime.fromisoformat(text).astimezone(UTC)
    except ValueError:
        raise Invalid(f"{name} is not a valid date and time") from None


def text_field(data: Mapping[str, Any], key: str, name: str, *, max_chars: int, required: bool = True) -> str | None:
    """A string field of a payload: present (when ``required``), a JSON string, at most ``max_chars``."""
    value = data.get(key)
    if value is None:
        if required:
            raise Invalid(f"{name} is required")
        return None
    if not isinstance(value, str):
        raise Invalid(f"{name} must be a string")
    if len(value) > max_chars:
        raise Invalid(f"{name} is longer than {max_chars} characters")
    return value


def token_field(data: Mapping[str, Any], key: str, name: str, *, required: bool = True) -> str | None:
    """An identifier AWS generated (a message or event id): 1-256 of ``A-Z a-z 0-9 . _ : -``."""
    value = text_field(data, key, name, max_chars=256, required=required)
    if value is not None and not _TOKEN.match(value):
        raise Invalid(f"{name} is not a valid identifier")
    return value


def any_case(data: Mapping[str, Any], *names: str) -> Any:
    """The value under the first of ``names`` present in ``data``, comparing keys without case: AWS's
    own samples of one event spell a key ``agentInfo``, ``AgentInfo`` or ``agentinfo``."""
    wanted = [n.lower() for n in names]
    folded: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(key, str):
            folded.setdefault(key.lower(), value)
    for name in wanted:
        if name in folded:
            return folded[name]
    return None


def json_object(message: str | Mapping[str, Any], name: str) -> Mapping[str, Any]:
    """``message`` as a JSON object: a JSON text decoded (bounded by its caller's size limit; nesting
    too deep to decode is refused like any other malformed text), or an object already decoded."""
    if isinstance(message, Mapping):
        return message
    try:
        data = json.loads(message)
    except (ValueError, RecursionError):
        raise Invalid(f"{name} is not JSON") from None
    if not isinstance(data, dict):
        raise Invalid(f"{name} must be a JSON object")
    return data


def mapping(value: object, name: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise Invalid(f"{name} must be a JSON object")
    return value


# --- SNS -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Notification:
    """One SNS notification as Lambda delivers it.

    Its signature is not verified: Lambda is invoked by SNS itself, through the function's resource
    policy that only lets this stack's topic invoke it (``SourceArn``), so no one else can hand the
    function a notification; the signature protects HTTP(S) subscribers, whose endpoint anyone can
    call. The services still check :attr:`topic_arn` against the stack's topic.
    """

    message_id: str
    topic_arn: str
    timestamp: datetime
    message: str
    # String-typed message attributes (name -> value); others are left out.
    attributes: Mapping[str, str] = field(default_factory=dict)


def sns_records(event: object) -> list[Mapping[str, Any]]:
    """The records of a Lambda event from SNS (``{"Records": [...]}``); each is read by :func:`notification`."""
    records = mapping(event, "the event").get("Records")
    if not isinstance(records, list) or not records:
        raise Invalid("the event has no Records")
    return [r if isinstance(r, Mapping) else {} for r in records]


def notification(record: Mapping[str, Any]) -> Notification:
    """One SNS record of a Lambda event, strictly: a ``Notification`` with its id, topic, time and message."""
    source = record.get("EventSource")
    if source is not None and source != "aws:sns":
        raise Invalid("EventSource must be aws:sns")
    sns = mapping(record.get("Sns"), "Sns")
    if sns.get("Type") != "Notification":
        raise Invalid("Sns.Type must be Notification")
    message_id = token_field(sns, "MessageId", "Sns.MessageId")
    topic_arn = text_field(sns, "TopicArn", "Sns.TopicArn", max_chars=MAX_ARN_CHARS)
    if topic_arn is None or not _SNS_TOPIC_ARN.match(topic_arn):
        raise Invalid("Sns.TopicArn is not an SNS topic ARN")
    message = text_field(sns, "Message", "Sns.Message", max_chars=MAX_SNS_MESSAGE_BYTES)
    assert message_id is not None and message is not None  # required above
    if len(message.encode("utf-8", "surrogatepass")) > MAX_SNS_MESSAGE_BYTES:
        raise Invalid("Sns.Message is larger than 256 KiB")
    return Notification(
        message_id=message_id,
        topic_arn=topic_arn,
        timestamp=aws_time(sns.get("Timestamp"), "Sns.Timestamp"),
        message=message,
        attributes=_attributes(sns.get("MessageAttributes")),
    )


def _attributes(value: object) -> dict[str, str]:
    if value is None:
        return {}
    attributes = mapping(value, "Sns.MessageAttributes")
    if len(attributes) > MAX_ATTRIBUTES:
        raise Invalid(f"Sns.MessageAttributes has more than {MAX_ATTRIBUTES} attributes")
    out: dict[str, str] = {}
    for name, attribute in attributes.items():
        if not isinstance(attribute, Mapping):
            raise Invalid("each of Sns.MessageAttributes must be a JSON object")
        kind, text = attribute.get("Type"), attribute.get("Value")
        if kind == "String" and isinstance(text, str) and len(text) <= 1024:
            out[str(name)] = text
    return out


def sns_topic_account(topic_arn: str) -> str:
    """The account that owns an SNS topic (its ARN's fifth field)."""
    return topic_arn.split(":")[4]


# --- EventBridge ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BusEvent:
    """An EventBridge event: who sent it, from where, about which resources, and its ``detail``."""

    event_id: str
    source: str
    detail_type: str
    account: str
    region: str
    time: datetime
    resources: tuple[str, ...]
    detail: Mapping[str, Any]


def bus_event(event: object) -> BusEvent:
    """An EventBridge event, strictly: its envelope's fields present and well formed."""
    data = mapping(event, "the event")
    event_id = token_field(data, "id", "id")
    source = text_field(data, "source", "source", max_chars=256)
    detail_type = text_field(data, "detail-type", "detail-type", max_chars=256)
    account = text_field(data, "account", "account", max_chars=12)
    region = text_field(data, "region", "region", max_chars=32)
    if account is None or not _ACCOUNT.match(account):
        raise Invalid("account must be a 12-digit AWS account id")
    if region is None or not _REGION.match(region):
        raise Invalid("region must be an AWS Region such as us-east-1")
    resources = data.get("resources", [])
    if not isinstance(resources, list) or len(resources) > 20:
        raise Invalid("resources must be a list of at most 20 ARNs")
    if not all(isinstance(r, str) and len(r) <= MAX_ARN_CHARS for r in resources):
        raise Invalid("resources must be a list of ARNs")
    assert event_id is not None and source is not None and detail_type is not None
    return BusEvent(
        event_id=event_id,
        source=source,
        detail_type=detail_type,
        account=account,
        region=region,
        time=aws_time(data.get("time"), "time"),
        resources=tuple(resources),
        detail=mapping(data.get("detail"), "detail"),
    )
