"""Drivers that ask one question through one door and time the answer, as the platform would see it.

- floor: ``POST /ask``; the answer is the HTTP response.
- kakao: ``POST /kakao/skill`` with skill JSON; the answer is the inline response, or the POST to
  the callback URL when the request carried one and dari answered ``useCallback``.
- slack: a signed ``app_mention`` to ``POST /slack/events``; the answer is complete when
  ``chat.stopStream`` reaches the Web API stand-in (first visible text: the first streamed text).
- teams: a personal message activity to ``POST /api/messages`` in local mode; the answer is
  complete when the final message reaches the connector stand-in (first visible text: the first
  ``streaming`` typing activity with text, or the final message).
"""

from __future__ import annotations

import asyncio
import copy
import hashlib
import hmac
import itertools
import json
import time
from dataclasses import dataclass
from typing import Any, Protocol

import aiohttp

from bench.common import ROOT
from bench.llm import MARKER
from bench.standins import Arrival, StandIns

__all__ = ["DRIVERS", "Driver", "Outcome", "make_driver", "message_text"]

PAYLOADS = ROOT / "tests" / "adapters"
SLACK_SECRET = "bench-signing-secret-0123456789abcdef"
SLACK_TOKEN = "xoxb-bench"

# What people ask; every other message carries an identifier for the PII masking to catch.
_QUESTIONS = (
    "연차 신청은 어떻게 하나요? 급하면 010-2345-6789로 연락 주세요.",
    "다음 주 회의록 요약 부탁드려요. 참석자는 기획팀 김민수 님과 재무팀 이지은 님이에요.",
    "이 메일을 영어로 번역해 주세요: 견적서를 검토한 뒤 회신드리겠습니다. 제 메일은 minsu.kim@example.co.kr",
    "출장비 정산은 언제까지 올려야 하나요?",
    "법인카드 5310-1234-5678-9012 분실 신고는 어디에 하나요?",
    "신입 사원 온보딩 일정표 초안을 만들어 주세요.",
    "제 주민등록번호 900101-1234567 을 인사 기록에서 고치려면 어떻게 하나요?",
    "보안 교육은 이번 달 말까지 들어야 하나요?",
)


def message_text(n: int, tag: str = "") -> str:
    """The n-th question, with a correlation tag when one is given."""
    text = _QUESTIONS[n % len(_QUESTIONS)]
    return f"{text} ({tag})" if tag else text


@dataclass(frozen=True, slots=True)
class Outcome:
    """One question's fate.

    Attributes:
        status: "answer", "fallback" (Kakao's "still working" without the answer), or "error:<why>".
        started: ``time.monotonic()`` when the request was sent.
        finished: when the answer was complete (or the failure was known).
        visible: when the first answer text became visible, if known.
        responded: when the HTTP response to the platform's request arrived.
        via: how the answer came ("inline", "callback", "stream", "http").
    """

    status: str
    started: float
    finished: float
    visible: float | None = None
    responded: float | None = None
    via: str = ""

    @property
    def latency(self) -> float:
        return self.finished - self.started


class Driver(Protocol):
    name: str

    async def ask(self, conv: str, turn: int, text: str) -> Outcome: ...


async def _wait(arrival: Arrival, timeout: float) -> float | None:
    try:
        return await asyncio.wait_for(asyncio.shield(arrival.done), timeout)
    except TimeoutError:
        return None


class Floor:
    name = "floor"

    def __init__(self, http: aiohttp.ClientSession, url: str, *, timeout: float) -> None:
        self._http, self._url, self._timeout = http, url, timeout

    async def ask(self, conv: str, turn: int, text: str) -> Outcome:
        started = time.monotonic()
        try:
            async with self._http.post(f"{self._url}/ask", json={"text": text}) as response:
                status, raw = response.status, await response.read()
        except (aiohttp.ClientError, TimeoutError) as error:
            return Outcome(f"error:{type(error).__name__}", started, time.monotonic())
        now = time.monotonic()
        if status != 200:
            return Outcome(f"error:http{status}", started, now)
        ok = MARKER in json.loads(raw).get("text", "")
        return Outcome("answer" if ok else "error:no answer", started, now, now, now, "http")


