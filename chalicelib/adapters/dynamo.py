"""PynamoDB models for every table of the product (see docs/data-model.md).

Five tables, each with a generic ``pk``/``sk`` schema so one table can hold several entities:

* **directory** - users and customer recipients (with their live connections), teams, supervision
  edges, templates, tenant policy, unread counters, directory messages, attention rules.
* **workitems** - the workitem, its timeline entries and a message index, in one partition per
  workitem; a sparse GSI lists each agent's open workitems; a sparse LSI numbers the customer view.
* **connections** - one item per WebSocket connection, expiring after API Gateway's 2 h limit.
* **assistance** - raise-hand requests; a sharded sparse GSI finds requests due for escalation.
* **idempotency** - inbound webhook event ids, written in the same transaction as their effect.

Every key starts with ``T#<tenant>#`` (except connections, keyed by API Gateway's connection id, and
the escalation index, keyed by shard), so no query can cross tenants.
"""

from __future__ import annotations

from typing import Any

from pynamodb.attributes import (
    BooleanAttribute,
    ListAttribute,
    MapAttribute,
    NumberAttribute,
    TTLAttribute,
    UnicodeAttribute,
    UnicodeSetAttribute,
)
from pynamodb.indexes import AllProjection, GlobalSecondaryIndex, LocalSecondaryIndex
from pynamodb.models import Model

from chalicelib.adapters import pynamodb_compat, sdk_budget
from chalicelib.settings import Settings

# The workitem item's attribute holding the fan-out note of the change written with its version. The
# stream reader (adapters/stream.py) looks for it, and the stack's event source mapping filters on it
# (infra/merge-template.yaml; tests/infra/test_package.py checks the two agree).
FANOUT_NOTE_ATTRIBUTE = "fo"

# --- directory ---------------------------------------------------------------------------------


class SupervisionIndex(GlobalSecondaryIndex["DirectoryEdge"]):
    """Agents of a supervisor: ``gsi1pk = T#t#S#<supervisor>``."""

    class Meta:
        index_name = "gsi1"
        projection = AllProjection()

    gsi1pk = UnicodeAttribute(hash_key=True)
    gsi1sk = UnicodeAttribute(range_key=True)


class DirectoryTable(Model):
    """Key schema shared by every directory entity; also used to create the table."""

    class Meta:
        table_name = "coaching-directory"
        region = "us-east-1"
        billing_mode = "PAY_PER_REQUEST"

    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    gsi1pk = UnicodeAttribute(null=True)
    gsi1sk = UnicodeAttribute(null=True)
    ttl = TTLAttribute(null=True)
    by_supervisor = SupervisionIndex()


class RecipientItem(Model):
    """A directory user (``pk = T#t#U#<user>``) or a customer recipient (``pk = T#t#C#<workitem>``).

    ``conns`` holds ``<connectionId>|<connectedAt ms>`` for each live connection (``|fast`` appended
    for a connection opened with ``?delivery=fast``): a set, so connect and disconnect are single
    ADD/DELETE updates that work whether or not the item exists yet.
    """

    class Meta:
        table_name = "coaching-directory"
        region = "us-east-1"

    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True, default="U")
    tenant_id = UnicodeAttribute()
    user_id = UnicodeAttribute()
    role = UnicodeAttribute(null=True)
    name = UnicodeAttribute(null=True)
    in_directory = BooleanAttribute(null=True)
    notify = BooleanAttribute(null=True)
    presence = UnicodeAttribute(null=True)
    conns = UnicodeSetAttribute(null=True)
    watchers = UnicodeSetAttribute(null=True)
    workitem_count = NumberAttribute(null=True)
    unread_total = NumberAttribute(null=True)
    updated_at = UnicodeAttribute(null=True)
    # Epoch second of the user's last revocation: tokens issued up to it are refused.
    revoked_at = NumberAttribute(null=True)


