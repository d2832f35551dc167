"""Raise hand: who may receive an assistance request, how it reaches them, claims and escalation
(S16-S20, B4 in docs/product.md).

Pure rules over plain facts. The service layer looks the facts up (directory recipients, the stored
request) and commits what these functions decide with conditional writes, so a rule always judges
the state the write is conditioned on.

A request moves through escalation *stages* while nobody claims it::

    INITIAL --(delay)--> TEAM --(delay)--> ADMINS (exhausted: leaves the due index)
       \\                  \\                  \\
        +------------------+------------------+--> claimed by the first recipient supervisor/admin

A request addressed to one fellow agent is a direct question, not a supervisor hand-raise: it is
never due, so it never escalates (the peer answers with ``directory.send``).
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass, replace

from .errors import Conflict, Forbidden, Invalid, NotFound
from .identity import Principal, Role

SUPERVISORS = "supervisors"


class AssistStatus(str, enum.Enum):
    PENDING = "pending"
    CLAIMED = "claimed"


class Stage(enum.IntEnum):
    """How far an unclaimed request has escalated."""

    INITIAL = 0
    TEAM = 1  # re-sent to every supervisor of the agent's teams, whatever their presence
    ADMINS = 2  # sent to the tenant's admins; nothing follows

    @property
    def label(self) -> str:
        return {Stage.INITIAL: "initial", Stage.TEAM: "team", Stage.ADMINS: "admins"}[self]


class AlreadyClaimed(Conflict):
    """A claim lost: the request was claimed first by someone else (or by the same caller)."""


@dataclass(frozen=True)
class Contact:
    """What the rules need to know about one possible recipient, at one moment."""

    user_id: str
    name: str
    role: Role | None
    online: bool  # has a live connection
    available: bool  # online and presence "available" (not Not Ready)
    notify: bool  # the "Agent Message Notification" setting


@dataclass(frozen=True)
class Delivery:
    """How one request (or one escalation step) reaches its audience.

    ``popup`` recipients get the pop-up event; ``unread`` recipients get their unread count raised
    instead - those whose notification setting is off, and (during escalation) those with no live
    connection, so the request is still waiting for them when they come back.
    """

    popup: tuple[str, ...] = ()
    unread: tuple[str, ...] = ()

    @property
    def recipients(self) -> list[str]:
        return [*self.popup, *self.unread]


@dataclass(frozen=True)
class AssistanceRequest:
    """One raised hand."""

    tenant_id: str
    assist_id: str
    agent_id: str
    template_id: str
    text: str
    workitem_id: str | None
    target: str  # "supervisors" or the user id the agent picked
    recipients: tuple[str, ...]
    created_at: str
    escalation_seconds: int
    status: AssistStatus = AssistStatus.PENDING
    stage: Stage = Stage.INITIAL
    claimed_by: str | None = None
    due_at: int | None = None  # epoch seconds of the next escalation step; None when it never escalates
    claimed_at: str | None = None  # when it was claimed (ISO-8601 UTC): the claim time of the analytics

    @property
    def pending(self) -> bool:
        return self.status is AssistStatus.PENDING

    @property
    def escalates(self) -> bool:
        """Whether the request is still waiting for an escalation step."""
        return self.pending and self.due_at is not None

    def is_due(self, now_epoch: int) -> bool:
        return self.escalates and self.due_at is not None and self.due_at <= now_epoch


# --- templates (S17) ----------------------------------------------------------------------------


def require_agent(principal: Principal) -> None:
    if principal.role is not Role.AGENT:
        raise Forbidden("only agents may ask for assistance")


def pick_template(templates: Iterable[tuple[str, str, bool]], template_id: str) -> str:
    """The text of an enabled template; a missing or disabled one cannot be used."""
    for tid, text, enabled in templates:
        if tid == template_id:
            if not enabled:
                raise Invalid(f"template {template_id} is disabled")
            return text
    raise NotFound(f"template {template_id} not found")


# --- recipients (S16, S18) ----------------------------------------------------------------------


def available_supervisors(contacts: Iterable[Contact]) -> list[Contact]:
    """Supervisors who would receive a request addressed to "supervisors": online and available."""
    return [c for c in contacts if c.available]


def online_peers(agent_id: str, contacts: Iterable[Contact]) -> list[Contact]:
    """Other logged-in agents."""
    return [c for c in contacts if c.user_id != agent_id and c.role is Role.AGENT and c.online]


def choose_recipients(
    agent_id: str, to_user_id: str | None, team_supervisors: Iterable[Contact], target: Contact | None
) -> list[Contact]:
    """Who receives a new request (S18).

    ``to_user_id`` None means "supervisors": every supervisor of the agent's teams who is online and
    available (possibly nobody: the request still escalates). Otherwise the target must be one of
    the agent's supervisors and available, or another logged-in agent of the tenant.
    """
    supervisors = list(team_supervisors)
    if to_user_id is None:
        return available_supervisors(supervisors)
    if to_user_id == agent_id:
        raise Forbidden("you cannot ask yourself for assistance")
    chosen = next((c for c in supervisors if c.user_id == to_user_id), None)
    if chosen is not None:
        if not chosen.online:
            raise Conflict(f"supervisor {to_user_id} is offline")
        if not chosen.available:
            raise Conflict(f"supervisor {to_user_id} is not ready")
        return [chosen]
    if target is not None and target.user_id == to_user_id and target.role is Role.AGENT:
        if not target.online:
            raise Conflict(f"agent {to_user_id} is not logged in")
        return [target]
    raise Forbidden(f"{to_user_id} is neither one of your supervisors nor an agent of your tenant")


def deliver(contacts: Iterable[Contact]) -> Delivery:
    """Pop-up for those who want it and can see it now; an unread count for everyone else (S19)."""
    popup: list[str] = []
    unread: list[str] = []
    for c in _unique(contacts):
        (popup if c.notify and c.online else unread).append(c.user_id)
    return Delivery(tuple(popup), tuple(unread))


def new_request(
    tenant_id: str,
    assist_id: str,
    agent_id: str,
    template_id: str,
    text: str,
    workitem_id: str | None,
    to_user_id: str | None,
    recipients: Iterable[Contact],
    created_at: str,
    now_epoch: int,
    escalation_seconds: int,
) -> AssistanceRequest:
    """A fresh request. It escalates unless it was addressed to a fellow agent."""
    chosen = list(recipients)
    to_peer = to_user_id is not None and any(c.role is Role.AGENT for c in chosen)
    delay = max(1, int(escalation_seconds))
    return AssistanceRequest(
        tenant_id=tenant_id,
        assist_id=assist_id,
        agent_id=agent_id,
        template_id=template_id,
        text=text,
        workitem_id=workitem_id,
        target=to_user_id or SUPERVISORS,
        recipients=tuple(dict.fromkeys(c.user_id for c in chosen)),
        created_at=created_at,
        escalation_seconds=delay,
        due_at=None if to_peer else now_epoch + delay,
    )


# --- claim (B4) -----------------------------------------------------------------------------------


def check_claim(principal: Principal, request: AssistanceRequest) -> None:
    """A recipient supervisor or admin may claim a pending request; everybody else is refused."""
    if principal.role not in (Role.SUPERVISOR, Role.ADMIN):
        raise Forbidden("only supervisors and admins may claim an assistance request")
    if principal.user_id not in request.recipients:
        raise Forbidden("this assistance request was not sent to you")
    if not request.pending:
        who = "you" if request.claimed_by == principal.user_id else request.claimed_by
        raise AlreadyClaimed(f"the assistance request was already claimed by {who}")


def claim_audience(request: AssistanceRequest) -> list[str]:
    """Who learns that the request was claimed, so their pop-up goes away: the agent and every
    recipient (the claimer too: their other connections; the claiming one gets the ack)."""
    return list(dict.fromkeys([request.agent_id, *request.recipients]))


# --- escalation (B4) ------------------------------------------------------------------------------


def next_stage(request: AssistanceRequest) -> Stage | None:
    """The stage an unclaimed, due request moves to; None when escalation is over."""
    if not request.escalates or request.stage is Stage.ADMINS:
        return None
    return Stage(request.stage + 1)


def escalated(request: AssistanceRequest, stage: Stage, audience: Iterable[str], now_epoch: int) -> AssistanceRequest:
    """The request after one escalation step: the new audience joins the recipients (so any of
    them may claim), and it is due again after the same delay unless this was the last step."""
    recipients = tuple(dict.fromkeys([*request.recipients, *audience]))
    due = None if stage is Stage.ADMINS else now_epoch + request.escalation_seconds
    return replace(request, stage=stage, recipients=recipients, due_at=due)


def escalation_audience(contacts: Iterable[Contact], agent_id: str) -> list[Contact]:
    """Who a step goes to - every supervisor of the agent's teams whatever their presence (TEAM),
    or every admin of the tenant (ADMINS) - never the asking agent themselves."""
    return [c for c in _unique(contacts) if c.user_id != agent_id]


# --- directory messages (S19, S20) ----------------------------------------------------------------


def check_direct_message(
    principal: Principal, to_user_id: str, text: str, recipient: Contact | None, recipient_in_directory: bool
) -> None:
    if principal.is_customer:
        raise Forbidden("customers cannot send directory messages")
    if to_user_id == principal.user_id:
        raise Invalid("you cannot send a message to yourself")
    if not text.strip():
        raise Invalid("text must contain a non-whitespace character")
    if recipient is None or not recipient_in_directory:
        raise NotFound(f"user {to_user_id} not found")


def _unique(contacts: Iterable[Contact]) -> list[Contact]:
    seen: dict[str, Contact] = {}
    for c in contacts:
        seen.setdefault(c.user_id, c)
    return list(seen.values())
