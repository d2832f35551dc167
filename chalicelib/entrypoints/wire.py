"""The one serialization module: how the product's records look on the wire.

The domain and the use cases speak in records (a :class:`Workitem`, a :class:`TimelineEntry`, a voice
:class:`Room`, a team ...); this module alone turns them into the JSON the contract documents
(``docs/openapi.yaml``, ``docs/asyncapi.yaml``, ``docs/webhooks.md``): REST bodies, WebSocket frames
and webhook payloads alike. The services reach it only through the ``Renderer`` port
(``services/ports.py``), which bootstrap is handed by the entry layer: an import-linter contract keeps
``chalicelib.services`` from importing it.

:func:`default` is the ``json.dumps`` hook that renders a record wherever it sits in a frame or a
body; :func:`plain` renders a whole result for Chalice (which encodes REST bodies itself).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from chalicelib.domain.coaching import Workitem
from chalicelib.domain.errors import DomainError
from chalicelib.domain.identity import Role
from chalicelib.domain.timeline import CustomerEntry, EntryKind, TimelineEntry
from chalicelib.domain.timeline import view as visible
from chalicelib.services import results
from chalicelib.services.ports import Policy, Team, Template


def workitem(w: Workitem) -> dict[str, Any]:
    return {
        "workitemId": w.workitem_id,
        "channel": w.channel.value,
        "agentId": w.agent_id,
        "customer": {"id": w.customer_id, "name": w.customer_name},
        "subject": w.subject,
        "status": w.status.value,
        "createdAt": w.created_at,
        "coaching": {"active": w.coaching_active, "supervisors": sorted(w.monitors)},
        "lastActivityAt": w.last_activity_at,
        "waitingSince": w.waiting_since,
        "monitoredBy": [{"userId": s, "name": w.monitor_names.get(s) or s} for s in sorted(w.monitors)],
        "lastMessage": {"author": w.last_author, "text": w.last_text} if w.last_author else None,
    }


def entry(e: TimelineEntry) -> dict[str, Any]:
    """The full (staff) view of an entry."""
    body: dict[str, Any] = {
        "workitemId": e.workitem_id,
        "seq": e.seq,
        "kind": e.kind.value,
        "at": e.at,
        "authorId": e.author_id,
        "authorRole": e.author_role.value,
    }
    if e.message_id is not None:
        body["messageId"] = e.message_id
    if e.text is not None:
        body["text"] = e.text
    if e.forwarded_from is not None:
        body["forwardedFrom"] = e.forwarded_from
    if e.kind is EntryKind.REACTION:
        body["reaction"] = e.reaction
    body.update(e.extra)
    return body


def customer_entry(e: TimelineEntry | CustomerEntry) -> dict[str, Any]:
    """The customer's view: own numbering, and nothing that would reveal coaching."""
    seen = e.entry if isinstance(e, CustomerEntry) else CustomerEntry(e).entry
    return {
        "workitemId": seen.workitem_id,
        "seq": seen.customer_seq,
        "kind": seen.kind.value,
        "at": seen.at,
        "authorId": seen.author_id,
        "authorRole": seen.author_role.value,
        "messageId": seen.message_id,
        "text": seen.text,
    }


def view(e: TimelineEntry, role: Role) -> dict[str, Any] | None:
    """The entry as ``role`` may see it on the wire, or None when that role must not see it."""
    seen = visible(e, role)
    return None if seen is None else plain(seen)


def room(r: Any) -> dict[str, Any]:
    """A voice room (``domain.voice.Room``): what a client needs to join with the Chime SDK."""
    body: dict[str, Any] = {
        "meetingId": r.meeting_id,
        "attendeeId": r.attendee_id,
        "joinToken": r.join_token,
        "mediaRegion": r.media_region,
        "capabilities": {"audio": r.audio.value, "video": "None", "content": "None"},
    }
    if r.media_placement:
        body["mediaPlacement"] = dict(r.media_placement)
    return body


def team(t: Team) -> dict[str, Any]:
    return {"teamId": t.team_id, "name": t.name, "supervisors": t.supervisors, "agents": t.agents}


def template(t: Template) -> dict[str, Any]:
    return {"templateId": t.template_id, "text": t.text, "enabled": t.enabled}


# An attention rule's fields whose wire name is not their attribute's.
RULE_FIELDS = {"negative_in_a_row": "negativeInARow"}


