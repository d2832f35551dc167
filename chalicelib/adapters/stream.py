"""Records of the workitems table's DynamoDB stream, as the Lambda event source mapping delivers them.

Only changes of a workitem item (``sk = "W"``) that carry a fan-out note are kept; entries, message
index items, TTL deletions and commits that push nothing are skipped (the deployed event source
mapping filters them out already; the local stack and tests read the raw stream).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from chalicelib.adapters.dynamo import FANOUT_NOTE_ATTRIBUTE, WorkitemItem
from chalicelib.adapters.workitem_store import to_workitem
from chalicelib.services.fanout import Committed, decode_note

log = logging.getLogger(__name__)


def committed_changes(records: Iterable[dict[str, Any]]) -> list[Committed]:
    """The committed changes in ``records`` (stream order kept); malformed records are logged and skipped."""
    out: list[Committed] = []
    for record in records:
        if record.get("eventName") not in ("INSERT", "MODIFY"):
            continue
        data = record.get("dynamodb") or {}
        new = data.get("NewImage") or {}
        if (data.get("Keys") or {}).get("sk", {}).get("S") != "W" or FANOUT_NOTE_ATTRIBUTE not in new:
            continue
        try:
            after = to_workitem(WorkitemItem.from_raw_data(new))
            old = data.get("OldImage")
            before = to_workitem(WorkitemItem.from_raw_data(old)) if old else after
            note = decode_note(new[FANOUT_NOTE_ATTRIBUTE]["S"], after.workitem_id)
        except Exception:  # a record this code cannot read must not block the ones behind it
            log.exception("skipping unreadable stream record %s", data.get("SequenceNumber"))
            continue
        out.append(Committed(before, after, note, str(data.get("SequenceNumber") or "")))
    return out
