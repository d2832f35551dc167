"""The web console's client understands every event the server pushes, and no other: its list
(``EVENTS`` in ``console/src/protocol.ts``) is the server's registry (``services/push_events.py``)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from chalicelib.services.push_events import EVENTS

pytestmark = pytest.mark.unit

PROTOCOL_TS = Path(__file__).resolve().parents[2] / "console" / "src" / "protocol.ts"


def console_events() -> set[str]:
    source = PROTOCOL_TS.read_text(encoding="utf-8")
    found = re.search(r"export const EVENTS = \[(?P<body>[^\]]*)\] as const;", source)
    assert found, "console/src/protocol.ts no longer declares `export const EVENTS = [...] as const;`"
    return set(re.findall(r'"([^"]+)"', found["body"]))


def test_the_console_lists_every_event_the_server_pushes() -> None:
    assert EVENTS - console_events() == set(), "pushed by the server but missing from the console's EVENTS"


def test_the_console_lists_no_event_the_server_never_pushes() -> None:
    assert console_events() - EVENTS == set(), "in the console's EVENTS but not in services/push_events.py"
