"""Lambda functions that are not API calls: the workitems table's stream, the schedule, the webhook
delivery queue, the SIP media application and the connectors (SNS, EventBridge)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

from chalicelib import bootstrap
from chalicelib.bootstrap import Services
from chalicelib.domain.aws_events import Notification
from chalicelib.entrypoints.aws_payloads import batch_failures, chat_item, contact_event, inbound_text, queue_messages
from chalicelib.entrypoints.wire import WIRE
from chalicelib.services.attention import is_timer
from chalicelib.services.fanout import Committed
from chalicelib.services.messagebus import ChangesCommitted

log = logging.getLogger(__name__)


def fan_out(event: dict[str, Any]) -> dict[str, Any]:
    """The workitems table's stream (Lambda event source mapping): the committed changes of the batch
    go to the stream's handlers in ``bootstrap.event_handlers``: pushes in commit order, then their
    webhook deliveries queued.

    Never fails the batch for a push (a retried batch would push its other changes twice); what
    could not be pushed is in the timeline for ``timeline.get``. Deliveries SQS refuses are sent
    again within the invocation and otherwise kept in the dead-letter queue; only changes whose
    deliveries could be neither queued nor kept are handed back (a partial batch response), and the
    mapping retries from the first of them, then sends their coordinates to its failure destination."""
    from chalicelib.adapters.stream import committed_changes

    batch = consume(bootstrap.services(WIRE), committed_changes(event.get("Records") or []))
    return {"batchItemFailures": [{"itemIdentifier": c.sequence} for c in batch.handed_back if c.sequence]}


def consume(services: Services, committed: Sequence[Committed]) -> ChangesCommitted:
    """Hand one batch of committed changes to the stream's handlers; returns the event, with the
    changes a handler handed back."""
    batch = ChangesCommitted(committed)
    services.bus.publish(batch)
    return batch


def escalate() -> dict[str, Any]:
    """Scheduled sweep: escalate assistance requests whose delay has passed."""
    return bootstrap.services(WIRE).assistance.escalate_due()


def deliver_webhooks(records: list[dict[str, Any]]) -> dict[str, Any]:
    """The delivery, SMS and attention timer queues (Lambda's SQS event sources): sign and post, SMS,
    statuses; attention timers (docs/attention.md). A partial batch response names the messages that
    come back after their backoff delay."""
    services = bootstrap.services(WIRE)
    messages = queue_messages(records)
    timers = [m for m in messages if is_timer(m)]
    others = [m for m in messages if not is_timer(m)]
    failures = services.attention.on_timers(timers) if timers else []
    if others:
        failures += services.integrations.handle(others)
    return batch_failures(failures)


def on_sip_media_event(event: dict[str, Any]) -> dict[str, Any]:
    """SIP media application invocations (PSTN callers joining a contact room)."""
    return bootstrap.services(WIRE).voice.on_sip_media_event(event)


def _refused(source: str, what: str, reason: object) -> str:
    """A connector's input that cannot be read: a log line and a metric, no retry (it stays unreadable)."""
    from chalicelib import metrics

    log.warning("%s refused: %s", what, reason, extra={"event": "connector_event", "source": source, "outcome": "invalid"})
    metrics.CONNECTOR_EVENTS.add(Source=source, Outcome="invalid")
    return "invalid"


def _each_notification(
    event: dict[str, Any], source: str, what: str, topic: str, apply: Callable[[Notification], str]
) -> dict[str, Any]:
    """The SNS records of ``event``, each a notification of ``topic`` ('' = any: the local stack)
    handed to ``apply``, which answers its outcome. A record that is not a notification of the topic,
    or whose message ``apply`` refuses (:class:`Invalid`), is refused with a log line: retrying cannot
    mend it. A store that fails raises, and SNS invokes the function again."""
    from chalicelib.domain.aws_events import notification, sns_records
    from chalicelib.domain.errors import Invalid

    try:
        records = sns_records(event)
    except Invalid as exc:
        return {"outcomes": [_refused(source, f"{what} event", exc)]}
    outcomes: list[str] = []
    for record in records:
        try:
            note = notification(record)
            if topic and note.topic_arn != topic:
                raise Invalid(f"Sns.TopicArn is not this stack's {what} topic")
            outcomes.append(apply(note))
        except Invalid as exc:
            outcomes.append(_refused(source, f"{what} record", exc))
    return {"outcomes": outcomes}


def on_sms_inbound(event: dict[str, Any]) -> dict[str, Any]:
    """The inbound texts' SNS topic (docs/connectors.md): each record's notification read strictly
    and handed to the inbound SMS connector (a text is applied once, by its ``inboundMessageId``)."""
    services = bootstrap.services(WIRE)
    return _each_notification(
        event,
        "sms",
        "inbound SMS",
        services.settings.sms_inbound_topic_arn,
        lambda note: services.inbound_sms.receive(inbound_text(note.message, note.timestamp)),
    )


def on_connect_chat(event: dict[str, Any]) -> dict[str, Any]:
    """The chat items Amazon Connect streams to the stack's topic (docs/connectors.md), each read
    strictly and applied once by its id."""
    from chalicelib import metrics

    services = bootstrap.services(WIRE)

    def apply(note: Notification) -> str:
        item = chat_item(note.message, note.attributes)
        outcome = services.amazon_connect.on_chat_item(item, note.attributes.get("InstanceId"))
        metrics.CONNECTOR_EVENTS.add(Source="connect", Outcome=outcome)
        return outcome

    return _each_notification(event, "connect", "Amazon Connect chat", services.settings.connect_chat_topic_arn, apply)


def on_connect_event(event: dict[str, Any]) -> dict[str, Any]:
    """Amazon Connect (docs/connectors.md): an EventBridge contact event from the stack's rule, the
    chat items Connect streams to the stack's SNS topic (``Records`` from SNS), or the connector
    queue's delayed end checks (``Records`` from SQS: a partial batch response names those to retry).
    An event that is not a contact event of a listed instance in the stack's account and Region is
    refused with a log line; a store that fails raises (EventBridge and SNS invoke again, applied once)."""
    from chalicelib import metrics
    from chalicelib.domain.aws_events import bus_event
    from chalicelib.domain.errors import DomainError, Invalid

    connect = bootstrap.services(WIRE).amazon_connect
    records = event.get("Records") if isinstance(event, dict) else None
    if isinstance(records, list) and records and all(isinstance(r, dict) and "Sns" in r for r in records):
        return on_connect_chat(event)
    if isinstance(records, list):
        failures = []
        for message in queue_messages(r for r in records if isinstance(r, dict)):
            try:
                outcome = connect.on_end_check(message.body)
            except DomainError:
                log.warning("an Amazon Connect end check failed; it comes back", exc_info=True)
                failures.append(message.message_id)
                continue
            metrics.CONNECTOR_EVENTS.add(Source="connect", Outcome=outcome)
        return batch_failures(failures)
    try:
        received = bus_event(event)
        outcome = connect.on_event(received, contact_event(received))
    except Invalid as exc:
        return {"outcome": _refused("connect", "Amazon Connect event", exc)}
    log.info("Amazon Connect event: %s", outcome, extra={"event": "connector_event", "source": "connect", "outcome": outcome})
    metrics.CONNECTOR_EVENTS.add(Source="connect", Outcome=outcome)
    return {"outcome": outcome}


def on_media_pipeline_event(event: dict[str, Any]) -> dict[str, Any]:
    """Amazon Chime's media pipeline events on EventBridge (docs/transcript.md): a call's audio stream
    started (the second of agent and customer starts the transcript), or its media insights pipeline
    failed or stopped; and the stack's schedule, which sweeps the pipelines left behind. Events from
    another account or Region, or about pipelines the stack did not start, are refused or ignored with
    a log line."""
    from chalicelib.domain.aws_events import bus_event
    from chalicelib.domain.errors import Invalid
    from chalicelib.entrypoints.transcript_payloads import media_event

    voice = bootstrap.services(WIRE).voice
    if isinstance(event, dict) and event.get("detail-type") == "Scheduled Event":
        # The stack's TranscriptSweepRule (EventBridge's schedule; nothing in it is read).
        return {"deleted": voice.sweep_transcripts()}
    try:
        read = media_event(bus_event(event))
        outcome = voice.on_media_event(read) if read is not None else "ignored"
    except Invalid as exc:
        return {"outcome": _refused("chime", "Amazon Chime media pipeline event", exc)}
    log.info(
        "Amazon Chime media pipeline event: %s",
        outcome,
        extra={"event": "connector_event", "source": "chime", "outcome": outcome},
    )
    return {"outcome": outcome}


def on_transcript_records(event: dict[str, Any]) -> dict[str, Any]:
    """The media insights pipeline's Kinesis Data Stream sink (docs/transcript.md): final utterances
    stored as ``transcript`` entries (once each), partial ones pushed. Only records of the stack's own
    stream are read; a partial batch response names the first record to hand over again."""
    from chalicelib.domain.errors import Invalid
    from chalicelib.entrypoints.transcript_payloads import batch_response, kinesis_record, sink_record
    from chalicelib.services.transcript import INVALID, Outcomes, SinkItem

    service = bootstrap.services(WIRE).transcript
    raw = event.get("Records") if isinstance(event, dict) else None
    outcomes, items = Outcomes(), []
    for index, record in enumerate(raw if isinstance(raw, list) else []):
        try:
            sequence, data = kinesis_record(record, service.settings.transcript_stream_arn)
            items.append(SinkItem(index, sequence, sink_record(data)))
        except Invalid as exc:
            log.warning("transcript record refused: %s", exc, extra={"event": "transcript_record", "outcome": INVALID})
            outcomes.add(INVALID)
    service.consume(items, outcomes)
    first = min(outcomes.failed, key=lambda i: i.index, default=None)
    return batch_response(first.sequence if first else None)
