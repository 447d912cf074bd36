"""The batch runner's upkeep between batches (``engine/batches/runner.py``), on the memory store:
an idle runner's looks write nothing, a held batch's lease is still renewed at every look, and
each look sweeps expired files in bounded chunks, never an active batch's input."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from contextlib import closing
from pathlib import Path

import pytest

from breakwater.engine.batches import runner as runner_module
from breakwater.engine.batches.runner import BatchRunner
from breakwater.engine.batches.store import BATCH_FILE_TTL_S, BatchRecord, FileInfo
from breakwater.infra.batch_memory import MemoryBatchStore
from breakwater.infra.clock import ManualClock
from breakwater.infra.keystore import SqliteKeyStore
from breakwater.observability.batch_metrics import BatchCollector
from tests.engine.batches.scripted import SETTINGS, Fake, Load, T, content_of, equals, status_of, until, value_of

#: the ``BatchStore`` methods that write
WRITES = ("file_put", "file_delete", "file_sweep", "batch_save", "batch_claim", "batch_release", "line_put")


class Recording:
    """The store, recording every write call (name, first argument) and counting looks for work."""

    def __init__(self, store: MemoryBatchStore) -> None:
        self._store = store
        self.writes: list[tuple[str, object]] = []
        self.looks = 0

    def __getattr__(self, name: str) -> object:
        method = getattr(self._store, name)
        if name not in WRITES:
            return method

        async def recorded(*args: object) -> object:
            self.writes.append((name, args[0] if args else None))
            return await method(*args)

        return recorded

    async def batch_claimable(self, runner: str, now: float) -> bool:
        self.looks += 1
        return await self._store.batch_claimable(runner, now)


@pytest.fixture
def recording(store: MemoryBatchStore) -> Recording:
    return Recording(store)


@pytest.fixture
async def runner(recording: Recording, clock: ManualClock, fake: Fake) -> AsyncIterator[BatchRunner]:
    runner = BatchRunner(lambda: recording, lambda: SETTINGS, fake, Load(), clock)  # type: ignore[arg-type, return-value]
    yield runner
    await runner.close()


async def _input(store: MemoryBatchStore, n: int, expires_at: float | None = None) -> None:
    content = content_of(n)
    await store.file_put(FileInfo("file-in", "", "batch", "in.jsonl", len(content), T, expires_at), content)


def _record(status: str = "validating", output_expires_s: float | None = None) -> BatchRecord:
    return BatchRecord(
        "batch_1",
        "",
        "/v1/chat/completions",
        "file-in",
        "24h",
        status,  # type: ignore[arg-type]
        T,
        T + 86_400,
        output_expires_s=output_expires_s,
    )


async def test_an_idle_runners_looks_write_nothing(
    store: MemoryBatchStore, recording: Recording, runner: BatchRunner
) -> None:
    """With only finished batches and unexpired files in the store, many looks go by and the
    runner makes no write: no claim, no sweep, nothing let go when it stops."""
    await _input(store, 2, expires_at=T + 3600)
    await store.batch_save(_record("completed"), None)
    runner.start()
    await until(lambda: value_of(recording.looks >= 10), "the runner has looked ten times")
    await runner.close()
    assert recording.writes == []


async def test_a_held_batch_is_renewed_at_every_look(
    store: MemoryBatchStore, recording: Recording, runner: BatchRunner, fake: Fake
) -> None:
    """While the runner works on a batch, each look claims it again (renewing its lease); once the
    batch has ended, the looks stop writing."""
    await _input(store, 3)
    await store.batch_save(_record(), None)
    fake.gate.clear()
    runner.start()
    await until(lambda: value_of(recording.writes.count(("batch_claim", runner.name)) >= 3), "three claims")
    fake.gate.set()
    await until(lambda: equals(status_of(store), "completed"), "the batch completes")
    await until(lambda: value_of(runner.running == 0), "the runner lets the batch go")
    looks, writes = recording.looks, len(recording.writes)
    await until(lambda: value_of(recording.looks >= looks + 5), "five more looks")
    assert len(recording.writes) == writes


async def test_each_look_sweeps_a_bounded_chunk_of_expired_files(
    store: MemoryBatchStore,
    recording: Recording,
    runner: BatchRunner,
    clock: ManualClock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Expired files are deleted by the runner's looks, at most ``SWEEP_CHUNK`` a look, soonest
    expired first, and counted on ``/metrics``; files not expired stay."""
    monkeypatch.setattr(runner_module, "SWEEP_CHUNK", 2)
    for i in range(5):
        await store.file_put(FileInfo(f"file-{i}", "", "batch", "x.jsonl", 1, T, T + 3600 + i), b"x")
    await store.file_put(FileInfo("file-kept", "", "batch", "x.jsonl", 1, T, T + 7200), b"x")
    clock.advance(3600 + 4)
    runner.start()
    await until(lambda: value_of(runner.swept == 5), "five files are swept")
    sweeps = [ids for name, ids in recording.writes if name == "file_sweep"]
    assert sweeps == [["file-0", "file-1"], ["file-2", "file-3"], ["file-4"]]
    assert await store.file_get("file-kept", "", clock.time()) is not None
    metrics = {m.name: m.samples[0].value for m in BatchCollector(runner).collect() if m.samples}
    assert metrics["breakwater_batch_files_expired"] == 5


