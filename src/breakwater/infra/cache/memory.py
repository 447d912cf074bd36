"""Cached answers in this process's memory, bounded by bytes, least recently used out first.

Every value counts its length plus a fixed allowance for its key and bookkeeping against
``max_bytes``; storing past the bound evicts from the least recently read or written end. A
value larger than the whole bound is not stored. Expiry is checked when a key is read (an
expired value is dropped then) and on every write for the entries at the old end, so memory held
by expired entries is given back as the cache is used.

Values and expiry times live in two dicts rather than one dict of ``(expiry, value)`` tuples: a
tuple is an object the garbage collector tracks and walks on every full collection, so a cache
of a million entries would slow every collection down; bytes, strings and floats are not tracked.
"""

from __future__ import annotations

from collections import OrderedDict

from breakwater.engine.ports import Clock, SystemClock

#: bytes counted for each entry besides its value: the key (64 hex characters) and the dict slot
OVERHEAD = 200


class MemoryCacheStore:
    backend = "memory"

    def __init__(self, max_bytes: int, clock: Clock | None = None) -> None:
        self.max_bytes = max_bytes
        self._clock: Clock = clock or SystemClock()
        #: key -> value, least recently used first; key -> when it expires (monotonic)
        self._entries: OrderedDict[str, bytes] = OrderedDict()
        self._expires: dict[str, float] = {}
        self.bytes = 0
        self.evictions = 0

    @property
    def entries(self) -> int:
        return len(self._entries)

    async def get(self, key: str) -> bytes | None:
        return self.get_now(key)

    def get_now(self, key: str) -> bytes | None:
        """``get`` without a coroutine (``engine/cache/store.ImmediateStore``)."""
        value = self._entries.get(key)
        if value is None:
            return None
        if self._expires[key] <= self._clock.monotonic():
            self._drop(key)
            return None
        self._entries.move_to_end(key)
        return value

    async def set(self, key: str, value: bytes, ttl_s: float) -> None:
        self.set_now(key, value, ttl_s)

    def set_now(self, key: str, value: bytes, ttl_s: float) -> None:
        """``set`` without a coroutine: nothing here waits (``engine/cache/store.ImmediateStore``)."""
        size = len(value) + OVERHEAD
        if size > self.max_bytes:
            return
        if key in self._entries:
            self._drop(key)
        now = self._clock.monotonic()
        self._expire(now)
        while self.bytes + size > self.max_bytes and self._entries:
            self._drop(next(iter(self._entries)))
            self.evictions += 1
        self._entries[key] = value
        self._expires[key] = now + ttl_s
        self.bytes += size

    async def delete(self, key: str) -> None:
        self.delete_now(key)

    def delete_now(self, key: str) -> None:
        """``delete`` without a coroutine."""
        if key in self._entries:
            self._drop(key)

    async def close(self) -> None:
        self._entries.clear()
        self._expires.clear()
        self.bytes = 0

    def _drop(self, key: str) -> None:
        value = self._entries.pop(key)
        del self._expires[key]
        self.bytes -= len(value) + OVERHEAD

    def _expire(self, now: float) -> None:
        # the oldest two only: each write can retire more than it adds, so expired entries never
        # pile up, and there is never a full scan
        for _ in range(2):
            if not self._entries:
                return
            key = next(iter(self._entries))
            if self._expires[key] > now:
                return
            self._drop(key)