class TeamItem(Model):
    class Meta:
        table_name = "coaching-directory"
        region = "us-east-1"

    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True, default="TEAM")
    tenant_id = UnicodeAttribute()
    team_id = UnicodeAttribute()
    name = UnicodeAttribute()
    supervisors = ListAttribute(of=UnicodeAttribute, default=list)
    agents = ListAttribute(of=UnicodeAttribute, default=list)
    updated_at = UnicodeAttribute(null=True)


class DirectoryEdge(Model):
    """One supervision edge: ``pk = T#t#A#<agent>``, ``sk = S#<supervisor>#T#<team>``."""

    class Meta:
        table_name = "coaching-directory"
        region = "us-east-1"

    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    gsi1pk = UnicodeAttribute()
    gsi1sk = UnicodeAttribute()
    tenant_id = UnicodeAttribute()
    agent_id = UnicodeAttribute()
    supervisor_id = UnicodeAttribute()
    team_id = UnicodeAttribute()
    # Set while the supervisor's role cannot supervise (demoted to agent): the edge stays, so the
    # admin's team membership comes back with the role, but no query counts it.
    suspended = BooleanAttribute(null=True)
    by_supervisor = SupervisionIndex()


class TemplateItem(Model):
    class Meta:
        table_name = "coaching-directory"
        region = "us-east-1"

    pk = UnicodeAttribute(hash_key=True)  # T#t#TPL
    sk = UnicodeAttribute(range_key=True)  # template id
    text = UnicodeAttribute()
    enabled = BooleanAttribute(default=True)
    updated_at = UnicodeAttribute(null=True)


class AttentionRuleItem(Model):
    """An attention rule (``pk = T#t#ATTNRULE``, ``sk`` = rule id): one Query lists a tenant's rules."""

    class Meta:
        table_name = "coaching-directory"
        region = "us-east-1"

    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    kind = UnicodeAttribute()
    enabled = BooleanAttribute(default=True)
    severity = NumberAttribute()
    phrases = ListAttribute(of=UnicodeAttribute, null=True)
    speakers = ListAttribute(of=UnicodeAttribute, null=True)
    negative_in_a_row = NumberAttribute(null=True)
    seconds = NumberAttribute(null=True)
    updated_at = UnicodeAttribute(null=True)


class AttentionAlertItem(Model):
    """An alert (``pk = T#t#ATTN``): ``sk = A#<alertId>`` while open or acked, ``X#<alertId>`` once
    cleared (kept two days, so a redelivered stream record cannot raise it again)."""

    class Meta:
        table_name = "coaching-directory"
        region = "us-east-1"

    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    alert_id = UnicodeAttribute()
    workitem_id = UnicodeAttribute()
    agent_id = UnicodeAttribute()
    rule_id = UnicodeAttribute()
    kind = UnicodeAttribute()
    severity = NumberAttribute()
    raised_at = UnicodeAttribute()
    reason = UnicodeAttribute()
    state = UnicodeAttribute()
    acked_by = UnicodeAttribute(null=True)
    acked_at = UnicodeAttribute(null=True)
    cleared_reason = UnicodeAttribute(null=True)
    cleared_at = UnicodeAttribute(null=True)
    ttl = TTLAttribute(null=True)


class AttentionSlotItem(Model):
    """The one active alert of a (workitem, rule) pair (``pk = T#t#ATTN``, ``sk = S#<workitem>#<rule>``)."""

    class Meta:
        table_name = "coaching-directory"
        region = "us-east-1"

    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    alert_id = UnicodeAttribute()


class AttentionCountItem(Model):
    """How many alerts of the tenant are open or acked (``pk = T#t#ATTN``, ``sk = COUNT``)."""

    class Meta:
        table_name = "coaching-directory"
        region = "us-east-1"

    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True, default="COUNT")
    active = NumberAttribute(null=True, attr_name="n")


