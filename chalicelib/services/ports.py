"""The ports the use cases drive, and the plain records that cross them: every port is here.

Adapters in ``chalicelib.adapters`` implement these with DynamoDB, API Gateway, SQS, the Chime SDK
and the clock; tests and the local stack may implement them in memory. The records are ``msgspec.Struct`` classes rather than
dataclasses: a Struct class is created in C in microseconds, where a dataclass costs about a
millisecond of every cold start (docs/performance.md, section 3).
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

import msgspec

from chalicelib.domain.coaching import Change, Workitem
from chalicelib.domain.errors import DomainError
from chalicelib.domain.identity import Principal, Role
from chalicelib.domain.timeline import TimelineEntry
from chalicelib.domain.transcript import InsightsRequest, PipelineOwner

if TYPE_CHECKING:  # named in signatures only: importing the ports loads no voice, assistance or webhook rules
    from chalicelib.domain.analytics import Cell, Read, Slot
    from chalicelib.domain.assistance import AssistanceRequest
    from chalicelib.domain.attention import Alert, Rule
    from chalicelib.domain.fairness import Health
    from chalicelib.domain.sentiment import Sentiment
    from chalicelib.domain.voice import Attendee, Audio, Meeting
    from chalicelib.domain.webhooks import Subscription
    from chalicelib.services.results import DirectMessage

# API Gateway closes every WebSocket connection after 2 hours.
CONNECTION_LIFETIME_MS = 2 * 60 * 60 * 1000
# Appended to a stored connection that asked for fast delivery (``?delivery=fast``).
FAST_SUFFIX = "|fast"


class Presence(str, enum.Enum):
    AVAILABLE = "available"
    NOT_READY = "not_ready"
    OFFLINE = "offline"


class Connection(msgspec.Struct, frozen=True):
    """A live WebSocket connection: API Gateway's id plus when it was opened (ms), and whether it opted
    into fast delivery (``?delivery=fast`` on ``$connect``: timeline entries straight from the handler
    that committed them, in any order, possibly twice; docs/product.md W15)."""

    connection_id: str
    connected_at: int
    fast: bool = False

    @property
    def key(self) -> str:
        """``<connectionId>|<connectedAt>``: the connection, whichever way it receives."""
        return f"{self.connection_id}|{self.connected_at}"

    @property
    def token(self) -> str:
        """How the connection is stored in its owner's set: its key, ``|fast`` appended for fast delivery."""
        return f"{self.key}{FAST_SUFFIX}" if self.fast else self.key

    @property
    def tokens(self) -> set[str]:
        """Every token this connection may be stored under (``$disconnect`` does not know its mode)."""
        return {self.key, f"{self.key}{FAST_SUFFIX}"}

    def alive(self, now_ms: int) -> bool:
        return now_ms < self.connected_at + CONNECTION_LIFETIME_MS

    @staticmethod
    def parse(token: str) -> Connection:
        fast = token.endswith(FAST_SUFFIX)
        if fast:
            token = token[: -len(FAST_SUFFIX)]
        connection_id, _, at = token.rpartition("|")
        return Connection(connection_id, int(at) if at.isdigit() else 0, fast)


class Watcher(msgspec.Struct, frozen=True):
    """A supervisor connection watching an agent's workitems (``agent.watch``)."""

    connection: Connection
    supervisor_id: str

    @property
    def token(self) -> str:
        return f"{self.connection.key}|{self.supervisor_id}"

    @staticmethod
    def parse(token: str) -> Watcher:
        head, _, sup = token.rpartition("|")
        return Watcher(Connection.parse(head), sup)


