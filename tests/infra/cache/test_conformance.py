"""One suite, every cache store: the memory store and the Redis store behave alike.

Redis needs 127.0.0.1:6379 (skipped when absent, a failure under
``BREAKWATER_REQUIRE_SERVICES=1``); each test uses a key namespace of its own, deleted after it.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator

import pytest

from breakwater.engine.cache.store import CacheStore
from breakwater.infra.cache.memory import MemoryCacheStore
from breakwater.infra.cache.redis import RedisCacheStore
from breakwater.infra.clock import ManualClock

from ..counters.conftest import URL, namespace  # the fixture, used by name (exported below)

__all__ = ["namespace"]


@pytest.fixture(params=["memory", "redis"])
def backend(request: pytest.FixtureRequest) -> Iterator[str]:
    yield request.param


@pytest.fixture
async def store(backend: str, request: pytest.FixtureRequest) -> AsyncIterator[CacheStore]:
    made: CacheStore
    if backend == "memory":
        made = MemoryCacheStore(1024 * 1024)
    else:
        prefix = request.getfixturevalue("namespace")
        made = RedisCacheStore(URL, namespace=prefix, timeout_s=1.0)
    yield made
    await made.close()


async def test_a_value_set_is_got_back_and_a_missing_key_is_none(store: CacheStore) -> None:
    """get returns exactly the bytes set under a key, and None for a key never set."""
    await store.set("a" * 64, b'{"x": 1}', 60)
    assert await store.get("a" * 64) == b'{"x": 1}'
    assert await store.get("b" * 64) is None


async def test_set_replaces_and_delete_forgets(store: CacheStore) -> None:
    """A second set under a key replaces the value; delete removes it (and deleting again is harmless)."""
    await store.set("k", b"one", 60)
    await store.set("k", b"two", 60)
    assert await store.get("k") == b"two"
    await store.delete("k")
    await store.delete("k")
    assert await store.get("k") is None


async def test_a_value_expires_after_its_ttl(backend: str, request: pytest.FixtureRequest) -> None:
    """After ``ttl_s`` the value is gone (memory: on the injected clock; Redis: its own expiry)."""
    if backend == "memory":
        clock = ManualClock()
        memory = MemoryCacheStore(1024, clock)
        await memory.set("k", b"v", 5)
        clock.advance(4.9)
        assert await memory.get("k") == b"v"
        clock.advance(0.2)
        assert await memory.get("k") is None
        return
    redis_store = RedisCacheStore(URL, namespace=request.getfixturevalue("namespace"), timeout_s=1.0)
    try:
        await redis_store.set("k", b"v", 0.05)
        assert await redis_store.get("k") == b"v"
        for _ in range(200):  # Redis expires on its own clock: a bounded wait on the condition
            if await redis_store.get("k") is None:
                break
            await asyncio.sleep(0.01)
        assert await redis_store.get("k") is None
    finally:
        await redis_store.close()
