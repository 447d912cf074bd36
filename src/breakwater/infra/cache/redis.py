"""Cached answers in Redis, shared by every replica and worker: ``SET key value PX ttl`` and ``GET``.

Keys are ``<namespace>cache:<hex key>``; Redis expires them itself. Every call is bounded by
``timeout_s``; any failure (refused, reset, timed out) becomes ``CacheUnavailable`` and the
request goes on uncached. redis-py's own retries are off, so a sick Redis costs a request at
most one timeout (``infra/redis_client.py``). The URL may hold a password: messages say "Redis", never the URL.
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import TypeVar

from breakwater.engine.cache.store import CacheUnavailable
from breakwater.infra.redis_client import answered, bounded_redis

_T = TypeVar("_T")


class RedisCacheStore:
    backend = "redis"

    def __init__(self, url: str, *, namespace: str = "bw:", timeout_s: float = 0.1, max_connections: int = 64) -> None:
        self._prefix = namespace + "cache:"
        self._timeout_s = timeout_s
        self._redis = bounded_redis(url, timeout_s=timeout_s, max_connections=max_connections)

    async def get(self, key: str) -> bytes | None:
        value = await self._call(self._redis.get(self._prefix + key))
        return value if isinstance(value, bytes) else None

    async def set(self, key: str, value: bytes, ttl_s: float) -> None:
        await self._call(self._redis.set(self._prefix + key, value, px=max(int(ttl_s * 1000), 1)))

    async def delete(self, key: str) -> None:
        await self._call(self._redis.delete(self._prefix + key))

    async def close(self) -> None:
        await self._redis.aclose()

    async def _call(self, op: Awaitable[_T]) -> _T:
        return await answered(op, self._timeout_s, CacheUnavailable)
