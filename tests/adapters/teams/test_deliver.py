"""What reached Teams is marked as it goes, and a takeover sends only what had not."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from adapters.teams import activities
from adapters.teams.connector import ConnectorError
from adapters.teams.deliver import MarkedSender
from adapters.teams.stream import Pacing, Stream
from adapters.worker import Delivery
from core.jobs import Claim, new_job
from core.jobs_local import LocalQueue
from core.types import ConversationKey, Inbound
from tests.support.botframework import ALREADY_COMPLETED, stream_info


class Recording:
    """A Sender that keeps every activity and gives ids like the connector."""

    def __init__(self) -> None:
        self.sent: list[Mapping[str, Any]] = []

    async def send(self, body: Mapping[str, Any]) -> str:
        self.sent.append(body)
        return f"activity-{len(self.sent)}"


def delivery(**marks: str) -> Delivery:
    inbound = Inbound(key=ConversationKey("teams", "t", "a:1"), message_id="m", user_id="u", text="질문")
    job = new_job(door="teams", inbound=inbound, target={}, origin="test")
    return Delivery(
        claim=Claim(job=job, attempt=2 if marks else 1, marks=marks), queue=LocalQueue(), marks=dict(marks)
    )


async def test_the_first_attempt_marks_the_stream_and_each_message() -> None:
    outbox, attempt = Recording(), delivery()
    marked = MarkedSender(outbox, attempt)
    assert await marked.send(activities.stream_start("준비 중")) == "activity-1"
    await marked.send(activities.stream_update("답", stream_id="activity-1", sequence=2))
    await marked.send(activities.stream_final("답이에요", stream_id="activity-1"))
    await marked.send(activities.answer("이어지는 답"))
    assert len(outbox.sent) == 4
    assert attempt.marks == {"teams:stream": "activity-1", "teams:parts": "2"}


async def test_a_takeover_finishes_the_open_stream_and_skips_what_was_sent() -> None:
    outbox = Recording()
    marked = MarkedSender(outbox, delivery(**{"teams:stream": "activity-7", "teams:parts": "1"}))
    assert await marked.send(activities.stream_start("준비 중")) == "activity-7"  # not opened again
    assert await marked.send(activities.stream_update("답", stream_id="activity-7", sequence=2)) == ""
    assert await marked.send(activities.stream_final("답이에요", stream_id="activity-7")) == ""  # sent
    await marked.send(activities.typing())
    await marked.send(activities.answer("이어지는 답"))
    assert [body["type"] for body in outbox.sent] == ["typing", "message"]
    assert outbox.sent[-1]["text"] == "이어지는 답"


class FinishedElsewhere(Recording):
    """A connector on which stream ``activity-7`` got its final message from an earlier attempt."""

    async def send(self, body: Mapping[str, Any]) -> str:
        if (stream_info(dict(body)) or {}).get("streamId") == "activity-7":
            raise ConnectorError(403, "ContentStreamNotAllowed", ALREADY_COMPLETED)
        return await super().send(body)


async def test_a_takeover_whose_final_reached_teams_unmarked_sends_nothing_again() -> None:
    # The dying process sent the final message and died before marking it.
    outbox = FinishedElsewhere()
    marked = MarkedSender(outbox, delivery(**{"teams:stream": "activity-7"}))
    stream = Stream(marked, pacing=Pacing(stream_interval=0.0))

    await stream.start("답변을 준비하고 있어요…")
    await stream.finish("회의실은 3층에 있어요.")

    assert outbox.sent == [], "the user has the answer once, in the finished stream"


async def test_a_takeover_of_a_long_answer_sends_the_parts_after_a_final_that_reached_teams() -> None:
    outbox = FinishedElsewhere()
    marked = MarkedSender(outbox, delivery(**{"teams:stream": "activity-7"}))
    stream = Stream(marked, pacing=Pacing(stream_interval=0.0, message_limit=100))

    await stream.start("답변을 준비하고 있어요…")
    await stream.finish("첫 번째 문단이에요. " * 3 + "\n\n" + "두 번째 문단이에요. " * 3)

    (rest,) = outbox.sent
    assert rest["type"] == "message"
    assert rest["text"].startswith("두 번째 문단이에요.")
    assert "첫 번째" not in rest["text"]
