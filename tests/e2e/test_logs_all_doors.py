"""A whole `dari serve` run through every door, with every secret set and messages full of personal
identifiers: its logs (JSON lines on stderr, at DEBUG) contain none of them."""

from __future__ import annotations

import asyncio
import copy
import json
import os
import signal
import socket
import sys
import time
import urllib.parse
from pathlib import Path
from typing import Any

import aiohttp

from tests.fuzz.harness import slack_headers
from tests.support.botframework import BotConnector
from tests.support.openai_server import FakeOpenAI
from tests.support.slack_api import slack_api

ROOT = Path(__file__).resolve().parents[2]
PAYLOADS = ROOT / "tests" / "adapters"
SECRETS = {
    "OPENAI_API_KEY": "sk-live-all-doors-3c5e7a9b1d",
    "KAKAO_SKILL_SECRET": "kakao-all-doors-8f6e4d2c0b",
    "SLACK_SIGNING_SECRET": "slack-sign-all-doors-1a3c5e7f",
    "SLACK_BOT_TOKEN": "xoxb-all-doors-2b4d6f8a0c",
    "DARI_CONSOLE_TOKEN": "console-all-doors-9e7c5a3b1d",
}
OURS = ("OPENAI", "AZURE", "SLACK", "Microsoft", "MICROSOFT", "REDIS", "DARI", "KAKAO")  # not inherited
IDENTIFIERS = (
    "900101-1234568",  # resident registration number
    "010-9876-5432",  # mobile number
    "4111 1111 1111 1111",  # card number
    "hong.gildong@example.co.kr",  # e-mail address
)
SAID = (
    f"제 주민번호는 {IDENTIFIERS[0]}, 전화는 {IDENTIFIERS[1]}, "
    f"카드는 {IDENTIFIERS[2]}, 메일은 {IDENTIFIERS[3]}이에요. 정리해 주세요."
)


def payload(door: str, name: str) -> dict[str, Any]:
    body: dict[str, Any] = json.loads((PAYLOADS / door / "payloads" / f"{name}.json").read_text("utf-8"))
    return copy.deepcopy(body)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def echo(messages: list[dict[str, Any]]) -> str:
    """The model repeats what it was told: whatever reached it would reach Slack, Teams and Kakao."""
    return "말씀하신 내용: " + str(messages[-1]["content"])


class Stderr:
    """Drains a process's stderr as it is written (a full pipe would stall the server)."""

    def __init__(self, stream: asyncio.StreamReader) -> None:
        self.lines: list[str] = []
        self._task = asyncio.create_task(self._read(stream))

    async def _read(self, stream: asyncio.StreamReader) -> None:
        async for line in stream:
            self.lines.append(line.decode("utf-8", "backslashreplace"))

    async def all(self) -> str:
        await self._task
        return "".join(self.lines)


async def wait_until_up(http: aiohttp.ClientSession, url: str, process: asyncio.subprocess.Process) -> None:
    async with asyncio.timeout(30):
        while process.returncode is None:
            try:
                async with http.get(url + "/healthz") as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientConnectionError:
                await asyncio.sleep(0.05)  # polling a condition: is the port open yet
    raise AssertionError("dari serve exited early")


async def post(
    http: aiohttp.ClientSession, url: str, body: bytes, headers: dict[str, str] | None = None
) -> int:
    sent = {"Content-Type": "application/json", **(headers or {})}
    async with http.post(url, data=body, headers=sent) as response:
        await response.read()
        return response.status


