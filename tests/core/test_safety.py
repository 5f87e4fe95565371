from __future__ import annotations

import dataclasses
import itertools
import unicodedata
from datetime import date

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.safety import PLACEHOLDERS, Identifier, find_identifiers, mask, normalize

# Deterministic and database-free, so CI runs the same examples every time and the checkout
# gains no .hypothesis directory.
CI = settings(max_examples=300, derandomize=True, database=None, deadline=None)

RRN = PLACEHOLDERS["rrn"]
ARN = PLACEHOLDERS["arn"]
PHONE = PLACEHOLDERS["phone"]
CARD = PLACEHOLDERS["card"]
ACCOUNT = PLACEHOLDERS["account"]
PASSPORT = PLACEHOLDERS["passport"]
LICENSE = PLACEHOLDERS["driver_license"]
BRN = PLACEHOLDERS["brn"]
EMAIL = PLACEHOLDERS["email"]

MASKED = [
    # 주민등록번호 / 외국인등록번호 (synthetic vectors from research/korean.md 2.2)
    ("900101-1234568", RRN),
    ("900101-1234567", RRN),  # legacy checksum fails, but a separator and a valid date suffice
    ("211015-3847261", RRN),  # post-2020 random tail
    ("900101-5234561", ARN),
    ("900101-5234567", ARN),
    ("971013-9019902", RRN),  # born 1897
    ("000229-3123456", RRN),  # 2000 was a leap year
    ("900101 1234568", RRN),
    ("900101 - 1234568", RRN),
    ("900101–1234568", RRN),  # en dash
    ("９００１０１－１２３４５６８", RRN),
    ("9001011234568", RRN),  # bare, legacy checksum valid
    ("9001015234561", ARN),  # bare, foreigner checksum (+2) valid
    ("주민번호 2110153847261", f"주민번호 {RRN}"),  # bare new-style, a label vouches for it
    ("외국인등록번호는 9001015234567입니다", f"외국인등록번호는 {ARN}입니다"),
    ("제 주민등록번호는 900101-1234568이고요", f"제 주민등록번호는 {RRN}이고요"),
    # 전화번호
    ("010-1234-5678", PHONE),
    ("01012345678", PHONE),
    ("010 1234 5678", PHONE),
    ("010.1234.5678", PHONE),
    ("011-123-4567", PHONE),
    ("016-1234-5678", PHONE),
    ("019-123-4567", PHONE),
    ("02-123-4567", PHONE),
    ("02-1234-5678", PHONE),
    ("0212345678", PHONE),
    ("(02) 1234-5678", PHONE),
    ("02)1234-5678", PHONE),
    ("031-123-4567", PHONE),
    ("064-1234-5678", PHONE),
    ("070-1234-5678", PHONE),
    ("0505-123-4567", PHONE),
    ("080-123-4567", PHONE),
    ("1588-1234", PHONE),
    ("1544 1234", PHONE),
    ("+82 10-1234-5678", PHONE),
    ("+82-2-1234-5678", PHONE),
    ("+821012345678", PHONE),
    ("+82 (0)10 1234 5678", PHONE),
    ("０１０－１２３４－５６７８", PHONE),
    ("제 번호는 010-1234-5678이에요", f"제 번호는 {PHONE}이에요"),
    ("연락처(010-1234-5678)로 주세요", f"연락처({PHONE})로 주세요"),
    ("Tel.02-123-4567", f"Tel.{PHONE}"),
    # 카드번호
    ("4111 1111 1111 1111", CARD),
    ("4111-1111-1111-1111", CARD),
    ("4111111111111111", CARD),
    ("5555-5555-5555-4444", CARD),
    ("9410-1234-5678-9010", CARD),  # domestic-only prefix 9
    ("3782-822463-10005", CARD),  # Amex 4-6-5
    ("3056 930902 5904", CARD),  # Diners 4-6-4
    ("카드번호 4222222222222", f"카드번호 {CARD}"),  # 13 bare digits need the label
    ("결제는 4111 1111 1111 1111로 해 주세요", f"결제는 {CARD}로 해 주세요"),
    # 계좌번호 (only next to 계좌 or a bank)
    ("신한 110-123-456789", f"신한 {ACCOUNT}"),
    ("카카오뱅크 3333-01-1234567", f"카카오뱅크 {ACCOUNT}"),
    ("계좌번호: 1002-123-456789", f"계좌번호: {ACCOUNT}"),
    ("국민은행 123456-01-123456", f"국민은행 {ACCOUNT}"),
    ("우리은행 계좌 1002123456789", f"우리은행 계좌 {ACCOUNT}"),
    ("농협 301-0123-4567-81", f"농협 {ACCOUNT}"),
    ("IBK 123-456789-01-012", f"IBK {ACCOUNT}"),
    ("토스뱅크로 1000-1234-5678 보내 주세요", f"토스뱅크로 {ACCOUNT} 보내 주세요"),
    # 여권번호 (only next to 여권/passport)
    ("여권번호 M12345678", f"여권번호 {PASSPORT}"),
    ("여권 M123A4567", f"여권 {PASSPORT}"),
    ("passport: S98765432", f"passport: {PASSPORT}"),
    ("M12345678 (여권)", f"{PASSPORT} (여권)"),
    # 운전면허번호
    ("11-20-123456-01", LICENSE),
    ("면허번호: 28-99-000001-11", f"면허번호: {LICENSE}"),
    ("운전면허 112012345601", f"운전면허 {LICENSE}"),
    # 사업자등록번호 (check digit verified)
    ("116-82-00276", BRN),
    ("134-86-72683", BRN),
    ("120-81-47521", BRN),
    ("220-81-62517", BRN),
    ("사업자등록번호 1168200276", f"사업자등록번호 {BRN}"),
    # 이메일
    ("hong.gildong@example.co.kr", EMAIL),
    ("메일은 a@b.com.", f"메일은 {EMAIL}."),
    ("user+tag@mail.example.com으로 보내 주세요", f"{EMAIL}으로 보내 주세요"),
    ("01012345678@naver.com", EMAIL),  # one e-mail, not a phone plus leftovers
    ("ｈｏｎｇ＠ｎａｖｅｒ．ｃｏｍ", EMAIL),
]

