"""adapters.kakao.translate (and the text shaping in adapters.kakao.markdown) against real payloads."""

from __future__ import annotations

import json
import unicodedata
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.kakao.markdown import safe_cut, try_fit
from adapters.kakao.translate import (
    MAX_BODY_BYTES,
    MAX_UTTERANCE_CHARS,
    BadSkillRequest,
    SkillRequest,
    error_body,
    is_builder_test,
    markdown_to_plain,
    parse_skill_request,
    split_text,
    to_callback_ack,
    to_inbound,
    to_skill_response,
    trusted_callback_url,
)
from core.messages import say

PAYLOADS = Path(__file__).parent / "payloads"
NOTICE_KO = say("truncated", lang="ko", level="haeyo")
NOTICE_EN = say("truncated", lang="en")


def payload(name: str) -> bytes:
    return (PAYLOADS / name).read_bytes()


def body(user_request: dict[str, Any], **top: Any) -> bytes:
    return json.dumps({"userRequest": user_request, **top}).encode()


def request(
    utterance: str = "안녕하세요", *, top: dict[str, Any] | None = None, **fields: Any
) -> SkillRequest:
    """A minimal valid request; ``fields`` go into userRequest, ``top`` beside it."""
    return parse_skill_request(body({"utterance": utterance, "user": {"id": "u-1"}, **fields}, **(top or {})))


# --- request edge -------------------------------------------------------------------------------

CALLBACK_URL = (
    "https://bot-api.kakao.com/v1/bots/5ae9b76d7409b11ec845b746!/callback/"
    "-damddEwVMRHufi6uUr63Ir7veOUGTFaiVhcOWTOhijyBuCT-v4vu6V32YmyF8ZNqI8K7kn_tKY0"
)
QR_USER = "1b2bfc8caf85a5dff8fadd1bf4cc70125b533fea7b665d0cdb0fb493a135e94b4d"


@pytest.mark.parametrize(
    ("name", "tenant", "user", "text", "callback", "builder_test"),
    [
        ("skill_request_basic.json", "<봇 id>", "<사용자 botUserKey>", "<사용자 발화>", None, False),
        ("skill_request_knowledge_test.json", "<봇 id>", "<사용자 botUserKey>", "<사용자 발화>", None, True),
        (
            "skill_request_callback.json",
            "5ae9b76d7409b11ec845b746!",
            "226f81aef15e8f5890425bbeaa5978d54dfc98fadcaa076ed1f635eda11204ba30",
            "aaa",
            CALLBACK_URL,
            False,
        ),
        ("skill_request_builder_bot_test.json", "id", "id", "2021 검색", None, True),
        (
            "skill_request_quickreply.json",
            "67a961ce1e098a447d574fe7",
            QR_USER,
            "생각 다 끝났나요?",
            None,
            False,
        ),
        ("skill_request_quickreply_extra.json", "67a961ce1e098a447d574fe7", QR_USER, "초기화", None, False),
    ],
)
def test_saved_payloads_map_to_inbound(
    name: str, tenant: str, user: str, text: str, callback: str | None, builder_test: bool
) -> None:
    req = parse_skill_request(payload(name))
    inbound = to_inbound(req, bot="hr-helper", message_id="m-1")

    assert (inbound.key.platform, inbound.key.bot, inbound.key.tenant) == ("kakao", "hr-helper", tenant)
    assert (inbound.key.conversation, inbound.key.thread) == (user, "")
    assert (inbound.user_id, inbound.text, inbound.message_id) == (user, text, "m-1")
    assert inbound.is_direct is True
    assert inbound.user_name == ""
    assert req.userRequest.callbackUrl == callback
    assert trusted_callback_url(req) == callback
    assert is_builder_test(req) is builder_test


def test_quick_reply_extra_arrives_in_client_extra() -> None:
    plain = parse_skill_request(payload("skill_request_quickreply.json"))
    extra = parse_skill_request(payload("skill_request_quickreply_extra.json"))
    documented = parse_skill_request(payload("skill_request_basic.json"))  # "clientExtra": null

    assert plain.action is not None
    assert plain.action.clientExtra == {}
    assert extra.action is not None
    assert extra.action.clientExtra == {
        "command": "reset",
        "source": "quickReply",
    }
    assert documented.action is not None
    assert documented.action.clientExtra == {}


