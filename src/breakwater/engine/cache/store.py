"""The port cached answers are kept behind: process memory or Redis (``infra/cache``).

Values are opaque bytes (``entry.py`` writes and reads them) under hex keys. ``ttl_s`` is how
long the store keeps a value at all: the stage asks for the route's TTL plus its stale-if-error
window, and decides itself whether an entry is fresh. A store that cannot answer (Redis down or
slow) raises ``CacheUnavailable``: the request goes on uncached, it never fails for that.
"""

from __future__ import annotations

from typing import Protocol


class CacheUnavailable(Exception):
    """The store could not be reached in time; the message names no URL or secret."""


class CacheStore(Protocol):
    #: ``memory`` or ``redis``, for metrics and logs
    backend: str

    async def get(self, key: str) -> bytes | None:
        """The value stored under ``key``, or ``None``. Raises: CacheUnavailable."""
        ...

    async def set(self, key: str, value: bytes, ttl_s: float) -> None:
        """Store ``value`` for ``ttl_s`` seconds (replacing any). Raises: CacheUnavailable."""
        ...

    async def delete(self, key: str) -> None:
        """Forget ``key`` (nothing if absent). Raises: CacheUnavailable."""
        ...

    async def close(self) -> None: ...


class ImmediateStore(Protocol):
    """A store whose reads and writes cost nothing to wait for (process memory): the stage calls
    them directly, with no coroutine per lookup and no task per stored answer."""

    def get_now(self, key: str) -> bytes | None: ...

    def set_now(self, key: str, value: bytes, ttl_s: float) -> None: ...

    def delete_now(self, key: str) -> None: ...


class CacheStats(Protocol):
    """What a store can say about itself (``/metrics``); Redis keeps its own counts."""

    entries: int
    bytes: int
    evictions: int