def attention_rule(r: Any) -> dict[str, Any]:
    """An attention rule (``domain.attention.Rule``): its kind's fields only."""
    body: dict[str, Any] = {"ruleId": r.rule_id, "kind": r.kind.value, "enabled": r.enabled, "severity": r.severity}
    if r.phrases:
        body["phrases"] = list(r.phrases)
        body["speakers"] = list(r.speakers)
    if r.negative_in_a_row is not None:
        body[RULE_FIELDS["negative_in_a_row"]] = r.negative_in_a_row
    if r.seconds is not None:
        body["seconds"] = r.seconds
    return body


def alert(a: Any) -> dict[str, Any]:
    """An attention alert (``domain.attention.Alert``)."""
    body: dict[str, Any] = {
        "alertId": a.alert_id,
        "workitemId": a.workitem_id,
        "agentId": a.agent_id,
        "ruleId": a.rule_id,
        "kind": a.kind.value,
        "severity": a.severity,
        "raisedAt": a.raised_at,
        "reason": a.reason,
        "state": a.state.value,
    }
    if a.acked_by is not None:
        body["ackedBy"] = a.acked_by
        body["ackedAt"] = a.acked_at
    if a.cleared_reason is not None:
        body["clearedReason"] = a.cleared_reason.value
    return body


def policy(p: Policy) -> dict[str, Any]:
    return {
        "recordCoaching": p.record_coaching,
        "escalationSeconds": p.escalation_seconds,
        "retentionDays": p.retention_days,
        "transcribeCalls": p.transcribe_calls,
        "sentimentLanguage": p.sentiment_language,
    }


def subscription(v: Any) -> dict[str, Any]:
    """A webhook subscription as an admin is shown it (``domain.webhooks.SubscriptionView``)."""
    s = v.subscription
    body: dict[str, Any] = {"subscriptionId": s.subscription_id, "url": s.url, "events": list(s.events), "enabled": s.enabled}
    if v.with_secret:
        body["secret"] = s.secret
    if v.previous_until is not None:
        body["previousSecretUntil"] = v.previous_until
    if v.paused_until is not None:
        body["deliveriesPausedUntil"] = v.paused_until
    return body


# --- the use cases' results (services/results.py) ----------------------------------------------------


def _timeline_page(r: results.TimelinePage) -> dict[str, Any]:
    return {"entries": r.entries, "hasMore": r.has_more}


def _monitor_started(r: results.MonitorStarted) -> dict[str, Any]:
    return {"workitem": r.workitem, "entries": r.entries, "hasMore": r.has_more}


def _consult_request(r: results.ConsultRequest) -> dict[str, Any]:
    return {"consultId": r.consult_id, "workitemId": r.workitem_id, "agentId": r.agent_id}


def _agent_row(r: results.AgentRow) -> dict[str, Any]:
    return {"userId": r.user_id, "name": r.name, "presence": r.presence, "workitemCount": r.workitem_count}


def _presence(r: results.PresenceState) -> dict[str, Any]:
    return {"state": r.state} if r.user_id is None else {"userId": r.user_id, "state": r.state}


def _assist_note(r: results.AssistNote) -> dict[str, Any]:
    """``assist.requested``, and as ``assist.claimed`` / ``assist.escalated`` with the claimer / stage."""
    request = r.request
    body: dict[str, Any] = {"assistId": request.assist_id, "agentId": request.agent_id, "text": request.text}
    if request.workitem_id:
        body["workitemId"] = request.workitem_id
    if r.supervisor_id is not None:
        body["supervisorId"] = r.supervisor_id
    if r.stage is not None:
        body["stage"] = r.stage
    return body


def _pending_request(r: results.PendingRequest) -> dict[str, Any]:
    request = r.request
    body: dict[str, Any] = {"assistId": request.assist_id, "agentId": request.agent_id, "agentName": r.agent_name}
    body["text"] = request.text
    if request.workitem_id:
        body["workitemId"] = request.workitem_id
    body["requestedAt"] = request.created_at
    body["escalated"] = int(request.stage) > 0
    return body


def _direct_message(r: results.DirectMessage) -> dict[str, Any]:
    """``directory.message`` as pushed."""
    body: dict[str, Any] = {"messageId": r.message_id, "fromUserId": r.from_user_id, "text": r.text}
    if r.reply_to:
        body["replyTo"] = r.reply_to
    return body


