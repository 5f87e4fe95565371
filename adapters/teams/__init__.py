"""The Teams door (placeholder until the door lands)."""

from __future__ import annotations

from aiohttp import web

from adapters.settings import Settings

__all__ = ["setup"]


def setup(app: web.Application, settings: Settings) -> str:
    return "off (not implemented yet)"