UNCHANGED = [
    "9001011234567",  # bare 13 digits, checksum fails, no label: could be anything
    "주문번호 9001011234568",  # checksum passes by chance, but the label says order number
    "주문번호 2024031512345",
    "우리 회사 주문번호 2024031512345",
    "901301-1234568",  # month 13
    "900230-1234568",  # 30 February
    "000229-1234567",  # 1900 was not a leap year
    "010229-3123456",  # neither was 2001
    "2025-03-05",
    "2025.03.05",
    "20250305",
    "2025년 3월 5일 (수)",
    "2025-03-05 14:30",
    "오후 2시 14:30에 만나요",
    "12:30:45",
    "20250305123045",
    "1,234,567원",
    "3만 원",
    "15000000원",
    "v1.2.3",
    "버전 10.0.19045.1234",
    "IP 192.168.0.1",
    "INV-2024-000123",
    "ISBN 978-89-1234-567-8",
    "123e4567-e89b-12d3-a456-426614174000",
    "3.14159265358979",
    "송장번호 123456789012",
    "사번 123456",
    "우편번호 06236",
    "회의 1530-1630",
    "010-1234-567",
    "012-345-6789",
    "4111 1111 1111 1112",  # Luhn fails
    "4111111111111112",
    "5555 5555 5555 4445",
    "3782-822463-10006",
    "2024031512345678",
    "1111-2222-3333-4444",  # no brand starts with 1
    "0000 0000 0000 0000",
    "7410-1234-5678-9014",  # Luhn valid, but no brand starts with 7
    "주문번호 4111111111111111",
    "110-123-456789",  # an account shape without 계좌 or a bank
    "M12345678",
    "모델 M123A4567",
    "112012345601",
    "29-20-123456-01",  # no region 29
    "120-81-47522",  # bad check digit
    "1168200276",
    "user@localhost",
    "a@b",
    "@김대리 확인 부탁드려요",
    "ㅋㅋㅋㅋ 진짜요? ㅎㅎ",
    "",
]


@pytest.mark.parametrize(("text", "expected"), MASKED)
def test_masks_identifier(text: str, expected: str) -> None:
    assert mask(text) == expected


@pytest.mark.parametrize("text", UNCHANGED)
def test_leaves_non_identifiers_alone(text: str) -> None:
    assert mask(text) == text
    assert find_identifiers(text) == []


@pytest.mark.parametrize(("text", "expected"), MASKED)
def test_masking_is_idempotent_on_examples(text: str, expected: str) -> None:
    assert mask(expected) == expected


def test_masks_several_identifiers_in_one_message() -> None:
    text = (
        "안녕하세요. 연락처 010-1234-5678, 이메일 hong@example.com, 주민번호 900101-1234568, "
        "신한은행 110-123-456789 로 입금 부탁드려요 ㅎㅎ"
    )
    expected = (
        f"안녕하세요. 연락처 {PHONE}, 이메일 {EMAIL}, 주민번호 {RRN}, "
        f"신한은행 {ACCOUNT} 로 입금 부탁드려요 ㅎㅎ"
    )
    assert mask(text) == expected


def test_find_identifiers_reports_kinds_and_spans_in_order() -> None:
    text = "전화 ０１０－１２３４－５６７８, 메일 a@b.com"
    found = find_identifiers(text)
    assert [(i.kind, text[i.start : i.end]) for i in found] == [
        ("phone", "０１０－１２３４－５６７８"),
        ("email", "a@b.com"),
    ]


