"""The engine's ports: the only ways the policies touch the world.

Each is a small ``Protocol``; ``breakwater.infra`` implements them for real (aiohttp, system
clock) and tests pass fakes, so every policy is deterministic under test.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Mapping
from contextlib import AbstractAsyncContextManager
from typing import Protocol

from breakwater.providers.base import HttpRequest


class UpstreamResponse(Protocol):
    """An upstream answer whose head has arrived. Header lookups must be case-insensitive."""

    status: int
    headers: Mapping[str, str]

    async def read(self) -> bytes:
        """The whole body."""
        ...

    def iter_chunks(self) -> AsyncIterator[bytes]:
        """The body as it arrives (for streams)."""
        ...


class HttpSender(Protocol):
    """Sends an ``HttpRequest``. Transport failures raise ``UpstreamTimeout`` or
    ``UpstreamConnectionError`` (named after ``provider``), never a library's own exception,
    including while the body is being read or iterated."""

    def open(
        self, request: HttpRequest, *, provider: str, connect_timeout: float
    ) -> AbstractAsyncContextManager[UpstreamResponse]: ...


class Clock(Protocol):
    def monotonic(self) -> float: ...

    def time(self) -> float: ...

    async def sleep(self, seconds: float) -> None: ...


class SystemClock:
    """The real ``Clock``: wall and monotonic time from the OS; ``sleep`` is ``asyncio.sleep``.

    Here rather than in ``infra.clock`` (which re-exports it) so that observability, a peer of
    infra, can default to it without a second copy.
    """

    def monotonic(self) -> float:
        return time.monotonic()

    def time(self) -> float:
        return time.time()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


class RandomSource(Protocol):
    def random(self) -> float:
        """A float in [0, 1)."""
        ...


class TokenCounters(Protocol):
    """The token counter for a model (``breakwater.infra.tokenizers.Tokenizers``)."""

    def count(self, provider: str | None, model: str, text: str) -> int: ...
