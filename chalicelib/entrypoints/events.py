"""Lambda functions that are not API calls: the workitems table's stream, the schedule, the webhook
delivery queue and the SIP media application."""

from __future__ import annotations

from typing import Any

from chalicelib import bootstrap


def fan_out(event: dict[str, Any]) -> dict[str, Any]:
    """The workitems table's stream (Lambda event source mapping): push committed changes in order,
    then queue their webhook deliveries.

    Never fails the batch for a push (a retried batch would push its other changes twice); what
    could not be pushed is in the timeline for ``timeline.get``. Deliveries SQS refuses are sent
    again within the invocation and otherwise kept in the dead-letter queue; only changes whose
    deliveries could be neither queued nor kept are handed back (a partial batch response), and the
    mapping retries from the first of them, then sends their coordinates to its failure destination."""
    from chalicelib.adapters.stream import committed_changes

    services = bootstrap.services()
    committed = committed_changes(event.get("Records") or [])
    services.fanout.deliver(committed)
    lost = services.integrations.publish(committed)  # queued, never posted here
    return {"batchItemFailures": [{"itemIdentifier": c.sequence} for c in lost if c.sequence]}


def escalate() -> dict[str, Any]:
    """Scheduled sweep: escalate assistance requests whose delay has passed."""
    return bootstrap.services().assistance.escalate_due()


def deliver_webhooks(records: list[dict[str, Any]]) -> dict[str, Any]:
    """The delivery and SMS queues (Lambda's SQS event sources): sign and post, SMS, statuses. A
    partial batch response names the messages that come back after their backoff delay."""
    return bootstrap.services().integrations.handle(records)


def on_sip_media_event(event: dict[str, Any]) -> dict[str, Any]:
    """SIP media application invocations (PSTN callers joining a contact room)."""
    return bootstrap.services().voice.on_sip_media_event(event)