class PolicyItem(Model):
    class Meta:
        table_name = "coaching-directory"
        region = "us-east-1"

    pk = UnicodeAttribute(hash_key=True)  # T#t#POLICY
    sk = UnicodeAttribute(range_key=True, default="POLICY")
    record_coaching = BooleanAttribute(null=True)
    transcribe_calls = BooleanAttribute(null=True)
    escalation_seconds = NumberAttribute(null=True)
    retention_days = NumberAttribute(null=True)
    webhook_secret = UnicodeAttribute(null=True)
    sentiment_language = UnicodeAttribute(null=True)
    updated_at = UnicodeAttribute(null=True)


class UnreadItem(Model):
    """Unread directory messages of one recipient from one sender (``sk = UNREAD#<sender>``)."""

    class Meta:
        table_name = "coaching-directory"
        region = "us-east-1"

    pk = UnicodeAttribute(hash_key=True)  # T#t#U#<recipient>
    sk = UnicodeAttribute(range_key=True)
    unread_count = NumberAttribute(default=0, attr_name="count")


class DirectoryMessageItem(Model):
    """A directory (company directory) message, kept for history with a TTL."""

    class Meta:
        table_name = "coaching-directory"
        region = "us-east-1"

    pk = UnicodeAttribute(hash_key=True)  # T#t#INBOX#<recipient>
    sk = UnicodeAttribute(range_key=True)  # <at>#<messageId>
    message_id = UnicodeAttribute()
    from_user_id = UnicodeAttribute()
    text = UnicodeAttribute()
    reply_to = UnicodeAttribute(null=True)
    assist_id = UnicodeAttribute(null=True)
    at = UnicodeAttribute()
    ttl = TTLAttribute(null=True)


class AdminItem(Model):
    """Admins of a tenant (``pk = T#t#ADMINS``), for the last escalation step."""

    class Meta:
        table_name = "coaching-directory"
        region = "us-east-1"

    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)  # user id


class WebhookSubscriptionItem(Model):
    """An outbound webhook subscription (``pk = T#t#WHSUB``, ``sk`` = subscription id): one Query
    lists a tenant's subscriptions, one GetItem reads one for a delivery."""

    class Meta:
        table_name = "coaching-directory"
        region = "us-east-1"

    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    url = UnicodeAttribute()
    events = ListAttribute(of=UnicodeAttribute, default=list)
    enabled = BooleanAttribute(default=True)
    secret = UnicodeAttribute()
    # The secret a rotation replaced and until when (epoch seconds) it still signs beside the new one.
    previous_secret = UnicodeAttribute(null=True)
    previous_until = NumberAttribute(null=True)
    updated_at = UnicodeAttribute(null=True)
    # The receiver's health (domain.fairness), written by the delivery function, reset by an admin's
    # save: the last attempt was fast; failed attempts in a row; the open circuit's end (epoch s).
    h_fast = BooleanAttribute(null=True)
    h_failures = NumberAttribute(null=True)
    h_open_until = NumberAttribute(null=True)


class SlowLanePlace(Model):
    """One place of a tenant's slow lane (``pk = T#t#WHLANE``, ``sk = P#<n>``): held by one post to a
    receiver that is not known to be fast, until ``until`` (epoch ms) at the latest."""

    class Meta:
        table_name = "coaching-directory"
        region = "us-east-1"

    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    until = NumberAttribute(null=True)
    holder = UnicodeAttribute(null=True)


class ChannelSettingsItem(Model):
    """A tenant's channel settings (``pk = T#t#CHANNELS``, ``sk = SMS``): the SMS origination identity."""

    class Meta:
        table_name = "coaching-directory"
        region = "us-east-1"

    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True, default="SMS")
    origination_identity = UnicodeAttribute(null=True)
    phone_number = UnicodeAttribute(null=True)
    instance_arn = UnicodeAttribute(
        null=True
    )  # sk = CONNECT: the tenant's Amazon Connect instance  # the number customers text (E.164), claimed below
    updated_at = UnicodeAttribute(null=True)