class Recipient(msgspec.Struct):
    """Whoever can receive pushes: a directory user, or the customer of one workitem."""

    tenant_id: str
    key: str
    user_id: str
    role: Role | None = None
    name: str | None = None
    in_directory: bool = False
    notify: bool = True
    presence_state: Presence = Presence.AVAILABLE
    connections: list[Connection] = msgspec.field(default_factory=list)
    watchers: list[Watcher] = msgspec.field(default_factory=list)
    workitem_count: int = 0
    unread_total: int = 0
    revoked_at: int | None = None  # epoch second of the user's last revocation

    def live(self, now_ms: int) -> list[Connection]:
        return [c for c in self.connections if c.alive(now_ms)]

    def presence(self, now_ms: int) -> Presence:
        return self.presence_state if self.live(now_ms) else Presence.OFFLINE


class Team(msgspec.Struct, frozen=True):
    team_id: str
    name: str
    supervisors: list[str]
    agents: list[str]


class Template(msgspec.Struct, frozen=True):
    template_id: str
    text: str
    enabled: bool


class Policy(msgspec.Struct, frozen=True):
    record_coaching: bool = False
    escalation_seconds: int = 120
    retention_days: int = 90
    webhook_secret: str | None = None
    # W12.10: the live transcript of the tenant's voice calls (opt-in; the stack must enable it too).
    transcribe_calls: bool = False
    # The language customers write in, for sentiment (one of domain.sentiment.LANGUAGES).
    sentiment_language: str = "en"


class Idempotency(msgspec.Struct, frozen=True):
    """An inbound event id, stored in the same transaction as the event's effect."""

    tenant_id: str
    event_id: str
    event_type: str


class CounterDelta(msgspec.Struct, frozen=True):
    """``workitemCount`` changes of an agent, committed with the workitem change."""

    tenant_id: str
    user_id: str
    delta: int


class SmsContext(msgspec.Struct, frozen=True):
    """What a text is sent for (the SMS service keeps it with the message, for its own logs)."""

    tenant_id: str
    workitem_id: str
    message_id: str


