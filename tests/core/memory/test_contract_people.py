"""The Store contract for personal facts, erasure, export and retention, on both stores."""

from __future__ import annotations

from dataclasses import replace

import pytest

from core.memory import EmbeddedStore, Store
from core.memory.base import Remembered
from core.types import ConversationKey, Summary, Turn, UserKey
from tests.support.redis import Probe

HOUR = 3600.0
ALICE, BOB = "U-alice-7f3a", "U-bob-91c2"
ME = UserKey(platform="slack", tenant="T1", user_id=ALICE)
DM = ConversationKey(platform="slack", tenant="T1", conversation="D-alice")
GROUP = ConversationKey(platform="slack", tenant="T1", conversation="C-team", thread="171.1")


def said(user_id: str, text: str) -> Turn:
    return Turn(role="user", text=text, at=1.0, user_id=user_id, user_name=f"name-{user_id}")


def answer(text: str) -> Turn:
    return Turn(role="assistant", text=text, at=2.0)


async def remember(store: Store, user: UserKey, text: str, *, limit: int = 5) -> Remembered:
    return await store.remember(user, text, limit=limit, retention=HOUR)


async def texts(store: Store, user: UserKey) -> list[str]:
    return [fact.text for fact in await store.facts(user)]


async def fold_all(store: Store, key: ConversationKey, text: str) -> None:
    folded = await store.turns_after(key, seq=0)
    assert await store.save_summary(key, Summary(text, folded[-1].seq), replaces=Summary(), folded=folded)


async def test_facts_are_numbered_oldest_first_and_deleted_one_by_one(store: Store) -> None:
    assert await store.facts(ME) == []
    for fact in ("저는 재무팀이에요", "점심은 12시 반", "보고서는 PDF로"):
        assert await remember(store, ME, fact) is Remembered.ADDED
    assert await texts(store, ME) == ["저는 재무팀이에요", "점심은 12시 반", "보고서는 PDF로"]
    deleted = await store.forget_fact(ME, 2)
    assert deleted is not None and deleted.text == "점심은 12시 반"
    assert await texts(store, ME) == ["저는 재무팀이에요", "보고서는 PDF로"]
    for number in (0, 3, -1):
        assert await store.forget_fact(ME, number) is None
    assert await texts(store, ME) == ["저는 재무팀이에요", "보고서는 PDF로"]


async def test_a_fact_is_kept_once_and_the_cap_holds(store: Store) -> None:
    assert await remember(store, ME, "하나", limit=2) is Remembered.ADDED
    assert await remember(store, ME, "하나", limit=2) is Remembered.DUPLICATE
    assert await remember(store, ME, "둘", limit=2) is Remembered.ADDED
    assert await remember(store, ME, "셋", limit=2) is Remembered.FULL
    assert await remember(store, ME, "둘", limit=2) is Remembered.DUPLICATE
    assert await texts(store, ME) == ["하나", "둘"]


@pytest.mark.parametrize(
    "other",
    [
        replace(ME, user_id=BOB),
        replace(ME, bot="hr"),
        replace(ME, tenant="T2"),
        replace(ME, platform="teams"),
        UserKey(platform="slack", tenant="T1:U-alice-7f3a", user_id=""),  # quoting keeps ids apart
    ],
    ids=["user", "bot", "tenant", "platform", "quoting"],
)
async def test_facts_never_cross_people_bots_tenants_or_platforms(store: Store, other: UserKey) -> None:
    await remember(store, ME, "앨리스의 사실")
    await remember(store, other, "다른 사람의 사실")
    assert await texts(store, ME) == ["앨리스의 사실"]
    assert await texts(store, other) == ["다른 사람의 사실"]
    assert await store.forget_fact(other, 1) is not None
    assert await texts(store, ME) == ["앨리스의 사실"]


async def test_facts_expire_retention_after_the_last_word_to_that_bot(store: Store, probe: Probe) -> None:
    hr = replace(ME, bot="hr")
    await remember(store, ME, "기본 봇에게 한 말")
    await remember(store, hr, "인사 봇에게 한 말")
    await probe.advance(0.75 * HOUR)
    await store.append(DM, [said(ALICE, "still talking"), answer("네")], retention=HOUR)  # the default bot
    await probe.advance(0.5 * HOUR)
    assert await texts(store, ME) == ["기본 봇에게 한 말"]
    assert await store.facts(hr) == []
    await probe.advance(0.6 * HOUR)
    assert await store.facts(ME) == []
    assert await remember(store, ME, "새로 시작") is Remembered.ADDED
    assert await texts(store, ME) == ["새로 시작"]


