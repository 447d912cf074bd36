"""The engine's ports: the only ways the policies touch the world.

Each is a small ``Protocol``; ``breakwater.infra`` implements them for real (aiohttp, system
clock) and tests pass fakes, so every policy is deterministic under test.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Protocol

from breakwater.core.tokens import TextCounter, byte_estimate
from breakwater.engine.limits.counters import Adjust, Check, Reading, Release, Verdict, Window
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

    async def load(self, provider: str | None, model: str) -> None:
        """Have ``model``'s encoding in memory, so ``count`` is exact from now on (loads it once,
        off the event loop; a caller that needs exact counts now awaits it)."""
        ...

    def decode(self, ids: list[int]) -> str:
        """The text of OpenAI token ids (``cl100k_base``). Raises ``ValueError`` for an unknown id."""
        ...


def text_counter(tokens: TokenCounters | None, provider: str | None, model: str) -> TextCounter:
    """Counts text in ``model``'s tokens: with its tokenizer when ``tokens`` are loaded, else ``byte_estimate``."""
    if tokens is None:
        return byte_estimate
    return lambda text: tokens.count(provider, model, text)


class Counters(Protocol):
    """Capped counters for limits and budgets (``engine/limits/counters.py`` defines the checks).

    ``infra.counters.MemoryCounters`` (one process) and ``infra.counters.RedisCounters`` (shared
    by replicas; atomic scripts) implement it with the same behaviour. Every method may raise
    ``CountersUnavailable``; ``now`` is unix seconds from the caller's clock.
    """

    async def acquire(self, checks: Sequence[Check], now: float) -> Verdict:
        """Admit every check (add each window's amount, hold each lease) or none of them."""
        ...

    async def settle(self, adjusts: Sequence[Adjust], releases: Sequence[Release], now: float) -> list[int | None]:
        """Apply the adjustments and releases; each adjusted slot's new value (``None``: skipped)."""
        ...

    async def read(self, windows: Sequence[Window], now: float) -> list[Reading]:
        """The windows' counts, changing nothing (amounts are ignored)."""
        ...

    async def held(self, keys: Sequence[str], now: float) -> list[int]:
        """Each lease set's live tokens (requests in flight), changing nothing."""
        ...

    async def first(self, key: str, ttl_s: int, now: float) -> bool:
        """True for the first caller to claim ``key`` within ``ttl_s`` (alerts fire once across replicas)."""
        ...

    async def ping(self) -> None:
        """Return when the backend answers; raise ``CountersUnavailable`` when it does not."""
        ...
