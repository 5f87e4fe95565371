"""Every door authenticates, compares secrets in constant time, refuses what is not signed, and keeps
tenants apart: the whole service (all doors, Redis store, real openai client) on loopback."""

from __future__ import annotations

import ast
import asyncio
import copy
import inspect
import json
import os
import textwrap
import time
import urllib.parse
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
from cryptography.hazmat.primitives.asymmetric import rsa
from pydantic import SecretStr
from slack_sdk.signature import SignatureVerifier

from adapters import server, slack, teams
from adapters.runtime import ENGINE, TASKS
from adapters.teams.auth import BotFrameworkCloud
from adapters.teams.stream import Pacing
from adapters.web.guard import COOKIE, session_value
from tests.fuzz.harness import Reply, assert_well_behaved
from tests.fuzz.harness import slack_headers as signed_with
from tests.support.botframework import BotConnector, StandInCredentialsFactory, TokenIssuer
from tests.support.openai_server import FakeOpenAI
from tests.support.redis import DEFAULT_REDIS_URL
from tests.support.service import IsolatedSettings, Service, redis_prefix, run_service
from tests.support.slack_api import SlackAPI, slack_api

# The async tests share one running service (module-scoped), hence one event loop per module.
shared_loop = pytest.mark.asyncio(loop_scope="module")

ROOT = Path(__file__).resolve().parents[2]
PAYLOADS = ROOT / "tests" / "adapters"
KAKAO_SECRET = "kakao-skill-secret-7f3a9c1e5b"
SIGNING_SECRET = "slack-signing-secret-2d4f6a8c0e"
CONSOLE_TOKEN = "console-token-9b8a7c6d5e4f"
APP_PASSWORD = "teams-app-password-1a2b3c4d"
ANSWER = "네, 알겠어요."


def slack_headers(raw: bytes, *, secret: str = SIGNING_SECRET, age: int = 0) -> dict[str, str]:
    return signed_with(raw, secret=secret, age=age)


def payload(door: str, name: str) -> dict[str, Any]:
    body: dict[str, Any] = json.loads((PAYLOADS / door / "payloads" / f"{name}.json").read_text("utf-8"))
    return body


TEAMS_MESSAGE = payload("teams", "personal_message")
APP_ID = str(TEAMS_MESSAGE["recipient"]["id"]).removeprefix("28:")


# -- constant-time comparisons, read from the source -------------------------------------------

_SENSITIVE = ("secret", "signature", "password", "token")


def _name(node: ast.expr) -> str:
    if isinstance(node, ast.Call):
        node = node.func
    if isinstance(node, ast.Subscript):
        node = node.value
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    return ""


def equality_on_secrets(source: str) -> list[str]:
    """``==`` / ``!=`` comparisons with an operand named like a secret (constants excepted).

    Such a comparison stops at the first differing character, so its timing tells an attacker
    how much of a guess was right.
    """
    found: list[str] = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.Compare) or not any(isinstance(o, ast.Eq | ast.NotEq) for o in node.ops):
            continue
        operands = (node.left, *node.comparators)
        if any(isinstance(operand, ast.Constant) for operand in operands):
            continue  # an emptiness or None check reveals nothing about the secret's content
        for operand in operands:
            name = _name(operand)
            if not name.isupper() and any(word in name.lower() for word in _SENSITIVE):
                found.append(f"line {node.lineno}: {ast.unparse(node)}")
                break
    return found


def calls(source: str, function: str) -> bool:
    """Whether ``source`` calls ``function`` (as ``function(...)`` or ``module.function(...)``)."""
    return any(isinstance(n, ast.Call) and _name(n.func) == function for n in ast.walk(ast.parse(source)))


def package_source(package: str) -> str:
    return "\n".join(p.read_text("utf-8") for p in sorted((ROOT / package).rglob("*.py")))


