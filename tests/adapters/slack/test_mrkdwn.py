"""adapters.slack.mrkdwn: LLM Markdown as Slack mrkdwn, one row per rule."""

from __future__ import annotations

import pytest

from adapters.slack.mrkdwn import ZWSP, to_mrkdwn

CASES = [
    # emphasis
    ("**굵게** 쓰기", "*굵게* 쓰기"),
    ("__굵게__ 쓰기", "*굵게* 쓰기"),
    ("*기울임* 쓰기", "_기울임_ 쓰기"),
    ("_기울임_ 쓰기", "_기울임_ 쓰기"),
    ("***둘 다***", "*_둘 다_*"),
    ("~~취소선~~", "~취소선~"),
    ("**a** and **b**", "*a* and *b*"),
    # Korean particles stick to the word: markers need a boundary to render
    ("**중요**합니다", f"*중요*{ZWSP}합니다"),
    ("결과는**굵게**다", f"결과는{ZWSP}*굵게*{ZWSP}다"),
    ("이것은 *기울임*이에요", f"이것은 _기울임_{ZWSP}이에요"),
    # not emphasis
    ("2 * 3 * 4", "2 * 3 * 4"),
    ("snake_case_name", "snake_case_name"),
    # links
    ("[회사 홈페이지](https://example.com)", "<https://example.com|회사 홈페이지>"),
    ("[링크](https://a.com/?x=1&y=2)", "<https://a.com/?x=1&amp;y=2|링크>"),
    ("[**굵은 링크**](https://a.com)", "<https://a.com|굵은 링크>"),
    ("![그림](https://a.com/i.png)", "<https://a.com/i.png|그림>"),
    ("<https://a.com>", "<https://a.com>"),
    ("[https://a.com](https://a.com)", "<https://a.com>"),
    # escaping
    ("a < b && c > d", "a &lt; b &amp;&amp; c &gt; d"),
    ("<script>", "&lt;script&gt;"),
    # headings and rules
    ("# 제목", "*제목*"),
    ("### **굵은** 소제목 ###", "*굵은 소제목*"),
    ("---", "──────────"),
    # lists and quotes
    ("- 하나\n- 둘", "• 하나\n• 둘"),
    ("* 별표 목록", "• 별표 목록"),
    ("- 항목\n  - 하위 **항목**", "• 항목\n  • 하위 *항목*"),
    ("1. 첫째\n2) 둘째", "1. 첫째\n2. 둘째"),
    ("- [ ] 할 일\n- [x] 끝낸 일", "☐ 할 일\n☑ 끝낸 일"),
    ("> 인용 **굵게**", "> 인용 *굵게*"),
    # code
    ("`**그대로**` 두기", "`**그대로**` 두기"),
    ("`a < b`", "`a &lt; b`"),
    ("```python\nx = a < b and **c**\n```", "```\nx = a &lt; b and **c**\n```"),
    ("~~~\n# 주석\n~~~", "```\n# 주석\n```"),
    ("```\n열린 코드", "```\n열린 코드\n```"),
    # tables become aligned code
    ("| 이름 | 값 |\n|---|---:|\n| 가 | 1 |", "```\n| 이름 | 값 |\n| 가 | 1 |\n```"),
    # plain Korean passes through
    ("안녕하세요. 무엇을 도와드릴까요?", "안녕하세요. 무엇을 도와드릴까요?"),
    ("", ""),
]


@pytest.mark.parametrize(("markdown", "mrkdwn"), CASES)
def test_to_mrkdwn(markdown: str, mrkdwn: str) -> None:
    assert to_mrkdwn(markdown) == mrkdwn


def test_a_whole_answer() -> None:
    answer = "## 요약\n\n회의 결과는 **승인**이에요.\n\n- 일정: *다음 주*\n- 담당: [김민수](https://x.kr/u/1)"
    assert to_mrkdwn(answer) == (
        f"*요약*\n\n회의 결과는 *승인*{ZWSP}이에요.\n\n• 일정: _다음 주_\n• 담당: <https://x.kr/u/1|김민수>"
    )
