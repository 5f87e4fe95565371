"""Korean personal-identifier masking, run on every message before the LLM and before logs.

Each kind of identifier has one precompiled pattern and a validator (dates, checksums, brand
prefixes, nearby labels such as 계좌 or 여권). Matching runs on a width-folded copy of the
text in which every character maps to exactly one character, so offsets found there are
offsets in the original and nothing outside an identifier is ever rewritten.
"""

from __future__ import annotations

import bisect
import re
import string
import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType

__all__ = ["PLACEHOLDERS", "Identifier", "find_identifiers", "mask", "normalize"]

PLACEHOLDERS: Mapping[str, str] = MappingProxyType(
    {
        "rrn": "[주민등록번호]",
        "arn": "[외국인등록번호]",
        "phone": "[전화번호]",
        "card": "[카드번호]",
        "account": "[계좌번호]",
        "passport": "[여권번호]",
        "driver_license": "[운전면허번호]",
        "brn": "[사업자등록번호]",
        "email": "[이메일]",
    }
)

# When two candidates cover the same span the more specific kind wins; checksummed and
# dated shapes beat shapes that only a nearby label makes plausible.
_RANK = {
    "rrn": 9,
    "arn": 9,
    "brn": 8,
    "driver_license": 7,
    "card": 6,
    "passport": 5,
    "phone": 4,
    "account": 3,
    "email": 2,
}


@dataclass(frozen=True, slots=True, kw_only=True)
class Identifier:
    """One personal identifier found in a text.

    Attributes:
        kind: a key of ``PLACEHOLDERS``.
        start: index of its first character.
        end: index just past its last character.
    """

    kind: str
    start: int
    end: int


_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def normalize(text: str) -> str:
    """Compose decomposed Hangul (macOS/iOS NFD) into NFC and replace lone surrogates with U+FFFD.

    NFKC is deliberately not applied: it would turn chat jamo such as ㅋㅋ into
    conjoining forms. Width differences are handled by the matcher instead.
    """
    text = _LONE_SURROGATE.sub("\ufffd", text)  # "\ud800" from JSON: no encoder takes it
    if unicodedata.is_normalized("NFC", text):
        return text
    return unicodedata.normalize("NFC", text)


def mask(text: str) -> str:
    """Replace every personal identifier with its bracketed Korean placeholder.

    Masking repeats until nothing more is found: a placeholder such as ``[계좌번호]`` is
    itself a label and can make a neighbouring number recognisable, and repeating keeps
    ``mask`` idempotent. Every pass removes digits or '@', so the loop ends.
    """
    while found := find_identifiers(text):
        parts: list[str] = []
        pos = 0
        for ident in found:
            parts.append(text[pos : ident.start])
            parts.append(PLACEHOLDERS[ident.kind])
            pos = ident.end
        parts.append(text[pos:])
        text = "".join(parts)
    return text


def find_identifiers(text: str) -> list[Identifier]:
    """The non-overlapping identifiers in ``text``, ordered by position."""
    if _TRIGGER.search(text) is None:
        return []
    folded = _FOLDABLE.sub(_fold_char, text) if _FOLDABLE.search(text) else text
    found: list[Identifier] = []
    # Scanning only around seeds skips the prose that is most of a message.
    for zone_start, zone_end in _zones(folded):
        has_at = folded.find("@", zone_start, zone_end) >= 0
        candidates = [
            Identifier(kind=kind, start=match.start(), end=match.end())
            for pattern, validate in (_MATCHERS if has_at else _NUMBER_MATCHERS)
            for match in pattern.finditer(folded, zone_start, zone_end)
            if (kind := validate(folded, match)) is not None
        ]
        found.extend(_resolve(candidates))
    return found


