"""Adapters from API Gateway / Lambda events to the use cases, and the one place errors are mapped.

``app.py`` only wires routes to these functions; everything that reads an event lives here.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable
from typing import Annotated, Any, Literal

import msgspec

from chalicelib import bootstrap
from chalicelib.adapters.storage_errors import translate
from chalicelib.adapters.tokens import principal_from_claims
from chalicelib.domain.errors import DomainError, Invalid, TooLarge, Unauthorized
from chalicelib.domain.identity import Principal
from chalicelib.domain.ids import is_id
from chalicelib.domain.text import SECRET_REGEX
from chalicelib.protocol import MAX_SEQ, Id, Name, Text
from chalicelib.services.integrations import Created
from chalicelib.services.ports import Connection
from chalicelib.services.sessions import SessionExpired, SessionUnchecked
from chalicelib.validation import decode
from chalicelib.validation import validate as validate_struct

log = logging.getLogger(__name__)

MAX_REST_BODY_BYTES = 128 * 1024


# --- WebSocket ---------------------------------------------------------------------------------


def _context(event: dict[str, Any]) -> dict[str, Any]:
    ctx: dict[str, Any] = event.get("requestContext") or {}
    return ctx


def _connection(event: dict[str, Any]) -> Connection:
    ctx = _context(event)
    connected_at = ctx.get("connectedAt") or int(time.time() * 1000)
    return Connection(str(ctx.get("connectionId", "")), int(connected_at))


def _principal_from_authorizer(event: dict[str, Any]) -> Principal | None:
    auth = _context(event).get("authorizer") or {}
    if not auth.get("tenantId"):
        return None
    claims = {
        "sub": auth.get("userId"),
        "tid": auth.get("tenantId"),
        "role": auth.get("role"),
        "wid": auth.get("workitemId") or None,
        "name": auth.get("name") or None,
        "exp": auth.get("exp"),
        "iat": auth.get("iat"),
    }
    principal = principal_from_claims(claims)
    if auth.get("federated"):
        principal = dataclasses.replace(principal, federated=True)
    return principal


def authorize(event: dict[str, Any]) -> dict[str, Any]:
    """Lambda REQUEST authorizer for ``$connect``: API Gateway then passes the returned context
    with every frame of the connection, so frames need no identity lookup."""
    token = (event.get("queryStringParameters") or {}).get("token")
    try:
        principal = bootstrap.services().tokens.verify(token)
    except Unauthorized as exc:
        log.info("connection refused: %s", exc.message)
        raise Exception("Unauthorized") from None
    context = {
        "tenantId": principal.tenant_id,
        "userId": principal.user_id,
        "role": principal.role.value,
        "workitemId": principal.workitem_id or "",
        "name": principal.name or "",
        # The session's end and the token's issue time, checked on every frame (sessions.py).
        "exp": principal.expires_at if principal.expires_at is not None else "",
        "iat": principal.issued_at if principal.issued_at is not None else "",
        # A user of the OIDC issuer: $connect adds them to the directory on first sight (W9.3).
        "federated": "1" if principal.federated else "",
    }
    return {
        "principalId": f"{principal.tenant_id}/{principal.user_id}",
        "policyDocument": {
            "Version": "2012-10-17",
            "Statement": [{"Action": "execute-api:Invoke", "Effect": "Allow", "Resource": event.get("methodArn", "*")}],
        },
        "context": context,
    }


def ws_connect(event: dict[str, Any]) -> dict[str, Any]:
    services = bootstrap.services()
    try:
        principal = _principal_from_authorizer(event)
        register = principal is None
        if principal is None:
            token = (event.get("queryStringParameters") or {}).get("token")
            principal = services.tokens.verify(token)
        if principal.is_customer:
            workitem = services.coaching.store.get(principal.tenant_id, principal.workitem_id or "")
            if workitem is None:
                return {"statusCode": 403}
        services.directory.connect(principal, _connection(event), register=register)
    except Unauthorized as exc:
        log.info("connection refused: %s", exc.message)
        return {"statusCode": 401}
    except Exception as exc:
        # A store that does not answer is 503 (the client retries), never a 500 with a traceback.
        translated = translate(exc)
        if translated is None:
            raise
        log.warning("connection refused for now: %s (%s)", translated.message, type(exc).__name__)
        return {"statusCode": translated.status}
    return {"statusCode": 200}


def _caller(event: dict[str, Any]) -> tuple[Principal | None, bool]:
    principal = _principal_from_authorizer(event)
    if principal is not None:
        return principal, False
    return bootstrap.services().registry.get(_connection(event).connection_id), True


def ws_message(event: dict[str, Any]) -> dict[str, Any]:
    """Exactly one reply per frame: even when finding the caller fails, the frame gets an error."""
    services = bootstrap.services()
    connection = _connection(event)
    refusal: DomainError | None = None
    try:
        caller, _ = _caller(event)
        if caller is not None:
            try:
                services.sessions.require_live(caller, connection)
            except SessionExpired as exc:
                refusal = exc
            except Exception as exc:  # the session could not be checked: refuse the frame, keep the socket
                refusal = translate(exc)
                if refusal is None:
                    log.exception("session check failed (connection %s)", connection.connection_id)
                    refusal = SessionUnchecked("internal error; the action was not applied")
        if refusal is not None:
            frame = services.router.refuse(event.get("body"), refusal)
        else:
            frame = services.router.reply(caller, connection, event.get("body"))
    except Exception as exc:
        translated = translate(exc)
        if translated is not None:  # e.g. the store did not answer the caller lookup: retryable
            frame = services.router.refuse(event.get("body"), translated)
        else:
            log.exception("frame on connection %s failed before routing", connection.connection_id)
            body = {"code": "internal", "message": "internal error; not applied"}
            frame = {"type": "error", "requestId": None, "error": body}
    services.notifier.send(connection.connection_id, frame)
    if isinstance(refusal, SessionExpired):
        services.sessions.end(connection)
    return {"statusCode": 200}


def ws_disconnect(event: dict[str, Any]) -> dict[str, Any]:
    try:
        caller, registered = _caller(event)
        if caller is not None:
            bootstrap.services().directory.disconnect(caller, _connection(event), registered=registered)
    except Exception as exc:
        # The socket is gone either way; its records go on the next push that meets them (410).
        if translate(exc) is None:
            raise
        log.warning(
            "disconnect of %s not recorded: the store is unavailable (%s)", _connection(event).connection_id, type(exc).__name__
        )
    return {"statusCode": 200}


# --- REST ----------------------------------------------------------------------------------------


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


class PolicyBody(Body, frozen=True, kw_only=True):
    recordCoaching: bool
    escalationSeconds: Annotated[int, msgspec.Meta(ge=1, le=24 * 3600)]
    retentionDays: Annotated[int, msgspec.Meta(ge=1, le=3650)]


class WebhookSecretBody(Body, frozen=True, kw_only=True):
    secret: Annotated[str, msgspec.Meta(pattern=SECRET_REGEX)]


class SubscriptionBody(Body, frozen=True, kw_only=True):
    url: Annotated[str, msgspec.Meta(min_length=1, max_length=2048)]
    events: Annotated[list[Annotated[str, msgspec.Meta(max_length=64)]], msgspec.Meta(min_length=1, max_length=20)]
    enabled: bool = True


class SmsSettingsBody(Body, frozen=True, kw_only=True):
    originationIdentity: Annotated[str, msgspec.Meta(min_length=1, max_length=256, pattern=r"^[A-Za-z0-9+_:/.\-]+$")]


class SettingsBody(Body, frozen=True, kw_only=True):
    agentMessageNotification: bool


class CustomerBody(Body, frozen=True, kw_only=True):
    id: Id
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


def rest_caller(headers: dict[str, str]) -> Principal:
    header = headers.get("authorization") or headers.get("Authorization") or ""
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise Unauthorized("send Authorization: Bearer <token>")
    return bootstrap.services().sessions.authenticate(token.strip())


def check_id(value: str, label: str) -> str:
    if not is_id(value):
        raise Invalid(f"{label} is not a valid id")
    return value


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


def respond(call: Callable[[], Any], status: int = 200) -> tuple[int, Any]:
    """Run a REST use case and map its outcome to (status, body) in the contract's error shape."""
    try:
        result = call()
        if isinstance(result, Created):
            return 201, dict(result)
        return (204, None) if result is None and status == 200 else (status, result)
    except DomainError as exc:
        return exc.status, {"error": {"code": exc.code, "message": exc.message}}
    except Exception as exc:
        translated = translate(exc)
        if translated is not None:
            return translated.status, {"error": translated.to_dict()}
        log.exception("REST request failed")
        return 500, {"error": {"code": "internal", "message": "internal error; nothing was applied"}}