class AnalyticsSlotItem(Model):
    """One counted fact of the coaching analytics (``domain/analytics.py``): the slot that won its key.
    ``pk = T#t#ANS#<slot key>``."""

    class Meta:
        table_name = "coaching-directory"
        region = "us-east-1"

    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True, default="S")
    order = NumberAttribute(attr_name="o")
    rule = UnicodeAttribute(attr_name="r")
    cells = UnicodeAttribute(attr_name="c")  # the slot's contribution, JSON


class AnalyticsBucketItem(Model):
    """A day's counters of one analytics dimension's key: ``pk = T#t#AN#<dim>#<YYYY-MM>``,
    ``sk = <key>#<YYYY-MM-DD>``; every other attribute is a counter (``cm``, ``k37`` ...) written with ADD."""

    class Meta:
        table_name = "coaching-directory"
        region = "us-east-1"

    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)


class ClaimItem(Model):
    """What belongs to one tenant across the stack (``pk = CLAIM#<kind>#<key>``, ``sk = CLAIM``): an
    SMS phone number customers text, an Amazon Connect instance. The only directory items without a
    tenant prefix: what arrives from AWS names the number or instance, never the tenant, and this is
    how the tenant is found (docs/connectors.md). Written with a condition, so a second tenant's
    claim fails."""

    class Meta:
        table_name = "coaching-directory"
        region = "us-east-1"

    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True, default="CLAIM")
    tenant_id = UnicodeAttribute()
    claimed_at = UnicodeAttribute(null=True)
    # An Amazon Connect instance's agents: JSON {Connect user id: user id} (read with the claim: 1 GetItem).
    agents = UnicodeAttribute(null=True)


class ContactItem(Model):
    """An Amazon Connect contact the connector follows (``pk = CONTACT#<initialContactId>``, ``sk =
    CONTACT``): its tenant and the newest of its contacts connected to an agent, so a transfer's
    DISCONNECTED does not end the workitem, and the chat stream's messages find their tenant."""

    class Meta:
        table_name = "coaching-directory"
        region = "us-east-1"

    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True, default="CONTACT")
    tenant_id = UnicodeAttribute()
    contact_id = UnicodeAttribute()
    connected_at = UnicodeAttribute()
    ttl = TTLAttribute(null=True)


class PipelineItem(Model):
    """A media insights pipeline this stack started (``pk = PIPELINE#<mediaPipelineId>``, ``sk =
    PIPELINE``): the tenant and workitem it transcribes, so a sink record without runtime metadata
    still finds its workitem. Expires with the call (pipelines stop after 8 hours)."""

    class Meta:
        table_name = "coaching-directory"
        region = "us-east-1"

    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True, default="PIPELINE")
    tenant_id = UnicodeAttribute()
    workitem_id = UnicodeAttribute()
    since = NumberAttribute(null=True)  # when it was started (epoch seconds): the sweep spares new ones
    ttl = TTLAttribute(null=True)


# --- workitems ---------------------------------------------------------------------------------


class OpenWorkitemsIndex(GlobalSecondaryIndex["WorkitemItem"]):
    """Open workitems of an agent. Sparse: the key is removed once a workitem is closed."""

    class Meta:
        index_name = "gsi1"
        projection = AllProjection()

    gsi1pk = UnicodeAttribute(hash_key=True)
    gsi1sk = UnicodeAttribute(range_key=True)


class ActiveSmsIndex(GlobalSecondaryIndex["WorkitemItem"]):
    """Active SMS workitems of a customer, most recently active last: ``gsi2pk = T#t#SMS#<number>``.
    Sparse: set only while an SMS workitem is active (inbound texts join it, docs/connectors.md)."""

    class Meta:
        index_name = "gsi2"
        projection = AllProjection()

    gsi2pk = UnicodeAttribute(hash_key=True)
    gsi2sk = UnicodeAttribute(range_key=True)


