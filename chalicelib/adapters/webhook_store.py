"""DynamoDB storage of outbound webhook subscriptions, SMS settings and delivery statuses, and what
fair delivery keeps: each receiver's health and each tenant's slow lane (domain.fairness).

Subscriptions live in the directory table under ``pk = T#<tenant>#WHSUB``: listing a tenant's is one
Query (never a Scan), reading one for a delivery one GetItem, which brings the receiver's health with
it. A tenant's slow lane is a handful of items under ``pk = T#<tenant>#WHLANE``, one per place, each
taken with a conditional write that holds it until a deadline, so a holder that dies frees its place.
"""

from __future__ import annotations

import json
import zlib
from datetime import UTC, datetime, timedelta
from typing import Any

from pynamodb.exceptions import DoesNotExist, PutError, TransactWriteError, UpdateError
from pynamodb.transactions import TransactWrite

from chalicelib.adapters.dynamo import (
    ChannelSettingsItem,
    ClaimItem,
    ContactItem,
    EntryItem,
    SlowLanePlace,
    WebhookSubscriptionItem,
)
from chalicelib.adapters.pynamodb_compat import low_level
from chalicelib.adapters.store_keys import cancel_codes, claim_pk, entry_sk, tenant_prefix, workitem_pk
from chalicelib.adapters.workitem_store import to_entry
from chalicelib.domain.fairness import Health
from chalicelib.domain.timeline import TimelineEntry
from chalicelib.domain.webhooks import Subscription
from chalicelib.services.ports import ClaimedElsewhere

# A followed Amazon Connect contact is remembered this long (chats last at most 7 days in Connect).
CONTACT_TTL_DAYS = 8


def _pk(tenant_id: str) -> str:
    return f"{tenant_prefix(tenant_id)}#WHSUB"


def _lane_pk(tenant_id: str) -> str:
    return f"{tenant_prefix(tenant_id)}#WHLANE"


