"""Fault and soak: many messages through two processes while the LLM, a process and Redis fail.

``messages`` messages over ``conversations`` conversations (full: 10,000 over 500) go through the
HTTP doors of two ``dari serve`` processes sharing one private Redis (append-only file, so a
restart keeps what was written), with a short job lease: Slack threads through the signed Events
API door, and optionally every n-th conversation a Teams personal chat (``teams_every``) or a
KakaoTalk user whose skill requests carry a callback URL (``kakao_every``). Each conversation sends its
messages one after another, the next once the previous was acknowledged and at most ``window``
are unanswered, alternating between the processes (so order must hold across them). Meanwhile:

- the stand-in LLM answers a fraction of requests with 429 (``Retry-After: 1``), with 500, or
  too slowly (beyond the client's timeout); its answer names the question ("answer to c7n3");
- one process is SIGKILLed mid-run (with answers in flight) and started again;
- Redis is SIGKILLed and started again on the same port.

Then, from the platform stand-ins' records (every Slack post and edit, every Teams activity, every
Kakao skill response and callback), per conversation: every message got exactly one final message
(its answer, or a polite apology), and the answers appear in send order. Kakao never redelivers:
a skill request that failed (its process was killed) may go unanswered, and is counted apart;
an answer Kakao could not take any more is given with the user's next message, so each Kakao
user writes once more at the end. Everything runs on 127.0.0.1; the stand-ins and the load run
in this process.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import hashlib
import hmac
import itertools
import json
import random
import re
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from redis.asyncio import Redis

from bench.common import ROOT, Layout, fmt, table
from tests.support.botframework import BotConnector, stream_info
from tests.support.openai_server import Failure, FakeOpenAI
from tests.support.processes import DariProcess, clean_env, poll
from tests.support.redis_server import RedisServer
from tests.support.service import CallbackReceiver
from tests.support.slack_api import Message, SlackAPI

__all__ = ["Plan", "report", "run", "soak"]

SECRET = "soak-signing-secret-0123456789abcdef"
PAYLOAD = ROOT / "tests" / "adapters" / "slack" / "payloads" / "slack_event_app_mention_bolt.json"
TEAMS_PAYLOAD = ROOT / "tests" / "adapters" / "teams" / "payloads" / "personal_message.json"
KAKAO_PAYLOAD = ROOT / "tests" / "adapters" / "kakao" / "payloads" / "skill_request_callback.json"
KAKAO_LAST = "도움말"  # each Kakao user's closing message: a command, so no LLM call and no apology
APOLOGY = "죄송"
QUESTION = re.compile(r"c\d+n\d+")


@dataclass(frozen=True, slots=True)
class Plan:
    """What one soak run does. Fault rates are fractions of LLM requests."""

    messages: int = 10_000
    conversations: int = 500
    window: int = 3
    rate_429: float = 0.02
    rate_500: float = 0.02
    rate_slow: float = 0.005
    llm_timeout: float = 2.0
    slow_seconds: float = 4.0
    llm_retries: int = 1
    lease: float = 5.0
    kill_at: float = 0.3
    redis_restart_at: float = 0.6
    settle_timeout: float = 180.0
    seed: int = 6
    # Every n-th conversation is a Teams personal chat, every m-th (of the others) a KakaoTalk
    # user (0: none; with both 0, all are Slack threads).
    teams_every: int = 0
    kakao_every: int = 0


class FaultyLLM(FakeOpenAI):
    """FakeOpenAI that fails a random fraction of chat requests: 429, 500, or too slow to wait for."""

    def __init__(self, plan: Plan) -> None:
        super().__init__(answer=_answer, chunk_chars=64)
        self.plan = plan
        self.injected: Counter[str] = Counter()
        self._random = random.Random(plan.seed)

    async def _receive(self, request: web.Request, *, body: dict[str, Any] | None) -> web.Response | None:
        if body is not None:
            draw = self._random.random()
            plan = self.plan
            if draw < plan.rate_429:
                self.injected["llm_429"] += 1
                failure = Failure(429, retry_after="1")
                return web.json_response(failure.body(), status=429, headers=failure.headers())
            if draw < plan.rate_429 + plan.rate_500:
                self.injected["llm_500"] += 1
                failure = Failure(500)
                return web.json_response(failure.body(), status=500)
            if draw < plan.rate_429 + plan.rate_500 + plan.rate_slow:
                self.injected["llm_slow"] += 1
                await asyncio.sleep(plan.slow_seconds)  # the fault itself: longer than the client waits
        return await super()._receive(request, body=body)


def _answer(messages: list[dict[str, Any]]) -> str:
    found = QUESTION.findall(str(messages[-1].get("content", "")))
    return f"answer to {found[-1]}" if found else "answer to nothing"


class SoakSlack(SlackAPI):
    """The Slack stand-in, with the bot's messages indexed by thread and a wake-up per thread."""

    def __init__(self) -> None:
        super().__init__()
        self.users["W222"] = {"id": "W222", "name": "soak", "real_name": "Soak Tester", "tz": "Asia/Seoul"}
        self.by_thread: dict[tuple[str, str], list[Message]] = {}
        self._threads: dict[tuple[str, str], asyncio.Condition] = {}

    def _new_message(self, params: dict[str, Any], text: str, *, streamed: bool) -> Message:
        message = SlackAPI._new_message(self, params, text, streamed=streamed)
        self.by_thread.setdefault((message.channel, message.thread_ts), []).append(message)
        return message

    def finished(self, key: tuple[str, str]) -> int:
        return sum(not m.streaming for m in self.by_thread.get(key, ()))

    def condition(self, key: tuple[str, str]) -> asyncio.Condition:
        return self._threads.setdefault(key, asyncio.Condition())

    async def _record(self, method: str, params: dict[str, Any], status: int) -> None:
        await SlackAPI._record(self, method, params, status)
        found = self.messages.get(str(params.get("ts", "")))
        if found is not None:
            key = (found.channel, found.thread_ts)
        else:
            key = (str(params.get("channel", "")), str(params.get("thread_ts") or ""))
        if key in self._threads:
            async with self._threads[key]:
                self._threads[key].notify_all()


