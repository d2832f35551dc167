"""Fast delivery (docs/product.md W15) through the real Lambda entry points, on in-memory stores and moto:
``?delivery=fast`` on ``$connect``, timeline entries posted by the handler that committed them, the
stream's copy as the backstop, and a handler that dies after its commit."""

from __future__ import annotations

import pytest

from tests.support.world import World

# Tier: from the world fixture's backend (service on memory, integration on moto; tests/conftest.py).


@pytest.fixture
def w(world: World) -> World:
    world.team()
    world.assign("wi-1")
    return world


def _stored(w: World, user: str) -> list[tuple[str, bool]]:
    recipient = w.services.directory.directory.recipient("t1", f"U#{user}")
    assert recipient is not None
    return [(c.connection_id, c.fast) for c in recipient.connections]


def test_w15_1_the_delivery_mode_is_recorded_on_the_connection(w: World) -> None:
    fast = w.connect("agent-1", "agent", delivery="fast")
    ordered = w.connect("agent-1", "agent", delivery="ordered")
    plain = w.connect("agent-1", "agent")
    assert sorted(_stored(w, "agent-1")) == sorted(
        [(fast.connection_id, True), (ordered.connection_id, False), (plain.connection_id, False)]
    )
    fast.disconnect()  # $disconnect knows no mode: the fast connection goes all the same
    assert sorted(_stored(w, "agent-1")) == sorted([(ordered.connection_id, False), (plain.connection_id, False)])


@pytest.mark.parametrize("mode", ["slow", "FAST", "", "fast "])
def test_w15_1_an_unknown_delivery_mode_is_refused_and_nothing_is_stored(w: World, mode: str) -> None:
    status, client = w.connect_token(w.token("agent-1", "agent"), delivery=mode)
    assert (status, client) == (400, None)
    assert w.services.directory.directory.recipient("t1", "U#agent-1") is None or _stored(w, "agent-1") == []
