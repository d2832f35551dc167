"""Races run the same way on moto (each SDK call made atomic) and on DynamoDB Local (no lock at all).

moto applies a TransactWriteItems in steps without a lock, and rolls a cancelled one back by putting
back a copy of the whole table taken when it began: a transaction cancelled on one thread can undo
another thread's commit that landed in between, which real DynamoDB never does. On moto the tests
run these races inside ``atomic_aws_calls()`` (the use cases still interleave between calls, which is
the race that matters); tests/ddblocal runs them on AWS's own engine as they are.
"""

from __future__ import annotations

import threading
from typing import Any

from chalicelib.domain.voice import VoiceState
from tests.support.world import Client, World


def first_voice_actions(w: World, wid: str, tid: str) -> None:
    """Three agent connections join and the monitoring supervisor listens at once, on a voice workitem
    with no contact room yet: all four get the one contact room, and the committed state holds the
    supervisor and the agent's attendee (no decision undone by another)."""
    w.assign(wid, channel="voice")
    sup = w.connect("sup-1", "supervisor")
    sup.ok("monitor.start", workitemId=wid)
    clients = [w.connect("agent-1", "agent") for _ in range(3)]
    barrier = threading.Barrier(len(clients) + 1)
    results: list[dict[str, Any]] = []
    errors: list[BaseException] = []

    def run(action: str, client: Client) -> None:
        barrier.wait()
        try:
            results.append(client.ok(action, workitemId=wid)["contactRoom"])
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=("voice.join", c)) for c in clients]
    threads.append(threading.Thread(target=run, args=("voice.monitor", sup)))
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not any(t.is_alive() for t in threads)
    assert errors == []
    assert len(results) == 4 and len({r["meetingId"] for r in results}) == 1
    assert len(w.meetings.meetings) == 1
    state = VoiceState.load(w.services.coaching.load(tid, wid).voice)
    assert state.contact is not None and state.contact.meeting_id == results[0]["meetingId"]
    assert set(state.supervisors) == {"sup-1"} and state.contact.agent_attendee_id
