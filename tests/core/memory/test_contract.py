"""The Store contract: every point holds for the embedded store and for Redis alike."""

from __future__ import annotations

import asyncio
from dataclasses import replace

import pytest

from core.memory import Store
from core.memory.base import PENDING_SEPARATOR
from core.types import ConversationKey, Turn
from tests.support.redis import Probe

HOUR = 3600.0
KEY = ConversationKey(platform="slack", tenant="T1", conversation="C1")
OTHER = ConversationKey(platform="slack", tenant="T1", conversation="C2")
ALICE, BOB = "U-alice-7f3a", "U-bob-91c2"


def said(user_id: str, text: str) -> Turn:
    return Turn(role="user", text=text, at=1.0, user_id=user_id, user_name=f"name-{user_id}")


def answer(text: str) -> Turn:
    return Turn(role="assistant", text=text, at=2.0)


def texts(turns: list[Turn]) -> list[str]:
    return [t.text for t in turns]


async def test_claim_is_true_once_then_again_after_its_ttl(store: Store, probe: Probe) -> None:
    assert await store.claim("slack:default:T1:m1", ttl=60) is True
    assert await store.claim("slack:default:T1:m1", ttl=60) is False
    assert await store.claim("slack:default:T1:m2", ttl=60) is True
    await probe.advance(30)
    assert await store.claim("slack:default:T1:m1", ttl=60) is False
    await probe.advance(31)
    assert await store.claim("slack:default:T1:m1", ttl=60) is True
    assert await store.claim("slack:default:T1:m1", ttl=60) is False


async def test_concurrent_claims_of_one_token_let_exactly_one_through(store: Store) -> None:
    results = await asyncio.gather(*(store.claim("kakao:default:B1:m9", ttl=60) for _ in range(20)))
    assert results.count(True) == 1


async def test_history_gives_the_last_turns_oldest_first(store: Store) -> None:
    await store.append(KEY, [said(ALICE, f"m{i}") for i in range(5)], retention=HOUR)
    await store.append(KEY, [said(ALICE, "m5"), answer("m6")], retention=HOUR)
    assert texts(await store.history(KEY, limit=3)) == ["m4", "m5", "m6"]
    assert texts(await store.history(KEY, limit=100)) == [f"m{i}" for i in range(7)]
    assert await store.history(KEY, limit=0) == []
    assert await store.history(OTHER, limit=10) == []


async def test_turns_come_back_exactly_as_written(store: Store) -> None:
    written = [
        Turn(
            role="user",
            text='회의실 예약 부탁해요 😀\n"따옴표" {괄호}',
            at=1712345678.125,
            user_id="29:1abc;x",
            user_name="김철수",
            message_id="1712345678.000100",
        ),
        Turn(role="assistant", text="네, 예약했어요.", at=1712345679.5, message_id="1712345678.000100"),
    ]
    await store.append(KEY, written, retention=HOUR)
    assert await store.history(KEY, limit=10) == written


@pytest.mark.parametrize("max_turns", [5])
async def test_append_keeps_at_most_max_turns(store: Store, max_turns: int) -> None:
    for i in range(4):
        await store.append(KEY, [said(ALICE, f"{i}q"), answer(f"{i}a")], retention=HOUR)
    assert texts(await store.history(KEY, limit=100)) == ["1a", "2q", "2a", "3q", "3a"][-max_turns:]
    await store.append(KEY, [said(ALICE, f"big{i}") for i in range(7)], retention=HOUR)
    assert texts(await store.history(KEY, limit=100)) == [f"big{i}" for i in range(7)][-max_turns:]


async def test_clear_removes_the_conversation_and_its_pending_answer(store: Store) -> None:
    for key in (KEY, OTHER):
        await store.append(key, [said(ALICE, f"hi {key.conversation}")], retention=HOUR)
        await store.put_pending(key, f"answer {key.conversation}", ttl=60)
    await store.clear(KEY)
    assert await store.history(KEY, limit=10) == []
    assert await store.pop_pending(KEY) is None
    assert texts(await store.history(OTHER, limit=10)) == ["hi C2"]
    assert await store.pop_pending(OTHER) == "answer C2"


