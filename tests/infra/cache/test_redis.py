"""The Redis store when Redis is not there: every call is ``CacheUnavailable`` within its timeout."""

from __future__ import annotations

import socket

import pytest

from breakwater.engine.cache.store import CacheUnavailable
from breakwater.infra.cache.redis import RedisCacheStore


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_an_unreachable_redis_is_cache_unavailable_naming_no_url() -> None:
    """get, set and delete each raise CacheUnavailable; the message says Redis, not the URL."""
    store = RedisCacheStore(f"redis://:sekrit@127.0.0.1:{_closed_port()}/0", timeout_s=0.2)
    try:
        for call in (store.get("k"), store.set("k", b"v", 1), store.delete("k")):
            with pytest.raises(CacheUnavailable) as caught:
                await call
            assert "Redis" in str(caught.value) and "sekrit" not in str(caught.value)
    finally:
        await store.close()