def test_documented_lang_values_both_parse() -> None:
    assert parse_skill_request(payload("skill_request_builder_bot_test.json")).userRequest.lang == "kr"
    assert parse_skill_request(payload("skill_request_basic.json")).userRequest.lang == "ko"


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"", "body is empty"),
        (b"\xff\xfe{}", "not valid UTF-8"),
        ('{"userRequest": "안녕"}'.encode("euc-kr"), "not valid UTF-8"),
        (b"{not json", "not JSON"),
        (b"[1, 2]", "must be a JSON object, not an array"),
        (b'"userRequest"', "must be a JSON object, not a string"),
        (b"null", "must be a JSON object, not null"),
        (b"[" * 100_000, "nested too deeply"),
        (b"{}", "userRequest is missing"),
        (b'{"userRequest": []}', "userRequest must be an object"),
        (body({"utterance": "hi"}), "userRequest.user is missing"),
        (body({"utterance": "hi", "user": {}}), "userRequest.user.id is missing"),
        (body({"utterance": "hi", "user": {"id": 42}}), "userRequest.user.id must be a string"),
        (body({"utterance": "hi", "user": {"id": ""}}), "userRequest.user.id must not be empty"),
        (body({"utterance": "hi", "user": {"id": "  "}}), "userRequest.user.id must not be blank"),
        (body({"utterance": None, "user": {"id": "u"}}), "userRequest.utterance must be a string"),
        (body({"user": {"id": "u"}}), "userRequest.utterance is missing"),
        (body({"utterance": "hi", "user": {"id": "u"}}, bot="kakao"), "bot must be an object"),
        (body({"utterance": "hi", "user": {"id": "u"}}, bot={"id": 7}), "bot.id must be a string"),
    ],
)
def test_bad_bodies_raise_one_error_with_a_reason(raw: bytes, reason: str) -> None:
    with pytest.raises(BadSkillRequest) as caught:
        parse_skill_request(raw)

    assert reason in str(caught.value)
    assert isinstance(caught.value, ValueError)
    # No chained parser or pydantic error: the handler logs and answers str(error) only.
    assert caught.value.__cause__ is None
    assert caught.value.__context__ is None or caught.value.__suppress_context__


def test_reasons_stay_short_and_never_echo_the_input() -> None:
    huge_id = "비밀" * 20_000
    raws = [
        body({"utterance": "hi", "user": {"id": huge_id}}),
        body({"utterance": ["x" * 50_000], "user": {"id": huge_id}}),
        b'{"userRequest": {"utterance": "' + b"A" * 100_000 + b'"',
    ]
    for raw in raws:
        with pytest.raises(BadSkillRequest) as caught:
            parse_skill_request(raw)
        reason = str(caught.value)
        assert 0 < len(reason) <= 200
        assert "비밀비밀" not in reason
        assert "xxxx" not in reason
        assert "AAAA" not in reason
    assert "and 1 more" in _reason_of(raws[1])


def _reason_of(raw: bytes) -> str:
    with pytest.raises(BadSkillRequest) as caught:
        parse_skill_request(raw)
    return str(caught.value)


def test_body_over_the_size_cap_is_refused_before_parsing() -> None:
    raw = body({"utterance": "가" * MAX_BODY_BYTES, "user": {"id": "u"}})
    assert "larger than" in _reason_of(raw)


def test_long_utterance_is_cut_to_the_cap_with_a_mark() -> None:
    req = request("가나다라" * 2_000)

    assert len(req.userRequest.utterance) == MAX_UTTERANCE_CHARS
    assert req.userRequest.utterance.endswith("가나다…")
    assert request("가" * MAX_UTTERANCE_CHARS).userRequest.utterance == "가" * MAX_UTTERANCE_CHARS


def test_long_utterance_cut_keeps_emoji_whole() -> None:
    family = "👨‍👩‍👧"  # five code points
    req = request("a" + family * 1_000)
    text = req.userRequest.utterance.removesuffix("…")

    assert text.endswith(family)
    assert len(text) <= MAX_UTTERANCE_CHARS - 1


def test_lenient_fields_and_odd_encodings() -> None:
    raw = (
        b"\xef\xbb\xbf"
        + json.dumps(
            {
                "userRequest": {
                    "utterance": "\ud800깨진 문자",
                    "user": {"id": "u", "properties": None, "type": 3},
                    "params": None,
                    "lang": None,
                    "timezone": 9,
                    "unknownField": {"deep": [1, 2]},
                },
                "action": {"clientExtra": "null", "params": []},
                "flow": "not an object, and not read",
            }
        ).encode()
    )

    req = parse_skill_request(raw)

    assert req.userRequest.utterance == "\ufffd깨진 문자"
    assert req.userRequest.utterance.encode("utf-8")  # storable and sendable
    assert req.userRequest.params == {}
    assert req.userRequest.user.properties == {}
    assert (req.userRequest.lang, req.userRequest.timezone, req.userRequest.user.type) == (None, None, None)
    assert req.action is not None
    assert req.action.clientExtra == {}
    assert req.action.params == {}
    assert is_builder_test(req) is False


