"""Nasty request bodies and values, the same for every door.

``bodies`` are whole request bodies (bytes as they go on the wire); ``NASTY_VALUES`` are JSON
values that each door's tests put into the fields of a real payload.
"""

from __future__ import annotations

import json
from typing import Any

__all__ = ["CONTENT_TYPES", "NASTY_TEXT", "NASTY_VALUES", "bodies", "deep", "sized", "value_id"]

BOM = b"\xef\xbb\xbf"

NASTY_TEXT: tuple[str, ...] = (
    "",
    " \t\n",
    "\x00",
    "a\x00b",
    "\ufeff",
    "\ud800",  # a lone high surrogate: valid JSON ("\ud800"), not encodable as UTF-8
    "\udfff\ud800",  # a reversed pair
    "안녕\ud83d",  # half an emoji
    "\u202e뒤집힌 글자",
    "\u1100\u1161\u11a8",  # NFD Hangul
    "e\u0301" * 50,  # combining marks
    "<at>dari</at>",
    "<@W111> <!channel> <https://evil.example|click>",
    "${jndi:ldap://127.0.0.1:9/a}",
    "'; DROP TABLE turns; --",
    "{{7*7}} %s %n %(x)s",
    "../../../../etc/passwd",
    "초기화",
    "/reset",
    "잊어줘",
    "😀" * 300,
    "가" * 2000,
)

NASTY_VALUES: tuple[Any, ...] = (
    *NASTY_TEXT,
    None,
    True,
    0,
    -1,
    2**63,
    10**400,
    1.5,
    float("nan"),
    float("inf"),
    float("-inf"),
    -0.0,
    [],
    {},
    [None],
    {"": None},
    [[[[[[[[[[[]]]]]]]]]]],
)

CONTENT_TYPES: tuple[str, ...] = (
    "application/json",
    "application/json; charset=utf-8",
    "application/json; charset=latin-1",
    "text/plain",
    "application/x-www-form-urlencoded",
    "multipart/form-data; boundary=xyz",
    "application/octet-stream",
    "",
)


def value_id(value: object) -> str:
    """A short test id for a nasty value (the long ones would flood the report)."""
    shown = ascii(value)
    return shown if len(shown) <= 24 else f"{shown[:16]}...{len(shown)}"


def deep(levels: int, *, kind: str = "array") -> bytes:
    """A JSON value nested ``levels`` deep (arrays or objects)."""
    if kind == "array":
        return b"[" * levels + b"]" * levels
    return b'{"a":' * levels + b"1" + b"}" * levels


def sized(payload: dict[str, Any], *, field_path: tuple[str, ...], total: int) -> bytes:
    """``payload`` with the string at ``field_path`` grown until the body is ``total`` bytes long."""
    doc = json.loads(json.dumps(payload))
    target = doc
    for key in field_path[:-1]:
        target = target[key]
    target[field_path[-1]] = ""
    empty = len(json.dumps(doc).encode())
    target[field_path[-1]] = "x" * max(0, total - empty)
    body = json.dumps(doc).encode()
    assert len(body) == total, (len(body), total)
    return body


def bodies(*, limit: int) -> dict[str, bytes]:
    """Door-independent bad bodies; ``limit`` is the service's body size limit."""
    surrogate = json.dumps({"text": "\ud800"}, ensure_ascii=False).encode("utf-8", "surrogatepass")
    return {
        "empty": b"",
        "whitespace": b" \r\n\t ",
        "null bytes": b"\x00" * 64,
        "null byte in JSON text": b'{"type": "message"\x00}',
        "invalid UTF-8": b'{"type": "\xff\xfe\xfd"}',
        "overlong UTF-8": b'{"type": "\xc0\xaf"}',
        "truncated UTF-8": b'{"type": "\xea\xb0"}',
        "UTF-8 encoded surrogate (CESU-8)": surrogate,
        "UTF-8 BOM then JSON": BOM + b'{"type": "message"}',
        "UTF-16 JSON": '{"type": "message"}'.encode("utf-16"),
        "NaN": b'{"type": NaN, "id": NaN}',
        "Infinity": b'{"type": -Infinity}',
        "bare NaN": b"NaN",
        "1e999": b'{"type": 1e999, "value": 1e999}',
        "5000-digit integer": b'{"type": ' + b"9" * 5000 + b"}",
        "escaped lone surrogate": b'{"type": "\\ud800", "text": "\\udfff"}',
        "escaped null": b'{"type": "\\u0000"}',
        "duplicate keys": b'{"type": "message", "type": 5, "type": null}',
        "array": b"[]",
        "array of objects": b'[{"type": "message"}]',
        "null": b"null",
        "string": b'"message"',
        "number": b"12",
        "true": b"true",
        "truncated JSON": b'{"type": "mess',
        "trailing garbage": b'{"type": "message"} {"type": "message"}',
        "single quotes": b"{'type': 'message'}",
        "form": b"type=message&text=%FF%FE&a",
        "xml": b"<?xml version='1.0'?><a/>",
        "deep arrays": deep(min(100_000, limit // 2 - 1)),
        "deep objects": deep(min(20_000, limit // 7), kind="object"),
        "just under the limit": b'{"pad": "' + b"x" * (limit - 12) + b'"}',
        "over the limit": b'{"pad": "' + b"x" * (limit + 1) + b'"}',
    }