class ChannelFailed(Exception):
    """The channel provider refused a message or could not be reached (``reason`` is safe to log)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class QueueMessage(msgspec.Struct, frozen=True):
    """One message a queue hands a function (read from Lambda's SQS record at the edge)."""

    message_id: str
    body: str
    receipt: str = ""  # the handle that changes this receipt's visibility
    receives: int = 1  # how many times the queue has handed it out, this time included


class Created(msgspec.Struct, frozen=True):
    """A use case's result that is a new resource (the REST edge answers it 201)."""

    record: Any


class StaleWorkitem(Exception):
    """The workitem changed since it was read; re-read and decide again."""


class DuplicateEvent(Exception):
    """The idempotency key was already used: the event was applied before."""


class AlreadyExists(Exception):
    """A create found the item already there."""


class ClaimedElsewhere(Exception):
    """A phone number or Amazon Connect instance already belongs to another tenant."""


class WorkitemRead(msgspec.Struct, frozen=True):
    """A workitem as a change is decided on it, with what the same request brought: the message index
    item asked for, and the directory's recipients asked for (those that exist, by key)."""

    workitem: Workitem | None
    message: TimelineEntry | None = None
    recipients: dict[str, Recipient] = msgspec.field(default_factory=dict)


class WorkitemStore(Protocol):
    def get(self, tenant_id: str, workitem_id: str) -> Workitem | None: ...

    def read(
        self, tenant_id: str, workitem_id: str, *, message_id: str | None = None, recipients: Iterable[str] = ()
    ) -> WorkitemRead:
        """The workitem (strongly consistent), with the message index item ``message_id`` and the
        directory's ``recipients`` (eventually consistent) when asked for, in one request."""
        ...

    def get_many(self, tenant_id: str, workitem_ids: Iterable[str]) -> dict[str, Workitem]:
        """The workitems that exist among ``workitem_ids``, by id."""
        ...

    def get_with_message(
        self, tenant_id: str, workitem_id: str, message_id: str
    ) -> tuple[Workitem | None, TimelineEntry | None]: ...

    def get_with_messages(
        self, tenant_id: str, workitem_id: str, message_ids: list[str]
    ) -> tuple[Workitem | None, dict[str, TimelineEntry]]:
        """The workitem and those of the messages that exist, by id, in one read."""
        ...

    def create(
        self,
        workitem: Workitem,
        *,
        idempotency: Idempotency | None = None,
        counters: Iterable[CounterDelta] = (),
        fanout: str | None = None,
    ) -> None:
        """Store a new workitem; ``fanout`` is its note for the stream consumer (None: nothing follows)."""

    def commit(
        self,
        change: Change,
        *,
        idempotency: Idempotency | None = None,
        counters: Iterable[CounterDelta] = (),
        fanout: str | None = None,
    ) -> None:
        """Write the change; ``fanout`` is its note for the stream consumer (None: push nothing)."""

    def mark_event(self, idempotency: Idempotency) -> None: ...

    def timeline(
        self, tenant_id: str, workitem_id: str, *, after: int, limit: int, customer: bool
    ) -> tuple[list[TimelineEntry], bool]: ...

    def latest(self, tenant_id: str, workitem_id: str, limit: int) -> tuple[list[TimelineEntry], bool]: ...

    def open_for_agent(self, tenant_id: str, agent_id: str) -> list[Workitem]: ...

    def active_sms(self, tenant_id: str, customer_id: str) -> Workitem | None:
        """The customer's (an E.164 number) most recently active ``sms`` workitem that is still
        active; None when there is none. May lag a commit by a moment (an index)."""
        ...


class RecipientLookup(Protocol):
    """Who can receive pushes, with their live connections, presence and counters."""

    def recipients(self, tenant_id: str, keys: Iterable[str], consistent: bool = False) -> dict[str, Recipient]: ...

    def recipient(self, tenant_id: str, key: str) -> Recipient | None: ...


class UserDirectory(Protocol):
    """The tenant's users: who they are, their role, their revocations."""

    def put_user(
        self, tenant_id: str, user_id: str, name: str, role: Role, now: str, *, keep_admin: str | None = None
    ) -> tuple[Role | None, Recipient]:
        """Store the user; returns their previous directory role and the recipient. With ``keep_admin``
        (the user stops being an admin), only while that other directory admin still exists, in one
        transaction: :class:`Conflict` (nothing written) when it does not any more."""

    def role_changed(self, tenant_id: str, user_id: str, role: Role) -> list[str]:
        """Suspend or restore the user's supervision edges to match ``role``; returns the agents of a
        user whose role may not supervise."""

    def revoke(self, tenant_id: str, user_id: str, at: int) -> Recipient | None:
        """Stamp the revocation on a user the tenant holds a record of (a directory user, an issuer's
        enrolled user, anyone who has connected); None, and nothing written, for anyone else."""

    def enroll(self, principal: Principal, now: str) -> bool: ...

    def admins(self, tenant_id: str, limit: int | None = None) -> list[str]:
        """The tenant's directory admins in id order (the first ``limit`` of them)."""


class Supervision(Protocol):
    """Teams, read as who supervises whom."""

    def put_team(
        self, tenant_id: str, team: Team, now: str, removed: Callable[[list[tuple[str, str]]], None] | None = None
    ) -> None:
        """Store the team; ``removed`` gets the (supervisor, agent) pairs it no longer links, after
        their edges are gone and before the team is stored (so a failure there is retried)."""

    def supervises(self, tenant_id: str, supervisor_id: str, agent_id: str) -> bool: ...

    def supervisors_of(self, tenant_id: str, agent_id: str) -> list[str]: ...

    def agents_of(self, tenant_id: str, supervisor_id: str) -> list[str]: ...


class ConnectionGone(Protocol):
    """Forgetting connections (and watches) that API Gateway answered Gone for."""

    def forget(self, tenant_id: str, key: str, connections: Iterable[Connection], watchers: Iterable[Watcher]) -> None: ...


class Presences(ConnectionGone, Protocol):
    """A recipient's connections, presence, watches and notification setting."""

    def connect(self, principal: Principal, connection: Connection) -> Recipient: ...

    def disconnect(self, principal: Principal, connection: Connection) -> Recipient | None: ...

    def set_presence(self, tenant_id: str, user_id: str, state: Presence) -> Recipient: ...

    def watch(self, tenant_id: str, agent_id: str, watcher: Watcher, add: bool) -> None: ...

    def set_notify(self, tenant_id: str, user_id: str, notify: bool) -> Recipient: ...


class TenantConfig(Protocol):
    """What an admin sets for the tenant: assistance templates, the policy, the webhook secret."""

    def templates(self, tenant_id: str) -> list[Template]: ...

    def put_template(self, tenant_id: str, template: Template, now: str) -> None: ...

    def delete_template(self, tenant_id: str, template_id: str) -> bool: ...

    def policy(self, tenant_id: str) -> Policy: ...

    def put_policy(self, tenant_id: str, policy: Policy, now: str) -> None: ...

    def set_webhook_secret(self, tenant_id: str, secret: str, now: str) -> None: ...


class Inbox(Protocol):
    """Directory messages and the unread counters per sender."""

    def add_unread(self, tenant_id: str, recipient_id: str, sender_id: str) -> int: ...

    def mark_read(self, tenant_id: str, recipient_id: str, sender_id: str) -> int: ...

    def store_message(self, tenant_id: str, recipient_id: str, message: DirectMessage, retention_days: int) -> None: ...


class Directory(RecipientLookup, UserDirectory, Supervision, Presences, TenantConfig, Inbox, Protocol):
    """Every port of the directory table together: what its one DynamoDB adapter (and the fake)
    implements. Services take the small ports above, each the one their use needs."""


class ConnectionRegistry(Protocol):
    def put(self, principal: Principal, connection: Connection) -> None:
        """Remember the connection's identity and session end (``principal.expires_at``)."""

    def expiry(self, connection_id: str) -> int | None:
        """The session end stored for the connection (by ``put`` or a refresh), if any."""

    def get(self, connection_id: str) -> Principal | None: ...

    def delete(self, connection_id: str) -> None: ...


class Pusher(Protocol):
    def post_many(self, frames: list[tuple[str, bytes]]) -> list[str]: ...

    def close(self, connection_id: str) -> None:
        """Close the connection from the server side (``DeleteConnection``)."""


class Renderer(Protocol):
    """How records look on the wire (``chalicelib/entrypoints/wire.py``, handed to bootstrap by the entry
    layer): the use cases put records in frames and results, the wire renders them."""

    def default(self, obj: Any, /) -> Any:
        """``json.dumps``' hook: the wire form of a record (TypeError for anything else)."""

    def plain(self, value: Any, /) -> Any:
        """``value`` with every record in it rendered (JSON-ready builtins)."""

    def event(self, name: str, data: Any, at: str) -> dict[str, Any]:
        """The frame that pushes event ``name``."""

    def refused(self, frame: dict[str, Any], error: DomainError) -> dict[str, Any]:
        """The error frame that answers ``frame``'s request instead of ``frame``."""


class Clock(Protocol):
    def now(self) -> datetime: ...


class Verifier(Protocol):
    def verify(self, token: str | None) -> Principal: ...


class AssistanceStore(Protocol):
    """Where assistance requests live (``chalicelib.adapters.assist_repository`` on DynamoDB)."""

    def create(self, request: AssistanceRequest, retention_days: int, counted: Sequence[Slot] = ()) -> bool:
        """Store a new request; a due one enters the escalation index. ``counted``: the analytics'
        facts of the request (``ONCE`` slots, new), stored with it, all or nothing, when their buckets
        are free; True when they were (or there were none), False when the request was stored alone."""

    def get(self, tenant_id: str, assist_id: str) -> AssistanceRequest | None:
        """The request as last written (strongly consistent)."""

    def claim(self, request: AssistanceRequest, supervisor_id: str, at: str | None = None) -> AssistanceRequest:
        """Pending -> claimed (at ``at``), conditional on it still being pending; it leaves the escalation index.
        Returns the request as written (an escalation may have added recipients since it was read).
        Raises :class:`chalicelib.domain.assistance.AlreadyClaimed` when someone claimed it first."""

    def due(self, shard: int, now_epoch: int, limit: int) -> list[AssistanceRequest]:
        """Requests of one index shard whose next escalation step is due at ``now_epoch``."""

    def escalate(self, before: AssistanceRequest, after: AssistanceRequest) -> bool:
        """Write an escalation step, conditional on the stored request still being ``before``'s
        pending stage. False when a claim or another sweep got there first."""

    def mark_pending(self, request: AssistanceRequest, user_ids: list[str]) -> None:
        """The request was delivered to these users and waits for a claim."""

    def clear_pending(self, request: AssistanceRequest) -> None:
        """The request was claimed: it waits for none of its recipients."""

    def pending_for(self, tenant_id: str, user_id: str) -> list[AssistanceRequest]:
        """Requests delivered to the user that nobody has claimed, oldest first."""


class AnalyticsStore(Protocol):
    """Where the coaching analytics' slots and daily buckets live (``adapters/analytics_store.py``)."""

    def apply(self, tenant_id: str, slot: Slot) -> bool:
        """Apply one slot exactly once (``domain/analytics.py``): when it wins against the stored one,
        store it and change the buckets by the difference, all or nothing. False when it did not win
        (the same fact again, or an older one)."""

    def read(self, tenant_id: str, reads: Sequence[Read]) -> list[tuple[Cell, dict[str, int]]]:
        """What each read finds (``domain/analytics.py``: :class:`Read`, :func:`stored_answer`): day
        buckets and month roll-ups, their counters times the read's sign; one Query per read."""


class RetainedHistory(Protocol):
    """What a tenant still retains, read in full for an analytics rebuild (an operator's tool: these
    reads are Scans, never on a request path)."""

    def workitems(self, tenant_id: str) -> Iterable[tuple[str, str]]:
        """(workitem id, its agent now) of every retained workitem of the tenant."""

    def requests(self, tenant_id: str) -> Iterable[AssistanceRequest]:
        """Every retained assistance request of the tenant."""


class AttentionStore(Protocol):
    """A tenant's attention rules (docs/attention.md)."""

    def rules(self, tenant_id: str) -> list[Rule]: ...

    def put_rule(self, tenant_id: str, rule: Rule, now: str) -> None: ...

    def delete_rule(self, tenant_id: str, rule_id: str) -> bool: ...

    def set_sentiment(self, tenant_id: str, workitem_id: str, seq: int, sentiment: Sentiment) -> bool:
        """Keep a customer message's sentiment on its entry (False: the entry is gone)."""
        ...

    def raise_alert(self, alert: Alert, max_active: int, counted: Sequence[Slot] = ()) -> str:
        """``raised``; ``exists`` when the pair has an active alert or this alert id was raised before;
        ``full`` when the tenant has ``max_active`` active alerts. ``counted``: the analytics' facts
        of the raise, stored with it (and only with it)."""
        ...

    def alerts(self, tenant_id: str) -> list[Alert]:
        """The tenant's active (open or acked) alerts."""
        ...

    def alert(self, tenant_id: str, alert_id: str) -> Alert | None: ...

    def active_of(self, tenant_id: str, workitem_id: str) -> list[str]:
        """The ids of the workitem's active alerts."""
        ...

    def ack(self, acked: Alert, counted: Sequence[Slot] = ()) -> bool:
        """Store ``acked`` if the alert is still open (False otherwise), with ``counted`` (the analytics'
        facts of the ack) only then."""
        ...

    def clear(self, cleared: Alert) -> bool:
        """Store ``cleared`` if the alert is still active (False otherwise)."""
        ...


class ConnectApi(Protocol):
    """What the connector asks Amazon Connect (adapters/connect_api.py). Both raise
    :class:`ChannelFailed` when Connect refuses or cannot be reached."""

    def start_streaming(self, instance_arn: str, initial_contact_id: str, topic_arn: str) -> str:
        """Stream the chat's items to ``topic_arn``; the streaming id. Idempotent per chat."""
        ...

    def disconnect_reason(self, instance_arn: str, contact_id: str) -> str | None:
        """Connect's disconnect reason of a contact that has ended ("" when it names none); None
        while the contact is still going on."""
        ...


class SentimentAnalyzer(Protocol):
    """Amazon Comprehend on AWS; a lexicon analyzer on the local stack and in tests."""

    def analyze(self, texts: list[str], language: str) -> list[Sentiment | None]:
        """One label per text, in order (None: it could not be analysed)."""
        ...


class Outgoing(msgspec.Struct, frozen=True):
    """A message for a delivery queue: its body, its tenant (SQS fair queues' ``MessageGroupId``, so
    one tenant's backlog never sits in front of another's), what it is (``post``, ``event``, ``sms``)
    and how many seconds it stays hidden first (SQS allows 900 at most)."""

    body: str
    group: str
    kind: str = "post"
    delay: int = 0


class QueueUnavailable(Exception):
    """The queue could not be reached (or refused the call as a whole); ``unsent`` were not queued."""

    def __init__(self, unsent: list[Outgoing], reason: str) -> None:
        super().__init__(reason)
        self.unsent = unsent
        self.reason = reason


class DeliveryQueue(Protocol):
    """The webhook delivery queue (or the SMS one) and the dead-letter queue they share."""

    def send(self, messages: list[Outgoing]) -> list[Outgoing]:
        """Queue ``messages``; returns those the queue refused (an empty list: all queued). Raises
        :class:`QueueUnavailable` when the queue cannot be reached (the rest is not tried)."""
        ...

    def retry_later(self, receipt: str, seconds: int) -> None: ...

    def dead_letter(self, messages: list[Outgoing]) -> list[Outgoing]:
        """Put ``messages`` in the dead-letter queue; returns those it refused."""
        ...

    def dead_letters(self, limit: int, hide_seconds: int) -> list[tuple[str, str]]:
        """Up to ``limit`` dead letters (receipt, body), hidden from other readers ``hide_seconds``."""
        ...

    def delete_dead(self, receipts: list[str]) -> None: ...

    def release_dead(self, receipts: list[str]) -> None: ...


class SubscriptionStore(Protocol):
    def list(self, tenant_id: str) -> list[Subscription]: ...

    def get(self, tenant_id: str, subscription_id: str) -> Subscription | None: ...

    def put(self, sub: Subscription, now: str) -> None:
        """Save an admin's subscription; its receiver's health starts afresh."""
        ...

    def delete(self, tenant_id: str, subscription_id: str) -> bool: ...

    def sms_origination(self, tenant_id: str) -> str | None: ...

    def set_sms_origination(self, tenant_id: str, identity: str, now: str) -> None: ...

    def sms_settings(self, tenant_id: str) -> tuple[str | None, str | None]:
        """The origination identity and the number the tenant's customers text (None: not set)."""
        ...

    def set_sms_settings(self, tenant_id: str, identity: str, number: str | None, previous: str | None, now: str) -> None:
        """Save the origination identity and claim ``number`` for the tenant, releasing ``previous``
        (its number until now), all or nothing; :class:`ClaimedElsewhere` when another tenant holds
        ``number`` (nothing is written)."""
        ...

    def claimant(self, kind: str, key: str) -> str | None:
        """The tenant that claimed ``key`` (a phone number for ``sms``), or None."""
        ...

    def connect_instance(self, tenant_id: str) -> str | None:
        """The Amazon Connect instance the tenant claimed (None: none)."""
        ...

    def set_connect(self, tenant_id: str, instance_arn: str, agents: dict[str, str], previous: str | None, now: str) -> None:
        """Claim ``instance_arn`` with its agent map for the tenant, releasing ``previous``, all or
        nothing; :class:`ClaimedElsewhere` when another tenant holds the instance."""
        ...

    def connect_claim(self, instance_arn: str) -> tuple[str, dict[str, str]] | None:
        """(tenant, {Connect user id: user id}) of a claimed instance, or None."""
        ...

    def contact(self, initial_contact_id: str) -> tuple[str, str, str] | None:
        """(tenant, newest connected contact id, when it connected) of a followed contact, or None."""
        ...

    def set_contact(self, initial_contact_id: str, tenant_id: str, contact_id: str, connected_at: str) -> bool:
        """Record ``contact_id`` as the newest connected contact unless a later one is recorded
        (compared by ``connected_at``); True when it was written."""
        ...

    def set_delivery(self, tenant_id: str, workitem_id: str, seq: int, status: str) -> TimelineEntry | None: ...

    # Fair delivery (domain.fairness): the receiver's health, and the tenant's slow lane.

    def set_health(self, tenant_id: str, subscription_id: str, health: Health) -> None:
        """Store the receiver's health on the subscription (nothing when the subscription is gone)."""
        ...

    def claim_probe(self, tenant_id: str, subscription_id: str, seen_open_until: int, until: int) -> bool:
        """Move the open circuit's end from ``seen_open_until`` to ``until``: True for the one caller
        that did (it probes), False when another claimed it first or the subscription changed."""
        ...

    def take_lane(self, tenant_id: str, holder: str, now_ms: int, places: int, lease_ms: int) -> tuple[int | None, int]:
        """One of the tenant's ``places`` slow-lane places for ``lease_ms`` (a holder that never
        leaves frees it then): (the place, 0), or (None, when the first place frees, epoch ms)."""
        ...

    def leave_lane(self, tenant_id: str, holder: str, place: int) -> None: ...


class Poster(Protocol):
    def post(self, url: str, body: bytes, headers: dict[str, str]) -> tuple[int | None, str]: ...


class SmsSender(Protocol):
    def send_text(self, origination: str, destination: str, text: str, context: SmsContext) -> str: ...


class Transcription(Protocol):
    """The Chime SDK media pipelines of a call's live transcript (docs/transcript.md). Deleting a
    pipeline that is already gone is not an error."""

    def start_streams(self, meeting_arn: str, pool_arn: str, token: str) -> str:
        """A media stream pipeline: each participant's audio into the Kinesis Video stream pool; its id."""
        ...

    def start_insights(self, request: InsightsRequest) -> str:
        """A media insights pipeline on the agent's and the customer's streams; its id."""
        ...

    def set_paused(self, pipeline_id: str, paused: bool) -> None: ...

    def delete_media_pipeline(self, pipeline_id: str) -> None: ...

    def media_pipelines(self) -> list[str]:
        """The ids of every media pipeline of the account in this Region (the sweep)."""
        ...


class PipelineIndex(Protocol):
    """Which workitem a media insights pipeline transcribes (docs/data-model.md): the sink's records
    name their pipeline, and its runtime metadata is not promised in every record."""

    def remember(self, pipeline_id: str, owner: PipelineOwner, expires_at: int) -> None:
        """1 PutItem, kept until ``expires_at`` (epoch seconds)."""
        ...

    def owner(self, pipeline_id: str) -> PipelineOwner | None:
        """1 GetItem: the call it was started for, or None for a pipeline this stack never started."""
        ...


class MeetingProvider(Protocol):
    """The port the voice service drives; a boto3 Chime SDK adapter and a local fake implement it.

    Deleting something that is already gone is not an error (teardown is idempotent).
    """

    def create_meeting(self, *, client_request_token: str, external_meeting_id: str) -> Meeting: ...

    def create_attendee(self, meeting_id: str, external_user_id: str, audio: Audio) -> Attendee: ...

    def update_attendee_audio(self, meeting_id: str, attendee_id: str, audio: Audio) -> None: ...

    def delete_attendee(self, meeting_id: str, attendee_id: str) -> None: ...

    def delete_meeting(self, meeting_id: str) -> None: ...

    def start_recording(self, meeting: Meeting, sink_arn: str) -> str: ...

    def delete_pipeline(self, pipeline_id: str) -> None: ...
