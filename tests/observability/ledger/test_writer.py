"""The ledger writer: batching, spooling while the store is down, in-order exactly-once replay.

The writer and retention over the real stores are in ``test_conformance.py``.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest

from breakwater.observability.ledger import LedgerRow, LedgerWriter

from .rows import make_row, wait_for


class FlakyStore:
    """A store that records every batch it accepts, and refuses all writes while ``down``."""

    def __init__(self) -> None:
        self.down = False
        self.batches: list[list[LedgerRow]] = []
        self.behind: list[bool] = []
        self.refused = 0

    async def write(self, rows: list[LedgerRow], *, behind: bool = False) -> None:
        if self.down:
            self.refused += 1
            raise ConnectionRefusedError("store down")
        self.batches.append(list(rows))
        self.behind.append(behind)

    @property
    def rows(self) -> list[LedgerRow]:
        return [r for b in self.batches for r in b]


def _writer(store: FlakyStore, spool: Path, **kw: float) -> LedgerWriter:
    opts: dict[str, float] = {"flush_interval_s": 0.005, "retry_initial_s": 0.01, "retry_max_s": 0.02, **kw}
    return LedgerWriter(store, spool, batch_size=4, **opts)  # type: ignore[arg-type]


def _spooled(spool: Path) -> list[LedgerRow]:
    return [LedgerRow.from_json(line) for line in spool.read_bytes().splitlines()]


async def test_rows_spool_in_order_then_replay_once_in_order(tmp_path: Path) -> None:
    """While the store is down rows go to the spool in submit order; once it is back each lands exactly once, in order."""
    store, spool = FlakyStore(), tmp_path / "spool" / "ledger.jsonl"
    writer = _writer(store, spool)
    rows = [make_row(i) for i in range(60)]
    writer.start()
    try:
        for r in rows[:10]:
            writer.submit(r)
        await wait_for(lambda: writer.written == 10, "the first rows written directly")
        assert not spool.exists()

        store.down = True
        for r in rows[10:30]:
            writer.submit(r)
        await wait_for(lambda: writer.spooled_rows == 20, "20 rows in the spool")
        assert writer.spooling and writer.pending == 0
        # More rows while down, after the store has been retried (and refused) at least once more.
        refused = store.refused
        await wait_for(lambda: store.refused > refused, "a retry of the store while spooling")
        for r in rows[30:50]:
            writer.submit(r)
        await wait_for(lambda: writer.spooled_rows == 40, "40 rows in the spool")
        assert _spooled(spool) == rows[10:50]  # whole rows, in submit order
        assert writer.written == 10

        store.down = False
        for r in rows[50:]:
            writer.submit(r)  # queued behind the spool: must land after it
        await wait_for(lambda: writer.written == 60 and not writer.spooling, "replay and the last rows")
        assert store.rows == rows  # every row once, in submit order, content intact
        assert max(len(b) for b in store.batches) <= 4  # the replay is batched too
        assert not spool.exists() and writer.spooled_rows == 0 and writer.dropped == 0
        assert writer.last_write_lag_s is not None
    finally:
        await writer.stop()


async def test_a_load_outpacing_the_spool_does_not_starve_store_retries(tmp_path: Path) -> None:
    """Each pass takes only the rows pending when it starts: a producer adding rows faster than
    spool appends finish cannot hold the writer in one pass, so the store is still retried."""
    store, spool = FlakyStore(), tmp_path / "ledger.jsonl"
    writer = _writer(store, spool)
    submitted: list[LedgerRow] = []
    producing = True

    async def produce() -> None:
        i = 0
        while producing:
            # refilled every loop turn, far faster than a spool append on a thread, but held
            # under 1000 queued rows: an unbounded queue makes each pass's append longer than the
            # last, and on a slow disk three passes could outlast the wait
            if writer.pending < 1000:
                for _ in range(10):
                    row = make_row(i)
                    writer.submit(row)
                    submitted.append(row)
                    i += 1
            await asyncio.sleep(0)

    store.down = True
    writer.start()
    producer = asyncio.create_task(produce())
    try:
        await wait_for(lambda: store.refused >= 3, "three store retries while the load goes on")
    finally:
        producing = False
        await producer
        store.down = False
        await writer.stop()
    assert store.rows == submitted and writer.dropped == 0 and not spool.exists()


async def test_a_spool_left_by_an_earlier_run_is_replayed_first(tmp_path: Path) -> None:
    """stop() with the store down leaves every row in the spool; the next writer replays it before new rows."""
    spool = tmp_path / "ledger.jsonl"
    down = FlakyStore()
    down.down = True
    first = _writer(down, spool)
    first.start()
    for i in range(9):
        first.submit(make_row(i))
    await first.stop()
    assert _spooled(spool) == [make_row(i) for i in range(9)]
    assert first.dropped == 0

    with spool.open("ab") as f:  # a torn last line, as a crash mid-append would leave
        f.write(make_row(99).to_json()[:20])
    up = FlakyStore()
    second = _writer(up, spool)
    second.submit(make_row(9))
    second.start()
    await wait_for(lambda: not spool.exists() and second.written == 10, "the old spool replayed")
    await second.stop()
    assert up.rows == [make_row(i) for i in range(10)]
    assert second.dropped == 1  # the torn line, counted and logged


async def test_unwritable_spool_counts_and_logs_dropped_rows(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """Rows that reach neither the store nor the spool are counted in ``dropped`` and logged at ERROR."""
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the spool's directory should be")
    store = FlakyStore()
    store.down = True
    writer = _writer(store, blocker / "ledger.jsonl")
    caplog.set_level(logging.ERROR, logger="breakwater.ledger")
    writer.start()
    try:
        for i in range(6):
            writer.submit(make_row(i))
        await wait_for(lambda: writer.dropped == 6, "six dropped rows")
        assert writer.spooled_rows == 0 and writer.written == 0
        assert any("dropped" in r.getMessage() for r in caplog.records if r.name == "breakwater.ledger")

        store.down = False  # the store comes back: new rows are written again
        # Once its backoff is over the writer finds the store up and leaves spooling mode; a row
        # submitted before that would (rightly) be dropped too, the spool being still unusable.
        await wait_for(lambda: not writer.spooling, "the store retried after its backoff")
        writer.submit(make_row(6))
        await wait_for(lambda: writer.written == 1, "direct writes resumed")
        assert store.rows == [make_row(6)]
    finally:
        await writer.stop()


async def test_stop_flushes_everything_without_waiting_for_a_tick(tmp_path: Path) -> None:
    """stop() writes every queued row, in batches, even with a flush interval far longer than the test."""
    store = FlakyStore()
    writer = LedgerWriter(store, tmp_path / "ledger.jsonl", batch_size=100, flush_interval_s=3600)
    writer.start()
    await wait_for(lambda: writer._idle, "the writer asleep between flushes")
    rows = [make_row(i) for i in range(1000)]
    for r in rows:
        writer.submit(r)
    assert writer.pending == 1000
    await writer.stop()
    assert store.rows == rows and len(store.batches) == 10
    assert writer.pending == 0 and writer.written == 1000


async def test_a_writer_behind_says_so_to_the_store(tmp_path: Path) -> None:
    """A batch with a full batch still queued after it, or replayed from the spool, is written with
    ``behind=True`` (the SQLite store then does not defer it to its low-priority thread); the last
    batch of a backlog, and a writer keeping up, write with ``behind=False``."""
    store, spool = FlakyStore(), tmp_path / "ledger.jsonl"
    writer = LedgerWriter(store, spool, batch_size=4, flush_interval_s=3600)
    for i in range(10):
        writer.submit(make_row(i))
    await writer.stop()  # 10 rows in batches of 4: 6 wait after the first, 2 after the second
    assert [len(b) for b in store.batches] == [4, 4, 2]
    assert store.behind == [True, False, False]

    store = FlakyStore()
    store.down = True
    writer = _writer(store, spool, retry_initial_s=3600, retry_max_s=3600)
    writer.start()
    for i in range(3):
        writer.submit(make_row(i))
    await wait_for(lambda: writer.spooled_rows == 3, "rows spooled")
    store.down = False
    await writer.stop()
    assert store.rows == [make_row(i) for i in range(3)]
    assert store.behind == [True]  # the replay


async def test_stop_replays_the_spool_when_the_store_is_back(tmp_path: Path) -> None:
    """stop() drains the spool too, ignoring the backoff, when the store accepts writes again."""
    store, spool = FlakyStore(), tmp_path / "ledger.jsonl"
    writer = _writer(store, spool, retry_initial_s=3600, retry_max_s=3600)
    store.down = True
    writer.start()
    for i in range(7):
        writer.submit(make_row(i))
    await wait_for(lambda: writer.spooled_rows == 7, "rows spooled")
    store.down = False
    writer.submit(make_row(7))
    await writer.stop()
    assert store.rows == [make_row(i) for i in range(8)]
    assert not spool.exists()


async def test_submit_beyond_max_pending_is_counted(tmp_path: Path) -> None:
    """A full queue drops (and counts) rather than blocking or raising."""
    writer = LedgerWriter(FlakyStore(), tmp_path / "s.jsonl", max_pending=3)
    for i in range(5):
        writer.submit(make_row(i))
    assert writer.pending == 3 and writer.dropped == 2
