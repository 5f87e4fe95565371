from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.types import ConversationKey, UserKey

# Platform ids hold ':', ';', '@', '{', '%' and Hangul; lone surrogates cannot be stored at all.
_CHARS = st.characters(exclude_categories=["Cs"])
_TEXT = st.text(_CHARS, max_size=30)
_SOME = st.text(_CHARS, min_size=1, max_size=30)


@given(platform=_SOME, tenant=_TEXT, conversation=_SOME, thread=_TEXT, bot=_SOME)
def test_a_conversation_key_comes_back_from_its_id(
    platform: str, tenant: str, conversation: str, thread: str, bot: str
) -> None:
    key = ConversationKey(platform=platform, tenant=tenant, conversation=conversation, thread=thread, bot=bot)
    assert ConversationKey.from_id(key.id) == key


@pytest.mark.parametrize("value", ["slack:default:T1", "a:b:c:d:e:f", ""])
def test_a_string_that_is_no_id_is_refused(value: str) -> None:
    with pytest.raises(ValueError, match="not a conversation id"):
        ConversationKey.from_id(value)


def test_user_keys_keep_people_bots_and_tenants_apart() -> None:
    alice = UserKey(platform="slack", tenant="T1", user_id="U1")
    assert alice.id == "slack:default:T1:U1"
    others = [
        UserKey(platform="slack", tenant="T1", user_id="U1", bot="hr"),
        UserKey(platform="slack", tenant="T1:U1", user_id=""),
        UserKey(platform="teams", tenant="T1", user_id="U1"),
    ]
    assert len({alice.id, *(o.id for o in others)}) == 4
