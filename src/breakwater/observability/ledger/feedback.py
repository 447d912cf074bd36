"""User feedback on a request: a score (and optional comment and tags) kept next to its ledger row.

A feedback names its request by the id the gateway answered with (``x-request-id``, the row's
``request_id``) and belongs to the key that made the request: ``key_id`` is the row's, so a
report joins the two on ``(request_id, key_id)`` and a request id reused by another key never
picks up someone else's feedback. Several feedbacks on one request are all kept; reports count
the newest (``observability/ledger/aggregate.py``).

The row may not be in the store yet when feedback arrives right after the answer (the writer
batches), so ``FeedbackDesk.give`` looks for it in the writer's memory first, then in the store,
then once more after two flush intervals (a row another worker or replica holds in its own
writer's memory has landed by then). A request that is not found, or is another key's, is
``NotFound`` either way: whether an id exists is not revealed.

The comment is the user's own text: it goes to the store and back to its author, never to a log.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import orjson

from breakwater.core.errors import InvalidRequest, NotFound, Unavailable
from breakwater.engine.ports import Clock

#: the longest comment kept, in characters
MAX_COMMENT = 2000
#: at most this many tags; longer keys and values are refused (not cut: the user chose them)
MAX_TAGS, MAX_TAG_KEY, MAX_TAG_VALUE = 16, 64, 256
#: the longest request id looked up (the gateway accepts client ids up to this length)
MAX_REQUEST_ID = 128

FEEDBACK_COLUMNS = ("request_id", "ts", "key_id", "score", "comment", "tags")
"""The feedback table's columns, in every store's INSERT and SELECT order."""


@dataclass(frozen=True, slots=True)
class Feedback:
    """One feedback on one request; ``score`` from 0 (bad) to 1 (good), ``ts`` in unix seconds."""

    request_id: str
    ts: float
    key_id: str
    score: float
    comment: str | None
    tags: dict[str, str]

    def values(self) -> list[Any]:
        """The column values in ``FEEDBACK_COLUMNS`` order, tags as JSON text."""
        return [self.request_id, self.ts, self.key_id, self.score, self.comment, orjson.dumps(self.tags).decode()]

    @classmethod
    def from_values(cls, values: Sequence[Any]) -> Feedback:
        """The feedback ``values`` gave (read back from a store)."""
        request_id, ts, key_id, score, comment, tags = values
        return cls(request_id, float(ts), key_id, float(score), comment, orjson.loads(tags))

    def public(self) -> dict[str, Any]:
        """What the API answers with (the key's id is the caller's own: not repeated)."""
        return {
            "object": "feedback",
            "request_id": self.request_id,
            "created": self.ts,
            "score": self.score,
            "comment": self.comment,
            "tags": self.tags,
        }


def feedback_fields(body: Any) -> tuple[str, float, str | None, dict[str, str]]:
    """``(request_id, score, comment, tags)`` from a ``POST /v1/feedback`` body.

    Raises:
        InvalidRequest: not an object, a field missing, of the wrong type or out of bounds
            (``param`` names the field).
    """
    if not isinstance(body, dict):
        raise InvalidRequest("The request body must be a JSON object")
    unknown = sorted(set(body) - {"request_id", "score", "comment", "tags"})
    if unknown:
        raise InvalidRequest(f"Unknown field '{unknown[0]}'", param=unknown[0])
    request_id = body.get("request_id")
    if not isinstance(request_id, str) or not 0 < len(request_id) <= MAX_REQUEST_ID:
        raise InvalidRequest(
            f"'request_id' must be the x-request-id of an answer (1 to {MAX_REQUEST_ID} characters)", param="request_id"
        )
    score = body.get("score")
    if isinstance(score, bool) or not isinstance(score, int | float) or not (math.isfinite(score) and 0 <= score <= 1):
        raise InvalidRequest("'score' must be a number from 0 (bad) to 1 (good)", param="score")
    comment = body.get("comment")
    if comment is not None and (not isinstance(comment, str) or len(comment) > MAX_COMMENT):
        raise InvalidRequest(f"'comment' must be a string of at most {MAX_COMMENT} characters", param="comment")
    return request_id, float(score), comment, _tags(body.get("tags"))


def _tags(tags: Any) -> dict[str, str]:
    if tags is None:
        return {}
    if not isinstance(tags, dict) or len(tags) > MAX_TAGS:
        raise InvalidRequest(f"'tags' must be an object of at most {MAX_TAGS} string values", param="tags")
    for key, value in tags.items():
        if not 0 < len(key) <= MAX_TAG_KEY or not isinstance(value, str) or len(value) > MAX_TAG_VALUE:
            raise InvalidRequest(
                f"'tags' keys must be 1 to {MAX_TAG_KEY} characters and values strings of at most"
                f" {MAX_TAG_VALUE} characters",
                param="tags",
            )
    return dict(tags)


class Requests(Protocol):
    """Where a request's ledger row may be: a row's route, found by its request id (and key)."""

    def route_of(self, request_id: str, key_id: str | None) -> tuple[str, str] | None:
        """``(route, key_id)`` of the newest such row in the writer's memory, or ``None``."""
        ...