class SoakConnector(BotConnector):
    """The Bot Connector stand-in, with the bot's messages (finished answers: a stream's final
    message or a plain one) indexed by conversation and a wake-up per conversation."""

    def __init__(self) -> None:
        super().__init__()
        self.finals: dict[str, list[str]] = {}
        # For a failure's example: (type, stream type, stream id, end of the text, status).
        self.activities: dict[str, list[tuple[str, str, str, str, int]]] = {}
        self._conversations: dict[str, asyncio.Condition] = {}

    def finished(self, conversation: str) -> int:
        return len(self.finals.get(conversation, ()))

    def condition(self, conversation: str) -> asyncio.Condition:
        return self._conversations.setdefault(conversation, asyncio.Condition())

    async def _activity(self, request: web.Request) -> web.Response:
        response = await BotConnector._activity(self, request)
        body = await request.json()  # read again from aiohttp's cache
        info = stream_info(body) or {}
        self.activities.setdefault(request.match_info["conversation"], []).append(
            (
                str(body.get("type")),
                str(info.get("streamType", "")),
                str(info.get("streamId") or json.loads(response.text or "{}").get("id", "")),
                str(body.get("text") or "")[-24:],
                response.status,
            )
        )
        if response.status < 300 and body.get("type") == "message":
            conversation = request.match_info["conversation"]
            self.finals.setdefault(conversation, []).append(str(body.get("text") or ""))
            if conversation in self._conversations:
                async with self._conversations[conversation]:
                    self._conversations[conversation].notify_all()
        return response


