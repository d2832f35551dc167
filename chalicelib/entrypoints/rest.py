"""The REST API (docs/openapi.yaml): request bodies, authentication of REST callers, one named handler
per route, webhook intake, query parsing, and the contract's error shape for Chalice's own refusals.

Every handler takes the Chalice request (and the route's path parameters) and returns
``(status, body)``; ``app.py`` only turns that into a Response.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Annotated, Any, Concatenate, Literal, ParamSpec

import msgspec

from chalicelib import bootstrap, logs
from chalicelib.bootstrap import Services
from chalicelib.domain.attention import rule_from
from chalicelib.domain.connect import INSTANCE_ARN_REGEX
from chalicelib.domain.connect import WORKITEM_PREFIX as CONNECT_WORKITEM_PREFIX
from chalicelib.domain.errors import Invalid, TooLarge, Unauthorized
from chalicelib.domain.identity import Principal
from chalicelib.domain.ids import ID_REGEX, is_id
from chalicelib.domain.inbound_sms import E164_REGEX
from chalicelib.domain.text import SECRET_REGEX
from chalicelib.domain.webhooks import MAX_ROTATION_OVERLAP_SECONDS, ROTATION_OVERLAP_SECONDS
from chalicelib.entrypoints.errors import NOTHING_APPLIED, contract_error, record, status_of, wire_names
from chalicelib.entrypoints.validation import MAX_SEQ, CustomerId, Id, Name, Text, check_utf8, decode
from chalicelib.entrypoints.validation import validate as validate_struct
from chalicelib.entrypoints.wire import RULE_FIELDS, WIRE, coaching_csv
from chalicelib.services.ports import Created
from chalicelib.services.webhooks import Assigned, Ended, InboundEvent, InboundMessage, Transferred

log = logging.getLogger(__name__)

MAX_REST_BODY_BYTES = 128 * 1024

Reply = tuple[int, Any]
P = ParamSpec("P")


# --- bodies ----------------------------------------------------------------------------------------


class Body(msgspec.Struct, frozen=True, kw_only=True):
    """A REST body or webhook payload; unknown extra fields are ignored. Every body class is
    ``kw_only`` so that its fields keep their declaration order."""


class UserBody(Body, frozen=True, kw_only=True):
    name: Name
    role: Literal["admin", "supervisor", "agent"]


class TeamBody(Body, frozen=True, kw_only=True):
    name: Name
    supervisors: Annotated[list[Id], msgspec.Meta(max_length=500)]
    agents: Annotated[list[Id], msgspec.Meta(max_length=500)]


class TemplateBody(Body, frozen=True, kw_only=True):
    text: Text
    enabled: bool = True


class AttentionRuleBody(Body, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Every kind's fields with their widest bounds; which belong to which kind, and each kind's own
    bounds, are the domain's (``domain/attention.py``: ``rule_from``). Unknown fields are refused."""

    kind: Literal["keyword", "sentiment", "customer_waiting", "silence", "handle_time"]
    enabled: bool = True
    severity: Annotated[int, msgspec.Meta(ge=1, le=3)] = 1
    # Optional, never null: a field left out is UNSET (null is refused like any other wrong type).
    phrases: (
        Annotated[list[Annotated[str, msgspec.Meta(min_length=1, max_length=100)]], msgspec.Meta(max_length=100)]
        | msgspec.UnsetType
    ) = msgspec.UNSET
    speakers: Annotated[list[Literal["customer", "agent"]], msgspec.Meta(max_length=2)] | msgspec.UnsetType = msgspec.UNSET
    # Bounded per kind by the domain (docs/openapi.yaml states each kind's bounds).
    negativeInARow: int | msgspec.UnsetType = msgspec.UNSET
    seconds: int | msgspec.UnsetType = msgspec.UNSET


# domain.sentiment.LANGUAGES: Amazon Comprehend's sentiment languages (tests/unit/test_validation.py).
SentimentLanguage = Literal["en", "es", "fr", "de", "it", "pt", "ar", "hi", "ja", "ko", "zh", "zh-TW"]