async def test_a_whole_run_through_every_door_logs_no_secret_and_no_identifier(tmp_path: Path) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    async with (
        FakeOpenAI(answer=echo, api_key=SECRETS["OPENAI_API_KEY"]) as openai,
        slack_api(users={"W222": {"id": "W222", "real_name": "홍길동", "profile": {}}}) as slack,
        BotConnector() as connector,
    ):
        env = {key: value for key, value in os.environ.items() if not key.startswith(OURS)}
        env.update(SECRETS)
        env.update(
            OPENAI_BASE_URL=openai.base_url,
            SLACK_API_URL=slack.url,
            DARI_DATA_DIR=str(tmp_path),
            DARI_LOG_LEVEL="DEBUG",
            DARI_SLACK_STREAMING="false",  # one message per answer: fewer paced writes to wait for
        )
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "adapters.cli", "serve", "--host", "127.0.0.1", "--port", str(port),
            cwd=tmp_path, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        assert process.stderr is not None and process.stdout is not None
        stderr = Stderr(process.stderr)
        try:
            async with aiohttp.ClientSession() as http:
                await wait_until_up(http, url, process)
                await run_every_door(http, url, slack_api_calls=slack, connector=connector)
        finally:
            process.send_signal(signal.SIGTERM)
            stdout = await asyncio.wait_for(process.stdout.read(), timeout=30)
            log = await asyncio.wait_for(stderr.all(), timeout=30)
            await asyncio.wait_for(process.wait(), timeout=30)
        sent_to_llm = json.dumps(openai.requests, ensure_ascii=False)

    assert process.returncode == 0, log[-2000:]
    lines = [json.loads(line) for line in log.splitlines() if line.startswith("{")]
    access = {line["msg"] for line in lines if line.get("logger") == "aiohttp.access"}
    for door in ("/kakao/skill", "/slack/events", "/api/messages", "/console/api/chat"):
        assert f"POST {door} 200" in access, (door, sorted(access))
        assert door == "/api/messages" or f"POST {door} 401" in access, (door, sorted(access))
    output = log + stdout.decode("utf-8", "backslashreplace")
    leaked = [value for value in (*SECRETS.values(), *IDENTIFIERS) if value in output]
    assert leaked == []
    # The identifiers were masked before the LLM, so the echoed answers carried placeholders only.
    assert not [value for value in IDENTIFIERS if value in sent_to_llm]
    assert "[전화번호]" in sent_to_llm


async def run_every_door(
    http: aiohttp.ClientSession, url: str, *, slack_api_calls: Any, connector: BotConnector
) -> None:
    """Talk to each door with secrets and identifiers; wait until every answer has gone out."""
    # Kakao: the secret as a header and as a query parameter (the way Kakao's console sends it).
    kakao = json.dumps({"userRequest": {"utterance": SAID, "user": {"id": "kakao-user"}}}).encode()
    secret = SECRETS["KAKAO_SKILL_SECRET"]
    assert await post(http, f"{url}/kakao/skill", kakao, {"X-Dari-Skill-Secret": secret}) == 200
    assert await post(http, f"{url}/kakao/skill?secret={secret}", kakao) == 200
    assert await post(http, f"{url}/kakao/skill?secret={secret[:-1]}", kakao) == 401

    # Slack: a mention, a DM and a slash command, all signed; and one forged request.
    mention = payload("slack", "slack_event_app_mention_bolt")
    mention["event"]["text"] = f"<@W111> {SAID}"
    mention["event"]["ts"] = mention["event"]["event_ts"] = f"{time.time():.6f}"
    dm = payload("slack", "slack_event_message_im_assistant_thread")
    dm["event"].update(text=SAID, ts=f"{time.time() + 1:.6f}")
    dm["event_id"] = "EvDm1"
    signing = SECRETS["SLACK_SIGNING_SECRET"]
    for body in (mention, dm):
        raw = json.dumps(body).encode()
        assert await post(http, f"{url}/slack/events", raw, slack_headers(raw, secret=signing)) == 200
    form_fields = {"team_id": "T111", "channel_id": "C111", "user_id": "W222", "command": "/dari"}
    form_fields.update(text=SAID, response_url=slack_api_calls.response_url, trigger_id="1.2.3")
    command = urllib.parse.urlencode(form_fields).encode()
    form = {"Content-Type": "application/x-www-form-urlencoded", **slack_headers(command, secret=signing)}
    assert await post(http, f"{url}/slack/events", command, form) == 200
    raw = json.dumps(mention).encode()
    assert await post(http, f"{url}/slack/events", raw, slack_headers(raw, secret="forged")) == 401

    # Teams (local mode): a personal message, answered through the Bot Connector stand-in.
    activity = payload("teams", "personal_message")
    activity.update(serviceUrl=connector.service_url, text=SAID)
    assert await post(http, f"{url}/api/messages", json.dumps(activity).encode()) == 200

    # The console: the token as a bearer, a wrong one, and the login form.
    token = SECRETS["DARI_CONSOLE_TOKEN"]
    chat = json.dumps({"text": SAID, "session": "all-doors-session"}).encode()
    assert await post(http, f"{url}/console/api/chat", chat, {"Authorization": f"Bearer {token}"}) == 200
    assert await post(http, f"{url}/console/api/chat", chat, {"Authorization": f"Bearer {token}x"}) == 401
    login = urllib.parse.urlencode({"token": token}).encode()
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    async with http.post(f"{url}/console/login", data=login, headers=form, allow_redirects=False) as response:
        assert response.status == 303

    # Every answer left the service (the mention, the DM and the command's ephemeral; Teams).
    await slack_api_calls.wait_for("chat.postMessage", 2, timeout=20)
    await slack_api_calls.wait_for("chat.postEphemeral", 1, timeout=20)
    await connector.wait_for(1, timeout=20)
