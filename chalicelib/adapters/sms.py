"""SMS to customers through AWS End User Messaging SMS (``pinpoint-sms-voice-v2`` SendTextMessage)."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from chalicelib.adapters.lazy_client import lazy_client
from chalicelib.adapters.sdk_budget import SMS
from chalicelib.services.ports import ChannelFailed, SmsContext


def context_of(context: SmsContext) -> dict[str, str]:
    """The ``Context`` map SendTextMessage keeps with a text."""
    return {"tenantId": context.tenant_id, "workitemId": context.workitem_id, "messageId": context.message_id}


class EndUserMessagingSms:
    def __init__(self, region: str, client: Any = None) -> None:
        self._client = lazy_client("pinpoint-sms-voice-v2", region, SMS, client)

    @property
    def client(self) -> Any:
        return self._client()

    def send_text(self, origination: str, destination: str, text: str, context: SmsContext) -> str:
        """The message id; :class:`ChannelFailed` when the service refused or could not be reached."""
        try:
            out = self.client.send_text_message(
                DestinationPhoneNumber=destination,
                OriginationIdentity=origination,
                MessageBody=text,
                MessageType="TRANSACTIONAL",
                Context=context_of(context),
            )
        except ClientError as exc:
            raise ChannelFailed(exc.response.get("Error", {}).get("Code", "ClientError")) from exc
        except BotoCoreError as exc:
            raise ChannelFailed(type(exc).__name__) from exc
        return str(out.get("MessageId", ""))