class SoakKakao(CallbackReceiver):
    """Kakao's side: what each user was shown, inline (the skill response) or by callback, one
    entry per answer (kept answers come joined, after an intro line), with a wake-up per user.

    Its callback URLs behave like Kakao's: one per skill request (``<user>~<n>``), usable once,
    and only when that request was answered with ``useCallback`` (Kakao stopped waiting for a
    request that failed or was answered inline, and answers FAIL, as its guide documents).
    """

    REFUSED = "The skill server settings are incorrect. Use callback true setting required."
    USED = "Invalid callback token. Check your callback token."

    def __init__(self) -> None:
        super().__init__()
        self.shown: dict[str, list[str]] = {}
        self.via: dict[str, list[str]] = {}  # for each answer shown: the request it came with
        self.refused = 0
        self._users: dict[str, asyncio.Condition] = {}
        self._outcomes: dict[str, asyncio.Future[bool]] = {}  # token -> answered with useCallback
        self._used: set[str] = set()

    def finished(self, user: str) -> int:
        return len(self.shown.get(user, ()))

    def condition(self, user: str) -> asyncio.Condition:
        return self._users.setdefault(user, asyncio.Condition())

    def _outcome(self, token: str) -> asyncio.Future[bool]:
        if token not in self._outcomes:
            self._outcomes[token] = asyncio.get_running_loop().create_future()
        return self._outcomes[token]

    def settle(self, token: str, *, waiting: bool) -> None:
        """How the skill request of ``token`` ended: ``waiting`` when answered with useCallback."""
        if not self._outcome(token).done():
            self._outcome(token).set_result(waiting)

    async def show(self, user: str, response: Mapping[str, Any], *, via: str) -> None:
        """Record what a skill response or callback body shows ``user``; ``via`` says which (for
        the examples of a failed run)."""
        for output in (response.get("template") or {}).get("outputs") or []:
            text = str((output.get("simpleText") or {}).get("text") or "")
            for part in text.split("\n\n"):
                if QUESTION.search(part) or APOLOGY in part:
                    self.shown.setdefault(user, []).append(part)
                    self.via.setdefault(user, []).append(via)
        async with self.condition(user):
            self.condition(user).notify_all()

    async def _handle(self, request: web.Request) -> web.Response:
        token = request.match_info["token"]
        body = await request.json()
        try:
            # The callback may come a moment before the load has read the request's ack.
            waiting = await asyncio.wait_for(asyncio.shield(self._outcome(token)), timeout=40)
        except TimeoutError:
            waiting = False
        message = "" if waiting and token not in self._used else self.USED if waiting else self.REFUSED
        if message:
            self.refused += 1
            return web.json_response({"taskId": str(uuid.uuid4()), "status": "FAIL", "message": message})
        self._used.add(token)
        self.bodies.append(body)
        await self.show(token.split("~")[0], body, via=f"callback {token}")
        return web.json_response({"taskId": str(uuid.uuid4()), "status": "SUCCESS", "message": ""})


@dataclass(slots=True)
class State:
    """The run as it goes: the processes' slots, what was sent, the faults so far."""

    processes: list[DariProcess | None]
    every: list[DariProcess]
    sent: list[list[str]]
    # Kakao questions whose skill request failed after it reached a process (Kakao does not
    # send them again): answered once or not at all.
    failed: list[set[str]] = field(default_factory=list)
    acked: int = 0
    retries: int = 0
    stalls: int = 0
    faults: Counter[str] = field(default_factory=Counter)
    kill_now: asyncio.Event = field(default_factory=asyncio.Event)
    restart_redis_now: asyncio.Event = field(default_factory=asyncio.Event)


def _mention(template: dict[str, Any], *, channel: str, root: str, ts: str, question: str) -> bytes:
    body = copy.deepcopy(template)
    body["event_id"] = f"Ev{uuid.uuid4().hex}"
    body["event"].update(
        text=f"<@W111> 질문 {question}",
        ts=ts,
        event_ts=ts,
        channel=channel,
        thread_ts=root,
        client_msg_id=str(uuid.uuid4()),
    )
    return json.dumps(body).encode()


