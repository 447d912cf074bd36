"""The real clock and random source behind the engine's ``Clock`` and ``RandomSource`` ports."""

from __future__ import annotations

import asyncio
import random
import time


class SystemClock:
    """Wall and monotonic time from the OS; ``sleep`` is ``asyncio.sleep``."""

    def monotonic(self) -> float:
        return time.monotonic()

    def time(self) -> float:
        return time.time()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


class SystemRandom:
    """A seedable ``random.Random``; pass a seed in tests and chaos drills for repeatable runs."""

    def __init__(self, seed: int | None = None) -> None:
        self._rng = random.Random(seed)

    def random(self) -> float:
        return self._rng.random()
