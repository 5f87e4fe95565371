"""Scopes, personal facts and erasure through the engine, on the real stores, across platforms."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest

from core.engine import Engine
from core.memory import Store
from core.persona import Persona, load_personas
from core.types import ChatMessage, ConversationKey, Inbound, UserKey
from tests.support.fakes import ScriptedLLM
from tests.support.redis import Probe

BOTS = Path(__file__).resolve().parents[2] / "bots"
NOW = datetime(2026, 9, 21, 5, 10, tzinfo=UTC)
PERSONAS = load_personas(BOTS)
# A small window, so that a dozen turns already fold into summaries.
SMALL = {bot: replace(p, history_turns=6, history_tokens=600) for bot, p in PERSONAS.items()}

ALICE, BOB = "U-alice-7f3a", "U-bob-91c2"
SLACK_DM = ConversationKey(platform="slack", tenant="T1", conversation=f"D-{ALICE}")
SLACK_THREAD = ConversationKey(
    platform="slack", tenant="T1", conversation="C-team", thread="1700000000.000100"
)
TEAMS_DM = ConversationKey(platform="teams", tenant="tenant-a", conversation=f"a:1{ALICE}")
TEAMS_CHANNEL = ConversationKey(platform="teams", tenant="tenant-a", conversation="19:general@thread.tacv2")
KAKAO_DM = ConversationKey(platform="kakao", tenant="kakao-bot-1", conversation=ALICE)


def echo(messages: Sequence[ChatMessage]) -> str:
    return f"네, '{messages[-1].content}'에 대해 답할게요."


def retell(messages: Sequence[ChatMessage]) -> str:
    """A summariser that retells every line it is given (the worst case for erasure)."""
    return messages[-1].content


def make(store: Store, *, personas: dict[str, Persona] = PERSONAS) -> tuple[Engine, ScriptedLLM]:
    llm = ScriptedLLM(echo)
    engine = Engine(
        store=store,
        llm=llm,
        summary_llm=ScriptedLLM(retell),
        personas=personas,
        default_model="m",
        clock=lambda: NOW,
    )
    return engine, llm


class Chat:
    """Sends messages to one conversation as one person, with fresh message ids."""

    count = 0

    def __init__(self, engine: Engine, key: ConversationKey, user: str, *, direct: bool) -> None:
        self.engine, self.key, self.user, self.direct = engine, key, user, direct

    async def __call__(self, text: str) -> str:
        Chat.count += 1
        inbound = Inbound(
            key=self.key,
            message_id=f"m{Chat.count}",
            user_id=self.user,
            user_name=self.user[2:7],
            text=text,
            is_direct=self.direct,
        )
        return await self.engine.respond(inbound)


def prompt(llm: ScriptedLLM) -> str:
    return json.dumps([m.content for m in llm.calls[-1]], ensure_ascii=False)


@pytest.mark.parametrize(
    ("dm", "group"), [(SLACK_DM, SLACK_THREAD), (TEAMS_DM, TEAMS_CHANNEL)], ids=["slack", "teams"]
)
async def test_a_personal_fact_is_used_in_private_and_never_in_a_group(
    store: Store, dm: ConversationKey, group: ConversationKey
) -> None:
    engine, llm = make(store)
    alice_dm = Chat(engine, dm, ALICE, direct=True)
    alice_group = Chat(engine, group, ALICE, direct=False)

    assert "기억했어요: 저는 재무팀이에요" in await alice_dm("기억해 줘: 저는 재무팀이에요")
    assert "기억했어요" in await alice_dm("/remember 보고서는 PDF로 주세요")
    await alice_dm("이번 주 일정 정리해 주세요")
    assert "저는 재무팀이에요" in prompt(llm) and "보고서는 PDF로 주세요" in prompt(llm)

    await alice_group("이번 주 일정 정리해 주세요")
    assert "재무팀" not in prompt(llm) and "PDF" not in prompt(llm)
    for command in ("기억 목록", "/memory", "기억 삭제 1", "기억해 줘: 단체방에서 한 말"):
        reply = await alice_group(command)
        assert "1:1 대화에서만" in reply or "1:1 chat" in reply
        assert "재무팀" not in reply
    assert len(await store.facts(UserKey(platform=dm.platform, tenant=dm.tenant, user_id=ALICE))) == 2

    listed = await alice_dm("기억 목록")
    assert "1. 저는 재무팀이에요" in listed and "2. 보고서는 PDF로 주세요" in listed
    assert "1번 내용을 지웠어요: 저는 재무팀이에요" in await alice_dm("기억 삭제 1")
    await alice_dm("다시 질문이에요")
    assert "재무팀" not in prompt(llm) and "보고서는 PDF로 주세요" in prompt(llm)


async def test_what_someone_says_in_a_dm_never_reaches_a_group_or_another_dm(store: Store) -> None:
    engine, llm = make(store)
    await Chat(engine, SLACK_DM, ALICE, direct=True)("앨리스의 디엠 비밀: 이직 준비 중")
    await Chat(engine, SLACK_THREAD, BOB, direct=False)("지난 논의 이어서 할까요?")
    assert "이직" not in prompt(llm)
    await Chat(engine, SLACK_THREAD, ALICE, direct=False)("저도 참여할게요")
    assert "이직" not in prompt(llm)
    await Chat(engine, replace(SLACK_DM, conversation=f"D-{BOB}"), BOB, direct=True)("제 디엠이에요")
    assert "이직" not in prompt(llm)
    # A thread is shared by its participants: Bob sees what Alice said there.
    await Chat(engine, SLACK_THREAD, BOB, direct=False)("앨리스 님 의견은요?")
    assert "저도 참여할게요" in prompt(llm)
    await Chat(engine, replace(SLACK_THREAD, thread="1700000000.000999"), BOB, direct=False)("다른 스레드")
    assert "저도 참여할게요" not in prompt(llm)


@pytest.mark.parametrize(
    ("here", "there"),
    [
        (KAKAO_DM, replace(KAKAO_DM, tenant="kakao-bot-2")),  # another Kakao channel
        (KAKAO_DM, replace(KAKAO_DM, bot="formal")),
        (KAKAO_DM, replace(KAKAO_DM, platform="slack")),
        (KAKAO_DM, replace(KAKAO_DM, platform="teams")),
        (SLACK_DM, replace(SLACK_DM, tenant="T2")),  # another Slack workspace
        (SLACK_DM, replace(SLACK_DM, bot="formal")),
        (TEAMS_DM, replace(TEAMS_DM, tenant="tenant-b")),
    ],
    ids=["kakao-tenant", "kakao-bot", "slack", "teams", "slack-workspace", "slack-bot", "teams-tenant"],
)
async def test_nothing_crosses_platforms_tenants_workspaces_or_bots(
    store: Store, here: ConversationKey, there: ConversationKey
) -> None:
    engine, llm = make(store)
    mine, elsewhere = Chat(engine, here, ALICE, direct=True), Chat(engine, there, ALICE, direct=True)
    await mine("기억해 줘: 저는 은하수 프로젝트 담당이에요")
    await mine("예산은 1,250만 원이에요")
    await elsewhere("제가 무슨 프로젝트 담당이죠? 예산은요?")
    assert "은하수" not in prompt(llm) and "1,250만" not in prompt(llm)
    assert "은하수" not in await elsewhere("/memory")
    await mine("제 예산 다시 알려 주세요")
    assert "은하수" in prompt(llm) and "1,250만" in prompt(llm)


async def test_forget_is_answered_and_nothing_said_before_reaches_a_later_prompt(
    store: Store, probe: Probe
) -> None:
    engine, llm = make(store, personas=SMALL)
    alice_dm = Chat(engine, SLACK_DM, ALICE, direct=True)
    alice_group = Chat(engine, SLACK_THREAD, ALICE, direct=False)
    bob_group = Chat(engine, SLACK_THREAD, BOB, direct=False)
    await alice_dm("기억해 줘: 제 암호는 오렌지펭귄이에요")
    for i in range(8):
        await alice_dm(f"오렌지펭귄 관련 메모 {i}: 출장비 정산 초안")
        await bob_group(f"밥의 안건 {i}")
        await alice_group(f"오렌지펭귄 일정 공유 {i}")
    await engine.settle()
    assert "오렌지펭귄" in (await store.summary(SLACK_DM)).text
    assert "오렌지펭귄" in (await store.summary(SLACK_THREAD)).text  # the worst case: it retells her
    await store.put_pending(SLACK_DM, "오렌지펭귄 답변 대기", ttl=3600)

    assert "모두 지웠어요" in await alice_dm("잊어줘")
    await engine.settle()

    dump = await probe.dump()
    assert "밥의 안건" in dump  # Bob's words in the shared thread stay
    assert "오렌지펭귄" not in dump and ALICE not in dump
    await alice_dm("제 암호가 뭐였죠?")
    assert "오렌지펭귄" not in prompt(llm)
    await bob_group("앨리스 님이 공유한 일정 다시 알려 주세요")
    assert "오렌지펭귄" not in prompt(llm) and "밥의 안건 7" in prompt(llm)
    assert "아직 기억하고 있는 내용이 없어요" in await alice_dm("기억 목록")
    await engine.close()