def _resolve(candidates: list[Identifier]) -> list[Identifier]:
    # Longest first, then the more specific kind; a candidate overlapping one already chosen
    # is dropped. Zones are disjoint, so this only ever sees one zone's candidates.
    if len(candidates) < 2:
        return candidates
    candidates.sort(key=lambda c: (c.start - c.end, -_RANK[c.kind], c.start))
    chosen: list[Identifier] = []  # kept in text order
    starts: list[int] = []
    for cand in candidates:
        i = bisect.bisect_left(starts, cand.start)
        if (i > 0 and chosen[i - 1].end > cand.start) or (i < len(chosen) and chosen[i].start < cand.end):
            continue
        chosen.insert(i, cand)
        starts.insert(i, cand.start)
    return chosen


# --- width folding -------------------------------------------------------------------------

_TRIGGER = re.compile("[0-9@\uff10-\uff19\uff20]")
# One character for one, so offsets in the folded copy are offsets in the original.
_FOLDABLE = re.compile("[\uff01-\uff5e\u3000\u00a0\u2010-\u2015\u2212\ufe63]")
_FOLD = {chr(c): chr(c - 0xFEE0) for c in range(0xFF01, 0xFF5F)}
_FOLD.update({"\u3000": " ", "\u00a0": " ", "\u2212": "-", "\ufe63": "-"})
_FOLD.update({chr(c): "-" for c in range(0x2010, 0x2016)})


def _fold_char(match: re.Match[str]) -> str:
    return _FOLD[match.group()]


# --- zones worth matching in ----------------------------------------------------------------

# Every numeric identifier holds seven digits with short gaps, and an e-mail holds an '@'.
# Identifiers are made of zone characters, and a space inside one is always followed by a digit,
# '(', '+' or '-'. A zone ends just before a character that no identifier could hold, so every
# lookahead at its edge sees what it would see in the whole text (lookbehinds read before it).
_SEED = re.compile(r"[0-9](?:[-.+() A-Za-z]{0,3}[0-9]){6}|@")
_ZONE_CHARS = frozenset("0123456789@._%+()-_" + string.ascii_letters)
_AFTER_SPACE = frozenset("0123456789(+-")
_ZONE_TAIL = re.compile(r"(?:[0-9A-Za-z@._%+()_-]| (?=[0-9(+-]))*+")


def _zones(text: str) -> list[tuple[int, int]]:
    zones: list[tuple[int, int]] = []
    pos = 0
    while (seed := _SEED.search(text, pos)) is not None:
        start = seed.start()
        while start > pos and (
            text[start - 1] in _ZONE_CHARS or (text[start - 1] == " " and text[start] in _AFTER_SPACE)
        ):
            start -= 1
        tail = _ZONE_TAIL.match(text, seed.end())
        pos = tail.end() if tail is not None else seed.end()
        zones.append((start, pos))
    return zones


# --- labels near a number --------------------------------------------------------------------

_LABEL = re.compile(
    r"(?P<rrn>주민|외국인\s*등록|외국인\s*번호|resident)"
    r"|(?P<account>계좌|통장|은행|뱅크|카뱅|토스|국민|신한|우리|하나|농협|기업|제일|씨티|새마을|우체국"
    r"|수협|신협|부산|대구|경남|광주|전북|제주|산업|account|bank|(?<![a-z])(?:ibk|kdb|kb|nh|sc)(?![a-z]))"
    r"|(?P<passport>여권|passport|패스포트)"
    r"|(?P<driver_license>면허|licen[cs]e)"
    r"|(?P<brn>사업자)"
    r"|(?P<card>카드|card)"
    r"|(?P<other>주문|송장|배송|접수|예약|승인|거래|문의|티켓|order|invoice|tracking|ticket)",
    re.IGNORECASE,
)


def _nfc(window: str) -> str:
    return window if unicodedata.is_normalized("NFC", window) else unicodedata.normalize("NFC", window)


def _labels_before(text: str, start: int, before: int) -> list[str | None]:
    # NFD Hangul spends up to three code points per syllable, so slice wide, then cut.
    window = _nfc(text[max(0, start - 3 * before) : start])[-before:]
    return [found.lastgroup for found in _LABEL.finditer(window)]