class CustomerViewIndex(LocalSecondaryIndex["EntryItem"]):
    """The customer's view of a timeline, in its own contiguous numbering. Sparse."""

    class Meta:
        index_name = "lsi1"
        projection = AllProjection()

    pk = UnicodeAttribute(hash_key=True)
    lsi1sk = UnicodeAttribute(range_key=True)


class WorkitemsTable(Model):
    class Meta:
        table_name = "coaching-workitems"
        region = "us-east-1"
        billing_mode = "PAY_PER_REQUEST"
        # Fan-out reads the workitem items' changes from this stream, in commit order per item.
        stream_view_type = "NEW_AND_OLD_IMAGES"

    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    gsi1pk = UnicodeAttribute(null=True)
    gsi1sk = UnicodeAttribute(null=True)
    gsi2pk = UnicodeAttribute(null=True)
    gsi2sk = UnicodeAttribute(null=True)
    lsi1sk = UnicodeAttribute(null=True)
    ttl = TTLAttribute(null=True)
    open_by_agent = OpenWorkitemsIndex()
    active_sms = ActiveSmsIndex()
    customer_view = CustomerViewIndex()


class WorkitemItem(Model):
    class Meta:
        table_name = "coaching-workitems"
        region = "us-east-1"

    pk = UnicodeAttribute(hash_key=True)  # T#t#W#<workitem>
    sk = UnicodeAttribute(range_key=True, default="W")
    gsi1pk = UnicodeAttribute(null=True)  # T#t#AGENT#<agent> while open
    gsi1sk = UnicodeAttribute(null=True)
    gsi2pk = UnicodeAttribute(null=True)  # T#t#SMS#<customer number> while an SMS workitem is active
    gsi2sk = UnicodeAttribute(null=True)  # <active_at>#<workitem>
    tenant_id = UnicodeAttribute()
    workitem_id = UnicodeAttribute()
    channel = UnicodeAttribute()
    agent_id = UnicodeAttribute()
    customer_id = UnicodeAttribute()
    customer_name = UnicodeAttribute()
    subject = UnicodeAttribute(null=True)
    status = UnicodeAttribute()
    created_at = UnicodeAttribute()
    ended_at = UnicodeAttribute(null=True)
    ended_by = UnicodeAttribute(null=True)
    monitors = MapAttribute[str, Any](null=True)
    voice = MapAttribute[str, Any](null=True)
    seq = NumberAttribute(default=0)
    customer_seq = NumberAttribute(default=0)
    version = NumberAttribute(default=0)
    retention_days = NumberAttribute(null=True)
    record_coaching = BooleanAttribute(null=True)
    active_at = UnicodeAttribute(null=True)
    waiting_since = UnicodeAttribute(null=True)  # W18.1: the customer waits for an answer since
    last_text = UnicodeAttribute(null=True)  # the latest message, cut short, and who wrote it
    last_author = UnicodeAttribute(null=True)
    monitor_names = MapAttribute[str, Any](null=True)  # supervisorId -> name, beside monitors
    # What the change written with this version pushes (entries, who is left out, who stopped
    # coaching), as JSON; the stream consumer reads it from the new image. Absent: push nothing.
    fanout = UnicodeAttribute(null=True, attr_name=FANOUT_NOTE_ATTRIBUTE)
    ttl = TTLAttribute(null=True)
    open_by_agent = OpenWorkitemsIndex()
    active_sms = ActiveSmsIndex()


