"""What happened, and the one bus that hands it to every reaction (``bootstrap.EVENT_HANDLERS``).

A use case that commits something others react to raises an event here (after its commit), and the
bus calls each handler the composition root listed for that event's type, in the listed order. No
service subscribes itself and none knows who reacts: voice teardown, the monitors a team change
ends, outbound webhooks and the stream consumer's pushes are all lines of one table.

Two kinds of events:

* raised by a handler after its own commit (``CoachingEnded``, ``SupervisionLost`` ...): the
  handlers run on the request's path, before it answers;
* :class:`ChangesCommitted`, raised by the workitems table's stream consumer (``fanout``) with the
  committed changes of one stream batch. Lambda may hand a batch over again, so every handler of it
  is idempotent under redelivery (the change's ``seq`` and ``version`` make a natural key), and
  reads nothing per change that the batch could share.

One error policy for every handler: a handler that fails is logged with the event it got, the
other handlers still run, and once all have run the first failure is raised to whoever raised the
event. A request then answers ``internal`` (its client retries it, and every handler is safe to run
again), and a stream batch is handed over again. A reaction that must never fail its caller (voice
teardown, pushes) catches and logs its own failures, as its module says.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol

import msgspec

from chalicelib.domain.coaching import Change

if TYPE_CHECKING:
    from chalicelib.domain.assistance import AssistanceRequest
    from chalicelib.services.fanout import Committed
    from chalicelib.services.ports import Presence

log = logging.getLogger(__name__)


class Event(msgspec.Struct, frozen=True):
    """Base of every event the bus carries."""


class WorkitemCommitted(Event, frozen=True):
    """A use case committed a change of a workitem (every change made through ``CoachingService.mutate``)."""

    change: Change


class CoachingEnded(Event, frozen=True):
    """A committed change ended coaching for some supervisors other than by their own ``monitor.stop``."""

    change: Change


class SupervisorLeft(Event, frozen=True):
    """A supervisor's own ``monitor.stop`` was committed (or found nothing to stop)."""

    change: Change
    supervisor_id: str


class SupervisionLost(Event, frozen=True):
    """An admin's change means the supervisor no longer supervises the agent (live permissions)."""

    tenant_id: str
    supervisor_id: str
    agent_id: str


class PresenceChanged(Event, frozen=True):
    tenant_id: str
    user_id: str
    state: Presence


class AssistRequested(Event, frozen=True):
    request: AssistanceRequest
    counted: bool = False  # its analytics facts were stored with the request (nothing left to count)


class AssistClaimed(Event, frozen=True):
    request: AssistanceRequest
    supervisor_id: str


class AssistEscalated(Event, frozen=True):
    request: AssistanceRequest
    stage: str


class ChangesCommitted(Event, frozen=True):
    """The committed workitem changes of one batch of the workitems table's stream, in stream order.

    A handler that could not finish with a change (and could not keep it anywhere for later) adds it to
    ``handed_back``: the stream hands it over again (a partial batch response), with every change
    behind it in its shard, to every handler."""

    batch: Sequence[Committed]
    handed_back: list[Committed] = msgspec.field(default_factory=list)


Handler = Callable[[Any], object]


class Publisher(Protocol):
    """What a service raises its events through (the bus; tests may pass a list's ``append``)."""

    def __call__(self, event: Event, /) -> None: ...


class MessageBus:
    """Calls the handlers of an event's type, in order, with one error policy (module docstring)."""

    def __init__(self, handlers: Mapping[type[Event], Sequence[Handler]] | None = None) -> None:
        self.handlers: dict[type[Event], list[Handler]] = {k: list(v) for k, v in (handlers or {}).items()}

    def publish(self, event: Event) -> None:
        first: Exception | None = None
        for handler in self.handlers.get(type(event), ()):
            try:
                handler(event)
            except Exception as exc:  # the others still run; the first failure is raised below
                log.exception("handler %s of %s failed", getattr(handler, "__qualname__", handler), type(event).__name__)
                first = first or exc
        if first is not None:
            raise first

    __call__ = publish
