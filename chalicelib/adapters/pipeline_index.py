"""DynamoDB storage of the media pipelines this stack started for live transcripts (docs/data-model.md):
one ``PIPELINE#<id>`` item each in the directory table, holding its tenant, workitem and start time."""

from __future__ import annotations

from datetime import UTC, datetime

from pynamodb.exceptions import DoesNotExist

from chalicelib.adapters.dynamo import PipelineItem
from chalicelib.domain.transcript import PipelineOwner


def _pk(pipeline_id: str) -> str:
    return f"PIPELINE#{pipeline_id}"


class DynamoPipelineIndex:
    def remember(self, pipeline_id: str, owner: PipelineOwner, expires_at: int) -> None:
        """1 PutItem (starting the same pipeline again writes the same item)."""
        PipelineItem(
            _pk(pipeline_id),
            tenant_id=owner.tenant_id,
            workitem_id=owner.workitem_id,
            since=owner.since,
            ttl=datetime.fromtimestamp(expires_at, UTC),
        ).save()

    def owner(self, pipeline_id: str) -> PipelineOwner | None:
        """1 GetItem (strongly consistent: the pipeline's first event may follow its start closely)."""
        try:
            item = PipelineItem.get(_pk(pipeline_id), "PIPELINE", consistent_read=True)
        except DoesNotExist:
            return None
        return PipelineOwner(item.tenant_id, item.workitem_id, int(item.since or 0))
