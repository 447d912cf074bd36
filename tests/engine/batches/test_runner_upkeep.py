"""The batch runner's upkeep between batches (``engine/batches/runner.py``), on the memory store
and a SQLite key store: an idle runner's looks write nothing, and a held batch's lease is still
renewed at every look."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from contextlib import closing
from pathlib import Path

import pytest

from breakwater.engine.batches.runner import BatchRunner
from breakwater.engine.batches.store import BatchRecord, FileInfo
from breakwater.infra.batch_memory import MemoryBatchStore
from breakwater.infra.clock import ManualClock
from breakwater.infra.keystore import SqliteKeyStore
from tests.engine.batches.test_runner import SETTINGS, Fake, Load, T, _aval, _content, _status, _until, _value

#: the ``BatchStore`` methods that write
WRITES = ("file_put", "file_delete", "batch_save", "batch_claim", "batch_release", "line_put")


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
def store() -> MemoryBatchStore:
    return MemoryBatchStore()


@pytest.fixture
def recording(store: MemoryBatchStore) -> Recording:
    return Recording(store)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(wall=T)


@pytest.fixture
def fake() -> Fake:
    return Fake()


@pytest.fixture
async def runner(recording: Recording, clock: ManualClock, fake: Fake) -> AsyncIterator[BatchRunner]:
    runner = BatchRunner(lambda: recording, lambda: SETTINGS, fake, Load(), clock)  # type: ignore[arg-type, return-value]
    yield runner
    await runner.close()


async def _input(store: MemoryBatchStore, n: int) -> None:
    content = _content(n)
    await store.file_put(FileInfo("file-in", "", "batch", "in.jsonl", len(content), T), content)


def _record(status: str = "validating") -> BatchRecord:
    return BatchRecord(
        "batch_1",
        "",
        "/v1/chat/completions",
        "file-in",
        "24h",
        status,  # type: ignore[arg-type]
        T,
        T + 86_400,
    )


async def test_an_idle_runners_looks_write_nothing(
    store: MemoryBatchStore, recording: Recording, runner: BatchRunner
) -> None:
    """With only finished batches in the store, many looks go by and the runner makes no write:
    no claim, nothing let go when it stops."""
    await _input(store, 2)
    await store.batch_save(_record("completed"), None)
    runner.start()
    await _until(lambda: _value(recording.looks >= 10), "the runner has looked ten times")
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
    await _until(lambda: _value(recording.writes.count(("batch_claim", runner.name)) >= 3), "three claims")
    fake.gate.set()
    await _until(lambda: _aval(_status(store), "completed"), "the batch completes")
    await _until(lambda: _value(runner.running == 0), "the runner lets the batch go")
    looks, writes = recording.looks, len(recording.writes)
    await _until(lambda: _value(recording.looks >= looks + 5), "five more looks")
    assert len(recording.writes) == writes


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
            await _until(lambda: _value(looking.looks >= 10), "the runner has looked ten times")
        finally:
            await runner.close()
            await sqlite_store.close()
        assert observer.execute("PRAGMA data_version").fetchone()[0] == version
    assert looking.writes == []
