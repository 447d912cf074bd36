"""What the batch runner's tests share: a line executor that answers as scripted, a load gauge,
a batch of ``n`` lines in a store, and waiting on a condition with a deadline."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable

import pytest

from breakwater.core.config.batches import BatchSettings
from breakwater.engine.batches.lines import Line
from breakwater.engine.batches.runner import LineAnswer
from breakwater.engine.batches.store import BatchRecord, FileInfo
from breakwater.infra.batch_memory import MemoryBatchStore

T = 1_800_000_000.0
SETTINGS = BatchSettings(poll_s=0.01, lease_s=60, concurrency=2)


def content_of(n: int) -> bytes:
    body = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
    lines = [{"custom_id": f"c{i}", "method": "POST", "url": "/v1/chat/completions", "body": body} for i in range(n)]
    return b"".join(json.dumps(line).encode() + b"\n" for line in lines)


async def batch_of(store: MemoryBatchStore, n: int, batch_id: str = "batch_1") -> BatchRecord:
    content = content_of(n)
    await store.file_put(FileInfo("file-in", "", "batch", "in.jsonl", len(content), T), content)
    record = BatchRecord(batch_id, "", "/v1/chat/completions", "file-in", "24h", "validating", T, T + 86_400)
    await store.batch_save(record, None)
    return record


async def until(condition: Callable[[], Awaitable[bool]], what: str) -> None:
    """Wait for ``condition`` on the loop; fail, naming ``what``, after 5 s."""
    deadline = time.monotonic() + 5
    while not await condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting until {what}")
        await asyncio.sleep(0.005)  # polling a condition with a deadline, not a fixed wait


class Fake:
    """A line executor: answers from ``answers`` (then 200s); lines wait while ``gate`` is clear."""

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.running = 0
        self.most = 0
        self.gate = asyncio.Event()
        self.gate.set()
        self.answers: dict[str, list[LineAnswer]] = {}
        #: lines that wait for ``gate`` (``None``: every line)
        self.held: set[str] | None = None

    async def __call__(self, batch: BatchRecord, line: Line) -> LineAnswer:
        self.calls.append(line.custom_id)
        self.running += 1
        self.most = max(self.most, self.running)
        try:
            if self.held is None or line.custom_id in self.held:
                await self.gate.wait()
        finally:
            self.running -= 1
        queued = self.answers.get(line.custom_id)
        if queued:
            return queued.pop(0)
        return LineAnswer(200, f"req-{line.custom_id}", {"object": "chat.completion"})


class Load:
    def __init__(self) -> None:
        self.now = (0, 0)
        self.looks = 0

    def __call__(self) -> tuple[int, int]:
        self.looks += 1
        return self.now


async def status_of(store: MemoryBatchStore, batch_id: str = "batch_1") -> str:
    record = await store.batch_get(batch_id, "")
    assert record is not None
    return record.status


async def equals(value: Awaitable[str], expected: str) -> bool:
    return await value == expected


async def value_of(value: bool) -> bool:
    return value


async def at_least(value: Awaitable[set[str]], at_least: int) -> bool:
    return len(await value) >= at_least
