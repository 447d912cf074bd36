"""The batch runner (``engine/batches/runner.py``) on the memory store, with a fake line executor,
a manual clock and a load that tests set: yielding to interactive traffic, the concurrency bound,
retries, expiry, and a crashed runner's batch taken over once its lease runs out."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import pytest

from breakwater.engine.batches.runner import BatchRunner, LineAnswer
from breakwater.engine.batches.store import LineResult
from breakwater.infra.batch_memory import MemoryBatchStore
from breakwater.infra.clock import ManualClock
from tests.engine.batches.scripted import (
    SETTINGS,
    Fake,
    Load,
    T,
    at_least,
    batch_of,
    equals,
    status_of,
    until,
    value_of,
)


@pytest.fixture
async def runner(store: MemoryBatchStore, clock: ManualClock, fake: Fake, load: Load) -> AsyncIterator[BatchRunner]:
    runner = BatchRunner(lambda: store, lambda: SETTINGS, fake, load, clock)
    yield runner
    await runner.close()


async def test_a_batch_runs_to_completed_with_its_output_file(
    store: MemoryBatchStore, runner: BatchRunner, fake: Fake
) -> None:
    """Every line is executed once and the output file holds one line per request, in input order."""
    await batch_of(store, 3)
    runner.start()
    await until(lambda: equals(status_of(store), "completed"), "the batch completes")
    record = await store.batch_get("batch_1", "")
    assert record is not None and (record.total, record.completed, record.failed) == (3, 3, 0)
    assert sorted(fake.calls) == ["c0", "c1", "c2"]
    assert record.output_file_id is not None and record.error_file_id is None
    content = await store.file_content(record.output_file_id, "", T)
    assert content is not None
    assert [json.loads(line)["custom_id"] for line in content.splitlines()] == ["c0", "c1", "c2"]


async def test_lines_wait_while_interactive_traffic_is_busy(
    store: MemoryBatchStore, runner: BatchRunner, fake: Fake, load: Load
) -> None:
    """No line starts while a deployment has requests queued, or while interactive requests in
    flight reach ``yield_in_flight``; once it is quiet, the batch runs."""
    load.now = (0, 1)
    await batch_of(store, 2)
    runner.start()
    await until(lambda: value_of(load.looks >= 5), "the runner has looked at the load several times")
    assert fake.calls == []
    load.now = (SETTINGS.yield_in_flight, 0)
    looked = load.looks
    await until(lambda: value_of(load.looks >= looked + 5), "the runner has looked again")
    assert fake.calls == []
    load.now = (SETTINGS.yield_in_flight - 1, 0)
    await until(lambda: equals(status_of(store), "completed"), "the batch completes once it is quiet")


async def test_at_most_concurrency_lines_run_at_once(store: MemoryBatchStore, runner: BatchRunner, fake: Fake) -> None:
    """With ``concurrency: 2``, a third line starts only when one of two running lines ends."""
    fake.gate.clear()
    await batch_of(store, 5)
    runner.start()
    await until(lambda: value_of(fake.running == 2), "two lines run")
    for _ in range(50):
        await asyncio.sleep(0)  # let every ready task run: none may start a third line
    assert fake.running == 2 and len(fake.calls) == 2
    fake.gate.set()
    await until(lambda: equals(status_of(store), "completed"), "the batch completes")
    assert fake.most == 2


async def test_a_429_or_5xx_line_is_tried_again(
    store: MemoryBatchStore, runner: BatchRunner, fake: Fake, clock: ManualClock
) -> None:
    """A 503 is tried again after a backoff, a 429 after its Retry-After; a line that keeps failing
    past ``line_attempts`` lands in the error file with its last answer; a 400 is not tried again."""
    busy = LineAnswer(429, "r", {"error": {}}, retry_after=7.0)
    down = LineAnswer(503, "r", {"error": {}})
    fake.answers = {"c0": [down], "c1": [busy], "c2": [down, down, down], "c3": [LineAnswer(400, "r", {"error": {}})]}
    await batch_of(store, 4)
    runner.start()
    await until(lambda: equals(status_of(store), "completed"), "the batch completes")
    assert sorted(clock.sleeps) == [2.0, 2.0, 4.0, 7.0]
    assert sorted(fake.calls) == ["c0", "c0", "c1", "c1", "c2", "c2", "c2", "c3"]
    record = await store.batch_get("batch_1", "")
    assert record is not None and (record.completed, record.failed) == (2, 2)
    assert record.error_file_id is not None
    errors = await store.file_content(record.error_file_id, "", T)
    assert errors is not None
    assert {
        json.loads(line)["custom_id"]: json.loads(line)["response"]["status_code"] for line in errors.splitlines()
    } == {
        "c2": 503,
        "c3": 400,
    }


async def test_a_line_the_gateways_limits_refuse_waits_without_spending_attempts(
    store: MemoryBatchStore, runner: BatchRunner, fake: Fake, clock: ManualClock
) -> None:
    """A line refused by the owner's rate limit (``throttled``) waits its Retry-After and goes again,
    as often as it takes, without spending its ``line_attempts``."""
    limited = LineAnswer(429, "r", {"error": {}}, retry_after=3.0, throttled=True)
    fake.answers = {"c0": [limited] * 5}
    await batch_of(store, 1)
    runner.start()
    await until(lambda: equals(status_of(store), "completed"), "the batch completes")
    assert clock.sleeps == [3.0] * 5
    assert fake.calls == ["c0"] * 6 and runner.counts["throttled"] == 5
    record = await store.batch_get("batch_1", "")
    assert record is not None and (record.completed, record.failed) == (1, 0)


async def test_an_expired_batch_ends_with_its_unanswered_lines_as_errors(
    store: MemoryBatchStore, runner: BatchRunner, fake: Fake, clock: ManualClock
) -> None:
    """Past its completion window, a batch starts no line: it ends ``expired``, each line without a
    result in the error file with ``batch_expired``."""
    await batch_of(store, 2)
    clock.advance(86_400)
    runner.start()
    await until(lambda: equals(status_of(store), "expired"), "the batch expires")
    assert fake.calls == []
    record = await store.batch_get("batch_1", "")
    assert record is not None and record.error_file_id is not None and record.output_file_id is None
    errors = await store.file_content(record.error_file_id, "", T)
    assert errors is not None
    assert [json.loads(line)["error"]["code"] for line in errors.splitlines()] == ["batch_expired", "batch_expired"]


async def test_a_crashed_runners_batch_is_taken_over_when_its_lease_runs_out(
    store: MemoryBatchStore, fake: Fake, load: Load, clock: ManualClock
) -> None:
    """A runner that dies mid-batch keeps its lease: another runner on the same store waits for it
    to run out, then runs only the lines without a result, so every line has exactly one."""
    first = BatchRunner(lambda: store, lambda: SETTINGS, fake, load, clock)
    await batch_of(store, 6)
    fake.held = {"c2", "c3", "c4", "c5"}
    fake.gate.clear()  # lines from the third on hang, then the process dies
    first.start()
    await until(lambda: at_least(store.line_ids("batch_1"), 2), "two lines are answered")
    await until(lambda: value_of(fake.running == 2), "two more lines are in flight")
    await first.close(release=False)
    fake.gate.set()
    done_before = await store.line_ids("batch_1")
    calls_before = len(fake.calls)
    second = BatchRunner(lambda: store, lambda: SETTINGS, fake, load, clock)
    looks = CountingLooks(store)
    second._store = lambda: looks  # type: ignore[method-assign, assignment]
    second.start()
    try:
        await until(lambda: value_of(looks.count >= 3), "the second runner has looked for work")
        assert len(fake.calls) == calls_before  # the lease still holds
        clock.advance(SETTINGS.lease_s)
        await until(lambda: equals(status_of(store), "completed"), "the second runner finishes the batch")
    finally:
        await second.close()
    lines = await store.lines("batch_1")
    assert sorted(r.custom_id for r in lines) == [f"c{i}" for i in range(6)]
    again = fake.calls[calls_before:]
    assert not set(again) & done_before  # answered lines are never run again


async def test_a_result_the_store_failed_to_keep_is_run_again(
    store: MemoryBatchStore, fake: Fake, load: Load, clock: ManualClock
) -> None:
    """A line whose result could not be written does not let the batch finalize without it: the
    batch is taken up again at the next look, that line runs again, and the batch completes whole."""
    flaky = FlakyLines(store)
    runner = BatchRunner(lambda: flaky, lambda: SETTINGS, fake, load, clock)  # type: ignore[arg-type, return-value]
    await batch_of(store, 3)
    runner.start()
    try:
        await until(lambda: equals(status_of(store), "completed"), "the batch completes")
    finally:
        await runner.close()
    assert sorted(fake.calls) == ["c0", "c1", "c1", "c2"]
    assert [r.custom_id for r in await store.lines("batch_1")] == ["c0", "c1", "c2"]


async def test_a_batch_whose_input_file_is_deleted_midway_fails(
    store: MemoryBatchStore, fake: Fake, load: Load, clock: ManualClock
) -> None:
    """A batch resumed after its input file was deleted ends ``failed`` with the reason, once."""
    first = BatchRunner(lambda: store, lambda: SETTINGS, fake, load, clock)
    await batch_of(store, 4)
    fake.held = {"c1", "c2", "c3"}
    fake.gate.clear()
    first.start()
    await until(lambda: at_least(store.line_ids("batch_1"), 1), "a line is answered")
    await first.close()
    assert await store.file_delete("file-in", "", T)
    second = BatchRunner(lambda: store, lambda: SETTINGS, fake, load, clock)
    second.start()
    try:
        await until(lambda: equals(status_of(store), "failed"), "the batch fails")
    finally:
        await second.close()
    record = await store.batch_get("batch_1", "")
    assert record is not None and record.errors is not None
    assert "no longer exists" in record.errors[0]["message"] and "failed_at" in record.times


class FlakyLines:
    """The store, failing the first write of line ``c1``'s result."""

    def __init__(self, store: MemoryBatchStore) -> None:
        self._store = store
        self.failed = False

    def __getattr__(self, name: str) -> object:
        return getattr(self._store, name)

    async def line_put(self, batch_id: str, result: LineResult) -> bool:
        if result.custom_id == "c1" and not self.failed:
            self.failed = True
            raise ConnectionError("the store is unreachable")
        return await self._store.line_put(batch_id, result)


