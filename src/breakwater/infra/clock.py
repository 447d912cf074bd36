"""The real clock and random source behind the engine's ``Clock`` and ``RandomSource`` ports."""

from __future__ import annotations

import asyncio
import random

from breakwater.engine.ports import SystemClock

__all__ = ["LoopClock", "ManualClock", "SystemClock", "SystemRandom"]


class LoopClock:
    """Time of the running event loop: ``monotonic`` is ``loop.time()``, ``sleep`` is ``asyncio.sleep``.

    The engine's network timeouts (connect, first token, idle, total) are ``asyncio`` timers on
    the loop's time; this clock puts backoff, breaker windows, deadlines and the mock's delays on
    that same time line. Under a virtual-time loop (the ``looptime`` pytest plugin, as in the
    chaos suite) the whole gateway runs in virtual time: a stalled upstream times out at exactly
    its limit, and at once. ``time()`` is ``wall`` plus the loop's time, a repeatable stand-in
    for wall time like ``ManualClock``'s. Call it only while the loop runs.
    """

    def __init__(self, wall: float = 1_700_000_000.0) -> None:
        self.wall = wall

    def monotonic(self) -> float:
        return asyncio.get_running_loop().time()

    def time(self) -> float:
        return self.wall + self.monotonic()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


class SystemRandom:
    """A seedable ``random.Random``; pass a seed in tests and chaos drills for repeatable runs."""

    def __init__(self, seed: int | None = None) -> None:
        self._rng = random.Random(seed)

    def random(self) -> float:
        return self._rng.random()


class ManualClock:
    """A clock that moves only when slept on or advanced: for tests and chaos drills.

    ``sleep`` returns at once after moving time forward, so backoff, cool-downs, breaker windows
    and the mock's fault windows run deterministically and instantly. Shipped in the package
    (like ``SystemRandom(seed)``) so users' own tests can drive Breakwater the same way.
    """

    def __init__(self, now: float = 0.0, wall: float = 1_700_000_000.0) -> None:
        self.now = now
        self.wall = wall
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def time(self) -> float:
        return self.wall + self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds

    def advance(self, seconds: float) -> None:
        self.now += seconds
