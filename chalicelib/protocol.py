"""The WebSocket protocol (docs/product.md W4; docs/asyncapi.yaml): frame schemas, the action table and the router.

One ``$default`` handler receives every frame. The router validates it, checks the caller may use
the action, runs the use case and answers exactly once on the same connection with an ``ack`` or
an ``error`` frame. Unexpected exceptions are logged with context and answered ``internal``; the
client never sees a stack trace, and the connection stays usable after any error.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated, Any, Literal

import msgspec

from chalicelib.domain.errors import DomainError, Forbidden, Invalid, TooLarge
from chalicelib.domain.identity import Principal, Role
from chalicelib.domain.ids import ID_REGEX
from chalicelib.domain.text import NAME_REGEX, VISIBLE_REGEX
from chalicelib.services.delivery import ack, error
from chalicelib.services.paging import DEFAULT_LIMIT, MAX_CURSOR_CHARS, MAX_LIMIT
from chalicelib.services.ports import Connection
from chalicelib.validation import decode, request_id_of, validate

if TYPE_CHECKING:
    from chalicelib.bootstrap import Services

log = logging.getLogger(__name__)

# API Gateway: 32 KB per frame, 128 KB per message. No action needs more than one frame.
MAX_FRAME_BYTES = 32 * 1024
MAX_TEXT_CHARS = 8000

# The largest ``after``: timeline keys hold 10-digit seq numbers, so after + 1 must stay below 10**10 (and a
# workitem never nears a billion entries). Larger numbers are refused before they reach DynamoDB.
MAX_SEQ = 999_999_999

Id = Annotated[str, msgspec.Meta(pattern=ID_REGEX)]
# Text with at least one visible character (whitespace and invisible characters alone are refused).
Text = Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_TEXT_CHARS, pattern=VISIBLE_REGEX)]
# A display name: visible, without control or bidirectional-override characters.
Name = Annotated[str, msgspec.Meta(min_length=1, max_length=256, pattern=NAME_REGEX)]


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
    def conn(self) -> str:
        return self.connection.connection_id


Handler = Callable[["Services", Call], dict[str, Any]]


class Action(msgspec.Struct, frozen=True):
    schema: type[Frame]
    handler: Handler
    customers: bool = False  # customers may call only message.send, timeline.get (and ping, auth.refresh)


def _a(schema: type[Frame], handler: Handler, customers: bool = False) -> Action:
    return Action(schema, handler, customers)


TABLE: dict[str, Action] = {
    "ping": _a(Empty, lambda s, c: {}, customers=True),
    "auth.refresh": _a(AuthRefresh, lambda s, c: s.sessions.refresh(c.caller, c.connection, c.frame.token), customers=True),
    "presence.set": _a(PresenceSet, lambda s, c: s.directory.set_presence(c.caller, c.frame.state, c.conn)),
    "agents.list": _a(PageFrame, lambda s, c: s.directory.agents(c.caller, c.frame.limit, c.frame.cursor)),
    "agent.watch": _a(
        AgentPage, lambda s, c: s.directory.watch(c.caller, c.frame.agentId, c.connection, True, c.frame.limit, c.frame.cursor)
    ),
    "agent.unwatch": _a(AgentFrame, lambda s, c: s.directory.watch(c.caller, c.frame.agentId, c.connection, False)),
    "workitems.list": _a(AgentPage, lambda s, c: s.coaching.workitems(c.caller, c.frame.agentId, c.frame.limit, c.frame.cursor)),
    "monitor.start": _a(WorkitemFrame, lambda s, c: s.coaching.monitor_start(c.caller, c.frame.workitemId, c.conn)),
    "monitor.stop": _a(WorkitemFrame, lambda s, c: s.coaching.monitor_stop(c.caller, c.frame.workitemId, c.conn)),
    "coaching.end": _a(WorkitemFrame, lambda s, c: s.coaching.coaching_end(c.caller, c.frame.workitemId, c.conn)),
    "coach.send": _a(CoachSend, lambda s, c: s.coaching.coach_send(c.caller, c.frame.workitemId, c.frame.text, c.conn)),
    "coach.react": _a(
        CoachReact, lambda s, c: s.coaching.coach_react(c.caller, c.frame.workitemId, c.frame.messageId, c.frame.reaction, c.conn)
    ),
    "coach.forward": _a(
        MessageRef, lambda s, c: s.coaching.coach_forward(c.caller, c.frame.workitemId, c.frame.messageId, c.conn)
    ),
    "message.send": _a(
        CoachSend, lambda s, c: s.coaching.message_send(c.caller, c.frame.workitemId, c.frame.text, c.conn), customers=True
    ),
    "workitem.transfer": _a(Transfer, lambda s, c: s.coaching.transfer(c.caller, c.frame.workitemId, c.frame.toAgentId, c.conn)),
    "workitem.end": _a(WorkitemFrame, lambda s, c: s.coaching.end(c.caller, c.frame.workitemId, c.conn)),
    "consult.start": _a(Consult, lambda s, c: s.coaching.consult(c.caller, c.frame.workitemId, c.frame.userId, c.conn)),
    "timeline.get": _a(
        TimelineGet, lambda s, c: s.coaching.timeline(c.caller, c.frame.workitemId, c.frame.after, c.frame.limit), customers=True
    ),
    "assist.templates": _a(Empty, lambda s, c: s.assistance.templates(c.caller)),
    "assist.recipients": _a(PageFrame, lambda s, c: s.assistance.recipients(c.caller, c.frame.limit, c.frame.cursor)),
    "assist.request": _a(
        AssistRequest,
        lambda s, c: s.assistance.request(
            c.caller, c.frame.templateId, c.frame.workitemId, None if isinstance(c.frame.to, str) else c.frame.to.userId, c.conn
        ),
    ),
    "assist.claim": _a(AssistClaim, lambda s, c: s.assistance.claim(c.caller, c.frame.assistId, c.conn)),
    "directory.send": _a(
        DirectorySend, lambda s, c: s.assistance.directory_send(c.caller, c.frame.toUserId, c.frame.text, c.frame.replyTo, c.conn)
    ),
    "directory.unread.get": _a(Empty, lambda s, c: s.assistance.unread(c.caller)),
    "directory.read": _a(DirectoryRead, lambda s, c: s.assistance.read(c.caller, c.frame.withUserId)),
    "voice.join": _a(WorkitemFrame, lambda s, c: s.voice.join(c.caller, c.frame.workitemId)),
    "voice.monitor": _a(WorkitemFrame, lambda s, c: s.voice.monitor(c.caller, c.frame.workitemId)),
    "voice.whisper": _a(WorkitemFrame, lambda s, c: s.voice.whisper(c.caller, c.frame.workitemId, c.conn)),
    "voice.barge": _a(WorkitemFrame, lambda s, c: s.voice.barge(c.caller, c.frame.workitemId)),
    "voice.listen": _a(WorkitemFrame, lambda s, c: s.voice.listen(c.caller, c.frame.workitemId, c.conn)),
}

ACTIONS: dict[str, type[Frame]] = {name: action.schema for name, action in TABLE.items()}

EVENTS: frozenset[str] = frozenset(
    {
        "presence.changed",
        "workitem.assigned",
        "workitem.updated",
        "workitem.ended",
        "coaching.joined",
        "coaching.left",
        "coaching.ended",
        "coach.message",
        "coach.reaction",
        "coach.forwarded",
        "message.received",
        "consult.requested",
        "assist.requested",
        "assist.claimed",
        "assist.escalated",
        "directory.message",
        "directory.unread",
        "voice.coach_room",
        "voice.coach_room_closed",
        "message.delivery",
    }
)


class Router:
    """Turns one WebSocket message into exactly one ack or error frame."""

    def __init__(self, services: Services, translate: Callable[[Exception], DomainError | None]) -> None:
        self.services = services
        self.translate = translate

    def reply(self, caller: Principal | None, connection: Connection, body: str | bytes | None) -> dict[str, Any]:
        """Handle the frame and return the reply frame (the caller posts it)."""
        request_id: str | None = None
        action_name = "?"
        try:
            try:
                data = decode(body, "frame", MAX_FRAME_BYTES)
            except TooLarge:
                request_id = request_id_of(body)
                raise
            if not isinstance(data, dict):
                raise Invalid("the frame must be a JSON object")
            rid = data.get("requestId")
            request_id = rid if isinstance(rid, str) and len(rid) <= 128 else None
            name = data.get("action")
            if not isinstance(name, str) or not name:
                raise Invalid("the frame has no action")
            action = TABLE.get(name)
            if action is None:
                raise Invalid(f"unknown action {name[:64]!r}")
            action_name = name
            if caller is None:
                raise Invalid("this connection is not registered; reconnect")
            if caller.role is Role.CUSTOMER and not action.customers:
                raise Forbidden("customers may only use message.send and timeline.get")
            frame = validate(action.schema, data, "frame")
            result = action.handler(self.services, Call(caller, connection, frame))
            return ack(request_id, result)
        except DomainError as exc:
            return error(request_id, exc.to_dict())
        except Exception as exc:
            translated = self.translate(exc)
            if translated is not None:
                log.warning("action %s refused: %s", action_name, translated.message)
                return error(request_id, translated.to_dict())
            log.exception(
                "action %s failed (request %s, connection %s, tenant %s)",
                action_name,
                request_id,
                connection.connection_id,
                caller.tenant_id if caller else "?",
            )
            return error(request_id, {"code": "internal", "message": "internal error; the action was not applied"})

    def refuse(self, body: str | bytes | None, exc: DomainError) -> dict[str, Any]:
        """The error frame refusing a whole frame before it is routed (an ended session), with its
        ``requestId`` when one can be read."""
        return error(request_id_of(body), exc.to_dict())