class FeedbackStore(Protocol):
    """The ledger store's feedback side (``SqliteLedger``, ``PostgresLedger``)."""

    async def route_of(self, request_id: str, key_id: str | None) -> tuple[str, str] | None: ...

    async def write_feedback(self, feedback: Feedback) -> None: ...


class FeedbackDesk:
    """Takes feedback for requests in the ledger.

    Args:
        store: the ledger store (its rows, and where feedback is written).
        pending: the ledger writer (the rows it holds in memory).
        clock: the feedback's ``ts``.
        grace_s: how long after a first miss the store is looked at once more (two flush intervals).
        sleep: how that wait is done (tests inject their own).
    """

    def __init__(
        self,
        store: FeedbackStore,
        pending: Requests,
        clock: Clock,
        grace_s: float,
        sleep: Callable[[float], Awaitable[None]] | None = None,
    ) -> None:
        self._store = store
        self._pending = pending
        self._clock = clock
        self._grace_s = grace_s
        self._sleep = sleep or asyncio.sleep

    async def give(
        self, request_id: str, key_id: str | None, score: float, comment: str | None, tags: Mapping[str, str]
    ) -> tuple[Feedback, str]:
        """Store a feedback on the caller's request; return it and the request's route.

        Args:
            key_id: the caller's key; ``None`` (access control off) matches any request.

        Raises:
            NotFound: no such request, or another key's.
            Unavailable: the ledger database cannot be used.
        """
        found = await self._find(request_id, key_id)
        if found is None:
            raise NotFound(f"No request '{request_id}' of this API key in the ledger", param="request_id")
        route, owner = found
        feedback = Feedback(request_id, self._clock.time(), owner, score, comment, dict(tags))
        try:
            await self._store.write_feedback(feedback)
        except Exception as exc:
            raise _unavailable(exc) from exc
        return feedback, route

    async def _find(self, request_id: str, key_id: str | None) -> tuple[str, str] | None:
        # memory first: a row leaves it (synchronously) only once the store has committed it
        found = self._pending.route_of(request_id, key_id) or await self._stored(request_id, key_id)
        if found is None and self._grace_s > 0:
            await self._sleep(self._grace_s)
            found = self._pending.route_of(request_id, key_id) or await self._stored(request_id, key_id)
        return found

    async def _stored(self, request_id: str, key_id: str | None) -> tuple[str, str] | None:
        try:
            return await self._store.route_of(request_id, key_id)
        except Exception as exc:
            raise _unavailable(exc) from exc


def _unavailable(exc: BaseException) -> Unavailable:
    # the type only: a driver's message could quote the statement's parameters (the comment)
    return Unavailable(f"The ledger database cannot be used: {type(exc).__name__}", code="ledger_unavailable")