def _kakao_template() -> dict[str, Any]:
    path = PAYLOADS / "kakao" / "payloads" / "skill_request_basic.json"
    body: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    body["bot"] = {"id": "bench-bot", "name": "다리 벤치"}
    return body


def _skill_texts(body: dict[str, Any]) -> list[str]:
    outputs = (body.get("template") or {}).get("outputs") or []
    return [str(o.get("simpleText", {}).get("text", "")) for o in outputs if isinstance(o, dict)]


class Kakao:
    name = "kakao"

    def __init__(
        self,
        http: aiohttp.ClientSession,
        url: str,
        *,
        timeout: float,
        standins: StandIns | None = None,
        callback: bool = False,
        callback_timeout: float = 60.0,
    ) -> None:
        self._http, self._url, self._timeout = http, url, timeout
        self._standins = standins
        self._callback = callback
        self._callback_timeout = callback_timeout
        self._template = _kakao_template()
        self._ids = itertools.count(1)
        self.last_texts: list[str] = []  # the simpleText outputs of the last inline response

    async def ask(self, conv: str, turn: int, text: str) -> Outcome:
        self.last_texts = []
        body = copy.deepcopy(self._template)
        request = body["userRequest"]
        request["utterance"] = text
        request["user"]["id"] = f"bench-{conv}"
        request["user"]["properties"] = {"plusfriendUserKey": f"pf-{conv}"}
        arrival: Arrival | None = None
        token = ""
        if self._callback and self._standins is not None:
            token = f"cb{next(self._ids)}-{conv}"
            arrival = self._standins.arrivals.expect(token)
            request["callbackUrl"] = f"{self._standins.callback_url}/{token}"
        raw_body = json.dumps(body, ensure_ascii=False).encode()
        headers = {"Content-Type": "application/json"}
        started = time.monotonic()
        try:
            async with self._http.post(
                f"{self._url}/kakao/skill", data=raw_body, headers=headers
            ) as response:
                status, raw = response.status, await response.read()
            responded = time.monotonic()
            answer = json.loads(raw) if status == 200 else {}
            if status == 200 and answer.get("useCallback") and arrival is not None:
                done = await _wait(arrival, self._callback_timeout)
                if done is None:
                    return Outcome("error:no callback", started, time.monotonic(), responded=responded)
                texts = _skill_texts(arrival.body or {})
                ok = bool(texts) and MARKER in texts[-1]
                return Outcome("answer" if ok else "fallback", started, done, done, responded, "callback")
        except (aiohttp.ClientError, TimeoutError) as error:
            return Outcome(f"error:{type(error).__name__}", started, time.monotonic())
        finally:
            if token and self._standins is not None:
                self._standins.arrivals.forget(token)
        if status != 200:
            return Outcome(f"error:http{status}", started, responded, responded=responded)
        texts = self.last_texts = _skill_texts(answer)
        ok = bool(texts) and MARKER in texts[-1]
        return Outcome("answer" if ok else "fallback", started, responded, responded, responded, "inline")


def slack_signature(secret: str, timestamp: str, raw: bytes) -> str:
    base = b"v0:" + timestamp.encode() + b":" + raw
    return "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()


