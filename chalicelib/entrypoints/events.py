"""Lambda functions that are not API calls: the workitems table's stream, the schedule, the webhook
delivery queue and the SIP media application."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from chalicelib import bootstrap
from chalicelib.bootstrap import Services
from chalicelib.entrypoints.wire import WIRE
from chalicelib.services.fanout import Committed
from chalicelib.services.messagebus import ChangesCommitted


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
    """The delivery and SMS queues (Lambda's SQS event sources): sign and post, SMS, statuses. A
    partial batch response names the messages that come back after their backoff delay."""
    again = bootstrap.services(WIRE).integrations.handle(records)
    return {"batchItemFailures": [{"itemIdentifier": message_id} for message_id in again]}


def on_sip_media_event(event: dict[str, Any]) -> dict[str, Any]:
    """SIP media application invocations (PSTN callers joining a contact room)."""
    return bootstrap.services(WIRE).voice.on_sip_media_event(event)
