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
    go to the stream's handlers in ``bootstrap.event_handlers`` (pushes in commit order, outbound
    webhooks and channel delivery queued).

    Never fails the batch for one change (a retried batch would push its other changes twice);
    what could not be pushed is in the timeline for ``timeline.get``."""
    from chalicelib.adapters.stream import committed_changes

    return consume(bootstrap.services(WIRE), committed_changes(event.get("Records") or []))


def consume(services: Services, committed: Sequence[Committed]) -> dict[str, Any]:
    """Hand one batch of committed changes to the stream's handlers; the answer Lambda gets."""
    batch = ChangesCommitted(committed)
    services.bus.publish(batch)
    return {"pushed": batch.tally.get("pushed", 0), "batchItemFailures": []}


def escalate() -> dict[str, Any]:
    """Scheduled sweep: escalate assistance requests whose delay has passed."""
    return bootstrap.services(WIRE).assistance.escalate_due()


def deliver_webhooks(records: list[dict[str, Any]]) -> dict[str, Any]:
    """The webhook delivery queue (Lambda's SQS event source): sign and post, SMS, statuses.
    Raises when a message must come back after its backoff delay."""
    return bootstrap.services(WIRE).integrations.handle(records)


def on_sip_media_event(event: dict[str, Any]) -> dict[str, Any]:
    """SIP media application invocations (PSTN callers joining a contact room)."""
    return bootstrap.services(WIRE).voice.on_sip_media_event(event)