# Chalice answers some requests itself, as {"Code": ..., "Message": ...}; they get the contract's shape and
# a fixed message (Chalice's own would echo the request's Content-Type).
_CHALICE_ERRORS = {
    400: ("invalid", "the request is not valid"),
    404: ("not_found", "no such route"),
    405: ("method_not_allowed", "this route does not take this method"),
    415: ("unsupported_media_type", "send the body as Content-Type: application/json"),
    500: ("internal", "internal error; nothing was applied"),
}


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


RestHandler = Callable[[Any, Principal, Any], Any]


def rest(request: Any, handler: RestHandler, body: type[Body] | None = None) -> tuple[int, Any]:
    """Authenticate, validate the body, run ``handler(services, caller, body)``, map errors."""

    def call() -> Any:
        caller = rest_caller(dict(request.headers))
        parsed = parse(body, request.raw_body) if body is not None else None
        return handler(bootstrap.services(), caller, parsed)

    return respond(call)


def webhook(request: Any) -> tuple[int, Any]:
    def call() -> Any:
        raw: bytes = request.raw_body or b""
        data = parse_webhook(raw)
        tenant = data.get("tenantId") if data else None
        # The signature is checked with the tenant's own secret before the body is validated.
        tenant_id = tenant if is_id(tenant) else None
        validate = (lambda: validate_webhook(data)) if data is not None else None
        return bootstrap.services().webhooks.handle(raw, request.headers.get("x-coaching-signature"), tenant_id, validate)

    return respond(call)


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
    q = query or {}
    return query_int(q, "after", 0, 0, MAX_SEQ), query_int(q, "limit", 100, 1, 200)


def escalate() -> dict[str, Any]:
    """Scheduled sweep: escalate assistance requests whose delay has passed."""
    return bootstrap.services().assistance.escalate_due()


def sma(event: dict[str, Any]) -> dict[str, Any]:
    """SIP media application invocations (PSTN callers joining a contact room)."""
    return bootstrap.services().voice.sma(event)


def fan_out(event: dict[str, Any]) -> dict[str, Any]:
    """The workitems table's stream (Lambda event source mapping): push committed changes in order.

    Never fails the batch for one change (a retried batch would push its other changes twice);
    what could not be pushed is in the timeline for ``timeline.get``."""
    from chalicelib.adapters.stream import committed_changes

    services = bootstrap.services()
    committed = committed_changes(event.get("Records") or [])
    pushed = services.fanout.deliver(committed)
    services.integrations.publish(committed)  # outbound webhooks and channel delivery: queued, never posted here
    return {"pushed": pushed, "batchItemFailures": []}


def deliver_webhooks(records: list[dict[str, Any]]) -> dict[str, Any]:
    """The webhook delivery queue (Lambda's SQS event source): sign and post, SMS, statuses.
    Raises when a message must come back after its backoff delay."""
    return bootstrap.services().integrations.handle(records)
