"""The console's access rule, as pure functions."""

from __future__ import annotations

import pytest

from adapters.web.guard import allowed, is_loopback, is_loopback_host, session_value


@pytest.mark.parametrize(
    ("remote", "token_set", "token_ok", "expected"),
    [
        ("127.0.0.1", False, False, True),
        ("127.8.9.10", False, False, True),
        ("::1", False, False, True),
        ("::ffff:127.0.0.1", False, False, True),
        ("10.0.0.5", False, False, False),
        ("192.168.0.10", False, False, False),
        ("203.0.113.7", False, False, False),
        ("::ffff:10.0.0.5", False, False, False),
        ("", False, False, False),
        ("not-an-address", False, False, False),
        # With a token, the address no longer matters: only the token does.
        ("203.0.113.7", True, True, True),
        ("203.0.113.7", True, False, False),
        ("127.0.0.1", True, False, False),
        ("127.0.0.1", True, True, True),
    ],
)
def test_allowed(remote: str, token_set: bool, token_ok: bool, expected: bool) -> None:
    assert allowed(remote, token_set, token_ok) is expected


def test_is_loopback_knows_zone_ids_and_rejects_names() -> None:
    assert is_loopback("::1%lo")
    assert not is_loopback("localhost")
    assert not is_loopback("0.0.0.0")


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("localhost", True),
        ("localhost:3978", True),
        ("LOCALHOST:3978", True),
        ("dari.localhost:3978", True),
        ("127.0.0.1:3978", True),
        ("[::1]:3978", True),
        ("[::1]", True),
        ("bot.example.co.kr", False),
        ("rebind.attacker.example:3978", False),
        ("localhost.attacker.example", False),
        ("10.0.0.5:3978", False),
    ],
)
def test_is_loopback_host(host: str, expected: bool) -> None:
    assert is_loopback_host(host) is expected


def test_the_session_cookie_is_not_the_token() -> None:
    value = session_value(b"a-long-console-token-1234")
    assert "a-long-console-token" not in value
    assert value == session_value(b"a-long-console-token-1234")
    assert value != session_value(b"another-console-token-123")