def _labelled(text: str, match: re.Match[str], label: str, *, before: int = 20, after: int = 8) -> bool:
    # A number belongs to the nearest label before it: in "신한카드 결제 계좌 110-..." the
    # account wins, in "우리 회사 주문번호 ..." the order number does.
    labels = _labels_before(text, match.start(), before)
    if labels:
        return labels[-1] == label
    if after:
        right = _nfc(text[match.end() : match.end() + 3 * after])[:after]
        return any(found.lastgroup == label for found in _LABEL.finditer(right))
    return False


def _other_labelled(text: str, match: re.Match[str]) -> bool:
    labels = _labels_before(text, match.start(), 20)
    return bool(labels) and labels[-1] == "other"


# --- validators --------------------------------------------------------------------------------


_SEPARATORS = str.maketrans("", "", " -.()+")


def _digits(number: str) -> str:
    return number.translate(_SEPARATORS)


_MONTH_DAYS = (31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)
_CENTURY = {"9": 1800, "0": 1800, "1": 1900, "2": 1900, "5": 1900, "6": 1900}


def _valid_birth_date(digits: str) -> bool:
    year = _CENTURY.get(digits[6], 2000) + int(digits[:2])
    month, day = int(digits[2:4]), int(digits[4:6])
    if not (1 <= month <= 12 and 1 <= day <= _MONTH_DAYS[month - 1]):
        return False
    leap = year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)
    return month != 2 or day != 29 or leap


def _registration_checksum_ok(digits: str, *, foreigner: bool) -> bool:
    total = sum(int(d) * w for d, w in zip(digits[:12], (2, 3, 4, 5, 6, 7, 8, 9, 2, 3, 4, 5), strict=True))
    check = ((13 if foreigner else 11) - total % 11) % 10
    return check == int(digits[12])


def _registration(text: str, match: re.Match[str]) -> str | None:
    digits = _digits(match.group())
    if not _valid_birth_date(digits):
        return None
    foreigner = digits[6] in "5678"
    kind = "arn" if foreigner else "rrn"
    # Numbers issued since October 2020 have a random tail, so the legacy checksum only
    # vouches for 13 bare digits, which could as well be an order number.
    if match.group("sep") is not None or _labelled(text, match, "rrn"):
        return kind
    if _registration_checksum_ok(digits, foreigner=foreigner) and not _other_labelled(text, match):
        return kind
    return None


_LUHN_DOUBLED = (0, 2, 4, 6, 8, 1, 3, 5, 7, 9)


def _luhn_ok(digits: str) -> bool:
    total = sum(map(int, digits[-1::-2])) + sum(_LUHN_DOUBLED[int(d)] for d in digits[-2::-2])
    return total % 10 == 0


def _card(text: str, match: re.Match[str]) -> str | None:
    digits = _digits(match.group())
    if not _luhn_ok(digits):
        return None
    if match.group("bare") is None:
        return "card"
    if len(digits) in (15, 16) and not _other_labelled(text, match):
        return "card"
    return "card" if _labelled(text, match, "card") else None


def _phone(text: str, match: re.Match[str]) -> str | None:
    rep = match.group("rep")
    if rep is not None:
        # 1530-1630 reads as a time range more often than as a 대표번호.
        first, second = int(rep[:4]), int(rep[5:])
        if first % 100 < 60 and second % 100 < 60 and first < second <= 2400:
            return None
    return "phone"


def _account(text: str, match: re.Match[str]) -> str | None:
    if 10 <= len(_digits(match.group())) <= 14 and _labelled(text, match, "account", before=15, after=0):
        return "account"
    return None


def _passport(text: str, match: re.Match[str]) -> str | None:
    return "passport" if _labelled(text, match, "passport") else None


