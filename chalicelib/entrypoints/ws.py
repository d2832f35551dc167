"""The WebSocket API (docs/product.md W4; docs/asyncapi.yaml): the ``$connect`` authorizer, connect,
message and disconnect, the frame schemas, the action table and the router.

One ``$default`` handler receives every frame. The router validates it, checks the caller may use the
action, runs the use case and answers exactly once on the same connection with an ``ack`` or an
``error`` frame. Every exception becomes the contract's error in ``errors.contract_error``: the client
never sees a stack trace, and the connection stays usable after any error.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Annotated, Any, Literal

import msgspec

from chalicelib import bootstrap, logs, metrics
from chalicelib.bootstrap import Services
from chalicelib.domain.errors import DomainError, Forbidden, Invalid, TooLarge, Unauthorized
from chalicelib.domain.identity import Principal, Role
from chalicelib.domain.ids import is_id
from chalicelib.entrypoints.errors import RetryableError, contract_error, record, status_of
from chalicelib.entrypoints.identity import authorizer_context, principal_from_context
from chalicelib.entrypoints.validation import MAX_SEQ, ClientMessageId, Id, Text, decode, request_id_of, validate
from chalicelib.entrypoints.wire import WIRE, ack, error
from chalicelib.services.paging import DEFAULT_LIMIT, MAX_CURSOR_CHARS, MAX_LIMIT
from chalicelib.services.ports import Connection
from chalicelib.services.sessions import SessionExpired

log = logging.getLogger(__name__)

# API Gateway: 32 KB per frame, 128 KB per message. No action needs more than one frame.
MAX_FRAME_BYTES = 32 * 1024
# The Action dimension of frames that reached no action: unreadable, unknown, or refused before routing.
UNROUTED = "(unrouted)"


# --- frames --------------------------------------------------------------------------------------------


class Frame(msgspec.Struct, frozen=True, kw_only=True):
    """Fields every client frame may carry; unknown extra fields are ignored (forward compatible).

    Every frame class is ``kw_only`` so that its fields keep their declaration order (base first)."""

    action: str
    requestId: Annotated[str, msgspec.Meta(max_length=128)] | None = None


class Empty(Frame, frozen=True, kw_only=True):
    pass


class PageFrame(Frame, frozen=True, kw_only=True):
    """A list action: at most ``limit`` items per reply, resuming after ``cursor`` (a ``nextCursor``)."""

    limit: Annotated[int, msgspec.Meta(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT
    cursor: Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_CURSOR_CHARS)] | None = None


class WorkitemFrame(Frame, frozen=True, kw_only=True):
    workitemId: Id


class AgentPage(PageFrame, frozen=True, kw_only=True):
    agentId: Id


class PresenceSet(Frame, frozen=True, kw_only=True):
    state: Literal["available", "not_ready"]


class AgentFrame(Frame, frozen=True, kw_only=True):
    agentId: Id


class CoachSend(WorkitemFrame, frozen=True, kw_only=True):
    text: Text
    clientMessageId: ClientMessageId | None = None


class CoachReact(WorkitemFrame, frozen=True, kw_only=True):
    messageId: Id
    reaction: Literal["thumbs_up", "thumbs_down"] | None


class MessageRef(WorkitemFrame, frozen=True, kw_only=True):
    messageId: Id


class Transfer(WorkitemFrame, frozen=True, kw_only=True):
    toAgentId: Id


class Consult(WorkitemFrame, frozen=True, kw_only=True):
    userId: Id


class TimelineGet(WorkitemFrame, frozen=True, kw_only=True):
    after: Annotated[int, msgspec.Meta(ge=0, le=MAX_SEQ)]
    limit: Annotated[int, msgspec.Meta(ge=1, le=200)] = 100


class UserTarget(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    userId: Id


class AssistRequest(Frame, frozen=True, kw_only=True):
    templateId: Id
    workitemId: Id | None = None
    to: Literal["supervisors"] | UserTarget


class AssistClaim(Frame, frozen=True, kw_only=True):
    assistId: Id


class AlertFrame(Frame, frozen=True, kw_only=True):
    alertId: Id


class DirectorySend(Frame, frozen=True, kw_only=True):
    toUserId: Id
    text: Text
    replyTo: Id | None = None


class DirectoryRead(Frame, frozen=True, kw_only=True):
    withUserId: Id


class AuthRefresh(Frame, frozen=True, kw_only=True):
    token: Annotated[str, msgspec.Meta(min_length=1, max_length=8192)]


class Call(msgspec.Struct, frozen=True):
    """What a handler gets: the verified caller, their connection, and the validated frame.

    (A Struct rather than a dataclass: the same fields, about a thirtieth of the class-creation time.)"""

    caller: Principal
    connection: Connection
    frame: Any

    @property
    def connection_id(self) -> str:
        return self.connection.connection_id


Handler = Callable[[Services, Call], Any]  # a result the wire renders (wire.py)


class Action(msgspec.Struct, frozen=True):
    schema: type[Frame]
    handler: Handler
    customers: bool = False  # customers may call only message.send, timeline.get (and ping, auth.refresh)


# --- the actions: one named function each --------------------------------------------------------------


def ping(services: Services, call: Call) -> Any:
    return {}


def refresh_session(services: Services, call: Call) -> Any:
    return services.sessions.refresh(call.caller, call.connection, call.frame.token)


def set_presence(services: Services, call: Call) -> Any:
    return services.directory.set_presence(call.caller, call.frame.state, call.connection_id)


def list_agents(services: Services, call: Call) -> Any:
    return services.directory.agents(call.caller, call.frame.limit, call.frame.cursor)


def watch_agent(services: Services, call: Call) -> Any:
    frame = call.frame
    return services.directory.watch(call.caller, frame.agentId, call.connection, True, frame.limit, frame.cursor)


def unwatch_agent(services: Services, call: Call) -> Any:
    return services.directory.watch(call.caller, call.frame.agentId, call.connection, False)


def list_workitems(services: Services, call: Call) -> Any:
    return services.coaching.workitems(call.caller, call.frame.agentId, call.frame.limit, call.frame.cursor)


def start_monitoring(services: Services, call: Call) -> Any:
    return services.coaching.monitor_start(call.caller, call.frame.workitemId, call.connection_id)


def stop_monitoring(services: Services, call: Call) -> Any:
    return services.coaching.monitor_stop(call.caller, call.frame.workitemId, call.connection_id)


def end_coaching(services: Services, call: Call) -> Any:
    return services.coaching.coaching_end(call.caller, call.frame.workitemId, call.connection_id)


def send_coach_message(services: Services, call: Call) -> Any:
    frame = call.frame
    return services.coaching.coach_send(call.caller, frame.workitemId, frame.text, call.connection_id, frame.clientMessageId)


def react_to_coach_message(services: Services, call: Call) -> Any:
    frame = call.frame
    return services.coaching.coach_react(call.caller, frame.workitemId, frame.messageId, frame.reaction, call.connection_id)


def forward_coach_message(services: Services, call: Call) -> Any:
    return services.coaching.coach_forward(call.caller, call.frame.workitemId, call.frame.messageId, call.connection_id)


def send_message(services: Services, call: Call) -> Any:
    frame = call.frame
    return services.coaching.message_send(call.caller, frame.workitemId, frame.text, call.connection_id, frame.clientMessageId)


def transfer_workitem(services: Services, call: Call) -> Any:
    return services.coaching.transfer(call.caller, call.frame.workitemId, call.frame.toAgentId, call.connection_id)


def end_workitem(services: Services, call: Call) -> Any:
    return services.coaching.end(call.caller, call.frame.workitemId, call.connection_id)


def start_consult(services: Services, call: Call) -> Any:
    return services.coaching.consult(call.caller, call.frame.workitemId, call.frame.userId, call.connection_id)


def get_timeline(services: Services, call: Call) -> Any:
    return services.coaching.timeline(call.caller, call.frame.workitemId, call.frame.after, call.frame.limit)


def list_assist_templates(services: Services, call: Call) -> Any:
    return services.assistance.templates(call.caller)


def list_assist_recipients(services: Services, call: Call) -> Any:
    return services.assistance.recipients(call.caller, call.frame.limit, call.frame.cursor)


def request_assistance(services: Services, call: Call) -> Any:
    frame: AssistRequest = call.frame
    user_id = None if isinstance(frame.to, str) else frame.to.userId
    return services.assistance.request(call.caller, frame.templateId, frame.workitemId, user_id, call.connection_id)


def claim_assistance(services: Services, call: Call) -> Any:
    return services.assistance.claim(call.caller, call.frame.assistId, call.connection_id)


def pending_assistance(services: Services, call: Call) -> Any:
    return services.assistance.pending(call.caller)


def send_directory_message(services: Services, call: Call) -> Any:
    frame = call.frame
    return services.assistance.directory_send(call.caller, frame.toUserId, frame.text, frame.replyTo, call.connection_id)


def get_unread_counts(services: Services, call: Call) -> Any:
    return services.assistance.unread(call.caller)


def mark_directory_read(services: Services, call: Call) -> Any:
    return services.assistance.read(call.caller, call.frame.withUserId)


def list_attention(services: Services, call: Call) -> Any:
    return services.attention.list(call.caller, call.frame.limit, call.frame.cursor)


def ack_attention(services: Services, call: Call) -> Any:
    return services.attention.ack(call.caller, call.frame.alertId, call.connection_id)


def join_voice(services: Services, call: Call) -> Any:
    return services.voice.join(call.caller, call.frame.workitemId)


def monitor_voice(services: Services, call: Call) -> Any:
    return services.voice.monitor(call.caller, call.frame.workitemId, call.connection_id)


def whisper_voice(services: Services, call: Call) -> Any:
    return services.voice.whisper(call.caller, call.frame.workitemId, call.connection_id)


def barge_voice(services: Services, call: Call) -> Any:
    return services.voice.barge(call.caller, call.frame.workitemId, call.connection_id)


def listen_voice(services: Services, call: Call) -> Any:
    return services.voice.listen(call.caller, call.frame.workitemId, call.connection_id)


def pause_transcript(services: Services, call: Call) -> Any:
    return services.voice.pause_transcript(call.caller, call.frame.workitemId, call.connection_id)


def resume_transcript(services: Services, call: Call) -> Any:
    return services.voice.resume_transcript(call.caller, call.frame.workitemId, call.connection_id)


TABLE: dict[str, Action] = {
    "ping": Action(Empty, ping, customers=True),
    "auth.refresh": Action(AuthRefresh, refresh_session, customers=True),
    "presence.set": Action(PresenceSet, set_presence),
    "agents.list": Action(PageFrame, list_agents),
    "agent.watch": Action(AgentPage, watch_agent),
    "agent.unwatch": Action(AgentFrame, unwatch_agent),
    "workitems.list": Action(AgentPage, list_workitems),
    "monitor.start": Action(WorkitemFrame, start_monitoring),
    "monitor.stop": Action(WorkitemFrame, stop_monitoring),
    "coaching.end": Action(WorkitemFrame, end_coaching),
    "coach.send": Action(CoachSend, send_coach_message),
    "coach.react": Action(CoachReact, react_to_coach_message),
    "coach.forward": Action(MessageRef, forward_coach_message),
    "message.send": Action(CoachSend, send_message, customers=True),
    "workitem.transfer": Action(Transfer, transfer_workitem),
    "workitem.end": Action(WorkitemFrame, end_workitem),
    "consult.start": Action(Consult, start_consult),
    "timeline.get": Action(TimelineGet, get_timeline, customers=True),
    "assist.templates": Action(Empty, list_assist_templates),
    "assist.recipients": Action(PageFrame, list_assist_recipients),
    "assist.request": Action(AssistRequest, request_assistance),
    "assist.claim": Action(AssistClaim, claim_assistance),
    "assist.pending": Action(Empty, pending_assistance),
    "directory.send": Action(DirectorySend, send_directory_message),
    "directory.unread.get": Action(Empty, get_unread_counts),
    "directory.read": Action(DirectoryRead, mark_directory_read),
    "voice.join": Action(WorkitemFrame, join_voice),
    "voice.monitor": Action(WorkitemFrame, monitor_voice),
    "voice.whisper": Action(WorkitemFrame, whisper_voice),
    "voice.barge": Action(WorkitemFrame, barge_voice),
    "voice.listen": Action(WorkitemFrame, listen_voice),
    "voice.pause_transcript": Action(WorkitemFrame, pause_transcript),
    "voice.resume_transcript": Action(WorkitemFrame, resume_transcript),
    "attention.list": Action(PageFrame, list_attention),
    "attention.ack": Action(AlertFrame, ack_attention),
}

ACTIONS: dict[str, type[Frame]] = {name: action.schema for name, action in TABLE.items()}


class Router:
    """Turns one WebSocket message into exactly one ack or error frame."""

    def __init__(self, services: Services, retryable: RetryableError | None = None) -> None:
        self.services = services
        self.retryable = retryable

    def reply(self, caller: Principal | None, connection: Connection, body: str | bytes | None) -> dict[str, Any]:
        """Handle the frame and return the reply frame (the caller posts it)."""
        request_id: str | None = None
        action_name = "?"
        started = time.perf_counter()
        try:
            try:
                data = decode(body, "frame", MAX_FRAME_BYTES)
            except TooLarge:
                request_id = request_id_of(body)
                raise
            if not isinstance(data, dict):
                raise Invalid("the frame must be a JSON object")
            given_id = data.get("requestId")
            request_id = given_id if isinstance(given_id, str) and len(given_id) <= 128 else None
            name = data.get("action")
            if not isinstance(name, str) or not name:
                raise Invalid("the frame has no action")
            action = TABLE.get(name)
            if action is None:
                raise Invalid(f"unknown action {name[:64]!r}")
            action_name = name
            wid = data.get("workitemId")
            logs.bind(action=name, workitem_id=wid if isinstance(wid, str) and is_id(wid) else None)
            if caller is None:
                raise Invalid("this connection is not registered; reconnect")
            if caller.role is Role.CUSTOMER and not action.customers:
                raise Forbidden("customers may only use message.send and timeline.get")
            frame = validate(action.schema, data, "frame")
            result = action.handler(self.services, Call(caller, connection, frame))
            record(action_name, started, None)
            return ack(request_id, result)
        except Exception as exc:  # noqa: BLE001 - every exception becomes the contract's error (errors.py)
            context = (
                f"action {action_name} (request {request_id}, connection {connection.connection_id}, "
                f"tenant {caller.tenant_id if caller else '?'})"
            )
            refusal = contract_error(exc, context, self.retryable)
            # A frame that names no known action is counted under UNROUTED: a dimension value never
            # comes from what a client wrote.
            record(action_name if action_name in TABLE else UNROUTED, started, refusal)
            return error(request_id, refusal.to_dict())

    def refuse(self, body: str | bytes | None, exc: DomainError) -> dict[str, Any]:
        """The error frame refusing a whole frame before it is routed (an ended session, or the caller
        could not be looked up), with its ``requestId`` when one can be read."""
        record(UNROUTED, time.perf_counter(), exc)
        return error(request_id_of(body), exc.to_dict())


# --- the Lambda handlers ---------------------------------------------------------------------------------


def _request_context(event: dict[str, Any]) -> dict[str, Any]:
    request_context: dict[str, Any] = event.get("requestContext") or {}
    return request_context


def _connection(event: dict[str, Any]) -> Connection:
    request_context = _request_context(event)
    connected_at = request_context.get("connectedAt") or int(time.time() * 1000)
    return Connection(str(request_context.get("connectionId", "")), int(connected_at))


# ``?delivery=`` on ``$connect``: how the connection receives workitem events (docs/product.md W15).
DELIVERY_MODES = ("ordered", "fast")


def _connecting(event: dict[str, Any]) -> Connection:
    """The connection ``$connect`` opens, in the delivery mode its query string asks for (``ordered``
    when it names none); any other mode is refused ``invalid``."""
    connection = _connection(event)
    mode = (event.get("queryStringParameters") or {}).get("delivery")
    if mode is None:
        return connection
    if mode not in DELIVERY_MODES:
        raise Invalid("delivery must be ordered or fast")
    return msgspec.structs.replace(connection, fast=mode == "fast")


def _principal_from_authorizer(event: dict[str, Any]) -> Principal | None:
    return principal_from_context(_request_context(event).get("authorizer") or {})


def authorize(event: dict[str, Any]) -> dict[str, Any]:
    """Lambda REQUEST authorizer for ``$connect``: API Gateway then passes the returned context
    with every frame of the connection, so frames need no identity lookup."""
    token = (event.get("queryStringParameters") or {}).get("token")
    try:
        principal = bootstrap.services(WIRE).tokens.verify(token)
        logs.bind(tenant_id=principal.tenant_id, user_id=principal.user_id)
    except Unauthorized as exc:
        log.info("connection refused: %s", exc.message)
        metrics.CONNECTS.add(outcome="refused")
        raise Exception("Unauthorized") from None
    except Exception:
        # The secret could not be read (SSM or KMS denied, throttled), the issuer's keys not fetched...:
        # API Gateway answers 500 to the client, and every connect fails alike (docs/operations.md).
        metrics.CONNECTS.add(outcome="failed")
        raise
    metrics.CONNECTS.add(outcome="accepted")
    context = authorizer_context(principal)
    return {
        "principalId": f"{principal.tenant_id}/{principal.user_id}",
        "policyDocument": {
            "Version": "2012-10-17",
            "Statement": [{"Action": "execute-api:Invoke", "Effect": "Allow", "Resource": event.get("methodArn", "*")}],
        },
        "context": context,
    }


def connect(event: dict[str, Any]) -> dict[str, Any]:
    """``$connect``: the caller (from the authorizer, or the token when there is none) joins the directory.
    A refusal is its status (401, 403); a store that does not answer is 503 (the client retries)."""
    services = bootstrap.services(WIRE)
    connection = _connection(event)
    try:
        connection = _connecting(event)
        principal = _principal_from_authorizer(event)
        register = principal is None
        if principal is None:
            token = (event.get("queryStringParameters") or {}).get("token")
            principal = services.tokens.verify(token)
            logs.bind(tenant_id=principal.tenant_id, user_id=principal.user_id)
        services.directory.connect(principal, connection, register=register)
    except Exception as exc:  # noqa: BLE001 - every exception becomes the contract's error (errors.py)
        refusal = contract_error(exc, f"connection {connection.connection_id}")
        status = status_of(refusal)
        if not refusal.retryable and status < 500:
            log.info("connection refused: %s", refusal.message)
        return {"statusCode": status}
    return {"statusCode": 200}


def _caller(services: Services, event: dict[str, Any]) -> tuple[Principal | None, bool]:
    principal = _principal_from_authorizer(event)
    if principal is not None:
        return principal, False
    return services.directory.registered_caller(_connection(event)), True


def _session_refusal(services: Services, caller: Principal | None, connection: Connection) -> DomainError | None:
    """Why the caller's session refuses this frame (ended, or it could not be checked), or None."""
    if caller is None:
        return None
    try:
        services.sessions.require_live(caller, connection)
    except Exception as exc:  # noqa: BLE001 - ended, or not checked: the frame is refused (errors.py)
        return contract_error(exc, f"session check (connection {connection.connection_id})")
    return None


