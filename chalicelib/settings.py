"""Deployment settings: the only module that reads ``os.environ``.

Importing ``app`` must work with no environment at all (``chalice package`` imports it), so every
value has a safe default. Secrets are never stored here: in AWS only the *names* of the SSM
parameters are configured and :mod:`chalicelib.adapters.secrets` reads the values at runtime; the
local stack passes the values directly through ``COACHING_JWT_SECRET`` / ``COACHING_WEBHOOK_SECRET``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

import msgspec


def _int(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name, "")
    try:
        return int(raw) if raw else default
    except ValueError as exc:
        raise ValueError(f"setting {name} must be an integer, got {raw!r}") from exc


class Settings(msgspec.Struct, frozen=True):
    """Everything configurable about one deployment (stage)."""

    stage: str = "dev"
    region: str = "us-east-1"
    directory_table: str = "coaching-directory"
    workitems_table: str = "coaching-workitems"
    connections_table: str = "coaching-connections"
    assistance_table: str = "coaching-assistance"
    idempotency_table: str = "coaching-idempotency"
    dynamodb_endpoint: str = ""
    # Management endpoint for pushes: a full URL (local stack) or built from the API id + stage.
    websocket_endpoint: str = ""
    websocket_api_id: str = ""
    websocket_stage: str = ""
    # The partition's domain (AWS::URLSuffix: amazonaws.com, amazonaws.com.cn); '' = from the Region.
    url_suffix: str = ""
    # Secrets: a value (local stack only) or the name of an SSM SecureString parameter.
    jwt_secret: str = ""
    jwt_secret_param: str = ""
    webhook_secret: str = ""
    webhook_secret_param: str = ""
    media_region: str = "us-east-1"
    recordings_bucket_arn: str = ""
    media_pipeline_sink_arn: str = ""
    default_retention_days: int = 90
    default_escalation_seconds: int = 120
    escalation_shards: int = 4
    log_level: str = "INFO"
    # Outbound webhooks and channel delivery (docs/webhooks.md).
    delivery_queue_url: str = ""
    delivery_dlq_url: str = ""
    sms_queue_url: str = ""
    # The attention rules' timers (customer_waiting, handle_time): delayed SQS messages (docs/attention.md).
    attention_timer_queue_url: str = ""
    # Connectors in (docs/connectors.md): the SNS topic the inbound texts come from ('' = any: the
    # local stack, whose route hands the function the message only).
    sms_inbound_topic_arn: str = ""
    # Amazon Connect: the instances the stack accepts (its ConnectInstanceArns parameter), the
    # stack's account, and the queue of the delayed end checks.
    connect_instance_arns: tuple[str, ...] = ()
    account_id: str = ""
    connector_queue_url: str = ""
    # The standard SNS topic Amazon Connect streams chat items to ('' = chats are not streamed; the
    # local stack's route hands the function the item itself).
    connect_chat_topic_arn: str = ""
    # "public": https to public addresses only (AWS); "local": http and loopback/private allowed too.
    webhook_targets: str = "public"
    webhook_retry_base_seconds: int = 30
    webhook_cache_seconds: int = 30
    # How long a function instance keeps a tenant's attention rules (docs/attention.md).
    attention_cache_seconds: int = 10
    # How many of a tenant's posts to receivers not known to be fast may run at once (the slow lane).
    webhook_slow_lane: int = 4
    # One OIDC issuer whose RS256/ES256 tokens are accepted beside the HS256 ones (docs/product.md W9);
    # '' = none. The JWKS URL defaults to the one the issuer's discovery document names.
    oidc_issuer: str = ""
    oidc_jwks_url: str = ""
    oidc_audience: str = ""
    oidc_tenant_claim: str = "tid"
    oidc_role_claim: str = "role"
    # The web console's origins (https://<its CloudFront domain>, and the origin of ConsoleCallbackUrl)
    # that may call the REST API from a browser (CORS, docs/deploy.md); none: no CORS headers at all.
    console_origins: tuple[str, ...] = ()
    # Live transcript of voice calls (docs/transcript.md): the media insights pipeline configuration
    # ('' = transcription off: the stack's EnableTranscription condition is false), the sink stream
    # whose records the transcript function reads ('' = none read), the Kinesis Video stream pool
    # the calls' audio goes to, and the sample rate the pipeline is told the audio has.
    transcript_configuration_arn: str = ""
    transcript_stream_arn: str = ""
    transcript_pool_arn: str = ""
    transcript_sample_rate: int = 48000
    # X-Ray: "active" patches the AWS SDK so its calls show in the function's trace (EnableTracing).
    tracing: bool = False

    def __repr__(self) -> str:
        """Every setting but the secret values (they may reach a log line)."""
        shown = ", ".join(
            f"{name}={getattr(self, name)!r}" for name in self.__struct_fields__ if name not in ("jwt_secret", "webhook_secret")
        )
        return f"Settings({shown})"

    @property
    def management_endpoint(self) -> str:
        """URL of the ``@connections`` API that pushes go through ('' when not configured)."""
        if self.websocket_endpoint:
            return self.websocket_endpoint.rstrip("/")
        if self.websocket_api_id:
            suffix = self.url_suffix or partition_dns_suffix(self.region)
            return f"https://{self.websocket_api_id}.execute-api.{self.region}.{suffix}/{self.websocket_stage or 'api'}"
        return ""


def partition_dns_suffix(region: str) -> str:
    """The DNS suffix of the partition ``region`` belongs to, from botocore's endpoint data.

    Only for when ``URL_SUFFIX`` is not set (a deployed stack sets it): loading that data is not free.
    """
    import re

    from botocore.loaders import create_loader

    partitions = create_loader().load_data("endpoints")["partitions"]
    for partition in partitions:
        if region in partition.get("regions", {}) or re.match(partition["regionRegex"], region):
            suffix: str = partition["dnsSuffix"]
            return suffix
    return str(partitions[0]["dnsSuffix"])


def in_lambda() -> bool:
    """Whether this process is a Lambda function (Lambda sets ``AWS_LAMBDA_FUNCTION_NAME``)."""
    return bool(os.environ.get("AWS_LAMBDA_FUNCTION_NAME"))


def stack_name() -> str:
    """The CloudFormation stack this function belongs to (``COACHING_STACK``; ``local`` elsewhere)."""
    return os.environ.get("COACHING_STACK") or "local"


def trace_header() -> str | None:
    """X-Ray's trace header of the current invocation (Lambda sets ``_X_AMZN_TRACE_ID`` anew for each
    one, so it is read every time rather than loaded once with the settings)."""
    return os.environ.get("_X_AMZN_TRACE_ID")


def load(env: Mapping[str, str] | None = None) -> Settings:
    """Build :class:`Settings` from the environment (or any mapping, for tests)."""
    e = os.environ if env is None else env
    d = Settings()
    return Settings(
        stage=e.get("COACHING_STAGE", d.stage),
        region=e.get("AWS_REGION", e.get("AWS_DEFAULT_REGION", d.region)),
        directory_table=e.get("DIRECTORY_TABLE", d.directory_table),
        workitems_table=e.get("WORKITEMS_TABLE", d.workitems_table),
        connections_table=e.get("CONNECTIONS_TABLE", d.connections_table),
        assistance_table=e.get("ASSISTANCE_TABLE", d.assistance_table),
        idempotency_table=e.get("IDEMPOTENCY_TABLE", d.idempotency_table),
        dynamodb_endpoint=e.get("DYNAMODB_ENDPOINT", ""),
        websocket_endpoint=e.get("WEBSOCKET_ENDPOINT", ""),
        websocket_api_id=e.get("WEBSOCKET_API_ID", ""),
        websocket_stage=e.get("WEBSOCKET_STAGE", ""),
        url_suffix=e.get("URL_SUFFIX", ""),
        jwt_secret=e.get("COACHING_JWT_SECRET", ""),
        jwt_secret_param=e.get("JWT_SECRET_PARAM", ""),
        webhook_secret=e.get("COACHING_WEBHOOK_SECRET", ""),
        webhook_secret_param=e.get("WEBHOOK_SECRET_PARAM", ""),
        media_region=e.get("CHIME_MEDIA_REGION", d.media_region),
        recordings_bucket_arn=e.get("RECORDINGS_BUCKET_ARN", ""),
        media_pipeline_sink_arn=e.get("MEDIA_PIPELINE_SINK_ARN", ""),
        default_retention_days=_int(e, "DEFAULT_RETENTION_DAYS", d.default_retention_days),
        default_escalation_seconds=_int(e, "DEFAULT_ESCALATION_SECONDS", d.default_escalation_seconds),
        escalation_shards=_int(e, "ESCALATION_SHARDS", d.escalation_shards),
        log_level=e.get("LOG_LEVEL", d.log_level),
        delivery_queue_url=e.get("DELIVERY_QUEUE_URL", ""),
        delivery_dlq_url=e.get("DELIVERY_DLQ_URL", ""),
        sms_queue_url=e.get("SMS_QUEUE_URL", ""),
        attention_timer_queue_url=e.get("ATTENTION_TIMER_QUEUE_URL", ""),
        sms_inbound_topic_arn=e.get("SMS_INBOUND_TOPIC_ARN", ""),
        connect_instance_arns=tuple(a.strip() for a in e.get("CONNECT_INSTANCE_ARNS", "").split(",") if a.strip()),
        account_id=e.get("COACHING_ACCOUNT_ID", ""),
        connect_chat_topic_arn=e.get("CONNECT_CHAT_TOPIC_ARN", ""),
        connector_queue_url=e.get("CONNECTOR_QUEUE_URL", ""),
        webhook_targets=e.get("WEBHOOK_TARGETS", d.webhook_targets),
        webhook_retry_base_seconds=_int(e, "WEBHOOK_RETRY_BASE_SECONDS", d.webhook_retry_base_seconds),
        webhook_cache_seconds=_int(e, "WEBHOOK_CACHE_SECONDS", d.webhook_cache_seconds),
        attention_cache_seconds=_int(e, "ATTENTION_CACHE_SECONDS", d.attention_cache_seconds),
        webhook_slow_lane=max(1, min(8, _int(e, "WEBHOOK_SLOW_LANE", d.webhook_slow_lane))),
        oidc_issuer=e.get("COACHING_OIDC_ISSUER", ""),
        oidc_jwks_url=e.get("COACHING_OIDC_JWKS_URL", ""),
        oidc_audience=e.get("COACHING_OIDC_AUDIENCE", ""),
        oidc_tenant_claim=e.get("COACHING_OIDC_TENANT_CLAIM", "") or d.oidc_tenant_claim,
        oidc_role_claim=e.get("COACHING_OIDC_ROLE_CLAIM", "") or d.oidc_role_claim,
        console_origins=tuple(o.strip().rstrip("/") for o in e.get("CONSOLE_ORIGINS", "").split(",") if o.strip()),
        tracing=e.get("COACHING_TRACING", "") == "active",
        transcript_configuration_arn=e.get("TRANSCRIPT_CONFIGURATION_ARN", ""),
        transcript_stream_arn=e.get("TRANSCRIPT_STREAM_ARN", ""),
        transcript_pool_arn=e.get("TRANSCRIPT_POOL_ARN", ""),
        transcript_sample_rate=_int(e, "TRANSCRIPT_SAMPLE_RATE", d.transcript_sample_rate),
    )