@pytest.mark.parametrize("bot", [None, {}, {"id": ""}, {"name": "이름만"}])
def test_tenant_falls_back_to_kakao_without_a_bot_id(bot: dict[str, str] | None) -> None:
    top = {} if bot is None else {"bot": bot}
    req = parse_skill_request(body({"utterance": "hi", "user": {"id": "u"}}, **top))

    assert to_inbound(req, bot="default", message_id="m").key.tenant == "kakao"


def test_same_person_on_two_kakao_bots_is_two_conversations() -> None:
    first = to_inbound(request(top={"bot": {"id": "bot-a"}}), bot="default", message_id="1")
    second = to_inbound(request(top={"bot": {"id": "bot-b"}}), bot="default", message_id="2")

    assert (first.key.tenant, second.key.tenant) == ("bot-a", "bot-b")
    assert first.key.id != second.key.id


def test_utterance_whitespace_is_trimmed_for_commands() -> None:
    assert to_inbound(request("  도움말\n"), bot="default", message_id="m").text == "도움말"


@pytest.mark.parametrize(
    "url",
    [
        "http://bot-api.kakao.com/v1/bots/x/callback/y",
        "https://evil.example/callback",
        "https://kakao.com.evil.example/callback",
        "https://evilkakao.com/callback",
        "https://bot-api.kakao.com:8443/callback",
        "https://user:pw@bot-api.kakao.com/callback",
        "https://bot-api.kakao.com:notaport/callback",
        "https://127.0.0.1/callback",
        "file:///etc/passwd",
        "",
    ],
)
def test_untrusted_callback_urls_are_ignored(url: str) -> None:
    req = request(callbackUrl=url)
    assert req.userRequest.callbackUrl == url
    assert trusted_callback_url(req) is None


def test_kakao_callback_hosts_are_trusted() -> None:
    for url in (
        "https://bot-api.kakao.com/v1/bots/b/callback/t",
        "https://kakao.com:443/cb",
        "https://a.b.KAKAO.com./x",
    ):
        assert trusted_callback_url(request(callbackUrl=url)) == url
    assert (
        trusted_callback_url(request(callbackUrl="https://hooks.example/x"), allowed_domain="other.example")
        is None
    )
    assert trusted_callback_url(
        request(callbackUrl="https://hooks.example/x"), allowed_domain="hooks.example"
    )


def test_builder_test_needs_the_exact_surface() -> None:
    assert is_builder_test(request(params={"surface": "BuilderBotTest"}))
    assert not is_builder_test(request(params={"surface": "Kakaotalk.plusfriend"}))
    assert not is_builder_test(request(params={"surface": "builderbottest"}))
    assert not is_builder_test(request())


# --- text into bubbles --------------------------------------------------------------------------

HANGUL = "가나다라마바사아자차카타파하한국어업무보고서입니다요"
_PIECES = st.one_of(
    st.text(alphabet=HANGUL, min_size=1, max_size=40),
    st.text(alphabet="abcdefghijklmnop", min_size=1, max_size=20),
    st.sampled_from(
        [
            "다. ",
            "요. ",
            "? ",
            "! ",
            "… ",
            ". ",
            "\n",
            "\n\n",
            " ",
            "\t",
            "😀",
            "👨‍👩‍👧",
            "👍🏽",
            "🇰🇷",
            "e\u0301",
            "3.14",
        ]
    ),
    st.text(alphabet="xyz", min_size=200, max_size=2_500),  # runs with no place to break
    st.text(min_size=1, max_size=10),
)
TEXTS = st.lists(_PIECES, max_size=50).map("".join)


def assert_pieces_of(parts: list[str], text: str, *, complete: bool = True) -> None:
    """The parts, in order, are the text (or its start) with only whitespace dropped between them."""
    source = text.strip()
    at = 0
    for part in parts:
        while at < len(source) and source[at].isspace():
            at += 1
        assert source.startswith(part, at), (part[:30], source[at : at + 30])
        at += len(part)
    if complete:
        assert source[at:].strip() == ""


