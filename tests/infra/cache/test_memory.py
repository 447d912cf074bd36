"""The memory store's own rules: bounded by bytes, least recently used out first."""

from __future__ import annotations

from breakwater.infra.cache.memory import OVERHEAD, MemoryCacheStore
from breakwater.infra.clock import ManualClock


async def test_storing_past_the_bound_evicts_the_least_recently_used() -> None:
    """With room for two entries, a third evicts the one read or written longest ago."""
    store = MemoryCacheStore(2 * (100 + OVERHEAD))
    await store.set("a", b"a" * 100, 60)
    await store.set("b", b"b" * 100, 60)
    assert await store.get("a") is not None  # a is now the most recently used
    await store.set("c", b"c" * 100, 60)
    assert await store.get("b") is None
    assert await store.get("a") is not None and await store.get("c") is not None
    assert (store.entries, store.bytes, store.evictions) == (2, 2 * (100 + OVERHEAD), 1)


async def test_a_value_larger_than_the_bound_is_not_stored() -> None:
    """A value that could never fit is refused instead of emptying the cache for it."""
    store = MemoryCacheStore(1000)
    await store.set("small", b"x", 60)
    await store.set("huge", b"x" * 2000, 60)
    assert await store.get("huge") is None and await store.get("small") == b"x"


async def test_expired_entries_at_the_old_end_are_dropped_by_later_writes() -> None:
    """Memory held by expired entries comes back as the cache is written, without reading them."""
    clock = ManualClock()
    store = MemoryCacheStore(10_000, clock)
    await store.set("old", b"x" * 100, 1)
    clock.advance(2)
    await store.set("new", b"y", 60)
    assert store.entries == 1 and store.bytes == 1 + OVERHEAD
