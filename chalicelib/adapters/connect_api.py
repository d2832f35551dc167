"""What the connector asks Amazon Connect (docs/connectors.md): ``StartContactStreaming`` and
``DescribeContact``.

Streaming: once a chat reaches a mapped agent, Connect is asked to stream its items (messages,
events, attachments) to the stack's standard SNS topic. The call names the chat by its initial contact
(streaming follows the chat across transfers) and uses that id as its client token, so a contact
event delivered twice starts one stream. Connect allows two topics per contact: a chat that already
streams to two is refused (``LimitExceededException``), and its workitem shows no messages.

Describing: an open Connect workitem's contact is looked up every 15 minutes, so a workitem whose
``DISCONNECTED`` and ``COMPLETED`` events were lost (EventBridge is best effort) still ends.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from chalicelib.adapters.lazy_client import lazy_client
from chalicelib.adapters.sdk_budget import CONNECT
from chalicelib.domain.connect import instance_id
from chalicelib.services.ports import ChannelFailed


@contextmanager
def _refusals() -> Iterator[None]:
    """Connect's refusals and unreachability as :class:`ChannelFailed` (its reason: the error code)."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        yield
    except ClientError as exc:
        raise ChannelFailed(str(exc.response.get("Error", {}).get("Code", "ClientError"))) from None
    except BotoCoreError as exc:
        raise ChannelFailed(type(exc).__name__) from None


class ConnectClient:
    def __init__(self, region: str, client: Any = None) -> None:
        self._client = lazy_client("connect", region, CONNECT, client)

    @property
    def client(self) -> Any:
        return self._client()

    def start_streaming(self, instance_arn: str, initial_contact_id: str, topic_arn: str) -> str:
        """1 StartContactStreaming; the streaming id."""
        with _refusals():
            answer = self.client.start_contact_streaming(
                InstanceId=instance_id(instance_arn),
                ContactId=initial_contact_id,
                ChatStreamingConfiguration={"StreamingEndpointArn": topic_arn},
                ClientToken=initial_contact_id,
            )
        return str(answer["StreamingId"])

    def disconnect_reason(self, instance_arn: str, contact_id: str) -> str | None:
        """1 DescribeContact: None while the contact goes on, else its reason ("" when none)."""
        with _refusals():
            answer = self.client.describe_contact(InstanceId=instance_id(instance_arn), ContactId=contact_id)
        contact = answer.get("Contact", {})
        if contact.get("DisconnectTimestamp") is None:
            return None
        return str(contact.get("DisconnectReason") or "")
