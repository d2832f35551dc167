"""Builds the services once per cold start (or per test) from settings.

Nothing here runs at import: ``app.py`` calls :func:`services` on first use, so importing the app
needs no environment, creates no AWS client and loads no Chime SDK client.
"""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING, Protocol, cast

import msgspec

from chalicelib import settings as settings_module
from chalicelib.adapters import dynamo
from chalicelib.adapters.assist_repository import DynamoAssistStore
from chalicelib.adapters.attention_store import DynamoAttentionStore
from chalicelib.adapters.connection_registry import DynamoConnectionRegistry
from chalicelib.adapters.directory_store import DynamoDirectory
from chalicelib.adapters.pipeline_index import DynamoPipelineIndex
from chalicelib.adapters.push import ApiGatewayPusher
from chalicelib.adapters.secrets import Secret
from chalicelib.adapters.tokens import OidcConfig, TokenVerifier
from chalicelib.adapters.workitem_store import DynamoWorkitemStore
from chalicelib.services.analytics import AnalyticsService
from chalicelib.services.attention import AttentionService
from chalicelib.services.clock import SystemClock
from chalicelib.services.coaching import CoachingService
from chalicelib.services.commits import Workitems
from chalicelib.services.connectors import AmazonConnect, InboundSms
from chalicelib.services.delivery import Notifier
from chalicelib.services.directory import DirectoryService
from chalicelib.services.fanout import FanoutService
from chalicelib.services.integrations import Integrations
from chalicelib.services.messagebus import (
    AssistClaimed,
    AssistEscalated,
    AssistRequested,
    ChangesCommitted,
    CoachingEnded,
    Event,
    Handler,
    MessageBus,
    PresenceChanged,
    SupervisionLost,
    SupervisorLeft,
    WorkitemCommitted,
)
from chalicelib.services.ports import (
    AnalyticsStore,
    AssistanceStore,
    AttentionStore,
    Clock,
    ConnectApi,
    ConnectionRegistry,
    DeliveryQueue,
    Directory,
    MeetingProvider,
    PipelineIndex,
    Pusher,
    RecipientLookup,
    Renderer,
    RetainedHistory,
    SentimentAnalyzer,
    SmsSender,
    SubscriptionStore,
    Transcription,
    WorkitemStore,
)
from chalicelib.services.results import AssistNote, PresenceState
from chalicelib.services.sessions import SessionService
from chalicelib.services.transcript import TranscriptService
from chalicelib.services.webhooks import WebhookService
from chalicelib.settings import Settings

if TYPE_CHECKING:
    from chalicelib.services.assistance import AssistanceService
    from chalicelib.services.voice import VoiceService

log = logging.getLogger(__name__)


class Services(msgspec.Struct):
    settings: Settings  # the entry layer's own settings (the console's origins for CORS)
    tokens: TokenVerifier
    directory: DirectoryService
    coaching: CoachingService
    fanout: FanoutService
    webhooks: WebhookService
    assistance: AssistanceService
    voice: VoiceService
    sessions: SessionService
    notifier: Notifier
    integrations: Integrations
    attention: AttentionService
    bus: MessageBus
    analytics: AnalyticsService
    inbound_sms: InboundSms
    amazon_connect: AmazonConnect
    transcript: TranscriptService


class Storage(Protocol):
    """Where the services keep their state: one store per storage port."""

    @property
    def workitems(self) -> WorkitemStore: ...

    @property
    def directory(self) -> Directory: ...

    @property
    def registry(self) -> ConnectionRegistry: ...

    @property
    def assistance(self) -> AssistanceStore: ...

    @property
    def webhooks(self) -> SubscriptionStore: ...

    @property
    def analytics(self) -> AnalyticsStore: ...

    @property
    def attention(self) -> AttentionStore: ...

    @property
    def pipelines(self) -> PipelineIndex: ...


