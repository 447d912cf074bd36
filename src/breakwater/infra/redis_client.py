"""The one way Breakwater opens a Redis client: a bounded pool, every wait bounded, no retries.

Shared by the limit counters (``infra/counters/redis.py``) and the answer cache
(``infra/cache/redis.py``): callers beyond ``max_connections`` wait for a free connection
within ``timeout_s`` rather than open more; connecting and every reply are bounded by the same
``timeout_s``; redis-py's own retries are off, so a sick Redis costs a caller at most one timeout
(and a script that timed out is never sent twice).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

T = TypeVar("T")


def bounded_redis(url: str, *, timeout_s: float, max_connections: int) -> Redis:
    """A client for ``url`` (which may hold a password: never log it)."""
    pool = BlockingConnectionPool.from_url(
        url,
        max_connections=max_connections,
        timeout=timeout_s,
        socket_timeout=timeout_s,
        socket_connect_timeout=timeout_s,
        retry=Retry(NoBackoff(), 0),
    )
    return Redis.from_pool(pool)


async def answered(call: Awaitable[T], timeout_s: float, unavailable: Callable[[str], Exception]) -> T:
    """Await one Redis call within ``timeout_s``; any failure (an error reply, a refused or reset
    connection, the timeout) raises ``unavailable(reason)``, the caller's own error type."""
    try:
        async with asyncio.timeout(timeout_s):
            return await call
    except (RedisError, OSError) as exc:  # OSError includes TimeoutError
        raise unavailable(f"Redis did not answer ({type(exc).__name__})") from exc
