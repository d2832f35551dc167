"""Voice races on AWS's DynamoDB Local engine, without the lock the moto tier needs (tests/support/races.py)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.races import first_voice_actions

pytestmark = pytest.mark.ddblocal


@pytest.mark.parametrize("round_", range(5))
def test_concurrent_first_actions_agree_on_one_contact_room_without_a_lock(ddb_world: Any, round_: int) -> None:
    ddb_world.team()
    first_voice_actions(ddb_world, f"wi-v-{round_}", ddb_world.tid)
