from __future__ import annotations

import sys
from collections.abc import Iterator

import pytest

from core import tokens
from core.tokens import count_messages, count_tokens, message_tokens, truncate_tokens
from core.types import ChatMessage

# Written for this test, not used to fit the fallback's weights (those came from other texts).
HELD_OUT = [
    "다음 달부터 재택근무 신청은 팀장 승인 후 근태 시스템에서 처리돼요. 주 2회까지 가능하고, "
    "신청은 전날 오후 6시까지 해 주세요.",
    "금일 오후 2시부터 4시까지 사내 메일 서버 점검이 예정되어 있습니다. 점검 중에는 메일 송수신이 "
    "지연될 수 있으니 양해 부탁드립니다.",
    "네 확인했어요! 자료는 공유 드라이브 '2025 기획' 폴더에 올려 뒀어요. 혹시 못 찾으시면 말씀해 주세요 🙂",
    "The quarterly security review found three outdated libraries. Please update them before the "
    "release on March 14.",
    "배포 체크리스트: 1) DB 마이그레이션(v42) 2) feature flag `new_checkout` ON 3) 모니터링 대시보드 확인",
    "김 과장님, 요청하신 견적서 금액은 총 3,450,000원(부가세 별도)이고 납기는 계약일로부터 30일입니다.",
    'if response.status_code != 200:\n    raise RuntimeError(f"요청 실패: {response.text}")',
    "신규 입사자 교육은 3월 10일(월)부터 12일(수)까지 본사 7층 대회의실에서 진행합니다. "
    "노트북을 지참해 주십시오.",
]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # o200k_base counts measured in research/korean.md §3.3.
        ("님", 1),
        ("했어요", 2),
        ("감사합니다", 3),
        ("주민등록번호", 4),
        ("hello world", 2),
        ("", 0),
    ],
)
def test_count_tokens_matches_o200k(text: str, expected: int) -> None:
    assert count_tokens(text) == expected


def test_the_exact_tokenizer_is_in_use() -> None:
    assert tokens._counter().exact


def test_special_token_text_is_counted_as_plain_text() -> None:
    # A user typing "<|endoftext|>" must neither crash the count nor become one control token.
    assert count_tokens("<|endoftext|>") > 1


def test_count_messages_adds_framing_and_reply_priming() -> None:
    message = ChatMessage(role="user", content="회의록 요약해 주세요")
    assert count_messages([]) == 3
    assert message_tokens(message) == 3 + count_tokens("user") + count_tokens(message.content)
    assert count_messages([message, message]) == 3 + 2 * message_tokens(message)


def test_truncate_keeps_a_prefix_that_fits() -> None:
    text = "가나다라마바사 아자차카타파하 " * 200
    head = truncate_tokens(text, 50)
    assert text.startswith(head)
    assert 40 <= count_tokens(head) <= 50
    assert "\ufffd" not in head


def test_truncate_leaves_short_text_alone() -> None:
    assert truncate_tokens("짧은 메시지", 100) == "짧은 메시지"
    assert truncate_tokens("짧은 메시지", 0) == ""


def test_truncate_never_splits_a_multibyte_character() -> None:
    text = "😊" * 40
    for limit in range(1, 20):
        head = truncate_tokens(text, limit)
        assert text.startswith(head)
        assert "\ufffd" not in head
        assert count_tokens(head) <= limit


def test_fallback_estimate_is_close_to_o200k() -> None:
    exact = [count_tokens(text) for text in HELD_OUT]
    estimated = [tokens._estimate(text) for text in HELD_OUT]
    for text, want, got in zip(HELD_OUT, exact, estimated, strict=True):
        assert abs(got - want) <= 0.25 * want, text
    # Measured: -2.4 % in aggregate, at worst -17.5 % on one mixed Korean/code line.
    assert abs(sum(estimated) - sum(exact)) <= 0.06 * sum(exact)


def test_fallback_estimate_of_long_korean_text() -> None:
    text = " ".join(HELD_OUT[:3] + HELD_OUT[5:6] + HELD_OUT[7:]) * 4
    want = count_tokens(text)
    assert abs(tokens._estimate(text) - want) <= 0.10 * want


def test_fallback_truncate_fits_its_own_estimate() -> None:
    text = HELD_OUT[0] * 20
    head = tokens._estimate_truncate(text, 30)
    assert text.startswith(head)
    assert tokens._estimate(head) <= 30 < tokens._estimate(text[: len(head) + 1])
    assert tokens._estimate_truncate("짧다", 30) == "짧다"


@pytest.fixture
def without_quicktok(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setitem(sys.modules, "quicktok", None)  # makes `import quicktok` raise ImportError
    tokens._counter.cache_clear()
    yield
    tokens._counter.cache_clear()


@pytest.mark.usefixtures("without_quicktok")
def test_counts_fall_back_to_the_estimate_without_quicktok() -> None:
    assert not tokens._counter().exact
    assert count_tokens(HELD_OUT[0]) == tokens._estimate(HELD_OUT[0])
    assert count_tokens("") == 0
