"""Stored responses in this process's memory: the store of a gateway without access control.

Lost on restart and not shared between replicas or workers; a gateway whose keys live in a
key store keeps its responses there (``infra/keystore/response_plans.py``). Bounded by count:
past ``max_records`` the oldest records go first; expired ones go on every write.
"""

from __future__ import annotations

from collections import OrderedDict

from breakwater.engine.responses.store import StoredResponse


class MemoryResponseStore:
    """``ResponseStore`` (engine/responses/store.py) in a dict, oldest first.

    Args:
        max_records: the most records kept; the oldest are dropped past it.
    """

    def __init__(self, max_records: int = 10_000) -> None:
        self._records: OrderedDict[str, StoredResponse] = OrderedDict()
        self._max = max_records

    async def open(self) -> None:
        return None

    async def close(self) -> None:
        return None

    async def response_put(self, record: StoredResponse, now: float) -> None:
        records = self._records
        # one TTL per store: records expire in the order they were written, so only the front is looked at
        while records and next(iter(records.values())).expires_at <= now:
            records.popitem(last=False)
        records.pop(record.id, None)
        records[record.id] = record
        while len(records) > self._max:
            records.popitem(last=False)

    async def response_get(self, response_id: str, owner: str, now: float) -> StoredResponse | None:
        record = self._records.get(response_id)
        if record is None or record.owner != owner or record.expires_at <= now:
            return None
        return record

    async def response_delete(self, response_id: str, owner: str) -> bool:
        record = self._records.get(response_id)
        if record is None or record.owner != owner:
            return False
        del self._records[response_id]
        return True