def _teams_activity(template: dict[str, Any], *, conversation: str, question: str, service_url: str) -> bytes:
    body = copy.deepcopy(template)
    body.update(
        id=uuid.uuid4().hex,
        text=f"질문 {question}",
        serviceUrl=service_url,
        attachments=[],
        timestamp=time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime()),
    )
    body["conversation"]["id"] = conversation
    body["from"]["id"] = f"29:{conversation}"
    return json.dumps(body).encode()


def _json_headers(raw: bytes) -> dict[str, str]:
    return {"Content-Type": "application/json"}


def _headers(raw: bytes) -> dict[str, str]:
    stamp = str(int(time.time()))
    digest = hmac.new(SECRET.encode(), b"v0:" + stamp.encode() + b":" + raw, hashlib.sha256).hexdigest()
    return {
        "Content-Type": "application/json",
        "X-Slack-Request-Timestamp": stamp,
        "X-Slack-Signature": "v0=" + digest,
    }


async def _deliver(
    http: aiohttp.ClientSession,
    state: State,
    raw: bytes,
    first: int,
    *,
    path: str = "/slack/events",
    headers: Callable[[bytes], dict[str, str]] = _headers,
) -> None:
    """Send one event until a process acknowledges it (the same event again after a failure, as
    Slack and the Bot Framework retry); the other process is tried next."""
    for attempt in range(600):
        process = state.processes[(first + attempt) % len(state.processes)]
        if process is not None:
            try:
                async with http.post(process.url + path, data=raw, headers=headers(raw)) as response:
                    await response.read()
                    if 200 <= response.status < 300:
                        return
            except (aiohttp.ClientError, TimeoutError):
                pass
        state.retries += 1
        if attempt % len(state.processes) == len(state.processes) - 1:
            await asyncio.sleep(0.05)  # back-off before the next round of retries, as Slack would
    raise RuntimeError("no process acknowledged an event for 15 s")