def _failed_condition(exc: UpdateError) -> bool:
    return exc.cause_response_code == "ConditionalCheckFailedException"


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
        health=Health(bool(item.h_fast), int(item.h_failures or 0), int(item.h_open_until or 0)),
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
        """1 PutItem (the receiver's health starts afresh)."""
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

    def sms_settings(self, tenant_id: str) -> tuple[str | None, str | None]:
        """1 GetItem."""
        try:
            item = ChannelSettingsItem.get(f"{tenant_prefix(tenant_id)}#CHANNELS", "SMS")
        except DoesNotExist:
            return None, None
        return item.origination_identity, item.phone_number

    def set_sms_settings(self, tenant_id: str, identity: str, number: str | None, previous: str | None, now: str) -> None:
        """1 TransactWriteItems: the claim of ``number`` (conditional: unclaimed or the tenant's own),
        the settings item, and the release of ``previous`` (conditional: still the tenant's)."""
        settings = ChannelSettingsItem(f"{tenant_prefix(tenant_id)}#CHANNELS", "SMS")
        try:
            with TransactWrite(connection=low_level(ClaimItem)) as tx:
                if number:
                    tx.save(
                        ClaimItem(claim_pk("SMS", number), "CLAIM", tenant_id=tenant_id, claimed_at=now),
                        condition=ClaimItem.pk.does_not_exist() | (ClaimItem.tenant_id == tenant_id),
                    )
                tx.update(
                    settings,
                    actions=[
                        ChannelSettingsItem.origination_identity.set(identity),
                        ChannelSettingsItem.phone_number.set(number) if number else ChannelSettingsItem.phone_number.remove(),
                        ChannelSettingsItem.updated_at.set(now),
                    ],
                )
                if previous and previous != number:
                    tx.delete(
                        ClaimItem(claim_pk("SMS", previous), "CLAIM"),
                        condition=ClaimItem.pk.does_not_exist() | (ClaimItem.tenant_id == tenant_id),
                    )
        except TransactWriteError as exc:
            codes = cancel_codes(exc)
            if number and codes and codes[0] == "ConditionalCheckFailed":
                raise ClaimedElsewhere(number) from exc
            raise

    def claimant(self, kind: str, key: str) -> str | None:
        """1 GetItem."""
        try:
            return ClaimItem.get(claim_pk(kind.upper(), key), "CLAIM").tenant_id
        except DoesNotExist:
            return None

    def connect_instance(self, tenant_id: str) -> str | None:
        """1 GetItem."""
        try:
            return ChannelSettingsItem.get(f"{tenant_prefix(tenant_id)}#CHANNELS", "CONNECT").instance_arn
        except DoesNotExist:
            return None

    def set_connect(self, tenant_id: str, instance_arn: str, agents: dict[str, str], previous: str | None, now: str) -> None:
        """1 TransactWriteItems: the instance's claim with its agents (conditional: unclaimed or the
        tenant's own), the tenant's pointer to it, the release of ``previous``."""
        try:
            with TransactWrite(connection=low_level(ClaimItem)) as tx:
                tx.save(
                    ClaimItem(
                        claim_pk("CONNECT", instance_arn),
                        "CLAIM",
                        tenant_id=tenant_id,
                        claimed_at=now,
                        agents=json.dumps(agents, separators=(",", ":"), sort_keys=True),
                    ),
                    condition=ClaimItem.pk.does_not_exist() | (ClaimItem.tenant_id == tenant_id),
                )
                tx.save(
                    ChannelSettingsItem(
                        f"{tenant_prefix(tenant_id)}#CHANNELS", "CONNECT", instance_arn=instance_arn, updated_at=now
                    )
                )
                if previous and previous != instance_arn:
                    tx.delete(
                        ClaimItem(claim_pk("CONNECT", previous), "CLAIM"),
                        condition=ClaimItem.pk.does_not_exist() | (ClaimItem.tenant_id == tenant_id),
                    )
        except TransactWriteError as exc:
            codes = cancel_codes(exc)
            if codes and codes[0] == "ConditionalCheckFailed":
                raise ClaimedElsewhere(instance_arn) from exc
            raise

    def connect_claim(self, instance_arn: str) -> tuple[str, dict[str, str]] | None:
        """1 GetItem."""
        try:
            item = ClaimItem.get(claim_pk("CONNECT", instance_arn), "CLAIM")
        except DoesNotExist:
            return None
        agents = json.loads(item.agents) if item.agents else {}
        return item.tenant_id, {str(k): str(v) for k, v in agents.items()}

    def contact(self, initial_contact_id: str) -> tuple[str, str, str] | None:
        """1 GetItem (strongly consistent: the end check decides on it)."""
        try:
            item = ContactItem.get(f"CONTACT#{initial_contact_id}", "CONTACT", consistent_read=True)
        except DoesNotExist:
            return None
        return item.tenant_id, item.contact_id, item.connected_at

    def set_contact(self, initial_contact_id: str, tenant_id: str, contact_id: str, connected_at: str) -> bool:
        """1 conditional PutItem: absent, or recorded as connected earlier (ISO times compare as text)."""
        try:
            ContactItem(
                f"CONTACT#{initial_contact_id}",
                "CONTACT",
                tenant_id=tenant_id,
                contact_id=contact_id,
                connected_at=connected_at,
                ttl=datetime.now(UTC) + timedelta(days=CONTACT_TTL_DAYS),
            ).save(condition=ContactItem.pk.does_not_exist() | (ContactItem.connected_at <= connected_at))
        except PutError as exc:
            if exc.cause_response_code == "ConditionalCheckFailedException":
                return False
            raise
        return True

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

    # --- fair delivery ----------------------------------------------------------------------------

    def set_health(self, tenant_id: str, subscription_id: str, health: Health) -> None:
        """1 UpdateItem, conditional on the subscription still existing."""
        item = WebhookSubscriptionItem(_pk(tenant_id), subscription_id)
        S = WebhookSubscriptionItem
        actions: list[Any] = [
            S.h_fast.set(True) if health.fast else S.h_fast.remove(),
            S.h_failures.set(health.failures) if health.failures else S.h_failures.remove(),
            S.h_open_until.set(health.open_until) if health.open_until else S.h_open_until.remove(),
        ]
        try:
            item.update(actions=actions, condition=S.pk.exists())
        except UpdateError as exc:
            if not _failed_condition(exc):
                raise

    def claim_probe(self, tenant_id: str, subscription_id: str, seen_open_until: int, until: int) -> bool:
        """1 conditional UpdateItem: only one caller moves the circuit's end from what it read."""
        S = WebhookSubscriptionItem
        try:
            S(_pk(tenant_id), subscription_id).update(
                actions=[S.h_open_until.set(until)], condition=S.h_open_until == seen_open_until
            )
        except UpdateError as exc:
            if _failed_condition(exc):
                return False
            raise
        return True

    def take_lane(self, tenant_id: str, holder: str, now_ms: int, places: int, lease_ms: int) -> tuple[int | None, int]:
        """1 conditional UpdateItem on the holder's first choice of place; when it is taken, 1
        consistent Query of the lane and 1 conditional UpdateItem on a free place, if there is one."""
        first = zlib.crc32(holder.encode()) % places
        if self._take(tenant_id, first, holder, now_ms, lease_ms):
            return first, 0
        held = {
            int(p.sk[2:]): int(p.until)
            for p in SlowLanePlace.query(_lane_pk(tenant_id), consistent_read=True)
            if p.until is not None and int(p.until) >= now_ms
        }
        free = [n for n in range(places) if n not in held and n != first]
        if free and self._take(tenant_id, free[0], holder, now_ms, lease_ms):
            return free[0], 0
        busy = [until for n, until in held.items() if n < places]
        return None, min(busy) if busy else now_ms + 1000

    def _take(self, tenant_id: str, place: int, holder: str, now_ms: int, lease_ms: int) -> bool:
        P = SlowLanePlace
        try:
            P(_lane_pk(tenant_id), f"P#{place}").update(
                actions=[P.until.set(now_ms + lease_ms), P.holder.set(holder)],
                condition=P.until.does_not_exist() | (P.until < now_ms),
            )
        except UpdateError as exc:
            if _failed_condition(exc):
                return False
            raise
        return True

    def leave_lane(self, tenant_id: str, holder: str, place: int) -> None:
        """1 UpdateItem, conditional on the place still being the holder's (its lease may have run out)."""
        P = SlowLanePlace
        try:
            P(_lane_pk(tenant_id), f"P#{place}").update(
                actions=[P.until.remove(), P.holder.remove()], condition=P.holder == holder
            )
        except UpdateError as exc:
            if not _failed_condition(exc):
                raise