@settings(max_examples=300, deadline=None)
@given(text=TEXTS, max_chars=st.sampled_from([1_000, 1_000, 120, 37]), max_parts=st.integers(1, 4))
def test_split_text_invariants(text: str, max_chars: int, max_parts: int) -> None:
    parts = split_text(text, max_chars=max_chars, max_parts=max_parts)

    if not text.strip():
        assert parts == []
        return
    assert 1 <= len(parts) <= max_parts
    for part in parts:
        assert 1 <= len(part) <= max_chars
        assert part == part.strip()
    fitted = try_fit(text, max_chars=max_chars, max_parts=max_parts)
    if fitted is not None:
        assert parts == fitted
        assert_pieces_of(parts, text)
    elif max_chars > len(NOTICE_KO) + 2:
        head, notice = parts[-1].rsplit("\n\n", 1)
        assert notice == NOTICE_KO
        assert_pieces_of([*parts[:-1], head], text, complete=False)
    else:  # no room for text beside the notice
        assert parts[-1] == NOTICE_KO[:max_chars]
        assert_pieces_of(parts[:-1], text, complete=False)


def test_split_prefers_paragraphs_then_sentences() -> None:
    first = "가" * 600 + "다."
    second = "나" * 300 + "요. " + "라" * 300
    parts = split_text(f"{first}\n\n{second}", max_chars=1_000)
    assert parts == [first, second]

    sentence = "업무 보고서입니다. " * 80  # 880 chars a block, no newlines
    parts = split_text(sentence * 2, max_chars=1_000)
    assert all(part.endswith("다.") for part in parts)
    assert "".join(parts).replace(" ", "") == (sentence * 2).replace(" ", "")


def test_split_cuts_a_run_without_breaks_at_the_limit() -> None:
    parts = split_text("x" * 2_500, max_chars=1_000)
    assert [len(part) for part in parts] == [1_000, 1_000, 500]


def test_split_uses_the_densest_breaks_before_truncating() -> None:
    # Each paragraph is 55% of a bubble: natural breaks would need 5 bubbles, dense ones need 3.
    text = "\n\n".join(["가나다라 " * 110] * 5)
    assert len(text) < 3 * 1_000
    parts = split_text(text, max_chars=1_000, max_parts=3)

    assert len(parts) == 3
    assert NOTICE_KO not in parts[-1]
    assert_pieces_of(parts, text)


@pytest.mark.parametrize(
    ("unit", "text"),
    [
        ("👨‍👩‍👧", "👨‍👩‍👧" * 700),
        ("🇰🇷", "🇰🇷" * 1_500),
        ("한", unicodedata.normalize("NFD", "한") * 1_100),
        ("e\u0301", "e\u0301" * 1_500),
        ("👍🏽", "👍🏽" * 1_500),
    ],
)
def test_split_never_cuts_inside_a_character(unit: str, text: str) -> None:
    nfd_unit = unicodedata.normalize("NFD", unit)
    for part in split_text(text, max_chars=1_000, max_parts=10):
        assert part.replace(nfd_unit, "") == ""


def test_safe_cut_bounds() -> None:
    assert safe_cut("abc", 10) == 3
    assert safe_cut("a👍🏽", 2) == 1
    assert safe_cut("\u0301" * 50, 10) == 10  # nothing to stand on: cut at the limit rather than loop


def test_split_rejects_nonsense_limits() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        split_text("hi", max_chars=0)
    with pytest.raises(ValueError, match="at least 1"):
        split_text("hi", max_parts=0)


# --- response edge ------------------------------------------------------------------------------


def texts_of(response: dict[str, Any]) -> list[str]:
    outputs = response["template"]["outputs"]
    return [output["simpleText"]["text"] for output in outputs]


@settings(max_examples=200, deadline=None)
@given(texts=st.lists(TEXTS, min_size=1, max_size=4), replies=st.lists(st.text(max_size=30), max_size=15))
def test_skill_response_shape_invariants(texts: list[str], replies: list[str]) -> None:
    if not any(text.strip() for text in texts):
        with pytest.raises(ValueError, match="non-blank"):
            to_skill_response(texts)
        return

    response = to_skill_response(texts, quick_replies=replies)

    assert response["version"] == "2.0"
    assert set(response) == {"version", "template"}
    bubbles = texts_of(response)
    assert 1 <= len(bubbles) <= 3
    assert all(1 <= len(bubble) <= 1_000 and bubble.strip() == bubble for bubble in bubbles)
    quick = response["template"].get("quickReplies", [])
    assert ("quickReplies" in response["template"]) == bool(quick)
    assert len(quick) <= 10
    for reply in quick:
        assert reply["action"] == "message"
        assert 1 <= len(reply["label"]) <= 14
        assert reply["messageText"].strip()
    json.dumps(response, ensure_ascii=False).encode("utf-8")


