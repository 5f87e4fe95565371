"""Log lines: JSON, identifiers masked, secrets replaced, request/trace/conversation ids attached."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest

from adapters.logs import ContextFilter, JsonFormatter
from tests.support.openai_server import FakeOpenAI
from tests.support.service import IsolatedSettings, run_service

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"


class Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.lines: list[dict[str, object]] = []
        self.setFormatter(JsonFormatter(secrets=["sk-very-secret-key"]))
        self.addFilter(ContextFilter())

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(json.loads(self.format(record)))


@pytest.fixture
def lines() -> Iterator[Lines]:
    handler = Lines()
    root = logging.getLogger()
    root.addHandler(handler)
    level = root.level
    root.setLevel(logging.INFO)
    yield handler
    root.removeHandler(handler)
    root.setLevel(level)


def test_identifiers_are_masked_and_secrets_replaced(lines: Lines) -> None:
    logging.getLogger("dari.test").warning(
        "user said %s with key %s", "010-1234-5678 / 900101-1234568", "sk-very-secret-key", extra={"n": 3}
    )
    (line,) = lines.lines
    assert line["msg"] == "user said [전화번호] / [주민등록번호] with key ***"
    assert line["level"] == "warning"
    assert line["n"] == 3


async def test_log_lines_carry_request_trace_and_conversation_ids(
    lines: Lines, fake_openai: FakeOpenAI, tmp_path: Path
) -> None:
    fake_openai.fail(500, times=3)
    settings = IsolatedSettings(openai_base_url=fake_openai.base_url, llm_max_retries=0, data_dir=tmp_path)
    body = {"userRequest": {"utterance": "안녕하세요", "user": {"id": "u-1"}}, "bot": {"id": "b-1"}}
    headers = {"traceparent": f"00-{TRACE}-00f067aa0ba902b7-01", "X-Request-Id": "req-42"}
    async with run_service(settings) as service, aiohttp.ClientSession() as http:
        async with http.post(service.url + "/kakao/skill", json=body, headers=headers) as response:
            assert response.status == 200
            assert response.headers["X-Request-Id"] == "req-42"
    failed = [line for line in lines.lines if str(line["msg"]).startswith("LLM failed")]
    assert failed, lines.lines
    assert failed[0]["request_id"] == "req-42"
    assert failed[0]["trace_id"] == TRACE
    assert failed[0]["conversation"] == "kakao:default:b-1:u-1"