class DynamoStorage:
    """The DynamoDB adapters of every storage port (the deployed stack and the local one)."""

    def __init__(self, settings: Settings) -> None:
        from chalicelib.adapters.analytics_store import DynamoAnalyticsStore
        from chalicelib.adapters.webhook_store import DynamoWebhookStore

        self.workitems = DynamoWorkitemStore()
        self.directory = DynamoDirectory(settings)
        self.registry = DynamoConnectionRegistry()
        self.assistance = DynamoAssistStore(settings)
        self.webhooks = DynamoWebhookStore()
        self.analytics = DynamoAnalyticsStore()
        self.attention = DynamoAttentionStore()
        self.pipelines = DynamoPipelineIndex()


def meeting_provider(settings: Settings) -> MeetingProvider:
    """The Chime SDK (the local stack and the tests pass their own ``meetings`` to :func:`build`)."""
    from chalicelib.adapters.chime import ChimeMeetingProvider

    return ChimeMeetingProvider(media_region=settings.media_region)


def comprehend(settings: Settings) -> SentimentAnalyzer:
    """Amazon Comprehend (the local stack and the tests pass their own analyzer to :func:`build`)."""
    from chalicelib.adapters.comprehend import ComprehendSentiment

    return ComprehendSentiment(settings.region)


def connect_api(settings: Settings) -> ConnectApi | None:
    """Amazon Connect's API, when the stack follows instances (CONNECT_INSTANCE_ARNS) on AWS (it has
    the chat topic). The local stack has neither Connect nor the topic: it streams and reconciles nothing."""
    if not settings.connect_instance_arns or not settings.connect_chat_topic_arn:
        return None
    from chalicelib.adapters.connect_api import ConnectClient

    return ConnectClient(settings.region)


def timer_queue(settings: Settings) -> DeliveryQueue | None:
    """The attention timers' SQS queue (None when the stack has none: timer rules then raise nothing)."""
    if not settings.attention_timer_queue_url:
        return None
    from chalicelib.adapters.delivery_queue import SqsDeliveryQueue

    return SqsDeliveryQueue(settings.attention_timer_queue_url, settings.delivery_dlq_url, settings.region)


def trace_sdk_calls() -> None:
    """X-Ray subsegments for every AWS SDK call (boto3 and PynamoDB both go through botocore), when the
    stack turns tracing on. Imported here, never at ``import app``: a stack without tracing pays nothing.
    A call made where no segment is open (a worker thread of the fanout or push pools) is not traced,
    silently, rather than logged as an error."""
    from aws_xray_sdk.core import patch, xray_recorder

    xray_recorder.configure(context_missing="IGNORE_ERROR")
    patch(["botocore"])


def oidc_config(settings: Settings) -> OidcConfig | None:
    """The OIDC issuer whose tokens are accepted (docs/product.md W9), if one is configured."""
    if not settings.oidc_issuer:
        return None
    if not settings.oidc_audience:
        log.error("COACHING_OIDC_ISSUER is set without COACHING_OIDC_AUDIENCE: the issuer's tokens are refused")
    return OidcConfig(
        issuer=settings.oidc_issuer,
        audience=settings.oidc_audience,
        jwks_url=settings.oidc_jwks_url,
        tenant_claim=settings.oidc_tenant_claim,
        role_claim=settings.oidc_role_claim,
    )