def test_the_secret_detector_finds_a_plain_comparison() -> None:
    naive = "def ok(given, settings):\n    return given == settings.kakao_skill_secret.get_secret_value()\n"
    assert equality_on_secrets(naive)
    assert not equality_on_secrets(
        "def ok(token):\n    return token == '' or reason == messages.NEED_TOKEN\n"
    )


@pytest.mark.parametrize("package", ["adapters", "core"])
def test_no_secret_is_compared_with_equality(package: str) -> None:
    found = {
        str(path.relative_to(ROOT)): hits
        for path in sorted((ROOT / package).rglob("*.py"))
        if (hits := equality_on_secrets(path.read_text("utf-8")))
    }
    assert found == {}


def test_every_door_compares_in_constant_time() -> None:
    # Kakao's shared secret and the console token: hmac.compare_digest in the door itself.
    assert calls(package_source("adapters/kakao"), "compare_digest")
    assert calls(package_source("adapters/web"), "compare_digest")
    # Slack: bolt's SignatureVerifier, whose check is an HMAC compared with compare_digest.
    assert calls(package_source("adapters/slack"), "SignatureVerifier")
    assert calls(textwrap.dedent(inspect.getsource(SignatureVerifier.is_valid)), "compare_digest")
    # Teams: a signed JWT (RS256) checked by the Bot Framework SDK, never a shared secret.
    assert "ConfigurationBotFrameworkAuthentication" in package_source("adapters/teams")


# -- the whole service with every door protected -------------------------------------------------


@dataclass
class Doors:
    service: Service
    http: aiohttp.ClientSession
    openai: FakeOpenAI
    slack: SlackAPI
    connector: BotConnector
    issuer: TokenIssuer

    async def post(
        self,
        path: str,
        body: bytes,
        headers: dict[str, str] | None = None,
        *,
        cookies: dict[str, str] | None = None,
    ) -> Reply:
        sent = {"Content-Type": "application/json", **(headers or {})}
        async with aiohttp.ClientSession(cookies=cookies) as http:
            async with http.post(self.service.url + path, data=body, headers=sent) as response:
                return Reply(response.status, response.content_type, await response.read())

    async def raw(self, path: str, header: bytes, body: bytes) -> int:
        """POST with one header line sent as raw bytes (clients refuse to send non-ASCII ones)."""
        port = int(self.service.url.rsplit(":", 1)[1])
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        head = f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
        head += f"Content-Length: {len(body)}\r\nConnection: close\r\n"
        writer.write(head.encode() + header + b"\r\n\r\n" + body)
        status_line = await reader.readline()
        await reader.read()
        writer.close()
        await writer.wait_closed()
        return int(status_line.split()[1])

    async def settle(self) -> None:
        await self.service.app[TASKS].join()
        await self.service.app[ENGINE].settle()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def doors(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Doors]:
    redis_url = os.environ.get("DARI_TEST_REDIS_URL", DEFAULT_REDIS_URL)
    async with (
        FakeOpenAI(answer=ANSWER, chunk_chars=len(ANSWER)) as openai,
        slack_api() as slack_stand_in,
        BotConnector() as connector,
        TokenIssuer() as issuer,
        redis_prefix(redis_url) as prefix,
    ):
        cloud = BotFrameworkCloud(
            openid_metadata_url=issuer.metadata_url,
            emulator_metadata_url=issuer.metadata_url,
            login_url=connector.base,
        )
        factory = StandInCredentialsFactory(
            app_id=APP_ID, password=APP_PASSWORD, token_url=connector.token_url
        )
        teams_options = teams.TeamsOptions(
            cloud=cloud, credentials_factory=factory, pacing=Pacing(stream_interval=0.0)
        )
        settings = IsolatedSettings(
            openai_base_url=openai.base_url,
            openai_api_key=SecretStr("sk-security"),
            llm_max_retries=0,
            redis_url=redis_url,
            redis_prefix=prefix,
            data_dir=tmp_path_factory.mktemp("security"),
            kakao_skill_secret=SecretStr(KAKAO_SECRET),
            slack_bot_token=SecretStr("xoxb-security"),
            slack_signing_secret=SecretStr(SIGNING_SECRET),
            slack_api_url=slack_stand_in.url,
            console_token=SecretStr(CONSOLE_TOKEN),
            microsoft_app_id=APP_ID,
            microsoft_app_password=SecretStr(APP_PASSWORD),
        )
        with pytest.MonkeyPatch.context() as patch:
            # The Bot Framework endpoints of the test cloud, and no write pacing (not under test).
            patch.setitem(server.DOORS, "teams", partial(teams.mount, options=teams_options))
            fast = slack.DoorOptions(write_interval=0.0)
            patch.setitem(server.DOORS, "slack", partial(slack.setup, options=fast))
            async with run_service(settings) as service, aiohttp.ClientSession() as http:
                yield Doors(service, http, openai, slack_stand_in, connector, issuer)