class EntryItem(Model):
    class Meta:
        table_name = "coaching-workitems"
        region = "us-east-1"

    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)  # E#<seq, zero padded>
    lsi1sk = UnicodeAttribute(null=True)  # C#<customer seq> on customer-visible entries only
    kind = UnicodeAttribute()
    at = UnicodeAttribute()
    author_id = UnicodeAttribute()
    author_role = UnicodeAttribute()
    seq = NumberAttribute()
    customer_seq = NumberAttribute(null=True)
    message_id = UnicodeAttribute(null=True)
    text = UnicodeAttribute(null=True)
    forwarded_from = UnicodeAttribute(null=True)
    reaction = UnicodeAttribute(null=True)
    extra = MapAttribute[str, Any](null=True)
    delivery = UnicodeAttribute(null=True)  # agent messages to SMS/social customers: sent | failed
    sentiment = UnicodeAttribute(null=True)  # customer messages: positive | negative | neutral | mixed (staff only)
    ttl = TTLAttribute(null=True)
    customer_view = CustomerViewIndex()


class MessageRefItem(Model):
    """``sk = M#<messageId>`` → the seq of that message's entry, for reactions and forwards."""

    class Meta:
        table_name = "coaching-workitems"
        region = "us-east-1"

    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    seq = NumberAttribute()
    kind = UnicodeAttribute()
    author_id = UnicodeAttribute()
    author_role = UnicodeAttribute()
    text = UnicodeAttribute(null=True)
    at = UnicodeAttribute()
    ttl = TTLAttribute(null=True)


# --- connections -------------------------------------------------------------------------------


class ConnectionItem(Model):
    """One WebSocket connection. Its identity, for deployments without the $connect authorizer."""

    class Meta:
        table_name = "coaching-connections"
        region = "us-east-1"
        billing_mode = "PAY_PER_REQUEST"

    connection_id = UnicodeAttribute(hash_key=True)
    tenant_id = UnicodeAttribute()
    user_id = UnicodeAttribute()
    role = UnicodeAttribute()
    workitem_id = UnicodeAttribute(null=True)
    name = UnicodeAttribute(null=True)
    connected_at = NumberAttribute()
    # The session's end (epoch seconds) as extended by auth.refresh, and its token's iat.
    exp = NumberAttribute(null=True)
    iat = NumberAttribute(null=True)
    ttl = TTLAttribute()


# --- assistance --------------------------------------------------------------------------------


class DueIndex(GlobalSecondaryIndex["AssistItem"]):
    """Pending requests by escalation due time, sharded: ``duepk = DUE#<n>``. Sparse."""

    class Meta:
        index_name = "due"
        projection = AllProjection()

    duepk = UnicodeAttribute(hash_key=True)
    duesk = UnicodeAttribute(range_key=True)


class AssistItem(Model):
    class Meta:
        table_name = "coaching-assistance"
        region = "us-east-1"
        billing_mode = "PAY_PER_REQUEST"

    pk = UnicodeAttribute(hash_key=True)  # T#t#AS#<assistId>
    sk = UnicodeAttribute(range_key=True, default="AS")
    duepk = UnicodeAttribute(null=True)
    duesk = UnicodeAttribute(null=True)
    tenant_id = UnicodeAttribute()
    assist_id = UnicodeAttribute()
    agent_id = UnicodeAttribute()
    template_id = UnicodeAttribute()
    text = UnicodeAttribute()
    workitem_id = UnicodeAttribute(null=True)
    target = UnicodeAttribute()  # "supervisors" or a user id
    recipients = ListAttribute(of=UnicodeAttribute, default=list)
    status = UnicodeAttribute()  # pending | claimed | exhausted
    stage = NumberAttribute(default=0)
    claimed_by = UnicodeAttribute(null=True)
    claimed_at = UnicodeAttribute(null=True)
    created_at = UnicodeAttribute()
    due_at = NumberAttribute(null=True)
    escalation_seconds = NumberAttribute(null=True)
    ttl = TTLAttribute(null=True)
    due = DueIndex()


