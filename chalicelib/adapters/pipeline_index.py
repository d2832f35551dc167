"""DynamoDB storage of the media insights pipelines this stack started (docs/data-model.md): one
``PIPELINE#<id>`` item each in the directory table, holding its tenant and workitem."""

from __future__ import annotations

from datetime import UTC, datetime

from pynamodb.exceptions import DoesNotExist

from chalicelib.adapters.dynamo import PipelineItem


def _pk(pipeline_id: str) -> str:
    return f"PIPELINE#{pipeline_id}"


class DynamoPipelineIndex:
    def remember(self, pipeline_id: str, tenant_id: str, workitem_id: str, expires_at: int) -> None:
        """1 PutItem (starting the same pipeline again writes the same item)."""
        PipelineItem(
            _pk(pipeline_id), tenant_id=tenant_id, workitem_id=workitem_id, ttl=datetime.fromtimestamp(expires_at, UTC)
        ).save()

    def owner(self, pipeline_id: str) -> tuple[str, str] | None:
        """1 GetItem (strongly consistent: the pipeline's first record may follow its start closely)."""
        try:
            item = PipelineItem.get(_pk(pipeline_id), "PIPELINE", consistent_read=True)
        except DoesNotExist:
            return None
        return item.tenant_id, item.workitem_id
