"""Voice coaching over the Chime SDK: contact room, silent monitor, whisper, barge. (In progress.)"""

from __future__ import annotations

from typing import Any

from chalicelib.domain.identity import Principal
from chalicelib.domain.voice import MeetingProvider
from chalicelib.services.coaching import CoachingService
from chalicelib.settings import Settings


class VoiceService:
    def __init__(self, settings: Settings, coaching: CoachingService, meetings: MeetingProvider) -> None:
        self.settings = settings
        self.coaching = coaching
        self.meetings = meetings

    def join(self, caller: Principal, workitem_id: str) -> dict[str, Any]:
        raise NotImplementedError

    def monitor(self, caller: Principal, workitem_id: str) -> dict[str, Any]:
        raise NotImplementedError

    def whisper(self, caller: Principal, workitem_id: str, conn: str | None = None) -> dict[str, Any]:
        raise NotImplementedError

    def barge(self, caller: Principal, workitem_id: str) -> dict[str, Any]:
        raise NotImplementedError

    def listen(self, caller: Principal, workitem_id: str, conn: str | None = None) -> dict[str, Any]:
        raise NotImplementedError

    def sma(self, event: dict[str, Any]) -> dict[str, Any]:
        raise NotImplementedError