def test_a_5000_char_answer_becomes_at_most_three_bubbles_with_the_notice() -> None:
    answer = "\n\n".join(f"{n}번째 문단입니다. " + "업무 처리 절차를 설명해요. " * 12 for n in range(1, 30))
    assert len(answer) >= 5_000

    bubbles = texts_of(to_skill_response([answer]))

    assert len(bubbles) == 3
    assert all(len(bubble) <= 1_000 for bubble in bubbles)
    assert bubbles[-1].endswith("\n\n" + NOTICE_KO)
    assert bubbles[0].startswith("1번째 문단입니다.")

    english = texts_of(to_skill_response([answer], lang="en"))
    assert english[-1].endswith(NOTICE_EN)
    formal = texts_of(to_skill_response([answer], level="hapsyo"))
    assert formal[-1].endswith(say("truncated", lang="ko", level="hapsyo"))


def test_each_text_gets_its_own_bubble_when_they_fit() -> None:
    assert texts_of(to_skill_response(["하나", " 둘 ", "셋"])) == ["하나", "둘", "셋"]
    pending, new = "앞 답변 " * 100, "새 답변 " * 150
    assert texts_of(to_skill_response([pending, new])) == [pending.strip(), new.strip()]
    assert texts_of(to_skill_response(["", "  ", "내용"])) == ["내용"]


def test_combined_answers_that_do_not_fit_still_make_three_bubbles() -> None:
    pending = "앞서 물어보신 내용의 답변이에요.\n\n" + "이전 답변 내용입니다. " * 110  # ~1,400 chars
    new = "새로운 답변 내용이에요. " * 110
    four = ["첫째", "둘째", "셋째", "넷째"]

    bubbles = texts_of(to_skill_response([pending, new]))
    assert len(bubbles) == 3
    assert bubbles[0].startswith("앞서 물어보신")
    assert all(len(bubble) <= 1_000 for bubble in bubbles)

    merged = texts_of(to_skill_response(four))
    assert len(merged) <= 3
    assert "\n\n".join(merged) == "\n\n".join(four)


def test_quick_replies_are_capped_and_labels_shortened() -> None:
    long = "이번 달 휴가 신청 방법 알려주세요"
    labels = ["  초기화 ", "", "초기화", long, "도움말\n보기", *[f"질문 {n}" for n in range(20)]]

    quick = to_skill_response(["답변"], quick_replies=labels)["template"]["quickReplies"]

    assert len(quick) == 10
    assert quick[0] == {"label": "초기화", "action": "message", "messageText": "초기화"}
    assert quick[1]["messageText"] == long
    assert quick[1]["label"] == long[:13].rstrip() + "…"
    assert len(quick[1]["label"]) <= 14
    assert quick[2]["messageText"] == "도움말 보기"
    assert [q["messageText"] for q in quick[3:]] == [f"질문 {n}" for n in range(7)]


def test_quick_replies_are_omitted_when_empty() -> None:
    assert "quickReplies" not in to_skill_response(["답변"])["template"]
    assert "quickReplies" not in to_skill_response(["답변"], quick_replies=["", " \n"])["template"]


def test_callback_ack_hands_over_without_a_template() -> None:
    ack = to_callback_ack("답변을 준비하고 있어요.")

    assert ack == {"version": "2.0", "useCallback": True, "data": {"text": "답변을 준비하고 있어요."}}
    assert "template" not in ack


def test_error_body() -> None:
    assert error_body("body is not JSON") == {"error": {"code": "bad_request", "message": "body is not JSON"}}
    assert error_body("no", code="unauthorized")["error"]["code"] == "unauthorized"