def _delivery_note(r: results.DeliveryNote) -> dict[str, Any]:
    body: dict[str, Any] = {
        "workitemId": r.workitem_id,
        "messageId": r.message_id,
        "seq": r.seq,
        "delivery": r.delivery,
        "entry": r.entry,
    }
    if r.reason:
        body["reason"] = r.reason
    return body


_RENDERERS: dict[type, Callable[[Any], dict[str, Any]]] = {
    results.TimelinePage: _timeline_page,
    results.MonitorStarted: _monitor_started,
    results.ConsultStarted: lambda r: {"consultId": r.consult_id},
    results.ConsultRequest: _consult_request,
    results.WorkitemPage: lambda r: {"workitems": r.workitems, "nextCursor": r.next_cursor},
    results.AgentId: lambda r: {"userId": r.user_id},
    results.AgentRow: _agent_row,
    results.AgentPage: lambda r: {"agents": r.agents, "nextCursor": r.next_cursor},
    results.UserSaved: lambda r: {"userId": r.user_id, "name": r.name, "role": r.role},
    results.PresenceState: _presence,
    results.NotificationSetting: lambda r: {"agentMessageNotification": r.agent_messages},
    results.VoiceJoined: lambda r: {"contactRoom": r.contact_room, **({"coachRoom": r.coach_room} if r.coach_room else {})},
    results.Whispering: lambda r: {"coachRoom": r.coach_room, "contactRoom": r.contact_room},
    results.InContactRoom: lambda r: {"contactRoom": r.contact_room},
    results.CoachRoomOpened: lambda r: {"workitemId": r.workitem_id, **room(r.room)},
    results.CoachRoomClosed: lambda r: {"workitemId": r.workitem_id},
    results.AssistTemplates: lambda r: {
        "available": bool(r.templates),
        "templates": [{"templateId": template_id, "text": text} for template_id, text in r.templates],
    },
    results.Person: lambda r: {"userId": r.user_id, "name": r.name},
    results.RecipientsPage: lambda r: {"supervisors": r.supervisors, "agents": r.agents, "nextCursor": r.next_cursor},
    results.AssistSent: lambda r: {"assistId": r.assist_id, "recipients": r.recipients},
    results.AssistId: lambda r: {"assistId": r.assist_id},
    results.AssistNote: _assist_note,
    results.ClaimNote: lambda r: {
        "assistId": r.assist_id,
        "supervisorId": r.supervisor_id,
        "supervisorName": r.supervisor_name or r.supervisor_id,
    },
    results.DirectMessage: _direct_message,
    results.PendingRequest: _pending_request,
    results.PendingRequests: lambda r: {"requests": r.requests},
    results.MessageSent: lambda r: {"messageId": r.message_id},
    results.Count: lambda r: {"count": r.count},
    results.EntryNote: lambda r: {"entry": r.entry},
    results.SupervisorNote: lambda r: {
        "workitemId": r.workitem_id,
        "supervisorId": r.supervisor_id,
        "supervisorName": r.supervisor_name,
        "entry": r.entry,
    },
    results.VoiceModeNote: lambda r: {
        "workitemId": r.workitem_id,
        "supervisorId": r.supervisor_id,
        "supervisorName": r.supervisor_name,
        "mode": r.mode,
        "entry": r.entry,
    },
    results.CoachingEndedNote: lambda r: {"workitemId": r.workitem_id, "reason": r.reason, "entry": r.entry},
    results.SmsSettings: lambda r: {
        "originationIdentity": r.origination_identity,
        **({"phoneNumber": r.phone_number} if r.phone_number else {}),
    },
    results.ConnectSettings: lambda r: {"instanceArn": r.instance_arn, "agents": r.agents},
    results.TransferNote: lambda r: {"workitem": r.workitem, "fromAgentId": r.from_agent_id},
    results.DeliveryNote: _delivery_note,
    results.AlertNote: lambda r: {"alert": r.alert},
    results.SentimentNote: lambda r: {"workitemId": r.workitem_id, "seq": r.seq, "sentiment": r.sentiment},
    results.AttentionPage: lambda r: {"items": r.items, "nextCursor": r.next_cursor},
    results.TranscriptPartial: lambda r: {
        "workitemId": r.workitem_id,
        "utteranceId": r.utterance_id,
        "speaker": r.speaker,
        "text": r.text,
    },
    results.TranscriptState: lambda r: {
        "workitemId": r.workitem_id,
        "state": r.state,
        **({"reason": r.reason} if r.reason else {}),
    },
    results.RuleNote: lambda r: {"rule": r.rule},
    results.RuleList: lambda r: {"rules": r.rules},
    results.SmsReceived: lambda r: {
        "from": r.origination,
        "to": r.destination,
        "text": r.text,
        "inboundMessageId": r.inbound_message_id,
    },
    Workitem: workitem,
    TimelineEntry: entry,
    CustomerEntry: customer_entry,
    Team: team,
    Template: template,
    Policy: policy,
}