def message(event: dict[str, Any]) -> dict[str, Any]:
    """``$default``: exactly one reply per frame; even when finding the caller fails, the frame gets an error."""
    services = bootstrap.services(WIRE)
    connection = _connection(event)
    router = Router(services)
    body = event.get("body")
    refusal: DomainError | None = None
    # The fast events of what the action commits (W15) go out in one batch with its reply.
    with services.notifier.replying():
        try:
            caller, _ = _caller(services, event)
            if caller is not None:
                logs.bind(tenant_id=caller.tenant_id, user_id=caller.user_id)
            refusal = _session_refusal(services, caller, connection)
            frame = router.refuse(body, refusal) if refusal is not None else router.reply(caller, connection, body)
        except Exception as exc:  # noqa: BLE001 - e.g. the store did not answer the caller lookup: retryable
            context = f"frame on connection {connection.connection_id} before routing"
            refusal = contract_error(exc, context)
            frame = router.refuse(body, refusal)
        services.notifier.send(connection.connection_id, frame)
    if isinstance(refusal, SessionExpired):
        services.sessions.end(connection)
    return {"statusCode": 200}


def disconnect(event: dict[str, Any]) -> dict[str, Any]:
    """``$disconnect``: the socket is gone either way; records the store could not drop now go on the next
    push that meets them (410)."""
    services = bootstrap.services(WIRE)
    connection = _connection(event)
    try:
        caller, registered = _caller(services, event)
        if caller is not None:
            services.directory.disconnect(caller, connection, registered=registered)
    except Exception as exc:  # noqa: BLE001 - every exception becomes the contract's error (errors.py)
        contract_error(exc, f"disconnect of {connection.connection_id}")
    return {"statusCode": 200}