@pytest.mark.parametrize(
    "other",
    [
        replace(KEY, platform="teams"),
        replace(KEY, tenant="T2"),
        replace(KEY, bot="hr"),
        replace(KEY, conversation="C2"),
        replace(KEY, thread="1700000000.000100"),
        # Same characters, other split: quoting keeps the ids apart.
        ConversationKey(platform="slack", tenant="T1", conversation="C1:x"),
    ],
    ids=["platform", "tenant", "bot", "conversation", "thread", "quoting"],
)
async def test_conversations_never_see_each_others_data(store: Store, other: ConversationKey) -> None:
    base = replace(KEY, thread="x") if other.conversation == "C1:x" else KEY
    await store.append(base, [said(ALICE, "base")], retention=HOUR)
    await store.append(other, [said(ALICE, "other")], retention=HOUR)
    await store.put_pending(base, "base answer", ttl=60)
    assert texts(await store.history(base, limit=10)) == ["base"]
    assert texts(await store.history(other, limit=10)) == ["other"]
    assert await store.pop_pending(other) is None
    await store.clear(other)
    assert texts(await store.history(base, limit=10)) == ["base"]
    assert await store.pop_pending(base) == "base answer"


async def test_forget_user_erases_the_user_and_the_answers_to_them(store: Store, probe: Probe) -> None:
    dm = ConversationKey(platform="slack", tenant="T1", conversation="D-alice")
    hr_dm = ConversationKey(platform="slack", tenant="T1", conversation="D-alice-hr", bot="hr")
    group = ConversationKey(platform="slack", tenant="T1", conversation="C-team", thread="171.1")
    dm_turns = [
        said(ALICE, "앨리스 비밀 1"),
        answer("앨리스 답 1"),
        said(ALICE, "앨리스 비밀 2"),
        answer("답 2"),
    ]
    await store.append(dm, dm_turns, retention=HOUR)
    await store.put_pending(dm, "앨리스 대기 답", ttl=60)
    await store.append(hr_dm, [said(ALICE, "앨리스 비밀 3"), answer("앨리스 답 3")], retention=HOUR)
    group_turns = [
        said(BOB, "밥 질문 1"),
        answer("밥 답 1"),
        said(ALICE, "앨리스 비밀 4"),
        answer("앨리스 답 4"),
        said(BOB, "밥 질문 2"),
        said(ALICE, "앨리스 비밀 5"),
        answer("앨리스 답 5"),
        said(ALICE, "앨리스 비밀 6"),
        said(BOB, "밥 질문 3"),
        answer("밥 답 3"),
    ]
    await store.append(group, group_turns, retention=HOUR)
    await store.put_pending(group, "그룹 대기 답", ttl=60)

    # dm: 4 turns + pending; hr_dm: 2 turns; group: 4 of Alice's turns + 2 answers to her.
    assert await store.forget_user(platform="slack", tenant="T1", user_id=ALICE) == 5 + 2 + 5

    assert await store.history(dm, limit=100) == []
    assert await store.pop_pending(dm) is None
    assert await store.history(hr_dm, limit=100) == []
    remaining = ["밥 질문 1", "밥 답 1", "밥 질문 2", "밥 질문 3", "밥 답 3"]
    assert texts(await store.history(group, limit=100)) == remaining
    everything = await probe.dump()
    assert "밥 질문 3" in everything  # the dump does see stored text
    assert ALICE not in everything
    assert "앨리스" not in everything
    assert await store.forget_user(platform="slack", tenant="T1", user_id=ALICE) == 0
    # A shared conversation's pending answer belongs to the group; it stays.
    assert await store.pop_pending(group) == "그룹 대기 답"


async def test_forget_user_leaves_other_tenants_and_platforms_alone(store: Store) -> None:
    here = ConversationKey(platform="slack", tenant="T1", conversation="D1")
    elsewhere = [
        ConversationKey(platform="slack", tenant="T2", conversation="D1"),
        ConversationKey(platform="teams", tenant="T1", conversation="D1"),
    ]
    for key in [here, *elsewhere]:
        await store.append(key, [said(ALICE, f"hello from {key.id}"), answer("hi")], retention=HOUR)
    await store.append(OTHER, [said(BOB, "bob alone")], retention=HOUR)

    assert await store.forget_user(platform="slack", tenant="T1", user_id=ALICE) == 2
    assert await store.history(here, limit=10) == []
    for key in elsewhere:
        assert texts(await store.history(key, limit=10)) == [f"hello from {key.id}", "hi"]
    assert texts(await store.history(OTHER, limit=10)) == ["bob alone"]
    assert await store.forget_user(platform="slack", tenant="T1", user_id="U-nobody") == 0


