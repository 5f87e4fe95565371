"""`dari serve` as a real process: start-up log, whole-run logs free of identifiers and secrets, SIGTERM."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import sys
from pathlib import Path

import aiohttp

from tests.support.openai_server import FakeOpenAI

ROOT = Path(__file__).resolve().parents[2]
SECRETS = {
    "OPENAI_API_KEY": "sk-live-4f9a1c2e7b3d5a6f",
    "KAKAO_SKILL_SECRET": "kakao-skill-8c1d2e3f4a5b",
    "SLACK_SIGNING_SECRET": "slack-signing-9e8d7c6b5a4f",
}
IDENTIFIERS = ("900101-1234568", "010-9876-5432", "4111 1111 1111 1111", "hong.gildong@example.co.kr")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def wait_until_up(http: aiohttp.ClientSession, url: str, process: asyncio.subprocess.Process) -> None:
    async with asyncio.timeout(20):
        while process.returncode is None:
            try:
                async with http.get(url + "/healthz") as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientConnectionError:
                await asyncio.sleep(0.05)  # polling a condition: is the port open yet
    raise AssertionError("dari serve exited early")


async def test_a_whole_run_logs_no_identifiers_or_secrets_and_stops_cleanly(
    fake_openai: FakeOpenAI, tmp_path: Path
) -> None:
    port = free_port()
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("OPENAI", "AZURE", "SLACK", "Microsoft", "REDIS", "DARI", "KAKAO"))
    }
    env.update(SECRETS)
    env.update(OPENAI_BASE_URL=fake_openai.base_url, DARI_DATA_DIR=str(tmp_path), DARI_LOG_LEVEL="DEBUG")
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "adapters.cli", "serve", "--host", "127.0.0.1", "--port", str(port),
        cwd=tmp_path, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    text = "제 주민번호는 " + IDENTIFIERS[0] + ", 전화는 " + IDENTIFIERS[1]
    text += ", 카드는 " + IDENTIFIERS[2] + ", 메일은 " + IDENTIFIERS[3] + "이에요."
    body = {"userRequest": {"utterance": text, "user": {"id": "u1"}}, "bot": {"id": "b1"}}
    try:
        async with aiohttp.ClientSession() as http:
            await wait_until_up(http, url, process)
            secret = SECRETS["KAKAO_SKILL_SECRET"]
            async with http.post(f"{url}/kakao/skill?secret={secret}", json=body) as response:
                assert response.status == 200
            async with http.post(f"{url}/kakao/skill?secret=wrong", json=body) as response:
                assert response.status == 401
            async with http.get(f"{url}/metrics") as response:
                metrics = await response.text()
    finally:
        process.send_signal(signal.SIGTERM)
        _, stderr = await asyncio.wait_for(process.communicate(), timeout=30)
    assert process.returncode == 0
    log = stderr.decode("utf-8")
    lines = [json.loads(line) for line in log.splitlines() if line.startswith("{")]
    assert any("door kakao: on" in line["msg"] for line in lines)
    assert any("door slack" in line["msg"] for line in lines)
    assert any(line["msg"].startswith("POST /kakao/skill 200") for line in lines)
    for value in [*SECRETS.values(), *IDENTIFIERS]:
        assert value not in log
    assert 'dari_messages_total{outcome="answered",platform="kakao"} 1.0' in metrics
    assert 'dari_kakao_deliveries_total{mode="inline"} 1.0' in metrics
    assert "dari_llm_first_token_seconds_count 1.0" in metrics
    assert fake_openai.requests
    assert all(value not in json.dumps(fake_openai.requests, ensure_ascii=False) for value in IDENTIFIERS)
