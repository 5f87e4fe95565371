"""Rate limits: the readable rate form, local token buckets, and which bucket refuses a message."""

from __future__ import annotations

import pytest

from core.limits import LocalRateLimiter, Rate, Refusal, limit_key, refusal, wait_seconds
from core.messages import duration, say
from core.types import ConversationKey, Inbound
from tests.support.redis import FakeClock


@pytest.mark.parametrize(
    ("text", "rate"),
    [
        ("20/60", Rate(capacity=20, seconds=60.0)),
        (" 20 / 60s ", Rate(capacity=20, seconds=60.0)),
        ("20/1m", Rate(capacity=20, seconds=60.0)),
        ("3000/1h", Rate(capacity=3000, seconds=3600.0)),
        ("5/0.5", Rate(capacity=5, seconds=0.5)),
        ("off", None),
        ("OFF", None),
        ("0", None),
    ],
)
def test_rates_are_written_as_people_say_them(text: str, rate: Rate | None) -> None:
    assert Rate.parse(text) == rate


@pytest.mark.parametrize("text", ["20", "20 per minute", "0/60", "20/0", "-1/60", "20/60d", ""])
def test_a_wrong_rate_says_which_forms_work(text: str) -> None:
    with pytest.raises(ValueError, match=r"20/60|positive"):
        Rate.parse(text)


def test_limit_keys_cannot_be_confused_by_what_ids_contain() -> None:
    assert limit_key("slack", "T1:U1", "U2") != limit_key("slack", "T1", "U1:U2")


async def test_a_bucket_allows_its_burst_then_tells_how_long_to_wait() -> None:
    clock = FakeClock(start=100.0)
    limiter = LocalRateLimiter({"user": Rate(capacity=3, seconds=60.0)}, clock=clock)
    assert [await limiter.take("user", "u1") for _ in range(3)] == [None, None, None]
    assert await limiter.take("user", "u1") == pytest.approx(20.0)  # one token per 20 s
    clock.advance(5)
    assert await limiter.take("user", "u1") == pytest.approx(15.0)  # refusals take nothing
    assert await limiter.take("user", "u2") is None  # other people have their own bucket
    clock.advance(15)
    assert await limiter.take("user", "u1") is None
    assert await limiter.take("user", "u1") == pytest.approx(20.0)


async def test_a_bucket_refills_to_its_capacity_and_no_further() -> None:
    clock = FakeClock(start=0.0)
    limiter = LocalRateLimiter({"user": Rate(capacity=2, seconds=10.0)}, clock=clock)
    await limiter.take("user", "u1")
    clock.advance(3600)
    assert [await limiter.take("user", "u1") for _ in range(3)][:2] == [None, None]
    assert await limiter.take("user", "u1") is not None


async def test_scopes_without_a_rate_are_unlimited() -> None:
    limiter = LocalRateLimiter({"user": Rate(capacity=1, seconds=60.0)})
    assert all([await limiter.take("tenant", "t1") is None for _ in range(100)])


async def test_full_buckets_are_forgotten_so_memory_follows_active_people() -> None:
    clock = FakeClock(start=0.0)
    limiter = LocalRateLimiter({"user": Rate(capacity=5, seconds=10.0)}, clock=clock)
    for person in range(100):
        await limiter.take("user", f"u{person}")
    assert len(limiter) == 100
    clock.advance(10)
    await limiter.take("user", "someone-new")
    assert len(limiter) == 1


def inbound(user: str, *, tenant: str = "T1") -> Inbound:
    key = ConversationKey(platform="slack", tenant=tenant, conversation="C1")
    return Inbound(key=key, message_id="m", user_id=user, text="질문")


async def test_a_refused_user_does_not_spend_the_tenants_tokens() -> None:
    limiter = LocalRateLimiter(
        {"user": Rate(capacity=1, seconds=60.0), "tenant": Rate(capacity=2, seconds=60.0)},
        clock=FakeClock(start=0.0),
    )
    assert await refusal(limiter, inbound("alice")) is None
    for _ in range(5):
        assert await refusal(limiter, inbound("alice")) == Refusal(scope="user", seconds=60)
    assert await refusal(limiter, inbound("bob")) is None  # the tenant's second token
    assert await refusal(limiter, inbound("carol")) == Refusal(scope="tenant", seconds=30)
    assert await refusal(limiter, inbound("dave", tenant="T2")) is None


def test_waits_are_whole_seconds_never_zero_never_short() -> None:
    assert [wait_seconds(w) for w in (0.001, 1.0, 1.2, 11.9, 12.0)] == [1, 1, 2, 12, 12]


@pytest.mark.parametrize(
    ("seconds", "ko", "en"),
    [
        (1, "1초", "1 second"),
        (12, "12초", "12 seconds"),
        (60, "1분", "1 minute"),
        (90, "1분 30초", "1 minute 30 seconds"),
        (7205, "2시간 5초", "2 hours 5 seconds"),
    ],
)
def test_durations_read_naturally(seconds: int, ko: str, en: str) -> None:
    assert duration(seconds, lang="ko") == ko
    assert duration(seconds, lang="en") == en


def test_the_refusals_are_polite_in_each_speech_level() -> None:
    wait = duration(12, lang="ko")
    assert (
        say("rate_limited_user", lang="ko", level="haeyo", wait=wait)
        == "메시지를 너무 빨리 보내고 있어요. 12초 뒤에 다시 보내 주세요."
    )
    formal = say("rate_limited_user", lang="ko", level="hapsyo", wait=wait)
    assert formal.endswith("12초 후에 다시 보내 주십시오.") and "계십니다" in formal
    tenant = say("rate_limited_tenant", lang="ko", level="haeyo", wait=duration(90, lang="ko"))
    assert "1분 30초 뒤에" in tenant and tenant.endswith("주세요.")
    assert say("rate_limited_user", lang="en", wait=duration(12, lang="en")) == (
        "You're sending messages too quickly. Please try again in 12 seconds."
    )
