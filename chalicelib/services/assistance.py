"""Raise hand: assistance templates, requests, claims and escalation; directory messages. (In progress.)"""

from __future__ import annotations

from typing import Any

from chalicelib.domain.identity import Principal
from chalicelib.services.coaching import CoachingService
from chalicelib.services.delivery import Clock, Notifier
from chalicelib.services.ports import Directory
from chalicelib.settings import Settings


class AssistanceService:
    def __init__(self, settings: Settings, directory: Directory, coaching: CoachingService, notifier: Notifier,
                 clock: Clock) -> None:
        self.settings = settings
        self.directory = directory
        self.coaching = coaching
        self.notifier = notifier
        self.clock = clock

    def templates(self, caller: Principal) -> dict[str, Any]:
        raise NotImplementedError

    def recipients(self, caller: Principal) -> dict[str, Any]:
        raise NotImplementedError

    def request(self, caller: Principal, template_id: str, workitem_id: str | None, to_user_id: str | None,
                conn: str | None = None) -> dict[str, Any]:
        raise NotImplementedError

    def claim(self, caller: Principal, assist_id: str, conn: str | None = None) -> dict[str, Any]:
        raise NotImplementedError

    def directory_send(self, caller: Principal, to_user_id: str, text: str, reply_to: str | None,
                       conn: str | None = None) -> dict[str, Any]:
        raise NotImplementedError

    def unread(self, caller: Principal) -> dict[str, Any]:
        raise NotImplementedError

    def read(self, caller: Principal, with_user_id: str) -> dict[str, Any]:
        raise NotImplementedError

    def escalate_due(self) -> dict[str, Any]:
        raise NotImplementedError