class PendingMarkItem(Model):
    """A request delivered to one user and not yet claimed (``assist.pending``):
    ``pk = T#t#PA#<userId>``, ``sk = <requested at>#<assistId>``; removed when the request is claimed."""

    class Meta:
        table_name = "coaching-assistance"
        region = "us-east-1"
        billing_mode = "PAY_PER_REQUEST"

    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    assist_id = UnicodeAttribute()
    ttl = TTLAttribute(null=True)


# --- idempotency -------------------------------------------------------------------------------


class IdempotencyItem(Model):
    class Meta:
        table_name = "coaching-idempotency"
        region = "us-east-1"
        billing_mode = "PAY_PER_REQUEST"

    pk = UnicodeAttribute(hash_key=True)  # T#t#EVT#<eventId>
    event_type = UnicodeAttribute()
    applied_at = UnicodeAttribute()
    ttl = TTLAttribute()


TABLE_MODELS: dict[str, type[Model]] = {
    "directory": DirectoryTable,
    "workitems": WorkitemsTable,
    "connections": ConnectionItem,
    "assistance": AssistItem,
    "idempotency": IdempotencyItem,
}
_MODELS_BY_TABLE: dict[str, list[type[Model]]] = {
    "directory": [
        DirectoryTable,
        RecipientItem,
        TeamItem,
        DirectoryEdge,
        TemplateItem,
        AttentionRuleItem,
        AttentionAlertItem,
        AttentionSlotItem,
        AttentionCountItem,
        PolicyItem,
        UnreadItem,
        DirectoryMessageItem,
        AdminItem,
        WebhookSubscriptionItem,
        SlowLanePlace,
        ChannelSettingsItem,
        AnalyticsSlotItem,
        AnalyticsBucketItem,
        ClaimItem,
        ContactItem,
        PipelineItem,
    ],
    "workitems": [WorkitemsTable, WorkitemItem, EntryItem, MessageRefItem],
    "connections": [ConnectionItem],
    "assistance": [AssistItem, PendingMarkItem],
    "idempotency": [IdempotencyItem],
}


def table_names(settings: Settings) -> dict[str, str]:
    return {
        "directory": settings.directory_table,
        "workitems": settings.workitems_table,
        "connections": settings.connections_table,
        "assistance": settings.assistance_table,
        "idempotency": settings.idempotency_table,
    }


def configure(settings: Settings, budget: sdk_budget.SdkBudget = sdk_budget.DYNAMODB) -> None:
    """Point every model at this deployment's tables, region and (locally) endpoint."""
    names = table_names(settings)
    for key, models in _MODELS_BY_TABLE.items():
        for model in models:
            model.Meta.table_name = names[key]
            model.Meta.region = settings.region
            model.Meta.host = settings.dynamodb_endpoint or None
            # Short timeouts and few retries: a handler answers `unavailable` long before its function
            # times out (the budget is in sdk_budget.py and docs/faults.md).
            model.Meta.connect_timeout_seconds = budget.connect
            model.Meta.read_timeout_seconds = budget.read
            model.Meta.max_retry_attempts = budget.attempts - 1  # PynamoDB: standard mode, 1 + this
            model.Meta.max_pool_connections = sdk_budget.DYNAMODB_POOL
            pynamodb_compat.forget_connection(model)
    # One botocore client for every model: a cold start would otherwise build one per entity it touches.
    pynamodb_compat.share_client([m for models in _MODELS_BY_TABLE.values() for m in models])


def create_tables(settings: Settings | None = None, *, wait: bool = True) -> None:
    """Create any missing table (local stack and tests). PynamoDB enables TTL on the ``ttl``
    attribute right after creating a table, once, as AWS requires."""
    from chalicelib import settings as settings_module

    s = settings or settings_module.load()
    configure(s, sdk_budget.TABLE_ADMIN)  # a store that has just started can take seconds to create one
    for model in TABLE_MODELS.values():
        if not model.exists():
            model.create_table(wait=wait, billing_mode="PAY_PER_REQUEST")
