"""Outbound delivery of agent messages to customers on SMS and social channels.

The message is already on the workitem's timeline when it is handed over here; this adapter tells
the channel provider. It keeps what it handed over (the local stack shows it) and logs the hand-off
without the text. Signed outbound webhooks (B7 in docs/product.md) plug in behind the same port.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from typing import Any

from chalicelib.domain.coaching import Workitem
from chalicelib.domain.timeline import TimelineEntry

log = logging.getLogger(__name__)


class RecordingOutbound:
    def __init__(self, keep: int = 1000) -> None:
        self._lock = threading.Lock()
        self.delivered: deque[dict[str, Any]] = deque(maxlen=keep)

    def deliver(self, workitem: Workitem, entry: TimelineEntry) -> None:
        record = {
            "tenantId": workitem.tenant_id,
            "workitemId": workitem.workitem_id,
            "channel": workitem.channel.value,
            "customerId": workitem.customer_id,
            "entry": entry.to_customer_wire(),
        }
        with self._lock:
            self.delivered.append(record)
        log.info("outbound %s message %s for workitem %s handed to the channel provider",
                 workitem.channel.value, entry.message_id, workitem.workitem_id)
