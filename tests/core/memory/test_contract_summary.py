"""The Store contract for numbered turns and rolling summaries, on both stores."""

from __future__ import annotations

import asyncio
from dataclasses import replace

import pytest

from core.memory import Store
from core.types import ConversationKey, StoredTurn, Summary, Turn
from tests.support.redis import Probe

HOUR = 3600.0
KEY = ConversationKey(platform="slack", tenant="T1", conversation="C1", thread="1700000000.000100")
OTHER = replace(KEY, thread="1700000000.000200")
ALICE, BOB = "U-alice-7f3a", "U-bob-91c2"


def said(user_id: str, text: str) -> Turn:
    return Turn(role="user", text=text, at=1.0, user_id=user_id, user_name=f"name-{user_id}")


def answer(text: str) -> Turn:
    return Turn(role="assistant", text=text, at=2.0)


async def fold(store: Store, key: ConversationKey, count: int, text: str) -> tuple[Summary, list[StoredTurn]]:
    """Fold the oldest ``count`` unfolded turns into ``text``, as the summariser does."""
    current = await store.summary(key)
    folded = (await store.turns_after(key, seq=current.upto))[:count]
    summary = Summary(text=text, upto=folded[-1].seq)
    assert await store.save_summary(key, summary, replaces=current, folded=folded)
    return summary, folded


async def test_turns_are_numbered_in_order_and_keep_their_numbers(store: Store) -> None:
    await store.append(KEY, [said(ALICE, "q1"), answer("a1")], retention=HOUR)
    await store.append(KEY, [said(ALICE, "q2"), answer("a2")], retention=HOUR)
    numbered = await store.turns_after(KEY, seq=0)
    assert [t.turn.text for t in numbered] == ["q1", "a1", "q2", "a2"]
    seqs = [t.seq for t in numbered]
    assert seqs == sorted(set(seqs)) and seqs[0] > 0
    assert [t.turn.text for t in await store.turns_after(KEY, seq=seqs[1])] == ["q2", "a2"]
    assert await store.turns_after(KEY, seq=seqs[-1]) == []
    assert await store.turns_after(OTHER, seq=0) == []


@pytest.mark.parametrize("max_turns", [4])
async def test_numbers_survive_the_cap(store: Store, max_turns: int) -> None:
    await store.append(KEY, [said(ALICE, f"m{i}") for i in range(4)], retention=HOUR)
    before = await store.turns_after(KEY, seq=0)
    await store.append(KEY, [said(ALICE, "m4"), said(ALICE, "m5")], retention=HOUR)
    after = await store.turns_after(KEY, seq=0)
    assert [t.turn.text for t in after] == ["m2", "m3", "m4", "m5"]
    assert after[:2] == before[2:]  # trimming the oldest renumbers nothing
    assert after[2].seq > before[-1].seq


async def test_concurrent_appends_are_numbered_in_list_order(store: Store) -> None:
    async def write(i: int) -> None:
        await store.append(KEY, [said(f"U{i}", f"q{i}"), answer(f"a{i}")], retention=HOUR)

    await asyncio.gather(*(write(i) for i in range(30)))
    numbered = await store.turns_after(KEY, seq=0)
    assert [t.turn for t in numbered] == await store.history(KEY, limit=100)
    assert [t.seq for t in numbered] == sorted({t.seq for t in numbered})


async def test_a_summary_is_stored_and_read_back(store: Store) -> None:
    assert await store.summary(KEY) == Summary()
    await store.append(
        KEY, [said(ALICE, "예산은 1,250만 원이에요"), answer("네"), said(ALICE, "더")], retention=HOUR
    )
    first, _ = await fold(store, KEY, 2, "- 예산 1,250만 원")
    assert await store.summary(KEY) == first
    assert await store.summary(OTHER) == Summary()
    second, folded = await fold(store, KEY, 1, "- 예산 1,250만 원\n- 더")
    assert await store.summary(KEY) == second
    assert second.upto == folded[0].seq > first.upto


async def test_a_summary_is_refused_when_another_was_stored_meanwhile(store: Store) -> None:
    await store.append(KEY, [said(ALICE, "q1"), answer("a1")], retention=HOUR)
    folded = await store.turns_after(KEY, seq=0)
    winner = Summary(text="먼저 쓴 요약", upto=folded[-1].seq)
    assert await store.save_summary(KEY, winner, replaces=Summary(), folded=folded)
    late = Summary(text="늦은 요약", upto=folded[-1].seq)
    assert not await store.save_summary(KEY, late, replaces=Summary(), folded=folded)
    assert await store.summary(KEY) == winner


async def test_a_summary_of_turns_that_are_gone_is_refused(store: Store) -> None:
    await store.append(KEY, [said(ALICE, "비밀 계획"), answer("알겠어요")], retention=HOUR)
    folded = await store.turns_after(KEY, seq=0)
    await store.clear(KEY)
    # The same words again, as new turns: a summary read before the reset still must not land.
    await store.append(KEY, [said(ALICE, "비밀 계획"), answer("알겠어요")], retention=HOUR)
    stale = Summary(text="- 비밀 계획", upto=folded[-1].seq)
    assert not await store.save_summary(KEY, stale, replaces=Summary(), folded=folded)
    assert await store.summary(KEY) == Summary()


async def test_a_summary_folding_an_erased_turn_is_refused(store: Store) -> None:
    await store.append(
        KEY, [said(BOB, "밥의 질문"), answer("답"), said(ALICE, "앨리스 비밀")], retention=HOUR
    )
    folded = await store.turns_after(KEY, seq=0)
    await store.forget_user(platform="slack", tenant="T1", user_id=ALICE)
    retold = Summary(text="- 앨리스 비밀", upto=folded[-1].seq)
    assert not await store.save_summary(KEY, retold, replaces=Summary(), folded=folded)
    assert await store.summary(KEY) == Summary()


async def test_reset_removes_the_summary(store: Store) -> None:
    await store.append(KEY, [said(ALICE, "q"), answer("a")], retention=HOUR)
    await fold(store, KEY, 2, "요약")
    await store.clear(KEY)
    assert await store.summary(KEY) == Summary()
    assert await store.turns_after(KEY, seq=0) == []


async def test_a_summary_expires_with_its_conversation(store: Store, probe: Probe) -> None:
    await store.append(KEY, [said(ALICE, "q"), answer("a")], retention=HOUR)
    summary, _ = await fold(store, KEY, 2, "오래된 요약")
    await probe.advance(0.75 * HOUR)
    await store.append(KEY, [said(ALICE, "still here")], retention=HOUR)
    await probe.advance(0.75 * HOUR)  # 1.5 h after the summary, 0.75 h after the last append
    assert await store.summary(KEY) == summary
    await probe.advance(0.5 * HOUR)
    assert await store.summary(KEY) == Summary()
    await store.append(KEY, [said(ALICE, "fresh")], retention=HOUR)
    assert await store.summary(KEY) == Summary()  # a new conversation does not inherit it
    assert "오래된 요약" not in await probe.dump()
