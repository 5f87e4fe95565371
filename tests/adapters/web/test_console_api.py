"""The console over real HTTP: pages, the JSON API, the SSE chat stream and the access rules."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from adapters.web.api import MAX_TEXT_CHARS
from adapters.web.guard import COOKIE
from tests.support.openai_server import FakeOpenAI
from tests.support.service import IsolatedSettings, Service, run_service

ANSWER = "네, 회의록을 세 줄로 요약해 드릴게요.\n첫째, 일정이 확정됐어요."
TOKEN = "console-token-7f3a9c2e5b1d4e6f"


def settings(llm: FakeOpenAI, tmp_path: Path, **overrides: Any) -> IsolatedSettings:
    values: dict[str, Any] = {
        "openai_base_url": llm.base_url,
        "data_dir": tmp_path / "data",
        "llm_max_retries": 0,
        **overrides,
    }
    return IsolatedSettings(**values)


@pytest.fixture
async def llm() -> AsyncIterator[FakeOpenAI]:
    async with FakeOpenAI(answer=ANSWER, chunk_chars=4) as server:
        yield server


@pytest.fixture
async def service(llm: FakeOpenAI, tmp_path: Path) -> AsyncIterator[Service]:
    async with run_service(settings(llm, tmp_path)) as running:
        yield running


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


def events(body: str) -> list[tuple[str, dict[str, Any]]]:
    """Server-Sent Events as (name, JSON data) pairs."""
    parsed = []
    for block in body.split("\n\n"):
        if not block.strip():
            continue
        fields = dict(line.split(": ", 1) for line in block.split("\n"))
        parsed.append((fields["event"], json.loads(fields["data"])))
    return parsed


async def chat(http: aiohttp.ClientSession, url: str, text: str, **extra: Any) -> aiohttp.ClientResponse:
    body = {"bot": "default", "text": text, "session": "session-0001", **extra}
    return await http.post(f"{url}/console/api/chat", json=body)


async def test_the_page_and_its_assets_are_served_with_a_strict_policy(
    service: Service, http: aiohttp.ClientSession
) -> None:
    async with http.get(service.url + "/") as response:
        assert response.status == 200
        assert response.content_type == "text/html"
        assert "다리 콘솔" in await response.text()
        policy = response.headers["Content-Security-Policy"]
        assert "script-src 'self'" in policy and "frame-ancestors 'none'" in policy
    for name, kind in [("app.js", "text/javascript"), ("app.css", "text/css")]:
        async with http.get(f"{service.url}/console/static/{name}") as response:
            assert response.status == 200
            assert response.content_type == kind
    async with http.get(service.url + "/console/static/secrets.txt") as response:
        assert response.status == 404
        assert (await response.json())["error"]["code"] == "not_found"


async def test_bots_lists_every_bot_file_default_first(service: Service, http: aiohttp.ClientSession) -> None:
    async with http.get(service.url + "/console/api/bots") as response:
        body = await response.json()
    ids = [bot["id"] for bot in body["bots"]]
    assert ids[0] == "default" and "formal" in ids
    assert body["bots"][0]["name"] == "다리"
    assert body["bots"][0]["greeting"]


async def test_status_reports_readiness_and_doors(service: Service, http: aiohttp.ClientSession) -> None:
    async with http.get(service.url + "/console/api/status") as response:
        body = await response.json()
    assert body["ready"] is True
    assert body["checks"]["store"]["ok"] and body["checks"]["llm"]["ok"]
    states = {door["id"]: door["state"] for door in body["doors"]}
    assert states == {"kakao": "open", "slack": "off", "teams": "local", "web": "local"}


async def test_chat_streams_deltas_then_done_and_remembers_the_session(
    service: Service, http: aiohttp.ClientSession, llm: FakeOpenAI
) -> None:
    async with await chat(http, service.url, "회의록 요약해 줘요") as response:
        assert response.status == 200
        assert response.content_type == "text/event-stream"
        received = events(await response.text())
    deltas = [data["text"] for name, data in received if name == "delta"]
    assert len(deltas) > 1
    assert "".join(deltas) == ANSWER
    assert received[-1] == ("done", {"text": ANSWER})
    async with await chat(http, service.url, "고마워요") as response:
        assert events(await response.text())[-1] == ("done", {"text": ANSWER})
    history = [m["content"] for m in llm.requests[-1]["messages"]]
    assert "회의록 요약해 줘요" in history and ANSWER in history


@pytest.mark.parametrize(
    ("send", "status", "needle"),
    [
        ({"data": "회의록", "headers": {"Content-Type": "text/plain"}}, 415, "JSON"),
        ({"data": "{not json", "headers": {"Content-Type": "application/json"}}, 400, "JSON"),
        ({"json": ["a list"]}, 400, "형식"),
        ({"json": {"bot": "default", "text": "안녕"}}, 400, "session"),
        ({"json": {"bot": "default", "text": "", "session": "session-0001"}}, 400, "text"),
        ({"json": {"bot": "default", "text": "안녕", "session": "../../etc"}}, 400, "session"),
        ({"json": {"bot": "default", "text": "안녕", "session": "session-0001", "x": 1}}, 400, "x"),
        ({"json": {"bot": "nobody", "text": "안녕", "session": "session-0001"}}, 404, "nobody"),
        ({"json": {"bot": "default", "text": "가" * (MAX_TEXT_CHARS + 1), "session": "s-000001"}}, 413, "자"),
    ],
)
async def test_bad_chat_requests_get_json_errors_in_korean(
    service: Service, http: aiohttp.ClientSession, send: dict[str, Any], status: int, needle: str
) -> None:
    async with http.post(service.url + "/console/api/chat", **send) as response:
        assert response.status == status
        error = (await response.json())["error"]
    assert needle in error["message"]


async def test_without_a_token_other_host_names_and_cross_site_posts_are_refused(
    service: Service, http: aiohttp.ClientSession
) -> None:
    # A page whose name resolves to 127.0.0.1 (DNS rebinding) reaches us from loopback.
    async with http.get(service.url + "/console/api/bots", headers={"Host": "rebind.example"}) as response:
        assert response.status == 403
        assert "DARI_CONSOLE_TOKEN" in (await response.json())["error"]["message"]
    async with http.get(service.url + "/", headers={"Host": "rebind.example"}) as response:
        assert response.status == 403
        assert "localhost" in await response.text()
    headers = {"Sec-Fetch-Site": "cross-site"}
    body = {"bot": "default", "text": "안녕", "session": "session-0001"}
    async with http.post(service.url + "/console/api/chat", json=body, headers=headers) as response:
        assert response.status == 403


async def test_with_a_token_every_request_needs_it(
    llm: FakeOpenAI, tmp_path: Path, http: aiohttp.ClientSession, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    async with run_service(settings(llm, tmp_path, console_token=TOKEN)) as service:
        url = service.url
        async with http.get(url + "/console/api/status") as response:
            assert response.status == 401
            assert "토큰" in (await response.json())["error"]["message"]
        bad = {"Authorization": "Bearer wrong-token"}
        async with http.get(url + "/console/api/bots", headers=bad) as response:
            assert response.status == 401
        good = {"Authorization": f"Bearer {TOKEN}"}
        async with http.get(url + "/console/api/bots", headers=good) as response:
            assert response.status == 200
        async with http.get(url + "/") as response:
            assert response.status == 401
            assert 'action="/console/login"' in await response.text()
        async with http.get(url + "/console/static/app.css") as response:
            assert response.status == 200  # the login page needs its style sheet
        login = url + "/console/login"
        async with http.post(login, data={"token": "wrong"}, allow_redirects=False) as response:
            assert response.status == 401
            assert "토큰이 맞지 않아요" in await response.text()
        async with http.post(login, data={"token": TOKEN}, allow_redirects=False) as response:
            assert response.status == 303
            cookie = response.headers["Set-Cookie"]
        assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and TOKEN not in cookie
        value = response.cookies[COOKIE].value
        jar = {"Cookie": f"{COOKIE}={value}"}
        async with http.get(url + "/", headers=jar) as response:
            assert response.status == 200
            assert 'id="composer"' in await response.text()
        async with http.post(
            url + "/console/api/chat", json={"text": "안녕", "session": "session-0002"}, headers=jar
        ) as r:
            assert events(await r.text())[-1] == ("done", {"text": ANSWER})
        async with http.post(url + "/console/logout", headers=jar, allow_redirects=False) as response:
            assert response.status == 303
            assert response.cookies[COOKIE].value == ""
    assert TOKEN not in caplog.text
