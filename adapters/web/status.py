"""Which doors are open, computed from settings alone (pure), for the console's status panel."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from adapters.settings import Settings
from adapters.web.messages import DOOR_DETAIL

__all__ = ["Door", "DoorState", "doors"]

DoorState = Literal["on", "open", "off", "local"]


@dataclass(frozen=True, slots=True)
class Door:
    """One door as the status panel shows it.

    Attributes:
        id: "kakao", "slack", "teams" or "web".
        name: the name users know it by.
        state: "on" (working and protected), "open" (working, unprotected), "off", or
            "local" (working for this machine or local tests only).
        detail: one Korean sentence.
    """

    id: str
    name: str
    state: DoorState
    detail: str

    def as_json(self) -> dict[str, str]:
        return {"id": self.id, "name": self.name, "state": self.state, "detail": self.detail}


def doors(settings: Settings) -> list[Door]:
    """Every door's configuration state, in the order the panel lists them."""
    kakao: DoorState = "on" if settings.kakao_skill_secret is not None else "open"
    if not settings.slack_enabled:
        slack: tuple[DoorState, str] = ("off", DOOR_DETAIL["slack"]["off"])
    elif settings.slack_app_token is not None:
        slack = ("on", DOOR_DETAIL["slack"]["socket"])
    else:
        slack = ("on", DOOR_DETAIL["slack"]["on"])
    teams: DoorState = "on" if settings.microsoft_app_id else "local"
    web: DoorState = "on" if settings.console_token is not None else "local"
    return [
        Door("kakao", "카카오톡", kakao, DOOR_DETAIL["kakao"][kakao]),
        Door("slack", "Slack", *slack),
        Door("teams", "Microsoft Teams", teams, DOOR_DETAIL["teams"][teams]),
        Door("web", "웹 콘솔", web, DOOR_DETAIL["web"][web]),
    ]
