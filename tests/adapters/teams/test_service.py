"""The whole service (create_app) with the Teams door: real engine, SQLite store, openai client."""

from __future__ import annotations

from pathlib import Path

import aiohttp
from pydantic import SecretStr

from tests.adapters.teams.conftest import payload
from tests.support.botframework import BotConnector, stream_info
from tests.support.openai_server import FakeOpenAI
from tests.support.service import IsolatedSettings, run_service


async def test_a_personal_message_through_the_whole_service(
    connector: BotConnector, fake_openai: FakeOpenAI, tmp_path: Path
) -> None:
    fake_openai.answer = "안녕하세요! 무엇을 도와드릴까요?"
    settings = IsolatedSettings(
        openai_base_url=fake_openai.base_url, openai_api_key=SecretStr("test"), data_dir=tmp_path
    )
    activity = payload("personal_message", connector, text="안녕하세요 다리님")

    async with run_service(settings) as service, aiohttp.ClientSession() as http:
        async with http.post(f"{service.url}/api/messages", json=activity) as response:
            status = response.status
        (final,) = await connector.wait_for(1)

    assert status == 200
    assert final.text == "안녕하세요! 무엇을 도와드릴까요?"
    assert (stream_info(final.body) or {}).get("streamType") == "final"
    assert fake_openai.requests[0]["messages"][-1] == {"role": "user", "content": "안녕하세요 다리님"}
