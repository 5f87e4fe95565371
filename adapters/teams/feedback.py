"""Recording Teams' 👍/👎 feedback for operators: one log line and one counter per vote.

Teams keeps nothing itself. Each vote becomes an INFO line on the ``dari.feedback`` logger
(conversation, answer id, reaction, the user's comment with personal identifiers masked) and
increments ``dari_teams_feedback_total{reaction="like"|"dislike"}`` on the service's
Prometheus registry when there is one.
"""

from __future__ import annotations

import logging

from prometheus_client import CollectorRegistry, Counter

from adapters.teams.translate import Feedback
from core import safety

__all__ = ["FEEDBACK_LOGGER", "FeedbackRecorder"]

FEEDBACK_LOGGER = "dari.feedback"
_MAX_COMMENT = 1000

log = logging.getLogger(FEEDBACK_LOGGER)


class FeedbackRecorder:
    """Writes each vote to the feedback log and, given a registry, to a counter."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self._counter = (
            Counter(
                "dari_teams_feedback_total",
                "Teams users' feedback on answers, by reaction",
                ["reaction"],
                registry=registry,
            )
            if registry is not None
            else None
        )

    def record(self, feedback: Feedback) -> None:
        comment = safety.mask(feedback.text)[:_MAX_COMMENT]
        log.info(
            "feedback %s",
            feedback.reaction,
            extra={
                "platform": "teams",
                "conversation": feedback.key.id,
                "answer_id": feedback.answer_id,
                "reaction": feedback.reaction,
                "comment": comment,
            },
        )
        if self._counter is not None:
            self._counter.labels(reaction=feedback.reaction).inc()