async def test_pending_answers_are_all_kept_and_taken_once(store: Store) -> None:
    # Two slow answers before the user writes again (no callback): both are given, oldest first.
    assert await store.pop_pending(KEY) is None
    await store.put_pending(KEY, "첫 번째", ttl=60)
    await store.put_pending(KEY, "두 번째", ttl=60)
    assert await store.pop_pending(KEY) == "첫 번째" + PENDING_SEPARATOR + "두 번째"
    assert await store.pop_pending(KEY) is None


async def test_pending_answer_expires_after_its_ttl(store: Store, probe: Probe) -> None:
    await store.put_pending(KEY, "늦은 답", ttl=60)
    await probe.advance(59)
    assert await store.pop_pending(KEY) == "늦은 답"
    await store.put_pending(KEY, "늦은 답", ttl=60)
    await probe.advance(61)
    assert await store.pop_pending(KEY) is None
    await store.put_pending(KEY, "지난 답", ttl=60)
    await probe.advance(61)
    await store.put_pending(KEY, "새 답", ttl=60)
    assert await store.pop_pending(KEY) == "새 답", "an expired answer is not given with a new one"


async def test_conversation_expires_retention_after_its_last_write(store: Store, probe: Probe) -> None:
    await store.append(KEY, [said(ALICE, "first")], retention=HOUR)
    await probe.advance(0.75 * HOUR)
    await store.append(KEY, [said(ALICE, "second")], retention=HOUR)
    await probe.advance(0.75 * HOUR)  # 1.5 h after the first write, 0.75 h after the last
    assert texts(await store.history(KEY, limit=10)) == ["first", "second"]
    await probe.advance(0.5 * HOUR)
    assert await store.history(KEY, limit=10) == []
    await store.append(KEY, [said(ALICE, "fresh")], retention=HOUR)
    assert texts(await store.history(KEY, limit=10)) == ["fresh"]


async def test_concurrent_appends_all_land_whole(store: Store) -> None:
    async def write(i: int) -> None:
        await store.append(KEY, [said(f"U{i}", f"q{i}"), answer(f"a{i}")], retention=HOUR)

    await asyncio.gather(*(write(i) for i in range(50)))
    turns = await store.history(KEY, limit=1000)
    assert len(turns) == 100
    pairs = [(turns[j].text, turns[j + 1].text) for j in range(0, 100, 2)]
    assert sorted(pairs) == sorted((f"q{i}", f"a{i}") for i in range(50))


@pytest.mark.parametrize("max_turns", [40])
async def test_concurrent_appends_respect_the_cap(store: Store, max_turns: int) -> None:
    async def write(i: int) -> None:
        await store.append(KEY, [said(f"U{i}", f"q{i}"), answer(f"a{i}")], retention=HOUR)

    await asyncio.gather(*(write(i) for i in range(50)))
    turns = await store.history(KEY, limit=1000)
    assert len(turns) == max_turns
    # Each append is atomic, so with an even cap only whole question/answer pairs survive.
    questions = {turns[j].text for j in range(0, max_turns, 2)}
    assert len(questions) == max_turns // 2
    assert all(turns[j + 1].text == "a" + turns[j].text[1:] for j in range(0, max_turns, 2))


async def test_lock_admits_waiters_one_at_a_time_in_arrival_order(store: Store) -> None:
    order: list[int] = []
    inside = 0
    started = [asyncio.Event() for _ in range(10)]

    async def worker(i: int) -> None:
        nonlocal inside
        started[i].set()  # same step as queueing on the lock: no await in between
        async with store.lock(KEY):
            inside += 1
            assert inside == 1
            order.append(i)
            await asyncio.sleep(0)  # give an intruder the chance to break in
            inside -= 1

    async with store.lock(KEY):
        tasks = [asyncio.create_task(worker(i)) for i in range(10)]
        for event in started:
            await event.wait()
        assert order == []
    await asyncio.gather(*tasks)
    assert order == list(range(10))


async def test_locks_of_different_conversations_do_not_block_each_other(store: Store) -> None:
    entered = asyncio.Event()

    async def other() -> None:
        async with store.lock(OTHER):
            entered.set()

    async with store.lock(KEY):
        task = asyncio.create_task(other())
        await asyncio.wait_for(entered.wait(), timeout=5)
    await task


async def test_lock_is_released_when_the_turn_fails(store: Store) -> None:
    with pytest.raises(RuntimeError, match="boom"):
        async with store.lock(KEY):
            raise RuntimeError("boom")
    async with asyncio.timeout(5), store.lock(KEY):
        pass


async def test_ping_answers_while_the_store_is_up(store: Store) -> None:
    await store.ping()
