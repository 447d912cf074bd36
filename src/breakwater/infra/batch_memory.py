"""Batch files and batches in this process's memory: the store of a gateway without access control.

Lost on restart (a batch in progress is lost with it) and not shared between replicas or
workers; a gateway whose keys live in a key store keeps them there
(``infra/keystore/batch_plans.py``). Files count against ``batches.max_file_bytes`` each.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TypeVar

from breakwater.engine.batches.store import ACTIVE, BatchRecord, FileInfo, LineResult

T = TypeVar("T", FileInfo, BatchRecord)


class MemoryBatchStore:
    """``BatchStore`` (engine/batches/store.py) in dicts, in insertion (creation) order."""

    def __init__(self) -> None:
        self._files: dict[str, tuple[FileInfo, bytes]] = {}
        self._batches: dict[str, BatchRecord] = {}
        #: batch id -> runner, lease end
        self._leases: dict[str, tuple[str, float]] = {}
        self._lines: dict[str, dict[str, LineResult]] = {}

    async def open(self) -> None:
        return None

    async def close(self) -> None:
        return None

    async def file_put(self, info: FileInfo, content: bytes) -> None:
        self._files[info.id] = (info, content)

    async def file_get(self, file_id: str, owner: str, now: float | None) -> FileInfo | None:
        found = self._found(file_id, owner, now)
        return None if found is None else found[0]

    async def file_content(self, file_id: str, owner: str, now: float | None) -> bytes | None:
        found = self._found(file_id, owner, now)
        return None if found is None else found[1]

    async def file_list(
        self, owner: str, purpose: str | None, after: str | None, limit: int, now: float
    ) -> list[FileInfo]:
        # the page starts after `after` whatever its purpose or expiry, as in the key stores
        newest = [info for info, _ in reversed(self._files.values()) if info.owner == owner]
        later = _page(newest, after, len(newest))
        return [i for i in later if (purpose is None or i.purpose == purpose) and _live(i, now)][:limit]

    async def file_delete(self, file_id: str, owner: str, now: float) -> bool:
        if self._found(file_id, owner, now) is None:
            return False
        del self._files[file_id]
        return True

    async def file_expired(self, now: float, limit: int) -> list[str]:
        inputs = self._inputs()
        expired = [info for info, _ in self._files.values() if not _live(info, now) and info.id not in inputs]
        return [info.id for info in sorted(expired, key=lambda info: info.expires_at or 0.0)[:limit]]

    async def file_sweep(self, file_ids: list[str], now: float) -> int:
        inputs = self._inputs()
        swept = 0
        for file_id in file_ids:
            found = self._files.get(file_id)
            if found is not None and not _live(found[0], now) and file_id not in inputs:
                del self._files[file_id]
                swept += 1
        return swept

    def _found(self, file_id: str, owner: str, now: float | None) -> tuple[FileInfo, bytes] | None:
        found = self._files.get(file_id)
        if found is None or found[0].owner != owner or (now is not None and not _live(found[0], now)):
            return None
        return found

    def _inputs(self) -> set[str]:
        """The input files of the active batches (never swept)."""
        return {record.input_file_id for record in self._batches.values() if record.status in ACTIVE}

    async def batch_save(self, record: BatchRecord, expect: str | None) -> bool:
        stored = self._batches.get(record.id)
        if (expect is None) != (stored is None) or (stored is not None and stored.status != expect):
            return False
        self._batches[record.id] = record
        return True

    async def batch_get(self, batch_id: str, owner: str) -> BatchRecord | None:
        record = self._batches.get(batch_id)
        return self._counted(record) if record is not None and record.owner == owner else None

    async def batch_list(self, owner: str, after: str | None, limit: int) -> list[BatchRecord]:
        newest = [r for r in reversed(self._batches.values()) if r.owner == owner]
        return [self._counted(r) for r in _page(newest, after, limit)]

    async def batch_claim(self, runner: str, now: float, lease_s: float, limit: int) -> list[BatchRecord]:
        held: list[BatchRecord] = []
        free: list[BatchRecord] = []
        for record in self._batches.values():
            if self._claimable(record, runner, now):
                (held if self._leases.get(record.id, ("", 0.0))[0] == runner else free).append(record)
        chosen = {record.id for record in [*held, *free][:limit]}
        claimed = [record for record in self._batches.values() if record.id in chosen]  # oldest first
        for record in claimed:
            self._leases[record.id] = (runner, now + lease_s)
        return [self._counted(record) for record in claimed]

    async def batch_claimable(self, runner: str, now: float) -> bool:
        return any(self._claimable(record, runner, now) for record in self._batches.values())

    async def batch_release(self, batch_id: str, runner: str) -> None:
        if self._leases.get(batch_id, ("", 0.0))[0] == runner:
            del self._leases[batch_id]

    async def line_put(self, batch_id: str, result: LineResult) -> bool:
        lines = self._lines.setdefault(batch_id, {})
        if result.custom_id in lines:
            return False
        lines[result.custom_id] = result
        return True

    async def line_ids(self, batch_id: str) -> set[str]:
        return set(self._lines.get(batch_id, {}))

    async def lines(self, batch_id: str) -> list[LineResult]:
        return sorted(self._lines.get(batch_id, {}).values(), key=lambda r: r.index)

    def _claimable(self, record: BatchRecord, runner: str, now: float) -> bool:
        holder, until = self._leases.get(record.id, ("", 0.0))
        return record.status in ACTIVE and (holder == runner or until <= now)

    def _counted(self, record: BatchRecord) -> BatchRecord:
        lines = self._lines.get(record.id, {}).values()
        ok = sum(1 for r in lines if r.ok)
        return replace(record, completed=ok, failed=len(lines) - ok)


def _live(info: FileInfo, now: float) -> bool:
    """Whether the file has not expired at ``now``."""
    return info.expires_at is None or info.expires_at > now


def _page(items: list[T], after: str | None, limit: int) -> list[T]:
    """The ``limit`` items after the one whose id is ``after`` (all from the first without it)."""
    if after is not None:
        ids = [item.id for item in items]
        items = items[ids.index(after) + 1 :] if after in ids else []
    return items[:limit]
