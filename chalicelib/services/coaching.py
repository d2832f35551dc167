"""Digital coaching use cases: monitoring, coach messages, the conversation, transfer and end.

Each mutating use case reads the workitem (1 GetItem), lets a domain rule decide and commits the
change in one conditional transaction (1 TransactWriteItems) that also writes its fan-out note. A
commit that loses a race re-reads and decides again, so the rules always judge the latest state.
The events are pushed by the fan-out (``services/fanout.py``), called from the workitems table's
stream in commit order: 1 BatchGetItem of the recipients, then posts.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from typing import Any

from chalicelib.domain import coaching as rules
from chalicelib.domain.coaching import Change, EndedBy, Reaction, Workitem
from chalicelib.domain.errors import Forbidden, Invalid, NotFound
from chalicelib.domain.identity import Principal, Role, user_key
from chalicelib.domain.timeline import TimelineEntry, view
from chalicelib.services import push_events as ev
from chalicelib.services.clock import new_id
from chalicelib.services.commits import Workitems, commit_with_retry
from chalicelib.services.delivery import Notifier
from chalicelib.services.fanout import encode_note
from chalicelib.services.messagebus import Publisher, SupervisionLost, SupervisorLeft, WorkitemCommitted
from chalicelib.services.paging import scope_of, workitem_page
from chalicelib.services.ports import CounterDelta, RecipientLookup, Supervision
from chalicelib.services.results import ConsultRequest, ConsultStarted, MonitorStarted, TimelinePage, WorkitemPage

log = logging.getLogger(__name__)

MONITOR_START_ENTRIES = 200
TIMELINE_PAGE_MAX = 200


class CoachingService:
    def __init__(
        self,
        workitems: Workitems,
        supervision: Supervision,
        recipients: RecipientLookup,
        notifier: Notifier,
        publish: Publisher,
    ) -> None:
        self.commits = workitems
        self.store = workitems.store
        self.directory = supervision
        self.recipients = recipients
        self.notifier = notifier
        self._publish = publish

    def load(self, tenant_id: str, workitem_id: str) -> Workitem:
        return self.commits.load(tenant_id, workitem_id)

    # --- queries ---------------------------------------------------------------------------

    def require_view(self, caller: Principal, workitem: Workitem) -> None:
        """A supervisor who is not monitoring is looked up (1 Query); a monitor's standing is kept in
        step with the directory by the admin's changes (:meth:`supervision_lost`)."""
        supervises = False
        if caller.role is Role.SUPERVISOR and caller.user_id not in workitem.monitors:
            supervises = self.directory.supervises(caller.tenant_id, caller.user_id, workitem.agent_id)
        rules.require_view(caller, workitem, supervises)

    def timeline(self, caller: Principal, workitem_id: str, after: int, limit: int) -> TimelinePage:
        if caller.is_customer and caller.workitem_id != workitem_id:
            raise Forbidden("customers may only read their own workitem")
        workitem = self.load(caller.tenant_id, workitem_id)
        self.require_view(caller, workitem)
        entries, has_more = self.store.timeline(
            caller.tenant_id, workitem_id, after=after, limit=min(limit, TIMELINE_PAGE_MAX), customer=caller.is_customer
        )
        seen = [v for v in (view(e, caller.role) for e in entries) if v is not None]
        kept, cut = self.notifier.fit_forward(seen)
        return TimelinePage(kept, has_more or cut)

    def workitems(
        self, caller: Principal, agent_id: str, limit: int | None = None, cursor: str | None = None
    ) -> dict[str, Any] | WorkitemPage:
        """The agent's open workitems: all of them (REST), or one page with ``nextCursor`` (``limit`` given)."""
        if caller.role is Role.AGENT:
            if caller.user_id != agent_id:
                raise Forbidden("agents may only list their own workitems")
        elif caller.role is Role.SUPERVISOR:
            if not self.directory.supervises(caller.tenant_id, caller.user_id, agent_id):
                raise Forbidden("you do not supervise this agent")
        elif caller.role is not Role.ADMIN:
            raise Forbidden("customers cannot list workitems")
        items = self.store.open_for_agent(caller.tenant_id, agent_id)
        if limit is None:
            return {"workitems": items}
        scope = scope_of("workitems.list", caller.tenant_id, caller.user_id, agent_id)
        return workitem_page(items, scope, limit, cursor, self.notifier.wire.plain)

    def export(self, caller: Principal, workitem_id: str) -> dict[str, Any]:
        """B6: the full coaching timeline of a workitem, for audit (admins and its supervisors)."""
        if caller.role not in (Role.ADMIN, Role.SUPERVISOR):
            raise Forbidden("only admins and supervisors may export a timeline")
        workitem = self.load(caller.tenant_id, workitem_id)
        self.require_view(caller, workitem)
        entries: list[TimelineEntry] = []
        after = 0
        while True:
            page, more = self.store.timeline(caller.tenant_id, workitem_id, after=after, limit=500, customer=False)
            entries.extend(page)
            if not more or not page:
                break
            after = page[-1].seq
        return {"workitem": workitem, "entries": entries}

    # --- monitoring ------------------------------------------------------------------------

    def supervision(self, caller: Principal) -> Callable[[Workitem], bool]:
        """``supervises(workitem)`` for ``caller``: one Query per agent, only when it is asked."""
        checked: dict[str, bool] = {}

        def supervises(w: Workitem) -> bool:
            if caller.role is not Role.SUPERVISOR:
                return False
            if w.agent_id not in checked:
                checked[w.agent_id] = self.directory.supervises(caller.tenant_id, caller.user_id, w.agent_id)
            return checked[w.agent_id]

        return supervises

    def monitor_start(self, caller: Principal, workitem_id: str, connection_id: str | None = None) -> MonitorStarted:
        if caller.role is not Role.SUPERVISOR:
            raise Forbidden("only supervisors may monitor")
        supervises = self.supervision(caller)
        names: dict[str, str | None] = {}

        def name() -> str | None:
            """The caller's directory name (1 GetItem, only when a join is to be written)."""
            if "name" not in names:
                me = self.recipients.recipient(caller.tenant_id, user_key(caller.user_id))
                names["name"] = me.name if me is not None else None
            return names["name"]

        def decide(w: Workitem) -> Change:
            joining = caller.user_id not in w.monitors and w.is_open
            return rules.start_monitoring(caller, w, supervises(w), self._now(), name() if joining and supervises(w) else None)

        change = self.commits.mutate(caller.tenant_id, workitem_id, decide, push=True, exclude=connection_id)
        if change.changed and not self.directory.supervises(caller.tenant_id, caller.user_id, change.after.agent_id):
            # An admin took the agent away between the check and the commit, and the admin's clean-up
            # may have looked before the commit: undo the join (1 Query, only when a join was written).
            self.supervision_lost(caller.tenant_id, caller.user_id, change.after.agent_id)
            raise Forbidden("you no longer supervise this workitem's agent")
        entries, has_more = self.store.latest(caller.tenant_id, workitem_id, MONITOR_START_ENTRIES)
        kept, cut = self.notifier.fit_entries(entries)
        return MonitorStarted(change.after, kept, has_more or cut)

    def monitor_stop(self, caller: Principal, workitem_id: str, connection_id: str | None = None) -> dict[str, Any]:
        supervises = self.supervision(caller)

        def decide(w: Workitem) -> Change:
            monitoring = caller.user_id in w.monitors
            return rules.stop_monitoring(caller, w, self._now(), supervises_agent=not monitoring and supervises(w))

        change = self.commits.mutate(caller.tenant_id, workitem_id, decide, push=True, exclude=connection_id)
        self._publish(SupervisorLeft(change, caller.user_id))
        return {}

    def on_supervision_lost(self, event: SupervisionLost) -> None:
        """The handler of :class:`SupervisionLost` (``bootstrap.EVENT_HANDLERS``)."""
        self.supervision_lost(event.tenant_id, event.supervisor_id, event.agent_id)

    def supervision_lost(self, tenant_id: str, supervisor_id: str, agent_id: str) -> None:
        """The supervisor no longer supervises the agent: end their monitors of the agent's open
        workitems (1 Query on the open-workitems GSI, then per workitem 1 consistent GetItem, since
        the index may lag, + 1 TransactWriteItems where they monitor)."""
        for w in self.store.open_for_agent(tenant_id, agent_id):
            self.commits.mutate(
                tenant_id, w.workitem_id, lambda current: rules.revoke_monitoring(current, supervisor_id, self._now()), push=True
            )

    def coaching_end(self, caller: Principal, workitem_id: str, connection_id: str | None = None) -> dict[str, Any]:
        self.commits.mutate(
            caller.tenant_id, workitem_id, lambda w: rules.end_coaching(caller, w, self._now()), push=True, exclude=connection_id
        )
        return {}

    # --- messages --------------------------------------------------------------------------

    def coach_send(
        self,
        caller: Principal,
        workitem_id: str,
        text: str,
        connection_id: str | None = None,
        client_message_id: str | None = None,
    ) -> dict[str, Any]:
        supervises = self.supervision(caller)

        def decide(w: Workitem, message_id: str) -> Change:
            # The supervision Query runs only on the refusal path (a supervisor who is not monitoring):
            # a monitor's standing is kept in step with the directory (supervision_lost).
            outsider = caller.role is Role.SUPERVISOR and caller.user_id not in w.monitors
            return rules.send_coach_message(caller, w, text, message_id, self._now(), supervises_agent=outsider and supervises(w))

        return {"entry": self._send(caller, workitem_id, decide, connection_id, client_message_id)}

    def _send(
        self,
        caller: Principal,
        workitem_id: str,
        decide: Callable[[Workitem, str], Change],
        connection_id: str | None,
        client_message_id: str | None,
    ) -> TimelineEntry:
        """A new message on the workitem. With ``client_message_id`` its id is derived from the sender
        and that id (W18.6): a resend finds the first one in the message index, read with the workitem
        (1 BatchGetItem instead of the GetItem), and answers its entry (1 Query) without writing."""
        if client_message_id is None:
            message_id = new_id("msg")
            return self.commits.mutate(
                caller.tenant_id, workitem_id, lambda w: decide(w, message_id), push=True, exclude=connection_id
            ).entry
        message_id = derived_id("msg", caller.role.value, caller.user_id, client_message_id)

        def attempt() -> Change | TimelineEntry:
            workitem, found = self.store.get_with_messages(caller.tenant_id, workitem_id, [message_id])
            if workitem is None:
                raise NotFound(f"workitem {workitem_id} not found")
            if message_id in found:
                rules.require_view(caller, workitem, True)
                first = found[message_id].seq
                entries, _ = self.store.timeline(caller.tenant_id, workitem_id, after=first - 1, limit=1, customer=False)
                return entries[0]
            change = decide(workitem, message_id)
            self.store.commit(change, fanout=encode_note(change, connection_id))
            return change

        outcome = commit_with_retry(attempt)
        if isinstance(outcome, TimelineEntry):
            return outcome
        self._publish(WorkitemCommitted(outcome))
        return outcome.entry

    def _with_message(
        self,
        caller: Principal,
        workitem_id: str,
        message_id: str,
        decide: Callable[[Workitem, TimelineEntry], Change],
        connection_id: str | None,
    ) -> Change:

        def attempt() -> Change:
            workitem, message = self.store.get_with_message(caller.tenant_id, workitem_id, message_id)
            if workitem is None:
                raise NotFound(f"workitem {workitem_id} not found")
            rules.require_agent_of(caller, workitem)
            if message is None:
                raise NotFound(f"message {message_id} not found on this workitem")
            change = decide(workitem, message)
            self.store.commit(change, fanout=encode_note(change, connection_id))
            return change

        return commit_with_retry(attempt)

    def coach_react(
        self, caller: Principal, workitem_id: str, message_id: str, reaction: str | None, connection_id: str | None = None
    ) -> dict[str, Any]:
        try:
            value = Reaction(reaction) if reaction is not None else None
        except ValueError as exc:
            raise Invalid("reaction must be thumbs_up, thumbs_down or null") from exc
        change = self._with_message(
            caller, workitem_id, message_id, lambda w, m: rules.react(caller, w, m, value, self._now()), connection_id
        )
        return {"entry": change.entry}

    def coach_forward(
        self, caller: Principal, workitem_id: str, message_id: str, connection_id: str | None = None
    ) -> dict[str, Any]:
        """The forward's id is derived from the coach message's, so the one read that finds the coach
        message also finds an earlier forward of it (W18.5: ``conflict``)."""
        forward_id = derived_id("msg", "forward", message_id, "")

        def attempt() -> Change:
            workitem, found = self.store.get_with_messages(caller.tenant_id, workitem_id, [message_id, forward_id])
            if workitem is None:
                raise NotFound(f"workitem {workitem_id} not found")
            rules.require_agent_of(caller, workitem)
            message = found.get(message_id)
            if message is None:
                raise NotFound(f"message {message_id} not found on this workitem")
            change = rules.forward(caller, workitem, message, forward_id, self._now(), forwarded=forward_id in found)
            self.store.commit(change, fanout=encode_note(change, connection_id))
            return change

        return {"entry": commit_with_retry(attempt).entry}

    def message_send(
        self,
        caller: Principal,
        workitem_id: str,
        text: str,
        connection_id: str | None = None,
        client_message_id: str | None = None,
    ) -> dict[str, Any]:
        if caller.is_customer and caller.workitem_id != workitem_id:
            raise Forbidden("customers may only write on their own workitem")

        def decide(w: Workitem, message_id: str) -> Change:
            return rules.send_message(caller, w, text, message_id, self._now())

        entry = self._send(caller, workitem_id, decide, connection_id, client_message_id)
        return {"entry": view(entry, caller.role)}

    # --- transfer, end, consult ------------------------------------------------------------

    def transfer(self, caller: Principal, workitem_id: str, to_agent_id: str, connection_id: str | None = None) -> dict[str, Any]:
        target = self.recipients.recipient(caller.tenant_id, user_key(to_agent_id))
        target_is_agent = target is not None and target.role is Role.AGENT

        def decide(w: Workitem) -> Change:
            rules.require_agent_of(caller, w)  # permission before anything about the target
            if not target_is_agent:
                raise NotFound(f"agent {to_agent_id} not found")
            return rules.transfer(w, to_agent_id, caller.user_id, Role.AGENT, self._now())

        change = self.commits.mutate(
            caller.tenant_id, workitem_id, decide, counters=transfer_counters, push=True, exclude=connection_id
        )
        return {"workitem": change.after}

    def end(self, caller: Principal, workitem_id: str, connection_id: str | None = None) -> dict[str, Any]:
        def decide(w: Workitem) -> Change:
            rules.require_agent_of(caller, w)
            return rules.end_workitem(w, EndedBy.AGENT, caller.user_id, Role.AGENT, self._now())

        change = self.commits.mutate(
            caller.tenant_id, workitem_id, decide, counters=end_counters, push=True, exclude=connection_id
        )
        return {"workitem": change.after}

    def consult(self, caller: Principal, workitem_id: str, user_id: str, connection_id: str | None = None) -> ConsultStarted:
        workitem = self.load(caller.tenant_id, workitem_id)
        rules.check_consult(caller, workitem, user_id)
        target = self.recipients.recipient(caller.tenant_id, user_key(user_id))
        if target is None or target.role not in (Role.AGENT, Role.SUPERVISOR):
            raise NotFound(f"user {user_id} not found")
        consult_id = new_id("cs")
        box = self.notifier.outbox(caller.tenant_id, connection_id)
        box.to_recipient(target, ev.CONSULT_REQUESTED, ConsultRequest(consult_id, workitem_id, caller.user_id))
        self.notifier.flush(box)
        return ConsultStarted(consult_id)

    def _now(self) -> str:
        return self.commits.now()


def derived_id(prefix: str, *parts: str) -> str:
    """A message id that only these parts give: what makes a resend or a second forward recognisable."""
    digest = hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:24]
    return f"{prefix}_{digest}"


def transfer_counters(change: Change) -> list[CounterDelta]:
    """A workitem that changed hands: one fewer open workitem for its old agent, one more for the new."""
    w = change.after
    return [CounterDelta(w.tenant_id, change.before.agent_id, -1), CounterDelta(w.tenant_id, w.agent_id, 1)]


def end_counters(change: Change) -> list[CounterDelta]:
    """An ended workitem: one fewer open workitem for its agent."""
    return [CounterDelta(change.after.tenant_id, change.after.agent_id, -1)]