# Coaching analytics' metrics (docs/product.md W13) by their names in chalicelib/domain/analytics.py.
COACHING_METRICS = {
    "monitored_workitems": "monitoredWorkitems",
    "coach_messages": "coachMessages",
    "helpful": "helpful",
    "not_helpful": "notHelpful",
    "forwarded": "forwarded",
    "assist_requested": "assistRequested",
    "assist_claimed": "assistClaimed",
    "assist_escalated": "assistEscalated",
    "claim_seconds_p50": "claimSecondsP50",
    "alerts_raised": "alertsRaised",
    "alerts_acked": "alertsAcked",
    "ack_seconds_p50": "ackSecondsP50",
}


def _metrics(m: dict[str, Any]) -> dict[str, Any]:
    return {COACHING_METRICS[k]: v for k, v in m.items()}


def coaching_report(r: Any) -> dict[str, Any]:
    """``GET /analytics/coaching``'s body (``services.analytics.CoachingReport``)."""
    rows = [{"key": row.key, **({"name": row.name} if row.name else {}), **_metrics(row.metrics)} for row in r.rows]
    return {"from": r.start, "to": r.end, "groupBy": r.group_by, "rows": rows, "totals": _metrics(r.totals)}


def coaching_csv(r: Any) -> str:
    """The report's rows as CSV: a header of the JSON fields (``key``, ``name``, the metrics), ``null``
    an empty cell, cells that would start a spreadsheet formula escaped (``domain/analytics.py``)."""
    from chalicelib.domain.analytics import METRICS, render_csv

    header = ["key", "name", *(COACHING_METRICS[m] for m in METRICS)]
    return render_csv(header, ([row.key, row.name, *(row.metrics.get(m) for m in METRICS)] for row in r.rows))


# Records of rules that load on first use only (importing app skips the voice and webhook rules), known
# by name until one is seen.
_BY_NAME: dict[tuple[str, str], Callable[[Any], dict[str, Any]]] = {
    ("chalicelib.domain.voice", "Room"): room,
    ("chalicelib.domain.webhooks", "SubscriptionView"): subscription,
    ("chalicelib.domain.attention", "Rule"): attention_rule,
    ("chalicelib.domain.attention", "Alert"): alert,
    ("chalicelib.services.analytics", "CoachingReport"): coaching_report,
}


def _renderer(kind: type) -> Callable[[Any], dict[str, Any]] | None:
    found = _RENDERERS.get(kind)
    if found is None:
        found = _BY_NAME.get((kind.__module__, kind.__qualname__))
        if found is not None:
            _RENDERERS[kind] = found
    return found


def default(obj: Any) -> Any:
    """``json.dumps``' hook: a record of the product as the wire shows it."""
    render = _renderer(type(obj))
    if render is None:
        raise TypeError(f"{type(obj).__name__} has no wire form")
    return render(obj)


def plain(value: Any) -> Any:
    """``value`` with every record in it rendered: JSON-ready builtins (dicts keep their order)."""
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    render = _renderer(type(value))
    return plain(render(value)) if render is not None else value


# --- frames ------------------------------------------------------------------------------------------


def ack(request_id: str | None, data: Any) -> dict[str, Any]:
    return {"type": "ack", "requestId": request_id, "data": data}


def error(request_id: str | None, body: dict[str, Any]) -> dict[str, Any]:
    return {"type": "error", "requestId": request_id, "error": body}


def event(name: str, data: Any, at: str) -> dict[str, Any]:
    return {"type": "event", "event": name, "data": data, "at": at}


def refused(frame: dict[str, Any], exc: DomainError) -> dict[str, Any]:
    """The error frame answering ``frame``'s request (its ``requestId``) with ``exc``."""
    return error(frame.get("requestId"), exc.to_dict())


class Wire:
    """The ``Renderer`` port (``services/ports.py``) as this module implements it."""

    default = staticmethod(default)
    plain = staticmethod(plain)
    event = staticmethod(event)
    refused = staticmethod(refused)


WIRE = Wire()