def test_phone_in_account_context_is_masked_once() -> None:
    text = "국민은행 계좌 010-1234-5678"
    found = find_identifiers(text)
    assert len(found) == 1
    assert mask(text) == f"국민은행 계좌 {PHONE}"


def test_registration_number_beats_account_on_the_same_digits() -> None:
    assert mask("우리 900101-1234568") == f"우리 {RRN}"


def test_a_placeholder_label_is_settled_in_one_call() -> None:
    # The first account's placeholder reads "계좌", which labels the second number.
    once = mask("신한 110-123-456789 1234567890")
    assert once == f"신한 {ACCOUNT} {ACCOUNT}"
    assert mask(once) == once


def test_nfd_hangul_labels_are_recognised() -> None:
    nfc = "제 주민번호는 9001011234567이고 신한은행 계좌 110-123-456789예요"
    nfd = unicodedata.normalize("NFD", nfc)
    assert nfd != nfc
    assert mask(normalize(nfd)) == f"제 주민번호는 {RRN}이고 신한은행 계좌 {ACCOUNT}예요"

    # Without normalising first the labels are still found, and the prose stays NFD.
    def nfd_of(part: str) -> str:
        return unicodedata.normalize("NFD", part)

    assert mask(nfd) == nfd_of("제 주민번호는 ") + RRN + nfd_of("이고 신한은행 계좌 ") + ACCOUNT + nfd_of(
        "예요"
    )


def test_other_text_stays_byte_identical() -> None:
    text = "ㅋㅋ ０１０－１２３４－５６７８ ㅎㅎ ＡＢＣ ①"
    assert mask(text) == f"ㅋㅋ {PHONE} ㅎㅎ ＡＢＣ ①"


def test_normalize_composes_hangul_only() -> None:
    nfc = "한국어 메시지"
    assert normalize(unicodedata.normalize("NFD", nfc)) == nfc
    assert normalize(nfc) is nfc
    # NFKC would rewrite these; NFC must not.
    for text in ("ㅋㅋㅋ", "ㅎㅎ", "０１０－１２３４", "㈜다리", "①"):
        assert normalize(text) == text


def test_placeholders_are_bracketed_korean_and_read_only() -> None:
    assert set(PLACEHOLDERS) == {
        "rrn",
        "arn",
        "phone",
        "card",
        "account",
        "passport",
        "driver_license",
        "brn",
        "email",
    }
    for placeholder in PLACEHOLDERS.values():
        assert placeholder.startswith("[")
        assert placeholder.endswith("]")
        assert not any(c.isdigit() or c == "@" for c in placeholder)
    with pytest.raises(TypeError):
        PLACEHOLDERS["rrn"] = "x"  # type: ignore[index]


def test_identifier_is_frozen() -> None:
    ident = Identifier(kind="phone", start=0, end=13)
    with pytest.raises(dataclasses.FrozenInstanceError):
        ident.kind = "card"  # type: ignore[misc]


# --- properties --------------------------------------------------------------------------------

PREFIXES = ["", "제 번호는 ", "연락처: ", "(", "확인 부탁드려요. ", "ㅋㅋ "]
REGIONS = ["031", "032", "033", "041", "042", "043", "044", "051", "052", "053", "054", "055", "061", "064"]
SUFFIXES = ["", "이에요", "입니다.", ")", "로 연락 주세요", " ㅎㅎ"]


def _luhn_complete(partial: str) -> str:
    for check in "0123456789":
        number = partial + check
        total = 0
        for i, c in enumerate(reversed(number)):
            d = int(c) * (2 if i % 2 else 1)
            total += d - 9 if d > 9 else d
        if total % 10 == 0:
            return number
    raise AssertionError("unreachable: one check digit always completes a Luhn number")