class CountingLooks:
    """The store, counting the runner's looks for work (``batch_claimable``)."""

    def __init__(self, store: MemoryBatchStore) -> None:
        self._store = store
        self.count = 0

    def __getattr__(self, name: str) -> object:
        return getattr(self._store, name)

    async def batch_claimable(self, runner: str, now: float) -> bool:
        self.count += 1
        return await self._store.batch_claimable(runner, now)


async def test_a_stopping_runner_lets_its_lines_in_flight_finish_and_starts_no_more(
    store: MemoryBatchStore, fake: Fake, load: Load, clock: ManualClock
) -> None:
    """Stopped with a grace period, a runner starts no new line; the ones in flight finish and keep
    their results (never run twice), and the batch stays in progress for the next runner."""
    first = BatchRunner(lambda: store, lambda: SETTINGS, fake, load, clock)
    await batch_of(store, 6)
    fake.held = {"c2", "c3", "c4", "c5"}
    fake.gate.clear()
    first.start()
    await until(lambda: value_of(fake.running == 2), "two held lines are in flight")
    in_flight = set(fake.calls) - {"c0", "c1"}
    closing = asyncio.get_running_loop().create_task(first.close(grace_s=60))
    await until(lambda: value_of(first._stopping), "the runner is stopping")
    fake.gate.set()
    await closing
    kept = await store.line_ids("batch_1")
    assert in_flight <= kept  # the lines in flight kept their results
    assert set(fake.calls) == kept  # and nothing started after the stop
    assert await status_of(store) == "in_progress"
    second = BatchRunner(lambda: store, lambda: SETTINGS, fake, load, clock)
    second.start()
    try:
        await until(lambda: equals(status_of(store), "completed"), "the next runner finishes the batch")
    finally:
        await second.close()
    assert sorted(fake.calls) == [f"c{i}" for i in range(6)]  # each line ran exactly once
