"""The Slack door through the whole service: create_app, real signed HTTP, the real openai client,
the Redis store, and a Slack Web API stand-in on loopback."""

from __future__ import annotations

import copy
import hashlib
import hmac
import json
import time
from pathlib import Path
from typing import Any

import aiohttp
from pydantic import SecretStr

from adapters.runtime import TASKS
from tests.support.openai_server import FakeOpenAI
from tests.support.service import IsolatedSettings, Service, redis_prefix, run_service
from tests.support.slack_api import slack_api

PAYLOADS = Path(__file__).resolve().parents[1] / "adapters" / "slack" / "payloads"
SECRET = "e2e-signing-secret-0123456789abcdef"


def load(name: str) -> dict[str, Any]:
    body: dict[str, Any] = json.loads((PAYLOADS / name).read_text(encoding="utf-8"))
    return copy.deepcopy(body)


async def post(
    http: aiohttp.ClientSession,
    service: Service,
    body: dict[str, Any],
    *,
    secret: str = SECRET,
    age: int = 0,
    headers: dict[str, str] | None = None,
) -> tuple[int, float]:
    raw = json.dumps(body).encode()
    ts = str(int(time.time()) - age)
    digest = hmac.new(secret.encode(), b"v0:" + ts.encode() + b":" + raw, hashlib.sha256).hexdigest()
    sent = {
        "Content-Type": "application/json",
        "X-Slack-Request-Timestamp": ts,
        "X-Slack-Signature": "v0=" + digest,
        **(headers or {}),
    }
    started = time.monotonic()
    async with http.post(service.url + "/slack/events", data=raw, headers=sent) as response:
        await response.read()
        return response.status, time.monotonic() - started


async def test_a_mention_is_answered_once_in_its_thread(
    fake_openai: FakeOpenAI, tmp_path: Path, redis_url: str
) -> None:
    fake_openai.answer = "**연차**는 입사 1년 뒤부터 15일이에요."
    fake_openai.response_delay = 1.0  # slower than an ack may take
    async with slack_api() as api, redis_prefix(redis_url) as prefix:
        settings = IsolatedSettings(
            redis_prefix=prefix,
            openai_base_url=fake_openai.base_url,
            llm_max_retries=0,
            redis_url=redis_url,
            data_dir=tmp_path,
            slack_bot_token=SecretStr("xoxb-e2e"),
            slack_signing_secret=SecretStr(SECRET),
            slack_api_url=api.url,
        )
        mention = load("slack_event_app_mention_bolt.json")
        mention["event_id"] = f"Ev{time.time_ns()}"
        mention["event"]["ts"] = mention["event"]["event_ts"] = f"{time.time():.6f}"
        mention["event"]["text"] = "<@W111> 연차는 며칠이에요? 제 번호는 010-2222-3333이에요"
        thread = mention["event"]["ts"]
        async with aiohttp.ClientSession() as http, run_service(settings) as service:
            status, took = await post(http, service, mention)
            assert status == 200
            assert took < 3.0
            # Slack's retry of the same event, and the same message again as message.channels
            retry = {"X-Slack-Retry-Num": "1", "X-Slack-Retry-Reason": "http_timeout"}
            assert (await post(http, service, mention, headers=retry))[0] == 200
            echo = copy.deepcopy(mention)
            echo["event_id"] = f"Ev{time.time_ns()}"
            echo["event"]["type"] = "message"
            echo["event"]["channel_type"] = "channel"
            assert (await post(http, service, echo))[0] == 200
            # the bot's own message coming back
            own = load("slack_event_bot_message_self.json")
            own["event_id"] = f"Ev{time.time_ns()}"
            assert (await post(http, service, own))[0] == 200
            # a bad signature and a stale timestamp
            assert (await post(http, service, mention, secret="wrong"))[0] == 401
            assert (await post(http, service, mention, age=301))[0] == 401
            # malformed but signed
            for bad in ({"type": "event_callback"}, {"type": "event_callback", "event": "x"}):
                assert (await post(http, service, bad))[0] in (400, 404)
            await service.app[TASKS].join()
        replies = api.thread("C111", thread)
    assert len(fake_openai.requests) == 1
    assert len(replies) == 1
    assert "연차" in replies[0].text
    sent = json.dumps(fake_openai.requests, ensure_ascii=False)
    assert "010-2222-3333" not in sent
    assert "[전화번호]" in sent