class PolicyBody(Body, frozen=True, kw_only=True):
    recordCoaching: bool
    escalationSeconds: Annotated[int, msgspec.Meta(ge=1, le=24 * 3600)]
    retentionDays: Annotated[int, msgspec.Meta(ge=1, le=3650)]
    transcribeCalls: bool = False
    sentimentLanguage: SentimentLanguage = "en"


class WebhookSecretBody(Body, frozen=True, kw_only=True):
    secret: Annotated[str, msgspec.Meta(pattern=SECRET_REGEX)]


class SubscriptionBody(Body, frozen=True, kw_only=True):
    url: Annotated[str, msgspec.Meta(min_length=1, max_length=2048)]
    events: Annotated[list[Annotated[str, msgspec.Meta(max_length=64)]], msgspec.Meta(min_length=1, max_length=20)]
    enabled: bool = True


class RotateSecretBody(Body, frozen=True, kw_only=True):
    """Optional: without a body the previous secret keeps signing for the default overlap."""

    keepPreviousSeconds: Annotated[int, msgspec.Meta(ge=0, le=MAX_ROTATION_OVERLAP_SECONDS)] = ROTATION_OVERLAP_SECONDS


class SmsSettingsBody(Body, frozen=True, kw_only=True):
    originationIdentity: Annotated[str, msgspec.Meta(min_length=1, max_length=256, pattern=r"^[A-Za-z0-9+_:/.\-]+$")]
    phoneNumber: Annotated[str, msgspec.Meta(pattern=E164_REGEX)] | msgspec.UnsetType = msgspec.UNSET


class AmazonConnectBody(Body, frozen=True, kw_only=True):
    instanceArn: Annotated[str, msgspec.Meta(max_length=2048, pattern=INSTANCE_ARN_REGEX)]
    # Connect user id (a UUID) -> the user id of the agent here.
    agents: Annotated[dict[Annotated[str, msgspec.Meta(pattern=ID_REGEX)], Id], msgspec.Meta(max_length=5000)]


class SettingsBody(Body, frozen=True, kw_only=True):
    agentMessageNotification: bool


class CustomerBody(Body, frozen=True, kw_only=True):
    id: CustomerId
    name: Name


class AssignedData(Body, frozen=True, kw_only=True):
    workitemId: Id
    channel: Literal["chat", "sms", "social", "voice", "email"]
    agentId: Id
    customer: CustomerBody
    subject: Annotated[str, msgspec.Meta(max_length=1000)] | None = None


class MessageData(Body, frozen=True, kw_only=True):
    workitemId: Id
    from_: Literal["customer", "agent"] = msgspec.field(name="from")  # "from_" is accepted too
    text: Text


class TransferredData(Body, frozen=True, kw_only=True):
    workitemId: Id
    toAgentId: Id


class EndedData(Body, frozen=True, kw_only=True):
    workitemId: Id
    endedBy: Literal["customer", "agent", "system"]


WEBHOOK_DATA: dict[str, type[Body]] = {
    "workitem.assigned": AssignedData,
    "workitem.message": MessageData,
    "workitem.transferred": TransferredData,
    "workitem.ended": EndedData,
}


class WebhookBody(Body, frozen=True, kw_only=True):
    eventId: Id
    tenantId: Id
    type: Literal["workitem.assigned", "workitem.message", "workitem.transferred", "workitem.ended"]
    data: dict[str, Any]


def parse(model: type[Body], raw: bytes | None) -> Any:
    return validate(model, decode(raw, "body", MAX_REST_BODY_BYTES))


def validate(model: type[Body], data: Any) -> Any:
    return validate_struct(model, data, "body")


def check_id(value: str, label: str) -> str:
    """A path parameter that must be an id."""
    if not is_id(value):
        raise Invalid(f"{label} is not a valid id")
    return value


def query_int(query: dict[str, str], name: str, default: int, low: int, high: int) -> int:
    """A query-string integer: ASCII digits only (no sign, blanks, ``_`` or other scripts' digits), within bounds."""
    text = query.get(name)
    if text is None:
        return default
    if not (text.isascii() and text.isdigit()) or len(text) > len(str(high)) or not low <= int(text) <= high:
        raise Invalid(f"{name} must be an integer from {low} to {high} (ASCII digits only)")
    return int(text)


