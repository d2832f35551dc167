"""Live transcript of voice calls (docs/product.md W12, docs/transcript.md): the consumer of the media
insights pipeline's Kinesis Data Stream sink.

A batch of sink records is handled in three steps:

1. each record is read strictly (``domain.transcript.sink_record``); one that cannot be read is
   logged, counted and dropped (reading it again cannot mend it);
2. its workitem is found from the runtime metadata the pipeline was started with (``tenantId``,
   ``workitemId``), or else from the stored pipeline -> workitem mapping (1 GetItem per pipeline per
   batch);
3. per workitem, final utterances in the order they were spoken (``BeginOffsetMillis``; the sink's
   partition key is not documented, so the stream's order is not relied on) are committed as
   ``transcript`` entries, each with the utterance's idempotency key in the same transaction: a
   redelivered or repeated utterance is recognised and writes nothing. The stream consumer pushes
   them (``transcript.segment``) like every entry. Partial utterances are never stored: the newest
   words of each utterance still partial at the end of the batch go to the agent and the monitoring
   supervisors as ``transcript.partial``.

A store that fails is a retry: the batch response names the first record it could not apply, and
Lambda hands that record and those after it over again (already applied ones are duplicates then).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from chalicelib import metrics
from chalicelib.domain import transcript as rules
from chalicelib.domain.coaching import Channel, Status
from chalicelib.domain.errors import Conflict, Invalid, NotFound
from chalicelib.domain.identity import user_key
from chalicelib.domain.transcript import Utterance
from chalicelib.services import push_events as ev
from chalicelib.services.commits import Workitems
from chalicelib.services.delivery import Notifier
from chalicelib.services.ports import DuplicateEvent, Idempotency, PipelineIndex, RecipientLookup
from chalicelib.services.results import TranscriptPartial
from chalicelib.settings import Settings

log = logging.getLogger(__name__)

# metrics.TRANSCRIPT_RECORDS outcomes: what became of one sink record.
APPLIED, DUPLICATE, PARTIAL, IGNORED, ENDED, UNKNOWN, INVALID, FAILED = (
    "applied",
    "duplicate",
    "partial",
    "ignored",
    "ended",
    "unknown",
    "invalid",
    "failed",
)


@dataclass
class SinkItem:
    """One sink record of the batch: where it stands in the batch, and what it said."""

    index: int
    sequence: str
    record: rules.SinkRecord


@dataclass
class _Call:
    tenant_id: str
    workitem_id: str
    items: list[SinkItem] = field(default_factory=list)


@dataclass
class Outcomes:
    counts: dict[str, int] = field(default_factory=dict)
    failed: list[SinkItem] = field(default_factory=list)

    def add(self, outcome: str) -> None:
        self.counts[outcome] = self.counts.get(outcome, 0) + 1
        metrics.TRANSCRIPT_RECORDS.add(Outcome=outcome)


class TranscriptService:
    def __init__(
        self,
        settings: Settings,
        workitems: Workitems,
        pipelines: PipelineIndex,
        recipients: RecipientLookup,
        notifier: Notifier,
    ) -> None:
        self.settings = settings
        self.workitems = workitems
        self.pipelines = pipelines
        self.recipients = recipients
        self.notifier = notifier

    # --- the records -----------------------------------------------------------------------------------

    def consume(self, items: Sequence[SinkItem], outcomes: Outcomes | None = None) -> Outcomes:
        """Apply the sink records of one batch, read by the entry layer (``transcript_payloads``);
        ``failed`` names those a store failure kept from being applied."""
        outcomes = outcomes or Outcomes()
        owners: dict[str, tuple[str, str] | None] = {}
        calls: dict[tuple[str, str], _Call] = {}
        for item in items:
            if not isinstance(item.record, Utterance):
                outcomes.add(IGNORED)  # call metadata and categories: nothing of ours yet (docs/transcript.md)
                continue
            found = self._owner(item.record.origin, owners)
            if found is None:
                log.warning(
                    "transcript record of pipeline %s that no workitem owns: dropped",
                    item.record.origin.pipeline_id,
                    extra={"event": "transcript_record", "outcome": UNKNOWN},
                )
                outcomes.add(UNKNOWN)
                continue
            calls.setdefault(found, _Call(*found)).items.append(item)
        for call in calls.values():
            self._call(call, outcomes)
        return outcomes

    def _owner(self, origin: rules.Origin, owners: dict[str, tuple[str, str] | None]) -> tuple[str, str] | None:
        if origin.tenant_id:
            return origin.tenant_id, origin.workitem_id
        if origin.pipeline_id not in owners:
            found = self.pipelines.owner(origin.pipeline_id)
            owners[origin.pipeline_id] = (found.tenant_id, found.workitem_id) if found else None
        return owners[origin.pipeline_id]

    def _call(self, call: _Call, outcomes: Outcomes) -> None:
        utterances = [(i, i.record) for i in call.items if isinstance(i.record, Utterance)]
        finals = sorted(((i, u) for i, u in utterances if not u.partial), key=lambda p: (p[1].start_ms or 0, p[0].index))
        final_ids = {u.utterance_id for _, u in finals}
        newest: dict[str, Utterance] = {}
        for _, u in utterances:
            if u.partial:
                outcomes.add(PARTIAL)
                if u.utterance_id not in final_ids:
                    newest[u.utterance_id] = u  # the batch's last words of it win
        for item, u in finals:
            outcomes.add(self._final(call, item, u, outcomes))
        if newest:
            self._partials(call, list(newest.values()))

    def _final(self, call: _Call, item: SinkItem, u: Utterance, outcomes: Outcomes) -> str:
        idem = Idempotency(call.tenant_id, u.event_id, "transcript.segment")
        try:
            self.workitems.mutate(
                call.tenant_id, call.workitem_id, lambda w: rules.segment(w, u, self.workitems.now()), idempotency=idem, push=True
            )
        except DuplicateEvent:
            return DUPLICATE
        except NotFound:
            return UNKNOWN
        except Conflict:
            return ENDED  # the call ended before its last words arrived: nothing to add to it
        except Invalid as exc:
            log.warning("transcript segment of workitem %s refused: %s", call.workitem_id, exc)
            return INVALID
        except Exception:  # the store: handed over again by Lambda (idempotent)
            log.exception("could not store a transcript segment of workitem %s", call.workitem_id)
            outcomes.failed.append(item)
            return FAILED
        return APPLIED

    def _partials(self, call: _Call, partials: Iterable[Utterance]) -> None:
        """``transcript.partial`` to the call's agent and monitors: 1 GetItem and 1 BatchGetItem per
        call per batch. Best effort: the final segment follows and is stored."""
        shown = [u for u in partials if u.text]
        if not shown:
            return
        try:
            w = self.workitems.store.get(call.tenant_id, call.workitem_id)
            if w is None or w.channel is not Channel.VOICE or w.status is not Status.ACTIVE:
                return
            staff = [user_key(u) for u in dict.fromkeys([w.agent_id, *w.monitors])]
            found = self.recipients.recipients(w.tenant_id, staff)
        except Exception:  # noqa: BLE001 - best effort: the store not answering costs the partials only
            log.warning("could not push partial transcript of workitem %s", call.workitem_id)
            return
        box = self.notifier.outbox(w.tenant_id)
        for u in shown:
            note = TranscriptPartial(w.workitem_id, u.utterance_id, u.speaker.value, u.text)
            for key in staff:
                box.to_recipient(found.get(key), ev.TRANSCRIPT_PARTIAL, note)
        self.notifier.flush(box)
