"""What a Kakao job delivers after a takeover, from the marks of the attempt that died."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from adapters.kakao.deliver import KakaoDeliverer, kakao_target
from adapters.kakao.handoff import Handoffs
from adapters.metrics import METRICS, Metrics
from adapters.runtime import ENGINE, HTTP
from adapters.settings import DEFAULT_BOTS_DIR
from adapters.worker import Delivery
from core.engine import Engine
from core.jobs import Claim, new_job
from core.jobs_local import LocalQueue
from core.persona import load_personas
from core.types import ConversationKey, Inbound
from tests.support.fakes import InMemoryStore, ScriptedLLM
from tests.support.service import CallbackReceiver

KEY = ConversationKey("kakao", "bot-1", "kakao-user-1")


@dataclass
class Door:
    deliverer: KakaoDeliverer
    store: InMemoryStore
    llm: ScriptedLLM
    callbacks: CallbackReceiver


@pytest.fixture
async def door() -> AsyncIterator[Door]:
    store, llm = InMemoryStore(), ScriptedLLM("회의실은 3층이에요.")
    app = web.Application()
    app[ENGINE] = Engine(store=store, llm=llm, personas=load_personas(DEFAULT_BOTS_DIR), default_model="m")
    app[METRICS] = Metrics()
    async with aiohttp.ClientSession() as http, CallbackReceiver() as callbacks:
        app[HTTP] = http
        yield Door(KakaoDeliverer(app, Handoffs()), store, llm, callbacks)


def delivery(door: Door, question: str, **marks: str) -> Delivery:
    inbound = Inbound(key=KEY, message_id=question, user_id="kakao-user-1", text=question)
    target: dict[str, Any] = kakao_target(
        callback_url=door.callbacks.url + "/t1", callback_until=time.time() + 60, first=[]
    )
    job = new_job(door="kakao", inbound=inbound, target=target, origin="dead")
    claim = Claim(job=job, entry="1-0", attempt=2 if marks else 1, marks=marks)
    return Delivery(claim=claim, queue=LocalQueue(), marks=dict(marks))


def texts(body: dict[str, Any]) -> list[str]:
    return [output["simpleText"]["text"] for output in body["template"]["outputs"]]


async def test_an_inline_answer_handed_to_its_request_is_not_sent_again_by_a_takeover(door: Door) -> None:
    # Either the response reached the user, or the request failed with the process and Kakao
    # showed its error (the user writes again): a callback now would be a second answer.
    await door.deliverer.deliver(delivery(door, "회의실 어디예요?", inline="sent"))

    assert door.callbacks.bodies == [] and door.llm.calls == []
    assert await door.store.pop_pending(KEY) is None


USED = "Invalid callback token. Check your callback token."


async def test_a_callback_the_process_that_died_had_posted_is_not_given_again(door: Door) -> None:
    # Its POST got through, with the earlier answer it carried, and it died before saying so:
    # Kakao takes a URL once, so the second POST is refused as to a used token.
    door.callbacks.refuse_next = [USED]

    await door.deliverer.deliver(
        delivery(door, "회의실 어디예요?", callback="used", carried="앞선 답이에요.")
    )

    assert door.callbacks.bodies == []
    assert await door.store.pop_pending(KEY) is None, "the user has both: nothing kept for later"


async def test_a_callback_the_process_that_died_had_not_posted_is_posted_with_what_it_carried(
    door: Door,
) -> None:
    # It died after taking the earlier answer from the store and before its POST.
    await door.deliverer.deliver(
        delivery(door, "회의실 어디예요?", callback="used", carried="앞선 답이에요.")
    )

    (body,) = door.callbacks.bodies
    assert texts(body) == ["앞서 물어보신 내용의 답변이에요.\n\n앞선 답이에요.", "회의실은 3층이에요."]


async def test_an_answer_kept_after_the_first_post_stays_kept_when_that_post_got_through(door: Door) -> None:
    await door.store.put_pending(KEY, "그 뒤에 남겨진 답이에요.", ttl=60)
    door.callbacks.refuse_next = [USED]

    await door.deliverer.deliver(delivery(door, "회의실 어디예요?", callback="used"))

    assert await door.store.pop_pending(KEY) == "그 뒤에 남겨진 답이에요."


async def test_an_answer_kept_earlier_goes_first_in_the_next_callback(door: Door) -> None:
    await door.store.put_pending(KEY, "앞선 질문의 답이에요.", ttl=60)

    await door.deliverer.deliver(delivery(door, "회의실 어디예요?"))

    (body,) = door.callbacks.bodies
    assert texts(body) == ["앞서 물어보신 내용의 답변이에요.\n\n앞선 질문의 답이에요.", "회의실은 3층이에요."]
    assert await door.store.pop_pending(KEY) is None


async def test_a_refused_callback_keeps_its_answer_and_the_earlier_one_in_order(door: Door) -> None:
    # Kakao refuses a callback for a request it stopped waiting for (the request failed): both
    # answers come with the user's next message instead of never.
    await door.store.put_pending(KEY, "앞선 질문의 답이에요.", ttl=60)
    door.callbacks.fail_next = [400]

    await door.deliverer.deliver(delivery(door, "회의실 어디예요?"))

    assert door.callbacks.bodies == []
    assert await door.store.pop_pending(KEY) == "앞선 질문의 답이에요.\n\n회의실은 3층이에요."


async def test_an_inline_answer_whose_response_did_not_go_out_is_posted_by_a_takeover(door: Door) -> None:
    # The request was gone when the answer was ready; the process died before its callback.
    await door.deliverer.deliver(delivery(door, "회의실 어디예요?", inline="unsent"))

    (body,) = door.callbacks.bodies
    assert texts(body) == ["회의실은 3층이에요."]


class TakenOver(LocalQueue):
    """A queue whose job another process took over: no mark is recorded any more."""

    async def mark(self, claim: Claim, name: str, value: str) -> bool:
        return False


def losing(claim: Claim) -> Delivery:
    """A delivery of ``claim`` by this task, whose job another process took over: its next mark
    cancels this task, as the worker does."""
    task = asyncio.current_task()
    assert task is not None

    def cancel() -> None:
        task.cancel()

    return Delivery(claim=claim, queue=TakenOver(), lost=cancel)


async def test_kept_answers_taken_by_a_process_that_lost_its_job_are_put_back(door: Door) -> None:
    await door.store.put_pending(KEY, "앞선 질문의 답이에요.", ttl=60)
    lost = losing(delivery(door, "회의실 어디예요?").claim)

    with pytest.raises(asyncio.CancelledError):
        await door.deliverer.deliver(lost)
    asyncio.current_task().uncancel()  # type: ignore[union-attr]

    assert door.callbacks.bodies == []
    assert await door.store.pop_pending(KEY) == "앞선 질문의 답이에요."


async def test_a_process_that_lost_its_job_does_not_keep_the_answer_a_second_time(door: Door) -> None:
    # Stalled past its lease with the answer ready and the callback gone: the process that took
    # the job over keeps the answer; this one must not keep it too.
    expired = delivery(door, "회의실 어디예요?")
    job = expired.job
    target = {**job.target, "callback_until": time.time() - 1}
    lost = losing(Claim(job=replace(job, target=target), entry="1-0"))

    with pytest.raises(asyncio.CancelledError):
        await door.deliverer.deliver(lost)
    asyncio.current_task().uncancel()  # type: ignore[union-attr]

    assert await door.store.pop_pending(KEY) is None