def page(query: dict[str, str] | None) -> tuple[int, int]:
    """``after`` and ``limit`` from a query string, validated."""
    params = query or {}
    return query_int(params, "after", 0, 0, MAX_SEQ), query_int(params, "limit", 100, 1, 200)


# --- authentication and errors -------------------------------------------------------------------


def rest_caller(headers: dict[str, str]) -> Principal:
    header = headers.get("authorization") or headers.get("Authorization") or ""
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise Unauthorized("send Authorization: Bearer <token>")
    return bootstrap.services(WIRE).sessions.authenticate(token.strip())


def respond(request: Any, call: Callable[[], Any]) -> Reply:
    """Run a REST use case and map its outcome to (status, body): 201 for a creation, 204 for nothing to
    return, 200 otherwise; any exception in the contract's error shape (``errors.contract_error``)."""
    started = time.perf_counter()
    # The route's template ("PUT /admin/users/{userId}"), never the path a client sent: a bounded dimension.
    route = f"{request.method} {request.context.get('resourcePath', '?')}"
    try:
        result = call()
    except Exception as exc:  # noqa: BLE001 - every exception becomes the contract's error (errors.py)
        refusal = contract_error(exc, f"REST request {route}")
        record(route, started, refusal)
        return status_of(refusal), {"error": refusal.to_dict()}
    record(route, started, None)
    if isinstance(result, Created):
        return 201, WIRE.plain(result.record)
    return (204, None) if result is None else (200, WIRE.plain(result))


# Chalice answers some requests itself, as {"Code": ..., "Message": ...}; they get the contract's shape and
# a fixed message (Chalice's own would echo the request's Content-Type).
_CHALICE_ERRORS = {
    400: ("invalid", "the request is not valid"),
    404: ("not_found", "no such route"),
    405: ("method_not_allowed", "this route does not take this method"),
    415: ("unsupported_media_type", "send the body as Content-Type: application/json"),
    500: ("internal", NOTHING_APPLIED),
}


def checked(request: Any, get_response: Callable[[Any], Any]) -> Any:
    """Every REST request, before anything else looks at it (authentication, the route's method and media
    type, a webhook's signature): a body that is not UTF-8 text is refused 400 ``invalid``. Then
    Chalice's own refusals are put in the contract's shape (:func:`error_shape`); every answer gets the
    CORS header for the console's origin (:func:`with_cors`)."""
    try:
        check_utf8(request.raw_body or b"", "body")
    except UnicodeEncodeError:  # a text body holding a lone surrogate cannot even be made bytes
        return with_cors(request, _refusal(Invalid("the body is not valid UTF-8 text")))
    except Invalid as exc:
        return with_cors(request, _refusal(exc))
    return with_cors(request, error_shape(get_response(request)))


def _refusal(exc: Invalid) -> Any:
    from chalice.app import Response

    return Response(body={"error": exc.to_dict()}, status_code=status_of(exc), headers={"Content-Type": "application/json"})


def error_shape(response: Any) -> Any:
    """``response`` (a Chalice Response) with a Chalice-made error body rewritten in the contract's shape."""
    body = response.body
    if response.status_code >= 400 and isinstance(body, dict) and "Code" in body and "error" not in body:
        status = response.status_code if response.status_code in _CHALICE_ERRORS else 500
        code, message = _CHALICE_ERRORS[status]
        response.status_code = status
        response.body = {"error": {"code": code, "message": message}}
        response.headers["Content-Type"] = "application/json"
    return response


# --- CORS: the web console calls this API from its own origin (CloudFront) --------------------------------
# Only the console's origins (settings.console_origins: the stack's CloudFront domain, and the origin of
# ConsoleCallbackUrl) get Access-Control-Allow-Origin, on every answer including errors; API Gateway's own
# answers (gateway responses) carry the CloudFront origin from the template. Another origin gets no CORS
# header, so a browser keeps the answer from that page (docs/deploy.md).

CORS_ALLOWED_HEADERS = "Authorization, Content-Type"
CORS_MAX_AGE_SECONDS = 7200  # the longest Chromium honours


def _allowed_origin(request: Any) -> str | None:
    origins = bootstrap.services(WIRE).settings.console_origins
    if not origins:
        return None
    headers = request.headers if request is not None else {}
    origin = headers.get("origin") or headers.get("Origin")
    return origin if origin in origins else None


