"""Builds the services once per cold start (or per test) from settings.

Nothing here runs at import: ``app.py`` calls :func:`services` on first use, so importing the app
needs no environment, creates no AWS client and loads no Chime SDK client.
"""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING, Protocol

import msgspec

from chalicelib import settings as settings_module
from chalicelib.adapters import dynamo
from chalicelib.adapters.assist_repository import DynamoAssistStore
from chalicelib.adapters.connection_registry import DynamoConnectionRegistry
from chalicelib.adapters.directory_store import DynamoDirectory
from chalicelib.adapters.push import ApiGatewayPusher
from chalicelib.adapters.secrets import Secret
from chalicelib.adapters.tokens import OidcConfig, TokenVerifier
from chalicelib.adapters.workitem_store import DynamoWorkitemStore
from chalicelib.services.clock import SystemClock
from chalicelib.services.coaching import CoachingService
from chalicelib.services.delivery import Notifier
from chalicelib.services.directory import DirectoryService
from chalicelib.services.fanout import FanoutService
from chalicelib.services.integrations import Integrations
from chalicelib.services.ports import (
    AssistanceStore,
    Clock,
    ConnectionRegistry,
    DeliveryQueue,
    Directory,
    MeetingProvider,
    Pusher,
    SmsSender,
    SubscriptionStore,
    WorkitemStore,
)
from chalicelib.services.sessions import SessionService
from chalicelib.services.webhooks import WebhookService
from chalicelib.settings import Settings

if TYPE_CHECKING:
    from chalicelib.services.assistance import AssistanceService
    from chalicelib.services.voice import VoiceService

log = logging.getLogger(__name__)


class Services(msgspec.Struct):
    settings: Settings
    tokens: TokenVerifier
    directory: DirectoryService
    coaching: CoachingService
    fanout: FanoutService
    webhooks: WebhookService
    assistance: AssistanceService
    voice: VoiceService
    sessions: SessionService
    notifier: Notifier
    registry: ConnectionRegistry
    integrations: Integrations


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


class DynamoStorage:
    """The DynamoDB adapters of every storage port (the deployed stack and the local one)."""

    def __init__(self, settings: Settings) -> None:
        from chalicelib.adapters.webhook_store import DynamoWebhookStore

        self.workitems = DynamoWorkitemStore()
        self.directory = DynamoDirectory(settings)
        self.registry = DynamoConnectionRegistry()
        self.assistance = DynamoAssistStore(settings)
        self.webhooks = DynamoWebhookStore()


def meeting_provider(settings: Settings) -> MeetingProvider:
    """The Chime SDK (the local stack and the tests pass their own ``meetings`` to :func:`build`)."""
    from chalicelib.adapters.chime import ChimeMeetingProvider

    return ChimeMeetingProvider(media_region=settings.media_region)


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
    pusher: Pusher | None = None,
    clock: Clock | None = None,
    meetings: MeetingProvider | None = None,
    queue: DeliveryQueue | None = None,
    sms: SmsSender | None = None,
    storage: Storage | None = None,
    sms_queue: DeliveryQueue | None = None,
) -> Services:
    """The services on DynamoDB, or on ``storage`` (the tests pass in-memory stores). A ``queue``
    given without an ``sms_queue`` carries the SMS too."""
    from chalicelib.services.assistance import AssistanceService
    from chalicelib.services.voice import VoiceService

    if settings.tracing:
        trace_sdk_calls()
    if storage is None:
        dynamo.configure(settings)
    clock = clock or SystemClock()
    stores = storage or DynamoStorage(settings)
    directory = stores.directory
    store = stores.workitems
    registry = stores.registry
    notifier = Notifier(pusher or ApiGatewayPusher(settings.management_endpoint, settings.region), directory)
    coaching = CoachingService(store, directory, notifier, clock)
    jwt_secret = Secret(settings.jwt_secret, settings.jwt_secret_param, settings.region)
    webhook_secret = Secret(settings.webhook_secret, settings.webhook_secret_param, settings.region)
    assistance = AssistanceService(settings, directory, coaching, notifier, clock, stores.assistance)
    voice = VoiceService(settings, coaching, meetings or meeting_provider(settings))
    tokens = TokenVerifier(jwt_secret, oidc=oidc_config(settings))
    directory_service = DirectoryService(directory, registry, store, notifier, clock)
    directory_service.on_supervision_lost.append(coaching.supervision_lost)
    outbound = integrations(settings, notifier, directory, clock, queue, sms, stores.webhooks, sms_queue)
    directory_service.on_event.append(outbound.emit)  # presence.changed
    assistance.on_event.append(outbound.emit)  # assist.requested, assist.claimed, assist.escalated
    return Services(
        settings=settings,
        tokens=tokens,
        directory=directory_service,
        coaching=coaching,
        fanout=FanoutService(directory, notifier, clock),
        webhooks=WebhookService(coaching, webhook_secret),
        assistance=assistance,
        voice=voice,
        sessions=SessionService(tokens, directory, registry, notifier, clock),
        notifier=notifier,
        registry=registry,
        integrations=outbound,
    )


def integrations(
    settings: Settings,
    notifier: Notifier,
    directory: Directory,
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


def services() -> Services:
    """The process-wide services, built on first use."""
    global _services  # noqa: PLW0603 - one container per Lambda execution environment
    if _services is None:
        with _lock:
            if _services is None:
                _services = build(settings_module.load())
    return _services


def install(built: Services | None) -> None:
    """Replace the process-wide services (tests and the local stack)."""
    global _services  # noqa: PLW0603
    _services = built