def refused(reply: Reply, status: int = 401) -> bool:
    assert_well_behaved(reply)
    return reply.status == status


# -- Kakao: the shared secret -------------------------------------------------------------------

KAKAO_BODY = json.dumps({"userRequest": {"utterance": "안녕하세요", "user": {"id": "kakao-sec"}}}).encode()


@shared_loop
@pytest.mark.parametrize(
    ("path", "header"),
    [
        ("/kakao/skill", None),
        ("/kakao/skill", ""),
        ("/kakao/skill", "wrong"),
        ("/kakao/skill", KAKAO_SECRET[:-1]),
        ("/kakao/skill", KAKAO_SECRET + "x"),
        ("/kakao/skill", KAKAO_SECRET.upper()),
        ("/kakao/skill?secret=wrong", None),
        ("/kakao/skill?secret=" + KAKAO_SECRET[:-1], None),
        ("/kakao/skill?secret=%FF%FE", None),
        ("/kakao/skill?secret=", None),
    ],
)
async def test_kakao_without_the_secret_is_refused(doors: Doors, path: str, header: str | None) -> None:
    headers = {} if header is None else {"X-Dari-Skill-Secret": header}
    assert refused(await doors.post(path, KAKAO_BODY, headers))


@shared_loop
async def test_kakao_with_the_secret_is_answered(doors: Doors) -> None:
    by_header = await doors.post("/kakao/skill", KAKAO_BODY, {"X-Dari-Skill-Secret": KAKAO_SECRET})
    by_query = await doors.post(f"/kakao/skill?secret={KAKAO_SECRET}", KAKAO_BODY)
    assert (by_header.status, by_query.status) == (200, 200)


@shared_loop
@pytest.mark.parametrize("value", [b"\xff\xfe", b"\xea\xb0\x80", KAKAO_SECRET.encode() + b"\xff"])
async def test_kakao_a_secret_header_that_is_not_utf8_is_refused_not_a_500(
    doors: Doors, value: bytes
) -> None:
    assert await doors.raw("/kakao/skill", b"X-Dari-Skill-Secret: " + value, KAKAO_BODY) == 401


# -- Slack: the request signature -----------------------------------------------------------------


def slack_mention(
    text: str, *, team: str = "T111", user: str = "W222", channel: str = "C111"
) -> dict[str, Any]:
    body = payload("slack", "slack_event_app_mention_bolt")
    n = time.time_ns()
    body["event_id"] = f"EvSec{n}"
    body["team_id"] = team
    body.pop("enterprise_id", None)
    body["event"].update(text=f"<@W111> {text}", user=user, channel=channel, team=team)
    body["event"]["ts"] = body["event"]["event_ts"] = f"{n // 1_000_000_000}.{n % 1_000_000:06d}"
    return body


def _bad_signature(raw: bytes) -> dict[str, str]:
    return {**slack_headers(raw), "X-Slack-Signature": "v0=" + "0" * 64}