def with_cors(request: Any, response: Any) -> Any:
    """``response`` with ``Access-Control-Allow-Origin`` when the request comes from a console origin."""
    if bootstrap.services(WIRE).settings.console_origins:
        response.headers["Vary"] = "Origin"
        origin = _allowed_origin(request)
        if origin is not None:
            response.headers["Access-Control-Allow-Origin"] = origin
    return response


def preflight(request: Any, methods: list[str], path_parameters: dict[str, str]) -> tuple[int, Any, dict[str, str | list[str]]]:
    """A browser's CORS preflight for one path: which methods and headers the console may send (204, no
    body). The origin is added by :func:`with_cors`, only for a console origin. A path whose parameters
    are not ids is refused like the request itself would be (400 ``invalid``); preflights are not counted
    in the metrics (they would double every route's)."""
    for name, value in path_parameters.items():
        if not is_id(value):
            return 400, {"error": Invalid(f"{name} is not a valid id").to_dict()}, {"Content-Type": "application/json"}
    if _allowed_origin(request) is None:
        return 204, None, {}
    return (
        204,
        None,
        {
            "Access-Control-Allow-Methods": ", ".join(sorted({*methods, "OPTIONS"})),
            "Access-Control-Allow-Headers": CORS_ALLOWED_HEADERS,
            "Access-Control-Max-Age": str(CORS_MAX_AGE_SECONDS),
        },
    )


UseCase = Callable[Concatenate[Services, Principal, Any, P], Any]


def authenticated(
    body: type[Body] | None = None, *, optional: bool = False
) -> Callable[[UseCase[P]], Callable[Concatenate[Any, P], Reply]]:
    """A route handler from ``use_case(services, caller, body, *path_parameters)``: authenticate the caller,
    validate the body (``None`` for a route without one; with ``optional``, an empty body stands for the
    body's defaults), run the use case, map errors."""

    def handler_of(use_case: UseCase[P]) -> Callable[Concatenate[Any, P], Reply]:
        def handler(request: Any, /, *args: P.args, **kwargs: P.kwargs) -> Reply:
            def call() -> Any:
                caller = rest_caller(dict(request.headers))
                logs.bind(tenant_id=caller.tenant_id, user_id=caller.user_id)
                if body is None:
                    parsed = None
                elif optional and not request.raw_body:
                    parsed = body()
                else:
                    parsed = parse(body, request.raw_body)
                return use_case(bootstrap.services(WIRE), caller, parsed, *args, **kwargs)

            return respond(request, call)

        handler.__name__ = handler.__qualname__ = use_case.__name__
        handler.__doc__ = use_case.__doc__
        return handler

    return handler_of


# --- routes ----------------------------------------------------------------------------------------


def health() -> Reply:
    return 200, {"status": "ok"}


@authenticated(UserBody)
def put_user(services: Services, caller: Principal, body: UserBody, user_id: str) -> Any:
    return services.directory.put_user(caller, check_id(user_id, "userId"), body.name, body.role)


@authenticated()
def revoke_user(services: Services, caller: Principal, body: None, user_id: str) -> Any:
    return services.sessions.revoke(caller, check_id(user_id, "userId"))


@authenticated(TeamBody)
def put_team(services: Services, caller: Principal, body: TeamBody, team_id: str) -> Any:
    return services.directory.put_team(caller, check_id(team_id, "teamId"), body.name, body.supervisors, body.agents)


@authenticated()
def list_templates(services: Services, caller: Principal, body: None) -> Any:
    return services.directory.list_templates(caller)


@authenticated(TemplateBody)
def put_template(services: Services, caller: Principal, body: TemplateBody, template_id: str) -> Any:
    return services.directory.put_template(caller, check_id(template_id, "templateId"), body.text, body.enabled)


@authenticated()
def delete_template(services: Services, caller: Principal, body: None, template_id: str) -> Any:
    return services.directory.delete_template(caller, check_id(template_id, "templateId"))


@authenticated()
def list_attention_rules(services: Services, caller: Principal, body: None) -> Any:
    return services.attention.list_rules(caller)