# --- markdown to plain text ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("markdown", "plain"),
    [
        ("**굵게** 표시", "굵게 표시"),
        ("__굵게__ 표시", "굵게 표시"),
        ("이것은 **핵심**이에요", "이것은 핵심이에요"),
        ("*기울임*과 _기울임_", "기울임과 기울임"),
        ("***굵은 기울임***", "굵은 기울임"),
        ("~~취소~~ 완료, 1~3일 ~해요", "취소 완료, 1~3일 ~해요"),
        ("snake_case, file_name, _private_var", "snake_case, file_name, _private_var"),
        ("보고서_최종_수정본.docx", "보고서_최종_수정본.docx"),
        ("2*3*4 = 24, a * b * c", "2*3*4 = 24, a * b * c"),
        ("\\*별표\\* 그대로", "*별표* 그대로"),
        ("[다리 문서](https://example.com/a_b_c)", "다리 문서 (https://example.com/a_b_c)"),
        ("[**굵은** 링크](https://e.com)", "굵은 링크 (https://e.com)"),
        ("[https://e.com](https://e.com)", "https://e.com"),
        ("[위키](https://ko.wikipedia.org/wiki/Foo_(bar))", "위키 (https://ko.wikipedia.org/wiki/Foo_(bar))"),
        ("<https://example.com/x_y_>", "https://example.com/x_y_"),
        ("참고: https://example.com/_a_/*b*", "참고: https://example.com/_a_/*b*"),
        ("![로고](https://e.com/l.png)", "로고 (https://e.com/l.png)"),
        ("# 제목\n## 부제 ##\n###### 작은 제목", "제목\n부제\n작은 제목"),
        ("#해시태그 그대로", "#해시태그 그대로"),
        ("제목\n===\n본문", "제목\n본문"),
        ("- 하나\n* 둘\n+ 셋\n  - 넷", "• 하나\n• 둘\n• 셋\n  • 넷"),
        ("- [ ] 할 일\n- [x] 한 일", "• ☐ 할 일\n• ☑ 한 일"),
        ("- **항목**: 설명", "• 항목: 설명"),
        ("1. 첫째\n2) 둘째\n10. **열째**", "1. 첫째\n2) 둘째\n10. 열째"),
        ("`a_b *c*` 코드와 ``x`y``", "a_b *c* 코드와 x`y"),
        ("```python\nx = a_b * c\n# 주석 **그대로**\n```\n끝", "x = a_b * c\n# 주석 **그대로**\n끝"),
        ("~~~\n- 목록 아님\n~~~", "- 목록 아님"),
        ("```\n**닫히지 않은 코드", "**닫히지 않은 코드"),
        (
            "| 이름 | 부서 |\n|---|:-:|\n| 김철수 | **영업** |\n| 이영희 | 인사 |",
            "• 이름: 김철수 / 부서: 영업\n• 이름: 이영희 / 부서: 인사",
        ),
        ("이름 | 값\n--- | ---\n키 | a\\|b\n빈칸 |", "• 이름: 키 / 값: a|b\n• 이름: 빈칸"),
        ("| 머리만 | 있음 |\n|---|---|", "머리만 / 있음"),
        ("| 칸<br>나눔 | 값 |\n|-|-|\n| 1 | 2 |", "• 칸 나눔: 1 / 값: 2"),
        ("> 인용 **문장**\n>> 중첩 인용", "인용 문장\n중첩 인용"),
        ("위\n\n---\n\n* * *\n___\n아래", "위\n\n아래"),
        ("줄1<br>줄2<BR/>줄3", "줄1\n줄2\n줄3"),
        ("a\n\n\n\nb  \n", "a\n\nb"),
        ("안녕하세요 😀 👨‍👩‍👧 🇰🇷 ㅋㅋ", "안녕하세요 😀 👨‍👩‍👧 🇰🇷 ㅋㅋ"),
        ("줄\r\n바꿈\r끝", "줄\n바꿈\n끝"),
        ("\ue0000\ue001 그대로", "\ue0000\ue001 그대로"),
    ],
)
def test_markdown_to_plain(markdown: str, plain: str) -> None:
    assert markdown_to_plain(markdown) == plain


# Without "|" and "~": a table column whose every value is empty, and a ~~~ fence's info string,
# are dropped on purpose and are covered case by case above.
_MARKUP = st.text(alphabet=HANGUL + "😀🇰🇷 \n*_#>-[]():!+.1", max_size=300)
_ADDED = set("• ☐☑():/\n")


@settings(max_examples=300, deadline=None)
@given(text=_MARKUP)
def test_markdown_to_plain_keeps_every_word(text: str) -> None:
    plain = markdown_to_plain(text)

    words = {ch for ch in text if ch in HANGUL or ch in "😀🇰🇷"}
    assert words <= set(plain)
    assert set(plain) <= set(text) | _ADDED
