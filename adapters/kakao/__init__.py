"""The KakaoTalk door: Kakao i Open Builder skill webhook at POST /kakao/skill."""

from __future__ import annotations

from adapters.kakao.handler import setup

__all__ = ["setup"]