@st.composite
def registration_numbers(draw: st.DrawFn) -> tuple[str, str]:
    born = draw(st.dates(min_value=date(1800, 1, 1), max_value=date(2099, 12, 31)))
    foreigner = draw(st.booleans()) and born.year >= 1900
    genders = {18: "90", 19: "5678" if foreigner else "12", 20: "78" if foreigner else "34"}
    gender = draw(st.sampled_from(genders[born.year // 100]))
    tail = draw(st.text(alphabet="0123456789", min_size=6, max_size=6))
    sep = draw(st.sampled_from(["-", " - ", " ", "－"]))
    return f"{born:%y%m%d}{sep}{gender}{tail}", ARN if foreigner else RRN


@st.composite
def card_numbers(draw: st.DrawFn) -> str:
    first = draw(st.sampled_from("234569"))
    body = draw(st.text(alphabet="0123456789", min_size=14, max_size=14))
    number = _luhn_complete(first + body)
    sep = draw(st.sampled_from(["-", " ", ""]))
    return sep.join(number[i : i + 4] for i in range(0, 16, 4))


@st.composite
def phone_numbers(draw: st.DrawFn) -> str:
    def run(n: int) -> str:
        return draw(st.text(alphabet="0123456789", min_size=n, max_size=n))

    sep = draw(st.sampled_from(["-", ".", " ", ""]))
    shape = draw(st.sampled_from(["mobile", "legacy", "seoul", "regional", "voip", "safe", "rep", "intl"]))
    if shape == "mobile":
        return f"010{sep}{run(4)}{sep}{run(4)}"
    if shape == "legacy":
        area = draw(st.sampled_from(["011", "016", "017", "018", "019"]))
        return f"{area}{sep}{run(draw(st.sampled_from([3, 4])))}{sep}{run(4)}"
    if shape == "seoul":
        return f"02{sep}{run(draw(st.sampled_from([3, 4])))}{sep}{run(4)}"
    if shape == "regional":
        area = draw(st.sampled_from(REGIONS))
        return f"{area}{sep}{run(draw(st.sampled_from([3, 4])))}{sep}{run(4)}"
    if shape == "voip":
        return f"{draw(st.sampled_from(['070', '080']))}{sep}{run(4)}{sep}{run(4)}"
    if shape == "safe":
        return f"050{run(1)}{sep}{run(4)}{sep}{run(4)}"
    if shape == "rep":
        # Prefixes whose last two digits are no minute, so they never read as a time range.
        prefix = draw(st.sampled_from(["1588", "1577", "1566", "1599", "1688", "1661", "1899", "1877"]))
        return f"{prefix}{draw(st.sampled_from(['-', ' ']))}{run(4)}"
    national = draw(st.sampled_from([f"10{sep}{run(4)}", f"2{sep}{run(4)}", f"31{sep}{run(3)}"]))
    return f"+82{draw(st.sampled_from(['', ' ', '-']))}{national}{sep}{run(4)}"


def _assert_masked_alone(identifier: str, placeholder: str, prefix: str, suffix: str) -> None:
    masked = mask(prefix + identifier + suffix)
    assert masked == prefix + placeholder + suffix
    assert identifier not in masked
    assert not any(c.isdigit() for c in masked)


@CI
@given(registration_numbers(), st.sampled_from(PREFIXES), st.sampled_from(SUFFIXES))
def test_valid_registration_numbers_are_always_masked(
    number: tuple[str, str], prefix: str, suffix: str
) -> None:
    identifier, placeholder = number
    _assert_masked_alone(identifier, placeholder, prefix, suffix)


@CI
@given(card_numbers(), st.sampled_from(PREFIXES), st.sampled_from(SUFFIXES))
def test_luhn_valid_cards_are_always_masked(card: str, prefix: str, suffix: str) -> None:
    _assert_masked_alone(card, CARD, prefix, suffix)


@CI
@given(phone_numbers(), st.sampled_from(PREFIXES), st.sampled_from(SUFFIXES))
def test_phone_numbers_are_always_masked(phone: str, prefix: str, suffix: str) -> None:
    _assert_masked_alone(phone, PHONE, prefix, suffix)


FRAGMENTS = [
    "010-1234-5678",
    "900101-1234568",
    "9001011234568",
    "신한 ",
    "계좌 ",
    "주민번호 ",
    "주문번호 ",
    "여권 ",
    "M12345678",
    "110-123-456789",
    "1234567890",
    "4111 1111 1111 1111",
    "a@b.com",
    "[계좌번호]",
    "-",
    " ",
    "ㅋㅋ",
]


@CI
@given(st.lists(st.one_of(st.sampled_from(FRAGMENTS), st.text(max_size=8)), max_size=12))
def test_mask_is_idempotent(parts: list[str]) -> None:
    once = mask("".join(parts))
    assert mask(once) == once


no_digit_or_at = st.characters(exclude_categories=["Nd", "Cs"], exclude_characters="@＠")


@CI
@given(st.text(alphabet=no_digit_or_at, max_size=200))
def test_text_without_digits_or_at_is_unchanged(text: str) -> None:
    assert mask(text) == text


@CI
@given(st.lists(st.one_of(st.sampled_from(FRAGMENTS), st.text(max_size=8)), max_size=12))
def test_spans_are_ordered_disjoint_and_inside_the_text(parts: list[str]) -> None:
    text = "".join(parts)
    found = find_identifiers(text)
    for ident in found:
        assert 0 <= ident.start < ident.end <= len(text)
        assert ident.kind in PLACEHOLDERS
    for left, right in itertools.pairwise(found):
        assert left.end <= right.start
