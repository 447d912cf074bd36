"""Feedback on requests: the body's checks, finding the request's row wherever it is (the writer's
memory, the store, or a little later), and the answers when it is not there.

What the stores do with feedback (kept, read back, in the usage report) is in ``test_conformance.py``.
"""

from __future__ import annotations

import asyncio
import dataclasses
from pathlib import Path
from typing import Any

import pytest

from breakwater.core.errors import InvalidRequest, NotFound, Unavailable
from breakwater.infra.clock import ManualClock
from breakwater.observability.ledger import LedgerRow, LedgerWriter
from breakwater.observability.ledger.feedback import MAX_COMMENT, Feedback, FeedbackDesk, feedback_fields

from .rows import T0, make_row, wait_for


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ([], None),
        ({"score": 1}, "request_id"),
        ({"request_id": "", "score": 1}, "request_id"),
        ({"request_id": "r" * 129, "score": 1}, "request_id"),
        ({"request_id": "r"}, "score"),
        ({"request_id": "r", "score": 1.5}, "score"),
        ({"request_id": "r", "score": -0.1}, "score"),
        ({"request_id": "r", "score": True}, "score"),
        ({"request_id": "r", "score": "1"}, "score"),
        ({"request_id": "r", "score": float("nan")}, "score"),
        ({"request_id": "r", "score": 1, "comment": "x" * (MAX_COMMENT + 1)}, "comment"),
        ({"request_id": "r", "score": 1, "comment": 5}, "comment"),
        ({"request_id": "r", "score": 1, "tags": ["a"]}, "tags"),
        ({"request_id": "r", "score": 1, "tags": {"a": 1}}, "tags"),
        ({"request_id": "r", "score": 1, "tags": {"": "x"}}, "tags"),
        ({"request_id": "r", "score": 1, "tags": {f"k{i}": "v" for i in range(17)}}, "tags"),
        ({"request_id": "r", "score": 1, "tags": {"k": "v" * 257}}, "tags"),
        ({"request_id": "r", "score": 1, "rating": 5}, "rating"),
    ],
)
def test_a_bad_body_is_refused_naming_the_field(body: Any, param: str | None) -> None:
    """Missing, mistyped or out-of-bounds fields (and unknown ones) are InvalidRequest naming the field."""
    with pytest.raises(InvalidRequest) as info:
        feedback_fields(body)
    assert info.value.param == param


def test_a_good_body_reads_back() -> None:
    """Scores 0 and 1 are in range; integers become floats; comment and tags are optional."""
    assert feedback_fields({"request_id": "r", "score": 0}) == ("r", 0.0, None, {})
    body = {"request_id": "r", "score": 1, "comment": "x" * MAX_COMMENT, "tags": {"reason": "tone"}}
    assert feedback_fields(body) == ("r", 1.0, "x" * MAX_COMMENT, {"reason": "tone"})


class SlowStore:
    """A store whose writes wait until ``release`` is set; it remembers rows and feedback."""

    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.rows: list[LedgerRow] = []
        self.feedback: list[Feedback] = []
        self.writing = False
        self.broken = False

    async def write(self, rows: list[LedgerRow], *, behind: bool = False) -> None:
        self.writing = True
        await self.release.wait()
        self.rows.extend(rows)
        self.writing = False

    async def route_of(self, request_id: str, key_id: str | None) -> tuple[str, str] | None:
        if self.broken:
            raise ConnectionRefusedError("secret-password@db")
        for row in reversed(self.rows):
            if row.request_id == request_id and key_id in (None, row.key_id):
                return row.route, row.key_id
        return None

    async def write_feedback(self, feedback: Feedback) -> None:
        if self.broken:
            raise ConnectionRefusedError("down")
        self.feedback.append(feedback)


def _desk(store: SlowStore, writer: LedgerWriter, sleeps: list[float], arrive: LedgerRow | None = None) -> FeedbackDesk:
    async def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        if arrive is not None:  # meanwhile, another replica's writer lands the row
            store.rows.append(arrive)

    return FeedbackDesk(store, writer, ManualClock(wall=T0 + 60), grace_s=0.4, sleep=sleep)  # type: ignore[arg-type]


async def test_a_row_is_found_pending_while_being_written_and_once_stored(tmp_path: Path) -> None:
    """Feedback right after the answer finds the row in the writer's queue, in the batch being
    written, and in the store, without waiting."""
    store, sleeps = SlowStore(), []
    writer = LedgerWriter(store, tmp_path / "spool", flush_interval_s=0.001)  # type: ignore[arg-type]
    desk = _desk(store, writer, sleeps)
    writer.submit(make_row(0))
    feedback, route = await desk.give("req-0", "key-1", 1.0, "great", {"a": "b"})
    assert (route, feedback.key_id, feedback.score, feedback.comment, feedback.tags) == (
        "gpt-fast",
        "key-1",
        1.0,
        "great",
        {"a": "b"},
    )
    writer.start()
    await wait_for(lambda: store.writing and writer.pending == 0, "the batch being written")
    assert (await desk.give("req-0", "key-1", 0.0, None, {}))[1] == "gpt-fast"
    store.release.set()
    await writer.stop()
    assert store.rows == [make_row(0)]
    assert (await desk.give("req-0", None, 0.5, None, {}))[0].key_id == "key-1"  # access off: any key, the row's
    assert [f.score for f in store.feedback] == [1.0, 0.0, 0.5] and sleeps == []


async def test_another_keys_request_and_an_unknown_one_are_not_found_alike(tmp_path: Path) -> None:
    """A request of another key and an id never seen both raise NotFound, after one more look."""
    store, sleeps = SlowStore(), []
    store.rows.append(make_row(0))
    desk = _desk(store, LedgerWriter(store, tmp_path / "spool"), sleeps)  # type: ignore[arg-type]
    for request_id, key_id in (("req-0", "key-2"), ("req-9", "key-1")):
        with pytest.raises(NotFound) as info:
            await desk.give(request_id, key_id, 1.0, None, {})
        assert info.value.param == "request_id"
    assert sleeps == [0.4, 0.4] and store.feedback == []


async def test_a_row_landing_during_the_grace_wait_is_found(tmp_path: Path) -> None:
    """A row not found at first (another worker's writer holds it) is found on the second look."""
    store, sleeps = SlowStore(), []
    arriving = dataclasses.replace(make_row(3), route="elsewhere")
    desk = _desk(store, LedgerWriter(store, tmp_path / "spool"), sleeps, arrive=arriving)  # type: ignore[arg-type]
    assert (await desk.give("req-3", "key-1", 1.0, None, {}))[1] == "elsewhere"
    assert sleeps == [0.4]


async def test_a_broken_store_is_unavailable_without_its_message(tmp_path: Path) -> None:
    """A store that fails is Unavailable (503), naming the failure's type only."""
    store = SlowStore()
    store.broken = True
    desk = _desk(store, LedgerWriter(store, tmp_path / "spool"), [])  # type: ignore[arg-type]
    with pytest.raises(Unavailable) as info:
        await desk.give("req-0", "key-1", 1.0, None, {})
    assert "ConnectionRefusedError" in info.value.message and "secret" not in info.value.message
