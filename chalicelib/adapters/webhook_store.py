"""DynamoDB storage of outbound webhook subscriptions, SMS settings and delivery statuses.

Subscriptions live in the directory table under ``pk = T#<tenant>#WHSUB``: listing a tenant's is one
Query (never a Scan), reading one for a delivery one GetItem.
"""

from __future__ import annotations

from typing import Any

from pynamodb.exceptions import DoesNotExist, UpdateError

from chalicelib.adapters.dynamo import ChannelSettingsItem, EntryItem, WebhookSubscriptionItem
from chalicelib.adapters.store_keys import entry_sk, tenant_prefix, workitem_pk
from chalicelib.adapters.workitem_store import to_entry
from chalicelib.domain.timeline import TimelineEntry
from chalicelib.domain.webhooks import Subscription


def _pk(tenant_id: str) -> str:
    return f"{tenant_prefix(tenant_id)}#WHSUB"


def _to_subscription(tenant_id: str, item: WebhookSubscriptionItem) -> Subscription:
    return Subscription(
        tenant_id,
        item.sk,
        item.url,
        tuple(str(e) for e in item.events or ()),
        bool(item.enabled),
        item.secret,
        previous_secret=item.previous_secret,
        previous_until=int(item.previous_until) if item.previous_until is not None else None,
    )


class DynamoWebhookStore:
    def list(self, tenant_id: str) -> list[Subscription]:
        """1 Query."""
        return [_to_subscription(tenant_id, i) for i in WebhookSubscriptionItem.query(_pk(tenant_id))]

    def get(self, tenant_id: str, subscription_id: str) -> Subscription | None:
        """1 GetItem."""
        try:
            return _to_subscription(tenant_id, WebhookSubscriptionItem.get(_pk(tenant_id), subscription_id))
        except DoesNotExist:
            return None

    def put(self, sub: Subscription, now: str) -> None:
        """1 PutItem."""
        WebhookSubscriptionItem(
            _pk(sub.tenant_id),
            sub.subscription_id,
            url=sub.url,
            events=list(sub.events),
            enabled=sub.enabled,
            secret=sub.secret,
            previous_secret=sub.previous_secret,
            previous_until=sub.previous_until,
            updated_at=now,
        ).save()

    def delete(self, tenant_id: str, subscription_id: str) -> bool:
        """1 DeleteItem (ALL_OLD tells whether it existed)."""
        ddb = WebhookSubscriptionItem._get_connection()
        out = ddb.delete_item(_pk(tenant_id), subscription_id, return_values="ALL_OLD")
        return bool(out.get("Attributes"))

    def sms_origination(self, tenant_id: str) -> str | None:
        """1 GetItem."""
        try:
            return ChannelSettingsItem.get(f"{tenant_prefix(tenant_id)}#CHANNELS", "SMS").origination_identity
        except DoesNotExist:
            return None

    def set_sms_origination(self, tenant_id: str, identity: str, now: str) -> None:
        """1 UpdateItem."""
        ChannelSettingsItem(f"{tenant_prefix(tenant_id)}#CHANNELS", "SMS").update(
            actions=[ChannelSettingsItem.origination_identity.set(identity), ChannelSettingsItem.updated_at.set(now)]
        )

    def set_delivery(self, tenant_id: str, workitem_id: str, seq: int, status: str) -> TimelineEntry | None:
        """1 UpdateItem of the entry (ALL_NEW). ``failed`` never replaces ``sent`` (a retry that
        failed after another attempt got through); None when the entry is gone or already sent."""
        item = EntryItem(workitem_pk(tenant_id, workitem_id), entry_sk(seq))
        condition: Any = EntryItem.pk.exists()
        if status == "failed":
            condition &= EntryItem.delivery.does_not_exist() | (EntryItem.delivery != "sent")
        try:
            item.update(actions=[EntryItem.delivery.set(status)], condition=condition)
        except UpdateError as exc:
            if exc.cause_response_code == "ConditionalCheckFailedException":
                return None
            raise
        return to_entry(item, workitem_id)