async def test_an_active_batchs_expired_input_is_kept_until_the_batch_ends(
    store: MemoryBatchStore, recording: Recording, runner: BatchRunner, clock: ManualClock, fake: Fake
) -> None:
    """A batch whose input file expires while it runs keeps running from it to the end (its owner
    no longer sees the file); the sweep deletes the file only once the batch has ended."""
    await _input(store, 3, expires_at=T + 3600)
    await store.batch_save(_record(), None)
    fake.gate.clear()
    runner.start()
    await until(lambda: value_of(fake.running == 2), "two lines run")
    clock.advance(3600)
    looks = recording.looks
    await until(lambda: value_of(recording.looks >= looks + 3), "three looks after the input expired")
    assert runner.swept == 0 and await store.file_content("file-in", "", None) is not None
    assert await store.file_get("file-in", "", clock.time()) is None
    fake.gate.set()
    await until(lambda: equals(status_of(store), "completed"), "the batch completes")
    record = await store.batch_get("batch_1", "")
    assert record is not None and (record.completed, record.failed) == (3, 0)
    await until(lambda: value_of(runner.swept == 1), "the input file is swept")
    assert await store.file_content("file-in", "", None) is None


@pytest.mark.parametrize(("output_expires_s", "lives"), [(None, BATCH_FILE_TTL_S), (7200.0, 7200.0)])
async def test_output_files_expire_after_the_batchs_output_expires_after(
    store: MemoryBatchStore, runner: BatchRunner, clock: ManualClock, output_expires_s: float | None, lives: float
) -> None:
    """A batch's output file expires ``output_expires_after`` seconds after it is made (30 days
    when the batch names none)."""
    await _input(store, 1)
    await store.batch_save(_record(output_expires_s=output_expires_s), None)
    clock.advance(100)
    runner.start()
    await until(lambda: equals(status_of(store), "completed"), "the batch completes")
    record = await store.batch_get("batch_1", "")
    assert record is not None and record.output_file_id is not None
    info = await store.file_get(record.output_file_id, "", clock.time())
    assert info is not None and info.expires_at == info.created_at + lives == T + 100 + lives


async def test_an_idle_runner_leaves_a_sqlite_store_untouched(tmp_path: Path, clock: ManualClock, fake: Fake) -> None:
    """On a SQLite key store, an idle runner's looks commit nothing to the file: another
    connection's ``PRAGMA data_version`` (moved by every commit but its own) stays where it was."""
    sqlite_store = SqliteKeyStore(tmp_path / "keys.db")
    await sqlite_store.open()
    looking = Recording(sqlite_store)  # type: ignore[arg-type]
    runner = BatchRunner(lambda: looking, lambda: SETTINGS, fake, Load(), clock)  # type: ignore[arg-type, return-value]
    with closing(sqlite3.connect(tmp_path / "keys.db")) as observer:
        version = observer.execute("PRAGMA data_version").fetchone()[0]
        runner.start()
        try:
            await until(lambda: value_of(looking.looks >= 10), "the runner has looked ten times")
        finally:
            await runner.close()
            await sqlite_store.close()
        assert observer.execute("PRAGMA data_version").fetchone()[0] == version
    assert looking.writes == []


async def test_close_lets_go_of_a_lease_no_task_works_on(
    store: MemoryBatchStore, clock: ManualClock, fake: Fake
) -> None:
    """A batch this runner claimed whose task is not running at that moment (it ended between two
    looks) is let go on close too, so another gateway takes it at once, not when the lease runs out."""
    await store.file_put(FileInfo("file-in", "", "batch", "in.jsonl", len(content_of(2)), T), content_of(2))
    await store.batch_save(_record(), None)
    runner = BatchRunner(lambda: store, lambda: SETTINGS, fake, Load(), clock)
    assert [b.id for b in await runner._claim(store, SETTINGS)] == ["batch_1"]  # leased, no task started
    assert not await store.batch_claimable("another-runner", clock.time())
    await runner.close()
    assert await store.batch_claimable("another-runner", clock.time())