SLACK_FORGERIES: dict[str, Callable[[bytes], dict[str, str]]] = {
    "no headers": lambda raw: {},
    "no signature": lambda raw: {"X-Slack-Request-Timestamp": str(int(time.time()))},
    "no timestamp": lambda raw: {"X-Slack-Signature": slack_headers(raw)["X-Slack-Signature"]},
    "wrong secret": lambda raw: slack_headers(raw, secret="not-the-secret"),
    "wrong signature": _bad_signature,
    "another body's signature": lambda raw: slack_headers(raw + b" "),
    "stale timestamp": lambda raw: slack_headers(raw, age=301),
    "future timestamp": lambda raw: slack_headers(raw, age=-301),
    "v1 scheme": lambda raw: {**slack_headers(raw), "X-Slack-Signature": "v1=" + "0" * 64},
    "timestamp not a number": lambda raw: {**slack_headers(raw), "X-Slack-Request-Timestamp": "1e9"},
}


@shared_loop
@pytest.mark.parametrize("forgery", sorted(SLACK_FORGERIES))
async def test_slack_without_a_valid_signature_is_refused(doors: Doors, forgery: str) -> None:
    raw = json.dumps(slack_mention("서명 없는 요청")).encode()
    before = len(doors.openai.requests)
    assert refused(await doors.post("/slack/events", raw, SLACK_FORGERIES[forgery](raw)))
    await doors.settle()
    assert len(doors.openai.requests) == before


@shared_loop
@pytest.mark.parametrize("signature", [b"v0=\xff\xfe", "v0=가나다".encode()])
async def test_slack_a_signature_that_is_not_ascii_is_refused_not_a_500(
    doors: Doors, signature: bytes
) -> None:
    raw = json.dumps(slack_mention("서명")).encode()
    header = b"X-Slack-Request-Timestamp: " + str(int(time.time())).encode() + b"\r\nX-Slack-Signature: "
    assert await doors.raw("/slack/events", header + signature, raw) == 401


@shared_loop
async def test_slack_a_signed_request_is_answered(doors: Doors) -> None:
    body = slack_mention("안녕하세요")
    raw = json.dumps(body).encode()
    assert (await doors.post("/slack/events", raw, slack_headers(raw))).status == 200
    await doors.settle()
    assert [m.text for m in doors.slack.thread("C111", body["event"]["ts"])] == [ANSWER]


# -- Teams: the Bot Framework JWT -----------------------------------------------------------------


def teams_message(doors: Doors, text: str, **fields: Any) -> dict[str, Any]:
    body = copy.deepcopy(TEAMS_MESSAGE)
    body.update(serviceUrl=doors.connector.service_url, id=f"sec-{time.time_ns()}", text=text)
    body.update(copy.deepcopy(fields))
    return body


TOKENS: dict[str, Callable[[TokenIssuer, str], str | None]] = {
    "no token": lambda issuer, url: None,
    "not a JWT": lambda issuer, url: "garbage",
    "unsigned (alg none)": lambda issuer, url: issuer.unsigned(audience=APP_ID, service_url=url),
    "signed by another key": lambda issuer, url: issuer.token(
        audience=APP_ID, service_url=url, key=rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ),
    "another audience": lambda issuer, url: issuer.token(audience="someone-else", service_url=url),
    "another issuer": lambda issuer, url: issuer.token(
        audience=APP_ID, service_url=url, issuer="https://evil"
    ),
    "expired": lambda issuer, url: issuer.token(audience=APP_ID, service_url=url, lifetime=-3600),
}


@shared_loop
@pytest.mark.parametrize("kind", sorted(TOKENS))
async def test_teams_without_a_valid_token_is_refused(doors: Doors, kind: str) -> None:
    body = teams_message(doors, "토큰 없는 요청")
    token = TOKENS[kind](doors.issuer, body["serviceUrl"])
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    before = len(doors.openai.requests)
    assert refused(await doors.post("/api/messages", json.dumps(body).encode(), headers))
    await doors.settle()
    assert len(doors.openai.requests) == before