class Slack:
    name = "slack"

    def __init__(self, http: aiohttp.ClientSession, url: str, *, timeout: float, standins: StandIns) -> None:
        self._http, self._url, self._timeout = http, url, timeout
        self._standins = standins
        self._threads: dict[str, str] = {}
        self._ids = itertools.count(1)

    async def ask(self, conv: str, turn: int, text: str) -> Outcome:
        n = next(self._ids)
        ts = f"{1_800_000_000 + n}.{n % 1_000_000:06d}"
        channel = f"CB{conv.upper().replace('-', 'X')}"
        if turn == 0 or conv not in self._threads:
            self._threads[conv] = ts
        thread = self._threads[conv]
        event: dict[str, Any] = {
            "type": "app_mention",
            "text": f"<@W111> {text}",
            "user": f"UB{n % 1000}",
            "ts": ts,
            "team": "T111",
            "channel": channel,
            "event_ts": ts,
        }
        if thread != ts:
            event["thread_ts"] = thread
        body = {
            "token": "verification_token",
            "team_id": "T111",
            "api_app_id": "A111",
            "event": event,
            "type": "event_callback",
            "event_id": f"EvB{n}{conv}",
            "event_time": int(time.time()),
            "authed_users": ["W111"],
        }
        key = f"{channel}/{thread}"
        arrival = self._standins.arrivals.expect(key)
        raw = json.dumps(body, ensure_ascii=False).encode()
        stamp = str(int(time.time()))
        headers = {
            "Content-Type": "application/json",
            "X-Slack-Request-Timestamp": stamp,
            "X-Slack-Signature": slack_signature(SLACK_SECRET, stamp, raw),
        }
        started = time.monotonic()
        try:
            async with self._http.post(f"{self._url}/slack/events", data=raw, headers=headers) as response:
                status = response.status
                await response.read()
            responded = time.monotonic()
            if status != 200:
                return Outcome(f"error:http{status}", started, responded, responded=responded)
            done = await _wait(arrival, self._timeout)
        except (aiohttp.ClientError, TimeoutError) as error:
            return Outcome(f"error:{type(error).__name__}", started, time.monotonic())
        finally:
            self._standins.arrivals.forget(key)
        if done is None:
            return Outcome("error:no answer", started, time.monotonic(), responded=responded)
        return Outcome("answer", started, done, arrival.visible, responded, "stream")


def _teams_template() -> dict[str, Any]:
    path = PAYLOADS / "teams" / "payloads" / "personal_message.json"
    body: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    body.pop("attachments", None)
    body["textFormat"] = "plain"
    body["locale"] = "ko-KR"
    return body


class Teams:
    name = "teams"

    def __init__(self, http: aiohttp.ClientSession, url: str, *, timeout: float, standins: StandIns) -> None:
        self._http, self._url, self._timeout = http, url, timeout
        self._standins = standins
        self._template = _teams_template()
        self._ids = itertools.count(1)

    async def ask(self, conv: str, turn: int, text: str) -> Outcome:
        activity = copy.deepcopy(self._template)
        activity_id = f"{1_700_000_000_000 + next(self._ids)}{conv}"
        activity.update(
            id=activity_id,
            text=text,
            serviceUrl=self._standins.service_url,
            timestamp=time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime()),
        )
        activity["conversation"] = {"conversationType": "personal", "id": f"a:bench-{conv}"}
        activity["from"] = {"id": f"29:bench-{conv}", "name": "김벤치", "aadObjectId": f"aad-{conv}"}
        arrival = self._standins.arrivals.expect(activity_id)
        started = time.monotonic()
        try:
            async with self._http.post(f"{self._url}/api/messages", json=activity) as response:
                status = response.status
                await response.read()
            responded = time.monotonic()
            if status != 200:
                return Outcome(f"error:http{status}", started, responded, responded=responded)
            done = await _wait(arrival, self._timeout)
        except (aiohttp.ClientError, TimeoutError) as error:
            return Outcome(f"error:{type(error).__name__}", started, time.monotonic())
        finally:
            self._standins.arrivals.forget(activity_id)
        if done is None:
            return Outcome("error:no answer", started, time.monotonic(), responded=responded)
        final = str((arrival.body or {}).get("text", ""))
        ok = MARKER in final
        return Outcome(
            "answer" if ok else "error:no answer", started, done, arrival.visible, responded, "stream"
        )


DRIVERS = ("floor", "kakao", "slack", "teams")


def make_driver(
    door: str,
    http: aiohttp.ClientSession,
    url: str,
    *,
    timeout: float,
    standins: StandIns | None,
    callback: bool = False,
) -> Driver:
    if door == "floor":
        return Floor(http, url, timeout=timeout)
    if door == "kakao":
        return Kakao(http, url, timeout=timeout, standins=standins, callback=callback)
    if standins is None:
        raise ValueError(f"the {door} door needs the platform stand-ins")
    if door == "slack":
        return Slack(http, url, timeout=timeout, standins=standins)
    if door == "teams":
        return Teams(http, url, timeout=timeout, standins=standins)
    raise ValueError(f"unknown door {door!r}")
