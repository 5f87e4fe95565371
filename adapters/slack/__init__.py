"""The Slack door: channels, threads, DMs and the assistant panel, through slack-bolt.

``setup`` mounts ``POST /slack/events`` (Events API, URL verification and slash commands)
and, when ``SLACK_APP_TOKEN`` is set, also connects over Socket Mode.
"""

from __future__ import annotations

from aiohttp import web

from adapters.settings import Settings
from adapters.slack.answer import DoorOptions
from adapters.slack.handler import SlackDoor

__all__ = ["EVENTS_PATH", "DoorOptions", "setup"]

EVENTS_PATH = "/slack/events"


def setup(app: web.Application, settings: Settings, options: DoorOptions | None = None) -> str:
    """Mount the door when Slack is configured; returns a line for the start-up log.

    Call it after the cleanup context that creates the engine has been appended.
    """
    missing = [
        name
        for name, value in (
            ("SLACK_BOT_TOKEN", settings.slack_bot_token),
            ("SLACK_SIGNING_SECRET", settings.slack_signing_secret),
        )
        if value is None
    ]
    if missing:
        verb = "is" if len(missing) == 1 else "are"
        return f"off: {' and '.join(missing)} {verb} not set"
    options = options or DoorOptions(
        bot=settings.slack_bot,
        streaming=settings.slack_streaming,
        thread_follow_ups=settings.slack_thread_follow_ups,
    )
    door = SlackDoor(settings=settings, options=options)
    app.router.add_post(EVENTS_PATH, door.handle)
    app.cleanup_ctx.append(door.lifetime)
    if door.socket_mode:
        return f"on (Socket Mode; events also at {EVENTS_PATH})"
    return f"on (events at {EVENTS_PATH})"