@dataclass(slots=True)
class Doors:
    """The platforms' stand-ins and what each conversation's messages look like: most are Slack
    threads, every ``teams_every``-th is a Teams personal chat, every ``kakao_every``-th of the
    rest a KakaoTalk user."""

    slack: SoakSlack
    teams: SoakConnector
    kakao: SoakKakao
    slack_template: dict[str, Any]
    teams_template: dict[str, Any]
    kakao_template: dict[str, Any]
    teams_every: int
    kakao_every: int

    def door(self, number: int) -> str:
        if self.teams_every > 0 and number % self.teams_every == self.teams_every - 1:
            return "teams"
        if self.kakao_every > 0 and number % self.kakao_every == self.kakao_every // 2:
            return "kakao"
        return "slack"

    def is_teams(self, number: int) -> bool:
        return self.door(number) == "teams"

    @staticmethod
    def thread(number: int) -> tuple[str, str]:
        return f"CS{number:04d}", f"{1_600_000_000 + number}.000000"

    @staticmethod
    def chat(number: int) -> str:
        return f"a:soak-{number:04d}"

    @staticmethod
    def user(number: int) -> str:
        return f"soak-kakao-{number:04d}"

    def name(self, number: int) -> str:
        """The conversation as the services' logs name it."""
        door = self.door(number)
        return {"teams": self.chat, "kakao": self.user}.get(door, lambda n: self.thread(n)[0])(number)

    def finished(self, number: int) -> int:
        door = self.door(number)
        if door == "teams":
            return self.teams.finished(self.chat(number))
        if door == "kakao":
            return self.kakao.finished(self.user(number))
        return self.slack.finished(self.thread(number))

    def condition(self, number: int) -> asyncio.Condition:
        door = self.door(number)
        if door == "teams":
            return self.teams.condition(self.chat(number))
        if door == "kakao":
            return self.kakao.condition(self.user(number))
        return self.slack.condition(self.thread(number))

    async def send(
        self, http: aiohttp.ClientSession, state: State, number: int, index: int, question: str
    ) -> None:
        door = self.door(number)
        if door == "teams":
            raw = _teams_activity(
                self.teams_template,
                conversation=self.chat(number),
                question=question,
                service_url=self.teams.service_url,
            )
            await _deliver(http, state, raw, number + index, path="/api/messages", headers=_json_headers)
        elif door == "kakao":
            text = f"질문 {question}" if question != KAKAO_LAST else question
            if not await self._ask_kakao(http, state, number, index, text) and question != KAKAO_LAST:
                state.failed[number].add(question)
        else:
            channel, root = self.thread(number)
            ts = root if index == 0 else f"{1_600_000_000 + number}.{index:06d}"
            raw = _mention(self.slack_template, channel=channel, root=root, ts=ts, question=question)
            await _deliver(http, state, raw, number + index)

    async def _ask_kakao(
        self, http: aiohttp.ClientSession, state: State, number: int, index: int, text: str
    ) -> bool:
        """One skill request, as Kakao sends it: tried on the other process only when it could
        not reach this one (a load balancer does that much), never sent again once it arrived.
        False when it failed after arriving."""
        user = self.user(number)
        token = f"{user}~{index}"
        body = copy.deepcopy(self.kakao_template)
        body["userRequest"].update(utterance=text, callbackUrl=f"{self.kakao.url}/{token}")
        body["userRequest"]["user"]["id"] = user
        try:
            return await self._skill(http, state, body, number + index)
        finally:
            self.kakao.settle(token, waiting=False)  # unless it was answered with useCallback

    async def _skill(
        self, http: aiohttp.ClientSession, state: State, body: dict[str, Any], first: int
    ) -> bool:
        user = str(body["userRequest"]["user"]["id"])
        token = str(body["userRequest"]["callbackUrl"]).rsplit("/", 1)[1]
        for attempt in range(600):
            process = state.processes[(first + attempt) % len(state.processes)]
            if process is None:
                await asyncio.sleep(0.05)
                continue
            try:
                async with http.post(process.url + "/kakao/skill", json=body) as response:
                    if response.status != 200:
                        return False
                    answer = await response.json()
            except aiohttp.ClientConnectorError:
                state.retries += 1
                await asyncio.sleep(0.05)
                continue
            except (aiohttp.ClientError, TimeoutError):
                return False  # it arrived, and the process died with it
            if answer.get("useCallback"):
                self.kakao.settle(token, waiting=True)
            else:
                await self.kakao.show(user, answer, via=f"inline {token}")
            return True
        raise RuntimeError("no process took a skill request for 30 s")

    def posted(self, number: int) -> list[tuple[str, str, bool]]:
        """The bot's messages in a conversation: (id, text, still streaming)."""
        door = self.door(number)
        if door == "teams":
            return [
                (str(i), text, False) for i, text in enumerate(self.teams.finals.get(self.chat(number), []))
            ]
        if door == "kakao":
            user = self.user(number)
            return [
                (f"{i} {via}", text, False)
                for i, (via, text) in enumerate(
                    zip(self.kakao.via.get(user, []), self.kakao.shown.get(user, []), strict=True)
                )
            ]
        return [(m.ts, m.text, m.streaming) for m in self.slack.by_thread.get(self.thread(number), [])]


def _settled(doors: Doors, state: State, number: int) -> int:
    """How many of the conversation's messages need no more waiting for."""
    return doors.finished(number) + len(state.failed[number])


async def _conversation(
    http: aiohttp.ClientSession, doors: Doors, state: State, plan: Plan, number: int, count: int
) -> None:
    cond = doors.condition(number)
    for index in range(count):
        question = f"c{number}n{index}"
        need = index + 1 - plan.window
        if need > 0:
            try:
                async with asyncio.timeout(plan.settle_timeout / 2), cond:
                    await cond.wait_for(lambda need=need: _settled(doors, state, number) >= need)  # type: ignore[misc]
            except TimeoutError:
                state.stalls += 1
        await doors.send(http, state, number, index, question)
        state.sent[number].append(question)
        state.acked += 1
        total = plan.messages
        if state.acked >= plan.kill_at * total:
            state.kill_now.set()
        if state.acked >= plan.redis_restart_at * total:
            state.restart_redis_now.set()