def _driver_license(text: str, match: re.Match[str]) -> str | None:
    if "-" in match.group() or _labelled(text, match, "driver_license"):
        return "driver_license"
    return None


def _brn(text: str, match: re.Match[str]) -> str | None:
    d = [int(c) for c in _digits(match.group())]
    total = sum(x * w for x, w in zip(d[:9], (1, 3, 7, 1, 3, 7, 1, 3, 5), strict=True)) + d[8] * 5 // 10
    if (10 - total % 10) % 10 != d[9]:
        return None
    if "-" in match.group() or _labelled(text, match, "brn"):
        return "brn"
    return None


def _email(text: str, match: re.Match[str]) -> str | None:
    return "email"


# --- patterns ----------------------------------------------------------------------------------

# A number must not continue a longer number, a code such as INV-2024-..., or a word.
_L = r"(?<![0-9A-Za-z_])(?<![0-9][-.])"
_LS = _L + r"(?<![A-Za-z]-)"
_R = r"(?![0-9A-Za-z_])(?![-.][0-9])"

_AREA = r"01[016789]|02|0(?:3[1-3]|4[1-4]|5[1-5]|6[1-4])|0[78]0|050[0-9]"
_INTL = r"1[016789]|2|3[1-3]|4[1-4]|5[1-5]|6[1-4]|[78]0|50[0-9]"
_SUB = r"[0-9]{3,4}[-. ]?[0-9]{4}"
_PHONE_SHAPES = (
    rf"\+82[-. ]?(?:\(0\)|0)?[-. ]?(?:{_INTL})[-. ]?{_SUB}",  # +82 drops the trunk 0, some keep it
    rf"\(?(?:{_AREA})\) ?{_SUB}",  # (02) 1234-5678, 02)1234-5678
    rf"(?:{_AREA})[-. ]?{_SUB}",
    r"(?P<rep>1[568][0-9]{2}[- ][0-9]{4})",  # 대표번호 1588-1234
)

_V = Callable[[str, re.Match[str]], str | None]
_NUMBER_MATCHERS: tuple[tuple[re.Pattern[str], _V], ...] = (
    (
        re.compile(
            _LS + r"[0-9]{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12][0-9]|3[01])(?P<sep> ?- ?| )?[0-9]{7}" + _R
        ),
        _registration,
    ),
    (re.compile(_L + "(?:" + "|".join(_PHONE_SHAPES) + ")" + _R), _phone),
    (
        re.compile(
            _LS + r"(?:[2-69][0-9]{3}(?P<cs>[- ])[0-9]{4}(?P=cs)[0-9]{4}(?P=cs)[0-9]{4}"
            r"|3[0-9]{3}(?P<as>[- ])[0-9]{6}(?P=as)[0-9]{4,5}"
            r"|(?P<bare>[2-69][0-9]{12,18}))" + _R
        ),
        _card,
    ),
    (re.compile(_LS + r"[0-9]++(?:-[0-9]++){0,4}+" + _R), _account),
    (
        re.compile(r"(?<![0-9A-Za-z])[MSRODmsrod](?:[0-9]{8}|[0-9]{3}[A-Za-z][0-9]{4})(?![0-9A-Za-z])"),
        _passport,
    ),
    (re.compile(_LS + r"(?:1[1-9]|2[0-8])(?:-[0-9]{2}-[0-9]{6}-|[0-9]{8})[0-9]{2}" + _R), _driver_license),
    (re.compile(_LS + r"[0-9]{3}(?:-[0-9]{2}-|[0-9]{2})[0-9]{5}" + _R), _brn),
)
_MATCHERS = (
    *_NUMBER_MATCHERS,
    (
        re.compile(
            r"(?<![A-Za-z0-9._%+-])[A-Za-z0-9._%+-]++@"
            r"(?:[A-Za-z0-9-]++\.(?=[A-Za-z0-9-]))++[A-Za-z]{2,63}(?![A-Za-z0-9-])"
        ),
        _email,
    ),
)