def given[T](value: T | msgspec.UnsetType) -> T | None:
    """A body's optional field: None when it was left out."""
    return None if isinstance(value, msgspec.UnsetType) else value


@authenticated(AttentionRuleBody)
def put_attention_rule(services: Services, caller: Principal, body: AttentionRuleBody, rule_id: str) -> Any:
    with wire_names(RULE_FIELDS):
        rule = rule_from(
            check_id(rule_id, "ruleId"),
            body.kind,
            body.enabled,
            body.severity,
            phrases=given(body.phrases),
            speakers=given(body.speakers),
            negative_in_a_row=given(body.negativeInARow),
            seconds=given(body.seconds),
        )
    return services.attention.put_rule(caller, rule)


@authenticated()
def delete_attention_rule(services: Services, caller: Principal, body: None, rule_id: str) -> Any:
    return services.attention.delete_rule(caller, check_id(rule_id, "ruleId"))


@authenticated()
def get_policy(services: Services, caller: Principal, body: None) -> Any:
    return services.directory.get_policy(caller)


@authenticated(PolicyBody)
def put_policy(services: Services, caller: Principal, body: PolicyBody) -> Any:
    return services.directory.put_policy(
        caller,
        body.recordCoaching,
        body.escalationSeconds,
        body.retentionDays,
        body.sentimentLanguage,
        transcribe_calls=body.transcribeCalls,
    )


@authenticated(WebhookSecretBody)
def put_webhook_secret(services: Services, caller: Principal, body: WebhookSecretBody) -> Any:
    return services.directory.set_webhook_secret(caller, body.secret)


@authenticated()
def get_settings(services: Services, caller: Principal, body: None) -> Any:
    return services.directory.get_settings(caller)


@authenticated(SettingsBody)
def put_settings(services: Services, caller: Principal, body: SettingsBody) -> Any:
    return services.directory.put_settings(caller, body.agentMessageNotification)


@authenticated()
def list_agent_workitems(services: Services, caller: Principal, body: None, agent_id: str) -> Any:
    return services.coaching.workitems(caller, check_id(agent_id, "agentId"))


def get_timeline(request: Any, workitem_id: str) -> Reply:
    return _timeline_page(request, workitem_id, request.query_params)


@authenticated()
def _timeline_page(services: Services, caller: Principal, body: None, workitem_id: str, query: dict[str, str] | None) -> Any:
    return services.coaching.timeline(caller, check_id(workitem_id, "workitemId"), *page(query))


ANALYTICS_PARAMETERS = frozenset({"from", "to", "groupBy", "format"})
# A report's CSV (format=csv) is a download (app.py; Chalice's policy analyzer reads app.py, keep it plain).
CSV_HEADERS: dict[str, str | list[str]] = {
    "Content-Type": "text/csv; charset=utf-8",
    "Content-Disposition": 'attachment; filename="coaching.csv"',
}


def get_coaching_analytics(request: Any) -> Reply:
    """``GET /analytics/coaching``: JSON, or with ``format=csv`` the rows as CSV text."""
    return _coaching_analytics(request, request.query_params)


@authenticated()
def _coaching_analytics(services: Services, caller: Principal, body: None, query: dict[str, str] | None) -> Any:
    from chalicelib.domain import analytics as an

    params = dict(query or {})
    scope = services.analytics.scope(caller)  # agents and customers are refused before their query is read
    unknown = sorted(set(params) - ANALYTICS_PARAMETERS)
    if unknown:
        raise Invalid(f"unknown query parameter {unknown[0][:64]!r} (from, to, groupBy, format)")
    fmt = params.get("format", "json")
    if fmt not in ("json", "csv"):
        raise Invalid("format must be json or csv")
    parsed = an.parse_query(params.get("from"), params.get("to"), params.get("groupBy"))
    report = services.analytics.coaching(caller, parsed, scope)
    return coaching_csv(report) if fmt == "csv" else report


@authenticated()
def export_workitem(services: Services, caller: Principal, body: None, workitem_id: str) -> Any:
    return services.coaching.export(caller, check_id(workitem_id, "workitemId"))


@authenticated()
def list_webhook_subscriptions(services: Services, caller: Principal, body: None) -> Any:
    return services.integrations.list_subscriptions(caller)