async def _chaos(
    http: aiohttp.ClientSession, state: State, plan: Plan, redis: RedisServer, env: dict[str, str], cwd: Path
) -> None:
    """The process and Redis faults, when the load reaches their points (past 1: never)."""
    if plan.kill_at <= 1:
        await _kill_and_restart(http, state, env, cwd)
    if plan.redis_restart_at <= 1:
        await state.restart_redis_now.wait()
        await redis.stop()
        await redis.start()
        state.faults["redis_restarted"] += 1


async def _kill_and_restart(
    http: aiohttp.ClientSession, state: State, env: dict[str, str], cwd: Path
) -> None:
    await state.kill_now.wait()
    victim = state.processes[0]
    assert victim is not None
    state.processes[0] = None
    victim.kill()
    await victim.wait()
    state.faults["process_killed"] += 1
    replacement = await DariProcess(env, cwd=cwd).start()
    state.every.append(replacement)
    await replacement.wait_until_up(http)
    state.processes[0] = replacement
    state.faults["process_restarted"] += 1


def _save_logs(folder: Path, processes: list[DariProcess]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for number, process in enumerate(processes):
        (folder / f"process-{number}.log").write_text("\n".join(process.lines) + "\n", encoding="utf-8")


def _verify(doors: Doors, state: State) -> dict[str, Any]:
    """Per conversation: one final message per question, answers in send order."""
    answered = apologies = lost = doubled = out_of_order = unfinished = other = unanswered_failed = 0
    never: list[tuple[str, str]] = []  # Kakao requests that failed and were never answered
    examples: list[dict[str, Any]] = []
    for number, questions in enumerate(state.sent):
        messages = doors.posted(number)
        unfinished += sum(streaming for _, _, streaming in messages)
        named: list[str] = []
        sorry = 0
        for _, text, _ in messages:
            found = QUESTION.findall(text)
            if found:
                named.append(found[-1])
            elif APOLOGY in text:
                sorry += 1
            else:
                other += 1
        counts = Counter(named)
        position = {q: i for i, q in enumerate(questions)}
        failed = state.failed[number]
        unanswered = sum(1 for q in questions if not counts[q] and q not in failed)
        silent = sum(1 for q in failed if not counts[q])  # an apology may be the answer of one
        unanswered_failed += silent
        never += [(doors.name(number), q) for q in sorted(failed) if not counts[q]]
        answered += sum(1 for q in questions if counts[q])
        apologies += sorry
        twice = sum(n - 1 for n in counts.values() if n > 1) + max(0, sorry - unanswered - silent)
        twice += sum(n for q, n in counts.items() if q not in position)  # answers to nothing sent
        doubled += twice
        lost += max(0, unanswered - sorry)
        order = [position[q] for q in dict.fromkeys(named) if q in position]
        wrong = sum(1 for a, b in itertools.pairwise(order) if b < a)
        out_of_order += wrong
        if (wrong or twice or unanswered > sorry) and len(examples) < 30:
            # What a reader needs to trace a failure in the services' logs (saved with ``logs``).
            examples.append(
                {
                    "conversation": doors.name(number),
                    "sent": questions,
                    "activities": doors.teams.activities.get(doors.chat(number), [])
                    if doors.is_teams(number)
                    else [],
                    "posted": [
                        (key, text[-24:], "streaming" * streaming or "final")
                        for key, text, streaming in messages
                    ],
                }
            )
    return {
        "answered": answered,
        "apologies": apologies,
        "lost": lost,
        "doubled": doubled,
        "out_of_order": out_of_order,
        "unfinished_messages": unfinished,
        "other_messages": other,
        "kakao_failed_requests": sum(len(f) for f in state.failed),
        "kakao_failed_unanswered": unanswered_failed,
        "kakao_failed_unanswered_examples": never[:30],
        "kakao_callbacks_refused": doors.kakao.refused,
        "examples": examples,
    }


async def soak(plan: Plan, *, workdir: Path | None = None, logs: Path | None = None) -> dict[str, Any]:
    """Run the soak; the counts (see ``_verify``) and the faults injected. With ``logs``, every
    process's stderr is written there (one file per process)."""
    per = [plan.messages // plan.conversations] * plan.conversations
    for extra in range(plan.messages - sum(per)):
        per[extra] += 1
    with tempfile.TemporaryDirectory(prefix="dari-soak-", dir=workdir) as scratch:
        base = Path(scratch)
        (base / "redis").mkdir()
        (base / "data").mkdir()
        api = SoakSlack()
        await api.start()
        teams = await SoakConnector().__aenter__()
        kakao = await SoakKakao().__aenter__()
        doors = Doors(
            slack=api,
            teams=teams,
            kakao=kakao,
            slack_template=json.loads(PAYLOAD.read_text(encoding="utf-8")),
            teams_template=json.loads(TEAMS_PAYLOAD.read_text(encoding="utf-8")),
            kakao_template=json.loads(KAKAO_PAYLOAD.read_text(encoding="utf-8")),
            teams_every=plan.teams_every,
            kakao_every=plan.kakao_every,
        )
        llm = FaultyLLM(plan)
        await llm.start()
        redis = RedisServer(data_dir=base / "redis")
        await redis.start()
        env = clean_env(
            OPENAI_BASE_URL=llm.base_url,
            OPENAI_API_KEY="soak",
            DARI_LLM_MAX_RETRIES=str(plan.llm_retries),
            DARI_LLM_TIMEOUT=str(plan.llm_timeout),
            REDIS_URL=redis.url,
            DARI_REDIS_PREFIX=f"dari-soak-{uuid.uuid4().hex[:8]}",
            DARI_DATA_DIR=str(base / "data"),
            DARI_JOB_LEASE=str(plan.lease),
            DARI_RATE_USER="off",
            DARI_RATE_TENANT="off",
            DARI_LOG_LEVEL="WARNING",
            SLACK_BOT_TOKEN="xoxb-soak",
            SLACK_SIGNING_SECRET=SECRET,
            SLACK_API_URL=api.url,
            DARI_SLACK_STREAMING="true",
            DARI_KAKAO_CALLBACK_DOMAIN="*",  # the callback stand-in is on loopback
        )
        state = State(
            processes=[None, None],
            every=[],
            sent=[[] for _ in range(plan.conversations)],
            failed=[set() for _ in range(plan.conversations)],
        )
        connector = aiohttp.TCPConnector(limit=200)
        started = time.monotonic()
        sent_in = 0.0
        try:
            async with aiohttp.ClientSession(
                connector=connector, timeout=aiohttp.ClientTimeout(total=30)
            ) as http:
                for slot in range(2):
                    process = await DariProcess(env, cwd=base).start()
                    state.processes[slot] = process
                    state.every.append(process)
                    await process.wait_until_up(http)
                started = time.monotonic()
                chaos = asyncio.create_task(_chaos(http, state, plan, redis, env, base))
                await asyncio.gather(
                    *(
                        _conversation(http, doors, state, plan, number, count)
                        for number, count in enumerate(per)
                    )
                )
                sent_in = time.monotonic() - started
                await chaos

                def settled() -> bool:
                    return all(_settled(doors, state, n) >= len(q) for n, q in enumerate(state.sent))

                def settled_but_kept() -> bool:  # Kakao answers kept for the next message aside
                    return all(
                        _settled(doors, state, n) >= len(q) or doors.door(n) == "kakao"
                        for n, q in enumerate(state.sent)
                    )

                with contextlib.suppress(TimeoutError):
                    await poll(settled_but_kept, timeout=plan.settle_timeout)
                client = Redis.from_url(redis.url)
                try:
                    prefix = env["DARI_REDIS_PREFIX"]

                    async def drained() -> bool:
                        return not await client.xlen(f"{prefix}:jobs")

                    with contextlib.suppress(TimeoutError):
                        await poll(drained, timeout=plan.lease * 4 + 30)
                    left = int(await client.xlen(f"{prefix}:jobs"))
                finally:
                    await client.aclose()
                kakao_users = [n for n in range(plan.conversations) if doors.door(n) == "kakao"]
                await asyncio.gather(
                    *(doors.send(http, state, n, len(state.sent[n]), KAKAO_LAST) for n in kakao_users)
                )
                with contextlib.suppress(TimeoutError):
                    await poll(settled, timeout=30)
                answered_in = time.monotonic() - started
                codes = [await p.stop() for p in state.processes if p is not None]
        finally:
            for running in state.every:
                await running.close()
            await redis.stop()
            await llm.close()
            await api.close()
            await teams.__aexit__(None, None, None)
            await kakao.__aexit__(None, None, None)
    counts = _verify(doors, state)
    if logs is not None:
        _save_logs(logs, state.every)
    warnings = Counter(
        str(entry.get("msg", ""))[:80]
        for process in state.every
        for entry in process.logs
        if entry.get("level") in ("warning", "error", "critical")
    )
    faults = dict(state.faults) | dict(llm.injected)
    return {
        "plan": asdict(plan),
        "sent": sum(len(q) for q in state.sent),
        "conversations": plan.conversations,
        "teams_conversations": sum(doors.door(n) == "teams" for n in range(plan.conversations)),
        "kakao_conversations": sum(doors.door(n) == "kakao" for n in range(plan.conversations)),
        **counts,
        "faults": faults,
        "faults_total": sum(faults.values()),
        "llm_requests": len(llm.requests),
        "door_retries": state.retries,
        "window_stalls": state.stalls,
        "jobs_left_in_stream": left,
        "exit_codes": codes,
        "service_warnings": dict(warnings.most_common(30)),
        "send_seconds": round(sent_in, 1),
        "duration_seconds": round(answered_in, 1),
        "throughput": round(sum(len(q) for q in state.sent) / answered_in, 1) if answered_in else 0.0,
    }


def run(layout: Layout, *, quick: bool, options: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Options: ``messages``, ``conversations`` (quick: 400 over 40; full: 10,000 over 500),
    ``teams_every`` and ``kakao_every`` (every n-th conversation through the Teams or the Kakao
    door; default 0), ``lease`` (seconds; default 5)."""
    options = options or {}
    messages, conversations = (400, 40) if quick else (10_000, 500)
    plan = Plan(
        messages=int(options.get("messages", messages)),
        conversations=int(options.get("conversations", conversations)),
        teams_every=int(options.get("teams_every", 0)),
        kakao_every=int(options.get("kakao_every", 0)),
        lease=float(options.get("lease", 5.0)),
    )
    return asyncio.run(soak(plan))


def report(result: Mapping[str, Any]) -> str:
    keys = ("sent", "answered", "apologies", "lost", "doubled", "out_of_order", "unfinished_messages")
    faults = ", ".join(f"{name} {count}" for name, count in sorted(result["faults"].items()))
    lines = [
        table(list(keys), [[result[k] for k in keys]]),
        f"faults injected: {faults}",
        f"{result['conversations']} conversations, {fmt(result['duration_seconds'])} s to the last answer, "
        f"{fmt(result['throughput'])} messages/s; door retries {result['door_retries']}, "
        f"LLM requests {result['llm_requests']}, jobs left {result['jobs_left_in_stream']}, "
        f"exit codes {result['exit_codes']}",
    ]
    return "\n".join(lines)
