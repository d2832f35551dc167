"""Amazon Connect's chat message streaming (``StartContactStreaming``, docs/connectors.md).

The connector asks Connect to stream a chat's items (messages, events, attachments) to the stack's
standard SNS topic once the chat reaches a mapped agent. The call names the chat by its initial
contact (streaming follows the chat across transfers) and uses that id as its client token, so a
contact event delivered twice starts one stream. Connect allows two topics per contact: a chat that
already streams to two is refused (``LimitExceededException``), and its workitem shows no messages.
"""

from __future__ import annotations

from typing import Any

from chalicelib.adapters.lazy_client import lazy_client
from chalicelib.adapters.sdk_budget import CONNECT
from chalicelib.domain.connect import instance_id
from chalicelib.services.ports import ChannelFailed


class ConnectStreaming:
    def __init__(self, region: str, client: Any = None) -> None:
        self._client = lazy_client("connect", region, CONNECT, client)

    @property
    def client(self) -> Any:
        return self._client()

    def start(self, instance_arn: str, initial_contact_id: str, topic_arn: str) -> str:
        """1 StartContactStreaming; the streaming id."""
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            answer = self.client.start_contact_streaming(
                InstanceId=instance_id(instance_arn),
                ContactId=initial_contact_id,
                ChatStreamingConfiguration={"StreamingEndpointArn": topic_arn},
                ClientToken=initial_contact_id,
            )
        except ClientError as exc:
            raise ChannelFailed(str(exc.response.get("Error", {}).get("Code", "ClientError"))) from None
        except BotoCoreError as exc:
            raise ChannelFailed(type(exc).__name__) from None
        return str(answer["StreamingId"])