def build(
    settings: Settings,
    *,
    wire: Renderer,
    pusher: Pusher | None = None,
    clock: Clock | None = None,
    meetings: MeetingProvider | None = None,
    queue: DeliveryQueue | None = None,
    sms: SmsSender | None = None,
    storage: Storage | None = None,
    sms_queue: DeliveryQueue | None = None,
    sentiment: SentimentAnalyzer | None = None,
    timers: DeliveryQueue | None = None,
    connector_queue: DeliveryQueue | None = None,
    connect: ConnectApi | None = None,
) -> Services:
    """The services on DynamoDB, or on ``storage`` (the tests pass in-memory stores), rendering records
    for the wire with ``wire`` (the entry layer's ``entrypoints/wire.py``). A ``queue`` given without an
    ``sms_queue`` carries the SMS too."""
    from chalicelib.services.assistance import AssistanceService
    from chalicelib.services.voice import VoiceService

    if settings.tracing:
        trace_sdk_calls()
    if storage is None:
        dynamo.configure(settings)
    clock = clock or SystemClock()
    stores = storage or DynamoStorage(settings)
    directory = stores.directory
    bus = MessageBus()
    notifier = Notifier(pusher or ApiGatewayPusher(settings.management_endpoint, settings.region), directory, clock, wire)
    fanout = FanoutService(directory, notifier, clock)
    workitems = Workitems(stores.workitems, clock, bus, fanout)
    coaching = CoachingService(workitems, directory, directory, notifier, bus)
    jwt_secret = Secret(settings.jwt_secret, settings.jwt_secret_param, settings.region)
    webhook_secret = Secret(settings.webhook_secret, settings.webhook_secret_param, settings.region)
    assistance = AssistanceService(
        settings, workitems, directory, directory, directory, directory, directory, notifier, clock, bus, stores.assistance
    )
    provider = meetings or meeting_provider(settings)
    # The Chime SDK adapter (and the local stand-in) also runs the live transcript's media pipelines.
    transcription = cast("Transcription", provider) if hasattr(provider, "start_insights") else None
    voice = VoiceService(
        settings, workitems, directory, directory, notifier, provider, transcription, stores.pipelines, directory
    )
    tokens = TokenVerifier(jwt_secret, oidc=oidc_config(settings))
    outbound = integrations(settings, notifier, directory, clock, queue, sms, stores.webhooks, sms_queue)
    webhooks = WebhookService(workitems, directory, directory, notifier, clock, webhook_secret)
    if connector_queue is None and settings.connector_queue_url:
        from chalicelib.adapters.delivery_queue import SqsDeliveryQueue

        connector_queue = SqsDeliveryQueue(settings.connector_queue_url, "", settings.region)
    built = Services(
        settings=settings,
        tokens=tokens,
        directory=DirectoryService(directory, stores.registry, stores.workitems, notifier, clock, bus),
        coaching=coaching,
        fanout=fanout,
        webhooks=webhooks,
        assistance=assistance,
        voice=voice,
        sessions=SessionService(tokens, directory, directory, directory, stores.registry, notifier, clock),
        notifier=notifier,
        integrations=outbound,
        attention=AttentionService(
            stores.attention,
            stores.workitems,
            directory,
            directory,
            notifier,
            clock,
            outbound.emit,
            sentiment or comprehend(settings),
            timers or timer_queue(settings),
            settings.attention_cache_seconds,
            config=directory,
        ),
        bus=bus,
        analytics=AnalyticsService(stores.analytics, directory, directory),
        inbound_sms=InboundSms(workitems, stores.webhooks, outbound),
        amazon_connect=AmazonConnect(
            settings, stores.webhooks, webhooks, workitems, directory, connector_queue, connect or connect_api(settings)
        ),
        transcript=TranscriptService(settings, workitems, stores.pipelines, directory, notifier),
    )
    bus.handlers = event_handlers(built)
    return built


