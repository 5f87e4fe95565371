"""deploy/slack/manifest.yaml asks for exactly what the door uses."""

from __future__ import annotations

import re
from pathlib import Path

from adapters.slack import EVENTS_PATH
from adapters.slack.envelope import SUBSCRIBED

MANIFEST = (Path(__file__).parents[3] / "deploy" / "slack" / "manifest.yaml").read_text(encoding="utf-8")


def items(section: str) -> set[str]:
    """The ``- item`` lines right under ``section:`` (a tiny YAML reader, enough for this file)."""
    block = re.search(rf"^(\s*){section}:\n((?:\1\s+- .*\n)+)", MANIFEST, re.MULTILINE)
    assert block, section
    return {line.strip()[2:] for line in block.group(2).splitlines()}


def test_events_are_the_ones_the_door_listens_to() -> None:
    events = items("bot_events")
    assert {e.split(".")[0] for e in events} == SUBSCRIBED
    assert events == SUBSCRIBED - {"message"} | {"message.channels", "message.groups", "message.im"}


def test_scopes_are_exactly_the_used_ones() -> None:
    assert items("bot") == {
        "app_mentions:read",
        "assistant:write",
        "channels:history",
        "chat:write",
        "commands",
        "groups:history",
        "im:history",
        "users:read",
    }


def test_every_request_url_is_the_events_route() -> None:
    urls = re.findall(r"^\s*(?:request_url|url): (\S+)$", MANIFEST, re.MULTILINE)
    assert len(urls) == 2 and all(u.endswith(EVENTS_PATH) for u in urls)
    assert "command: /dari" in MANIFEST and "assistant_view:" in MANIFEST
    assert re.search(r"^\s*is_enabled: false$", MANIFEST, re.MULTILINE)  # no interactivity handler