@authenticated(SubscriptionBody)
def put_webhook_subscription(services: Services, caller: Principal, body: SubscriptionBody, subscription_id: str) -> Any:
    subscription = check_id(subscription_id, "subscriptionId")
    return services.integrations.put_subscription(caller, subscription, body.url, body.events, body.enabled)


@authenticated()
def delete_webhook_subscription(services: Services, caller: Principal, body: None, subscription_id: str) -> Any:
    return services.integrations.delete_subscription(caller, check_id(subscription_id, "subscriptionId"))


@authenticated(RotateSecretBody, optional=True)
def rotate_webhook_secret(services: Services, caller: Principal, body: RotateSecretBody, subscription_id: str) -> Any:
    subscription = check_id(subscription_id, "subscriptionId")
    return services.integrations.rotate_secret(caller, subscription, body.keepPreviousSeconds)


@authenticated()
def replay_webhook_deliveries(services: Services, caller: Principal, body: None) -> Any:
    return services.integrations.replay(caller)


@authenticated()
def get_sms_settings(services: Services, caller: Principal, body: None) -> Any:
    return services.integrations.get_sms_settings(caller)


@authenticated(SmsSettingsBody)
def put_sms_settings(services: Services, caller: Principal, body: SmsSettingsBody) -> Any:
    number = body.phoneNumber if isinstance(body.phoneNumber, str) else None
    return services.integrations.put_sms_settings(caller, body.originationIdentity, number)


@authenticated(AmazonConnectBody)
def put_amazon_connect(services: Services, caller: Principal, body: AmazonConnectBody) -> Any:
    return services.amazon_connect.put_settings(caller, body.instanceArn, dict(body.agents))


# --- inbound webhook events (signed by the tenant's secret, not a bearer token) ---------------------


def parse_webhook(raw: bytes) -> dict[str, Any] | None:
    """The webhook body decoded (bounded like every body: size, depth, numbers), before its signature is
    checked; None when it is not a JSON object within those bounds (then the signature is checked with
    the default secret, and a signed body is refused 400). Too large is refused 413 at once."""
    try:
        data = decode(raw, "body", MAX_REST_BODY_BYTES)
    except TooLarge:
        raise
    except Invalid:
        return None
    return data if isinstance(data, dict) else None


def validate_webhook(data: dict[str, Any]) -> dict[str, Any]:
    body = validate(WebhookBody, data)
    payload = msgspec.to_builtins(validate(WEBHOOK_DATA[body.type], body.data))
    return {"eventId": body.eventId, "tenantId": body.tenantId, "type": body.type, "data": payload}


def inbound(event: dict[str, Any]) -> InboundEvent:
    """A validated webhook event (:func:`validate_webhook`) as the service's record."""
    data = event["data"]
    kind = event["type"]
    record: Assigned | InboundMessage | Transferred | Ended
    if kind == "workitem.assigned":
        if data["workitemId"].startswith(CONNECT_WORKITEM_PREFIX):
            raise Invalid(f"workitem ids starting with {CONNECT_WORKITEM_PREFIX} are the Amazon Connect connector's")
        customer = data["customer"]
        record = Assigned(
            data["workitemId"], data["channel"], data["agentId"], customer["id"], customer["name"], data.get("subject")
        )
    elif kind == "workitem.message":
        record = InboundMessage(data["workitemId"], data["from"], data["text"])
    elif kind == "workitem.transferred":
        record = Transferred(data["workitemId"], data["toAgentId"])
    else:
        record = Ended(data["workitemId"], data["endedBy"])
    return InboundEvent(event["eventId"], event["tenantId"], kind, record)


def receive_webhook(request: Any) -> Reply:
    """``POST /webhooks/events``: the signature is checked with the tenant's own secret before the body
    is validated."""

    def call() -> Any:
        raw: bytes = request.raw_body or b""
        data = parse_webhook(raw)
        tenant = data.get("tenantId") if data else None
        tenant_id = tenant if is_id(tenant) else None
        logs.bind(tenant_id=tenant_id)
        validated = (lambda: inbound(validate_webhook(data))) if data is not None else None
        return bootstrap.services(WIRE).webhooks.handle(raw, request.headers.get("x-coaching-signature"), tenant_id, validated)

    return respond(request, call)