def event_handlers(s: Services) -> dict[type[Event], list[Handler]]:
    """EVENT_HANDLERS: every reaction to an event, in the order it runs (docs: README, "Adding a reaction").

    A new reaction is one line here: a handler taking the event (``messagebus`` says the error policy).
    Handlers of :class:`ChangesCommitted` run in the workitems stream's consumer (``fanout``) with the
    committed changes of one batch, and must be idempotent under redelivery."""
    outbound = s.integrations  # emit renders the records it is given (wire.py)
    return {
        # On a request's path, after its commit:
        WorkitemCommitted: [s.voice.on_committed],
        CoachingEnded: [s.voice.on_coaching_ended],
        SupervisorLeft: [s.voice.on_supervisor_left],
        SupervisionLost: [s.coaching.on_supervision_lost],
        PresenceChanged: [lambda e: outbound.emit(e.tenant_id, "presence.changed", PresenceState(e.user_id, e.state.value))],
        AssistRequested: [
            lambda e: outbound.emit(e.request.tenant_id, "assist.requested", AssistNote(e.request)),
            s.analytics.on_assist_requested,
        ],
        AssistClaimed: [
            lambda e: outbound.emit(e.request.tenant_id, "assist.claimed", AssistNote(e.request, supervisor_id=e.supervisor_id)),
            s.analytics.on_assist_claimed,
        ],
        AssistEscalated: [
            lambda e: outbound.emit(e.request.tenant_id, "assist.escalated", AssistNote(e.request, stage=e.stage)),
            s.analytics.on_assist_escalated,
        ],
        # In the workitems stream's consumer (fanout), one batch at a time:
        ChangesCommitted: [
            lambda e: s.fanout.deliver(e.batch),  # pushes, one workitem's changes in commit order
            lambda e: e.handed_back.extend(outbound.publish(e.batch)),  # webhook and channel deliveries queued
            s.analytics.on_changes,  # coaching analytics counted (a change it could not store is handed back)
            s.attention.on_changes,  # attention rules: alerts raised and cleared (docs/attention.md)
        ],
    }


def rebuild_analytics(s: Services, tenant_id: str, history: RetainedHistory) -> dict[str, int]:
    """Count every fact a tenant still retains into its coaching analytics (``AnalyticsService.rebuild``),
    reading ``history`` (``scripts/rebuild_analytics.py``'s Scans: an operator's tool, never a function's)."""
    return s.analytics.rebuild(tenant_id, history, s.coaching.store)


def integrations(
    settings: Settings,
    notifier: Notifier,
    directory: RecipientLookup,
    clock: Clock,
    queue: DeliveryQueue | None,
    sms: SmsSender | None,
    subscriptions: SubscriptionStore,
    sms_queue: DeliveryQueue | None = None,
) -> Integrations:
    """Outbound webhooks and channel delivery: SQS (the delivery queue, the SMS queue and their
    dead-letter queue) and End User Messaging SMS, unless the local stack or a test passes its own
    queues and SMS sender."""
    from chalicelib.adapters.delivery_queue import SqsDeliveryQueue
    from chalicelib.adapters.http_target import HttpPoster
    from chalicelib.adapters.sms import EndUserMessagingSms

    allow_private = settings.webhook_targets == "local"
    if queue is None:
        queue = SqsDeliveryQueue(settings.delivery_queue_url, settings.delivery_dlq_url, settings.region)
        sms_queue = sms_queue or SqsDeliveryQueue(settings.sms_queue_url, settings.delivery_dlq_url, settings.region)
    return Integrations(
        subscriptions,
        queue,
        HttpPoster(allow_private),
        sms or EndUserMessagingSms(settings.region),
        notifier,
        directory,
        clock,
        allow_private=allow_private,
        sms_queue=sms_queue,
        cache_seconds=settings.webhook_cache_seconds,
        retry_base=settings.webhook_retry_base_seconds,
        lane_places=settings.webhook_slow_lane,
    )


_lock = threading.Lock()
_services: Services | None = None


def services(wire: Renderer) -> Services:
    """The process-wide services, built on first use (the entry layer passes its wire)."""
    global _services  # noqa: PLW0603 - one container per Lambda execution environment
    if _services is None:
        with _lock:
            if _services is None:
                _services = build(settings_module.load(), wire=wire)
    return _services


def install(built: Services | None) -> None:
    """Replace the process-wide services (tests and the local stack)."""
    global _services  # noqa: PLW0603
    _services = built