@shared_loop
async def test_teams_with_a_valid_token_is_answered(doors: Doors) -> None:
    body = teams_message(doors, "안녕하세요")
    token = doors.issuer.token(audience=APP_ID, service_url=body["serviceUrl"])
    reply = await doors.post("/api/messages", json.dumps(body).encode(), {"Authorization": f"Bearer {token}"})
    assert reply.status == 200
    await doors.settle()
    assert [r.text for r in doors.connector.messages if r.reply_to == body["id"]][-1:] == [ANSWER]


# -- the console: the token -----------------------------------------------------------------------

CHAT = json.dumps({"text": "안녕하세요", "session": "security-session-1"}).encode()


@shared_loop
@pytest.mark.parametrize(
    ("headers", "cookies"),
    [
        ({}, None),
        ({"Authorization": "Bearer wrong"}, None),
        ({"Authorization": f"Bearer {CONSOLE_TOKEN[:-1]}"}, None),
        ({"Authorization": f"Basic {CONSOLE_TOKEN}"}, None),
        ({"Authorization": CONSOLE_TOKEN}, None),
        ({}, {COOKIE: CONSOLE_TOKEN}),  # the cookie carries an HMAC of the token, never the token
        ({}, {COOKIE: session_value(b"another token")}),
    ],
)
async def test_the_console_without_its_token_is_refused(
    doors: Doors, headers: dict[str, str], cookies: dict[str, str] | None
) -> None:
    assert refused(await doors.post("/console/api/chat", CHAT, headers, cookies=cookies))


@shared_loop
@pytest.mark.parametrize(
    ("headers", "cookies"),
    [
        ({"Authorization": f"Bearer {CONSOLE_TOKEN}"}, None),
        ({}, {COOKIE: session_value(CONSOLE_TOKEN.encode())}),
    ],
)
async def test_the_console_with_its_token_answers(
    doors: Doors, headers: dict[str, str], cookies: dict[str, str] | None
) -> None:
    reply = await doors.post("/console/api/chat", CHAT, headers, cookies=cookies)
    assert (reply.status, reply.content_type) == (200, "text/event-stream")


@shared_loop
async def test_the_console_refuses_a_cross_site_post_even_with_the_token(doors: Doors) -> None:
    headers = {"Authorization": f"Bearer {CONSOLE_TOKEN}", "Sec-Fetch-Site": "cross-site"}
    assert refused(await doors.post("/console/api/chat", CHAT, headers), 403)


@shared_loop
async def test_the_console_login_sets_a_cookie_that_is_not_the_token(doors: Doors) -> None:
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    async with doors.http.post(
        doors.service.url + "/console/login", data=b"token=wrong", headers=form, allow_redirects=False
    ) as wrong:
        assert wrong.status == 401
    body = urllib.parse.urlencode({"token": CONSOLE_TOKEN}).encode()
    async with doors.http.post(
        doors.service.url + "/console/login", data=body, headers=form, allow_redirects=False
    ) as right:
        assert right.status == 303
        cookie = right.cookies[COOKIE]
    assert cookie.value == session_value(CONSOLE_TOKEN.encode()) != CONSOLE_TOKEN
    assert cookie["httponly"] and cookie["samesite"] == "Strict"


@shared_loop
@pytest.mark.parametrize(
    "header", [b"Authorization: Bearer \xff\xfe", b"Cookie: " + COOKIE.encode() + b"=\xff"]
)
async def test_the_console_a_token_that_is_not_utf8_is_refused_not_a_500(doors: Doors, header: bytes) -> None:
    assert await doors.raw("/console/api/chat", header, CHAT) == 401


# -- tenant isolation across doors --------------------------------------------------------------

FACT = "제 프로젝트 코드명은 파란고래예요."
SECRET_WORD = "파란고래"


def prompts_since(doors: Doors, start: int) -> str:
    return json.dumps(doors.openai.requests[start:], ensure_ascii=False)


async def ask_slack(doors: Doors, body: dict[str, Any]) -> None:
    raw = json.dumps(body).encode()
    assert (await doors.post("/slack/events", raw, slack_headers(raw))).status == 200
    await doors.settle()


