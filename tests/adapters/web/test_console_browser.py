"""The console in a real headless Chromium: pick a bot, type Korean, watch the answer stream in.

The browser is Debian's ``chromium`` driven through Debian's ``chromium-driver`` (Selenium,
no download of any browser). It is required, not optional: without it this test fails and
says which packages to install (``apt-get install -y chromium chromium-driver``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service as DriverService
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.select import Select
from selenium.webdriver.support.wait import WebDriverWait

from tests.support.openai_server import FakeOpenAI
from tests.support.service import IsolatedSettings, run_service

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
ANSWER = "네, 알려 드릴게요. 다음 주 수요일 오후 2시에 3층 회의실에서 주간 회의가 있어요."
QUESTION = "다음 주 회의 일정 알려 줘요"
FLAGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1200,900",
)


@dataclass(frozen=True, slots=True)
class Seen:
    """What the page showed once the answer was complete."""

    answer: str
    updates: int
    greeting: str
    bots: list[str]
    checks: str


@contextmanager
def chromium(profile: Path) -> Iterator[WebDriver]:
    missing = [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not p.exists()]
    if missing:
        pytest.fail(
            f"headless browser test needs {', '.join(missing)}: "
            "apt-get install -y chromium chromium-driver (Debian packages)",
            pytrace=False,
        )
    options = Options()
    options.binary_location = str(CHROMIUM)
    for flag in (*FLAGS, f"--user-data-dir={profile}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=DriverService(str(CHROMEDRIVER)), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def _finished(driver: WebDriver) -> WebElement | None:
    found = driver.find_elements(By.CSS_SELECTOR, ".msg.assistant[data-state='done'], .msg.error")
    return found[-1] if found else None


def converse(url: str, profile: Path, screenshot: Path) -> Seen:
    """Drive the console like a person would (runs in a worker thread: Selenium blocks)."""
    with chromium(profile) as driver:
        wait = WebDriverWait(driver, 20, poll_frequency=0.05)
        driver.get(url + "/")
        wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#bot option")) >= 2)
        wait.until(lambda d: "확인하는 중" not in d.find_element(By.ID, "checks").text)
        Select(driver.find_element(By.ID, "bot")).select_by_value("formal")
        greeting = driver.find_element(By.CSS_SELECTOR, ".msg.assistant").text
        box = driver.find_element(By.ID, "text")
        box.send_keys(QUESTION)
        driver.find_element(By.ID, "send").click()
        done = wait.until(_finished)
        assert done is not None
        driver.save_screenshot(str(screenshot))
        assert "error" not in (done.get_attribute("class") or ""), done.text
        return Seen(
            answer=done.get_attribute("textContent") or "",
            updates=int(done.get_attribute("data-updates") or 0),
            greeting=greeting,
            bots=[
                o.get_attribute("value") or "" for o in driver.find_elements(By.CSS_SELECTOR, "#bot option")
            ],
            checks=driver.find_element(By.ID, "checks").text,
        )


async def test_a_korean_question_gets_a_streamed_answer_in_headless_chromium(tmp_path: Path) -> None:
    # 4 characters per chunk, 80 ms apart: the answer arrives over about 1.5 s.
    async with FakeOpenAI(answer=ANSWER, chunk_chars=4, chunk_delay=0.08) as llm:
        settings = IsolatedSettings(
            openai_base_url=llm.base_url, data_dir=tmp_path / "data", llm_max_retries=0
        )
        async with run_service(settings) as service:
            seen = await asyncio.to_thread(converse, service.url, tmp_path / "profile", tmp_path / "page.png")
    assert seen.bots[0] == "default" and "formal" in seen.bots
    assert seen.greeting.startswith("안녕하십니까")
    assert seen.checks.count("✅") == 2, seen.checks
    assert seen.answer == ANSWER
    assert seen.updates > 1, "the answer appeared at once: it did not stream"
    asked = llm.requests[-1]
    assert asked["stream"] is True
    assert asked["messages"][-1] == {"role": "user", "content": QUESTION}
    assert "하십시오체" in asked["messages"][0]["content"] or "합니다" in asked["messages"][0]["content"]
