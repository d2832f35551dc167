"""What AWS sends the connectors, read strictly (chalicelib/domain/aws_events.py,
chalicelib/entrypoints/aws_payloads.py; docs/product.md W14.2, W14.4): AWS's documented shapes are
accepted, anything else refused by name."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chalicelib.domain.aws_events import any_case, aws_time, bus_event, notification, sns_records
from chalicelib.domain.errors import Invalid
from chalicelib.domain.inbound_sms import customer_id, e164, is_e164
from chalicelib.entrypoints.aws_payloads import batch_failures, inbound_text, queue_messages

pytestmark = pytest.mark.unit

AT = datetime(2026, 12, 7, 22, 50, tzinfo=UTC)
# AWS End User Messaging SMS's documented example (docs.aws.amazon.com/sms-voice/latest/userguide/two-way-sms-payload.html).
DOCUMENTED = {
    "originationNumber": "+14255550182",
    "destinationNumber": "+12125550101",
    "messageKeyword": "JOIN",
    "messageBody": "EXAMPLE",
    "inboundMessageId": "cae173d2-66b9-564c-8309-21f858e9fb84",
    "previousPublishedMessageId": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
}


def record(**sns: Any) -> dict[str, Any]:
    base = {
        "Type": "Notification",
        "MessageId": "52ed5e3d-0000-4000-8000-000000000000",
        "TopicArn": "arn:aws:sns:us-east-1:123456789012:coaching-InboundSmsTopic-ABC",
        "Message": json.dumps(DOCUMENTED),
        "Timestamp": "2016-09-25T05:37:51.150Z",
        "MessageAttributes": {"Name": {"Type": "String", "Value": "v"}, "Bin": {"Type": "Binary", "Value": "AAE="}},
    }
    return {"EventSource": "aws:sns", "Sns": {**base, **sns}}


@pytest.mark.parametrize(
    ("given_", "expected"),
    [
        ("+14255550182", "+14255550182"),
        ("0014255550182", "+14255550182"),
        ("+1 (425) 555-0182", "+14255550182"),
        ("tel:+1-425-555-0182", "+14255550182"),
        ("+44\u00a020 7946 0958", "+442079460958"),
        ("4255550182", None),  # a national number: no country is guessed
        ("+0425555", None),
        ("+1234567890123456", None),  # 16 digits
        ("+1\u0664\u0662\u0665", None),  # another script's digits
        ("", None),
    ],
)
def test_e164_normalizes_what_people_write_and_guesses_nothing(given_: str, expected: str | None) -> None:
    assert e164(given_) == expected


def test_only_sms_customer_ids_are_normalized() -> None:
    assert customer_id(True, "0014255550182") == "+14255550182"
    assert customer_id(True, "cust-1") == "cust-1"  # not a number: kept as given
    assert customer_id(False, "0014255550182") == "0014255550182"


@given(st.text(max_size=20))
def test_whatever_e164_returns_is_e164(text: str) -> None:
    out = e164(text)
    assert out is None or is_e164(out)


def test_the_documented_inbound_text_is_read() -> None:
    text = inbound_text(json.dumps(DOCUMENTED), AT)
    assert (text.origination, text.destination, text.body) == ("+14255550182", "+12125550101", "EXAMPLE")
    assert text.inbound_message_id == DOCUMENTED["inboundMessageId"] and text.keyword == "JOIN"
    assert text.received_at == AT
    # Fields AWS may add later are read past; the optional ones may be missing.
    extra = {k: v for k, v in DOCUMENTED.items() if k not in ("messageKeyword", "previousPublishedMessageId")}
    assert inbound_text({**extra, "newField": {"x": 1}}, AT).keyword is None


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"originationNumber": None}, "originationNumber is required"),
        ({"destinationNumber": 12125550101}, "destinationNumber must be a string"),
        ({"destinationNumber": "2125550101"}, "destinationNumber is not a phone number"),
        ({"messageBody": ""}, "messageBody has no visible"),
        ({"messageBody": "x" * 8001}, "messageBody is longer"),
        ({"inboundMessageId": "a b"}, "inboundMessageId is not a valid identifier"),
        ({"inboundMessageId": "x" * 257}, "inboundMessageId is longer"),
        ({"messageKeyword": ["JOIN"]}, "messageKeyword must be a string"),
    ],
)
def test_an_inbound_text_is_refused_by_the_field_at_fault(change: dict[str, Any], named: str) -> None:
    with pytest.raises(Invalid, match=named):
        inbound_text({**DOCUMENTED, **change}, AT)


@pytest.mark.parametrize("message", ["", "nul", "[]", '"text"', "{" * 100_000])
def test_a_message_that_is_not_a_json_object_is_refused(message: str) -> None:
    with pytest.raises(Invalid):
        inbound_text(message, AT)


def test_an_sns_record_as_lambda_delivers_it_is_read() -> None:
    note = notification(record())
    assert note.topic_arn.endswith(":coaching-InboundSmsTopic-ABC")
    assert note.timestamp == datetime(2016, 9, 25, 5, 37, 51, 150000, tzinfo=UTC)
    assert note.attributes == {"Name": "v"}  # binary attributes are left out
    assert json.loads(note.message) == DOCUMENTED


@pytest.mark.parametrize(
    ("sns", "named"),
    [
        ({"Type": "SubscriptionConfirmation"}, "Sns.Type"),
        ({"TopicArn": "arn:aws:sqs:us-east-1:123456789012:q"}, "Sns.TopicArn"),
        ({"MessageId": None}, "Sns.MessageId"),
        ({"Message": 5}, "Sns.Message"),
        ({"Message": "é" * (128 * 1024 + 1)}, "256 KiB"),
        ({"Timestamp": "2016-09-25 05:37:51"}, "Sns.Timestamp"),
        ({"MessageAttributes": []}, "Sns.MessageAttributes"),
    ],
)
def test_an_sns_record_is_refused_by_the_field_at_fault(sns: dict[str, Any], named: str) -> None:
    with pytest.raises(Invalid, match=named):
        notification(record(**sns))


def test_records_must_be_a_non_empty_list() -> None:
    event: Any
    for event in ({}, {"Records": []}, {"Records": {}}, []):
        with pytest.raises(Invalid):
            sns_records(event)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2021-08-29T18:39:44Z", datetime(2021, 8, 29, 18, 39, 44, tzinfo=UTC)),
        ("2021-09-08T13:28:24.656Z", datetime(2021, 9, 8, 13, 28, 24, 656000, tzinfo=UTC)),
        ("2021-09-08T15:28:24.656123456+02:00", datetime(2021, 9, 8, 13, 28, 24, 656123, tzinfo=UTC)),
    ],
)
def test_aws_times(text: str, expected: datetime) -> None:
    assert aws_time(text, "t") == expected


@pytest.mark.parametrize("text", ["2021-02-30T00:00:00Z", "2021-08-29", 1630262384, "2021-08-29T18:39:44"])
def test_bad_aws_times_are_refused(text: Any) -> None:
    with pytest.raises(Invalid):
        aws_time(text, "t")


def test_an_eventbridge_envelope_is_read_and_checked() -> None:
    event = {
        "version": "0",
        "id": "bc198b12-2a16-c92b-5925-5a0a06a39bf2",
        "detail-type": "Amazon Connect Contact Event",
        "source": "aws.connect",
        "account": "352672060859",
        "time": "2021-08-29T18:39:44Z",
        "region": "us-west-2",
        "resources": ["arn:aws:connect:us-west-2:352672060859:instance/f75946c0-bc38-4252-8174-468f6ac2543d"],
        "detail": {"contactId": "58092a11", "eventType": "DISCONNECTED"},
    }
    got = bus_event(event)
    assert (got.source, got.account, got.region, got.detail["eventType"]) == (
        "aws.connect",
        "352672060859",
        "us-west-2",
        "DISCONNECTED",
    )
    bad: dict[str, Any]
    for bad in ({"account": "35267206085"}, {"region": "Oregon"}, {"resources": "arn"}, {"detail": []}, {"id": None}):
        with pytest.raises(Invalid):
            bus_event({**event, **bad})


def test_keys_are_found_whatever_their_case() -> None:
    assert any_case({"AgentInfo": {"AgentArn": "a"}}, "agentInfo")["AgentArn"] == "a"
    assert any_case({"agentARN": "b"}, "agentArn", "AgentARN") == "b"
    assert any_case({"x": 1}, "y") is None


def test_sqs_records_become_queue_messages_and_failures_a_partial_batch_response() -> None:
    records: list[dict[str, Any]] = [
        {"messageId": "m-1", "receiptHandle": "r-1", "body": "{}", "attributes": {"ApproximateReceiveCount": "3"}},
        {"messageId": "m-2", "body": None, "attributes": {"ApproximateReceiveCount": "many"}},
    ]
    first, second = queue_messages(records)
    assert (first.message_id, first.body, first.receipt, first.receives) == ("m-1", "{}", "r-1", 3)
    assert (second.message_id, second.body, second.receipt, second.receives) == ("m-2", "", "", 1)
    assert batch_failures(["m-2"]) == {"batchItemFailures": [{"itemIdentifier": "m-2"}]}


# AWS's example of a streamed chat item (docs.aws.amazon.com/connect/latest/adminguide/sns-payload.html).
CHAT_ITEM = (
    '{"AbsoluteTime":"2021-09-08T13:28:24.656Z","Content":"help","ContentType":"text/plain",'
    '"Id":"333333333-be0d-4a44-889d-d2a86fc06f0c","Type":"MESSAGE","ParticipantId":"bbbbbbbb-c562-4d95-b76c-dcbca8b4b5f7",'
    '"DisplayName":"Jane","ParticipantRole":"CUSTOMER","InitialContactId":"33333333-abc5-46db-9ad5-d772559ab556",'
    '"ContactId":"33333333-abc5-46db-9ad5-d772559ab556"}'
)


def test_awss_chat_item_example_is_a_customer_message_of_its_initial_contact() -> None:
    from chalicelib.domain.connect import ChatLine, ChatRole, chat_line
    from chalicelib.entrypoints.aws_payloads import chat_item

    found = chat_item(CHAT_ITEM)
    assert (found.item_id, found.role, found.workitem_id) == (
        "333333333-be0d-4a44-889d-d2a86fc06f0c",
        ChatRole.CUSTOMER,
        "connect-33333333-abc5-46db-9ad5-d772559ab556",
    )
    assert found.at == datetime(2021, 9, 8, 13, 28, 24, 656000, tzinfo=UTC)
    assert chat_line(found) == ChatLine("customer", "help")
    # A transferred chat's item may name only its current contact: the attribute names the first.
    bare = {k: v for k, v in json.loads(CHAT_ITEM).items() if k != "InitialContactId"}
    assert chat_item(bare, {"InitialContactId": "first-contact"}).initial_contact_id == "first-contact"
    assert chat_item(bare).initial_contact_id == "33333333-abc5-46db-9ad5-d772559ab556"


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"Id": None}, "Id"),
        ({"Type": 7}, "Type"),
        ({"Content": "x" * 16385}, "Content"),
        ({"AbsoluteTime": "2021-09-08 13:28"}, "AbsoluteTime"),
        ({"Attachments": [{"AttachmentId": "a"}]}, "AttachmentName"),
        ({"Attachments": "receipt.png"}, "Attachments"),
    ],
)
def test_a_malformed_chat_item_is_refused_naming_the_field(change: dict[str, Any], named: str) -> None:
    from chalicelib.entrypoints.aws_payloads import chat_item

    body = {k: v for k, v in {**json.loads(CHAT_ITEM), **change}.items() if v is not None}
    with pytest.raises(Invalid, match=named):
        chat_item(body)