@shared_loop
async def test_a_fact_said_in_one_slack_workspace_reaches_no_other_tenant(doors: Doors) -> None:
    said = slack_mention(FACT, team="TAAA", channel="CSHARED", user="WSHARED")
    await ask_slack(doors, said)
    thread = said["event"]["ts"]

    # The same thread in the same workspace remembers it (the control: isolation is not amnesia).
    start = len(doors.openai.requests)
    follow_up = slack_mention("코드명이 뭐였죠?", team="TAAA", channel="CSHARED", user="WSHARED")
    follow_up["event"]["thread_ts"] = thread
    await ask_slack(doors, follow_up)
    assert SECRET_WORD in prompts_since(doors, start)

    # Every other tenant, with the very same channel, thread and user ids, does not.
    start = len(doors.openai.requests)
    other = slack_mention("코드명이 뭐였죠?", team="TBBB", channel="CSHARED", user="WSHARED")
    other["event"]["thread_ts"] = thread
    await ask_slack(doors, other)
    kakao = {
        "userRequest": {"utterance": "코드명이 뭐였죠?", "user": {"id": "WSHARED"}},
        "bot": {"id": "TAAA"},
    }
    secret = {"X-Dari-Skill-Secret": KAKAO_SECRET}
    assert (await doors.post("/kakao/skill", json.dumps(kakao).encode(), secret)).status == 200
    body = teams_message(
        doors,
        "코드명이 뭐였죠?",
        conversation={"conversationType": "personal", "id": "CSHARED", "tenantId": "TAAA"},
        channelData={"tenant": {"id": "TAAA"}},
        **{"from": {"id": "WSHARED", "name": "Shared", "aadObjectId": "WSHARED"}},
    )
    token = doors.issuer.token(audience=APP_ID, service_url=body["serviceUrl"])
    teams_reply = await doors.post(
        "/api/messages", json.dumps(body).encode(), {"Authorization": f"Bearer {token}"}
    )
    assert teams_reply.status == 200
    chat = json.dumps({"text": "코드명이 뭐였죠?", "session": "CSHARED-TAAA"}).encode()
    console = await doors.post("/console/api/chat", chat, {"Authorization": f"Bearer {CONSOLE_TOKEN}"})
    assert console.status == 200
    await doors.settle()
    assert len(doors.openai.requests) - start == 4, "each door asked the LLM once"
    assert SECRET_WORD not in prompts_since(doors, start)


@shared_loop
async def test_a_fact_told_in_a_slack_dm_reaches_no_other_person_or_workspace(doors: Doors) -> None:
    def dm(text: str, *, team: str, user: str, channel: str) -> dict[str, Any]:
        body = payload("slack", "slack_event_message_im_assistant_thread")
        n = time.time_ns()
        body.update(event_id=f"EvDm{n}", team_id=team)
        body.pop("enterprise_id", None)
        body.pop("authorizations", None)
        event = body["event"]
        event.update(text=text, user=user, channel=channel, team=team, user_team=team, source_team=team)
        event["ts"] = event["event_ts"] = f"{n // 1_000_000_000}.{n % 1_000_000:06d}"
        for key in ("thread_ts", "parent_user_id", "assistant_thread", "bot_id", "subtype"):
            event.pop(key, None)
        return body

    await ask_slack(doors, dm("기억해 줘: " + FACT, team="TDM1", user="WALICE", channel="DALICE"))
    start = len(doors.openai.requests)
    await ask_slack(doors, dm("제 코드명 알려 주세요", team="TDM1", user="WALICE", channel="DALICE2"))
    assert SECRET_WORD in prompts_since(doors, start), "the person's own DMs remember it (control)"

    start = len(doors.openai.requests)
    await ask_slack(doors, dm("제 코드명 알려 주세요", team="TDM1", user="WBOB", channel="DBOB"))
    await ask_slack(doors, dm("제 코드명 알려 주세요", team="TDM2", user="WALICE", channel="DALICE"))
    assert len(doors.openai.requests) - start == 2
    assert SECRET_WORD not in prompts_since(doors, start)