async def test_forget_user_erases_facts_summaries_and_pending_answers(store: Store, probe: Probe) -> None:
    elsewhere = ConversationKey(platform="slack", tenant="T2", conversation="D-alice")
    await store.append(DM, [said(ALICE, "앨리스 비밀 계획"), answer("앨리스 답")], retention=HOUR)
    await fold_all(store, DM, "- 앨리스 비밀 계획 요약")
    await store.put_pending(DM, "앨리스 대기 답", ttl=60)
    await store.append(GROUP, [said(BOB, "밥 질문"), answer("밥 답")], retention=HOUR)
    await store.append(GROUP, [said(ALICE, "앨리스 그룹 발언"), answer("앨리스 그룹 답")], retention=HOUR)
    await fold_all(store, GROUP, "- 밥 질문, 앨리스 그룹 발언")
    await remember(store, ME, "앨리스 사실 1")
    await remember(store, replace(ME, bot="hr"), "앨리스 사실 2")
    await store.append(elsewhere, [said(ALICE, "다른 회사 대화")], retention=HOUR)
    await remember(store, replace(ME, tenant="T2"), "다른 회사 사실")

    # dm: 2 turns + summary + pending; group: her turn, its answer, the summary; 2 facts.
    assert await store.forget_user(platform="slack", tenant="T1", user_id=ALICE) == 4 + 3 + 2

    assert await store.summary(DM) == Summary()
    assert await store.summary(GROUP) == Summary()  # it retold her; dropped
    assert [t.text for t in await store.history(GROUP, limit=10)] == ["밥 질문", "밥 답"]
    assert await store.facts(ME) == [] and await store.facts(replace(ME, bot="hr")) == []
    dump = await probe.dump()
    assert "밥 질문" in dump  # the dump does see stored text
    for text in ("앨리스 비밀", "앨리스 그룹", "앨리스 사실", "앨리스 대기", "앨리스 답"):
        assert text not in dump
    # Other tenants are someone else's data controller: untouched.
    assert await texts(store, replace(ME, tenant="T2")) == ["다른 회사 사실"]
    assert [t.text for t in await store.history(elsewhere, limit=10)] == ["다른 회사 대화"]
    await store.forget_user(platform="slack", tenant="T2", user_id=ALICE)
    await store.claim("slack:default:T1:D-alice:m1", ttl=60)  # a dedupe mark names no one
    assert ALICE not in await probe.dump()
    for tenant in ("T1", "T2"):
        assert (await store.export_user(platform="slack", tenant=tenant, user_id=ALICE)).items == 0


@pytest.mark.parametrize("max_turns", [4])
async def test_a_summary_retelling_trimmed_turns_is_dropped_too(store: Store, max_turns: int) -> None:
    await store.append(GROUP, [said(ALICE, "앨리스가 먼저 한 말"), answer("답")], retention=HOUR)
    await fold_all(store, GROUP, "- 앨리스가 먼저 한 말")
    await store.append(GROUP, [said(BOB, f"밥 {i}") for i in range(4)], retention=HOUR)
    assert all(t.user_id == BOB for t in await store.history(GROUP, limit=10))  # hers were trimmed
    assert await store.forget_user(platform="slack", tenant="T1", user_id=ALICE) == 1
    assert await store.summary(GROUP) == Summary()


async def test_export_user_gives_their_turns_summaries_and_facts(store: Store) -> None:
    await store.append(DM, [said(ALICE, "제 프로젝트는 은하수예요"), answer("기억할게요")], retention=HOUR)
    await fold_all(store, DM, "- 프로젝트: 은하수")
    await store.append(GROUP, [said(BOB, "밥 질문"), answer("밥 답")], retention=HOUR)
    await store.append(GROUP, [said(ALICE, "앨리스 발언"), answer("앨리스 답")], retention=HOUR)
    await fold_all(store, GROUP, "- 밥과 앨리스")
    await remember(store, ME, "저는 재무팀이에요")
    await remember(store, replace(ME, bot="hr"), "연차 3일 남음")
    await remember(store, replace(ME, user_id=BOB), "밥의 사실")

    data = await store.export_user(platform="slack", tenant="T1", user_id=ALICE)
    by_key = {c.key: c for c in data.conversations}
    assert set(by_key) == {DM, GROUP}
    private, shared = by_key[DM], by_key[GROUP]
    assert not private.shared and shared.shared
    assert [t.turn.text for t in private.turns] == ["제 프로젝트는 은하수예요", "기억할게요"]
    assert private.summary is not None and private.summary.text == "- 프로젝트: 은하수"
    assert [t.turn.text for t in shared.turns] == ["앨리스 발언", "앨리스 답"]
    assert shared.summary is None  # it mixes other people's words
    assert sorted((bot, f.text) for bot, f in data.facts) == [
        ("default", "저는 재무팀이에요"),
        ("hr", "연차 3일 남음"),
    ]
    assert data.items == 4 + 1 + 2
    assert (await store.export_user(platform="slack", tenant="T1", user_id="U-nobody")).items == 0


async def test_everything_expires_after_retention_and_leaves_no_trace(store: Store, probe: Probe) -> None:
    await store.append(DM, [said(ALICE, "보관 기한이 있는 말"), answer("네")], retention=HOUR)
    await fold_all(store, DM, "- 보관 기한이 있는 요약")
    await remember(store, ME, "보관 기한이 있는 사실")
    await store.put_pending(DM, "보관 기한이 있는 답", ttl=0.5 * HOUR)
    await store.claim("slack:default:T1:D-alice:m1", ttl=HOUR)
    await probe.advance(HOUR + 1)
    assert await store.history(DM, limit=10) == []
    assert await store.summary(DM) == Summary()
    assert await store.facts(ME) == []
    assert await store.pop_pending(DM) is None
    assert (await store.export_user(platform="slack", tenant="T1", user_id=ALICE)).items == 0
    if isinstance(store, EmbeddedStore):
        await store.purge()  # rows are invisible at once, deleted on the next purge
    # sqlite_sequence holds only the highest turn number: bookkeeping, no one's data.
    assert [
        line for line in (await probe.dump()).splitlines() if not line.startswith("sqlite_sequence")
    ] == []
