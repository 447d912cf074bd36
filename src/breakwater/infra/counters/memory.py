"""``Counters`` in process memory: one process's limits and budgets, exact and on the request path.

Why it exists: a single replica, a test, or the engine's fallback while Redis is away needs the
same admission rules as ``RedisCounters`` without a server. Each method does all of its work
synchronously (no ``await`` inside), so a call is atomic with respect to the event loop: the
same all-or-nothing guarantee the Redis script gives across replicas, for one process.

Time is the caller's ``now`` (never the system clock), so tests and drills drive expiry with an
injected clock. A key is forgotten ``ttl_s`` after its last write, as Redis ``EXPIRE`` would;
a lease set when its latest token expires. An expired key is dropped when next touched, and
the rest are swept once the writes since the last sweep reach the number of keys held (at
least ``sweep_every``): each sweep is paid for by as many writes as it visits keys, so the cost
per write stays constant and the store holds at most about twice its live keys.

Each window keeps its running total and lowest and highest slot, so the usual check (every
slot inside the window) is a few attribute reads rather than a walk over the window's slots.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import repeat

from breakwater.engine.limits.counters import Adjust, Check, CounterLease, Reading, Release, Verdict, Window

__all__ = ["MemoryCounters"]


class _Slots:
    """One window key: slot -> count, with the running total and slot range kept in step."""

    __slots__ = ("counts", "expires_at", "hi", "lo", "total")

    def __init__(self) -> None:
        self.counts: dict[int, int] = {}
        self.total = 0
        self.lo = 0
        self.hi = 0
        self.expires_at = 0.0

    def forget_and_count(self, first: int, last: int) -> int:
        """Drop the slots before ``first``; the count of ``first .. last``."""
        counts = self.counts
        if self.lo < first and counts:
            counts = self.counts = {s: c for s, c in counts.items() if s >= first}
            self.total = sum(counts.values())
            if counts:
                self.lo, self.hi = min(counts), max(counts)
        if self.hi <= last:  # the usual case: every slot kept is inside the window
            return self.total
        return sum(c for s, c in counts.items() if s <= last)

    def count(self, first: int, last: int) -> int:
        """The count of ``first .. last``, changing nothing."""
        if not self.counts:
            return 0
        if first <= self.lo and self.hi <= last:
            return self.total
        return sum(c for s, c in self.counts.items() if first <= s <= last)

    def oldest(self, first: int, last: int) -> int | None:
        """The earliest slot of ``first .. last`` with a nonzero count."""
        counts = self.counts
        if counts and first <= self.lo <= last and counts[self.lo]:
            return self.lo
        return min((s for s, c in counts.items() if c and first <= s <= last), default=None)

    def fits_at(self, first: int, last: int, amount: int, limit: int, buckets: int) -> int | None:
        """The first slot at which ``amount`` fits (``None``: never, the amount is over the limit)."""
        # The count only falls when a slot s leaves the window, at s + buckets: try those in order.
        remaining = self.count(first, last)
        for s, c in sorted((s, c) for s, c in self.counts.items() if first <= s <= last):
            remaining -= c
            if remaining + amount <= limit:
                return s + buckets
        return None

    def add(self, slot: int, delta: int) -> int:
        """Add ``delta`` to ``slot``; the slot's new value."""
        counts = self.counts
        if not counts:
            self.lo = self.hi = slot
        elif slot < self.lo:
            self.lo = slot
        elif slot > self.hi:
            self.hi = slot
        value = counts.get(slot, 0) + delta
        counts[slot] = value
        self.total += delta
        return value


class _Tokens:
    """One lease key: token -> expires_at (counted while ``now <= expires_at``), with the soonest
    expiry as a hint for when to prune."""

    __slots__ = ("expires_at", "soonest", "tokens")

    def __init__(self) -> None:
        self.tokens: dict[str, float] = {}
        self.soonest = float("inf")
        self.expires_at = 0.0  # the latest token's expiry: the key lives until then

    def live(self, now: float) -> int:
        """Drop the expired tokens (only when one may have expired); the number left."""
        if self.soonest < now:
            self.tokens = {t: e for t, e in self.tokens.items() if e >= now}
            self.soonest = min(self.tokens.values(), default=float("inf"))
        return len(self.tokens)

    def hold(self, token: str, expires_at: float) -> int:
        """Hold (or re-hold) ``token``; the number held."""
        self.tokens[token] = expires_at
        self.soonest = min(self.soonest, expires_at)
        self.expires_at = max(self.expires_at, expires_at)
        return len(self.tokens)


_EMPTY = Reading(0)


class MemoryCounters:
    """The in-process ``Counters``: windows, lease sets and claims in dicts, swept as they expire.

    Args:
        sweep_every: the fewest writes between two sweeps of expired keys.
    """

    def __init__(self, *, sweep_every: int = 1024) -> None:
        self._windows: dict[str, _Slots] = {}
        self._leases: dict[str, _Tokens] = {}
        self._claims: dict[str, float] = {}
        self._sweep_every = sweep_every
        self._sweep_at = sweep_every
        self._writes = 0

    def __len__(self) -> int:
        """Keys held, expired ones included until they are touched or swept."""
        return len(self._windows) + len(self._leases) + len(self._claims)

    async def acquire(self, checks: Sequence[Check], now: float) -> Verdict:
        if self._writes >= self._sweep_at:
            self._sweep(now)
        # Pass 1 reads every check (dropping what has expired); pass 2 applies all of them or none.
        found: list[_Slots | _Tokens | None] = []
        counts: list[int] = []
        refused: int | None = None
        for i, check in enumerate(checks):
            if isinstance(check, Window):
                slots = self._live_slots(check.key, now)
                count = 0 if slots is None else slots.forget_and_count(check.slot - check.buckets + 1, check.slot)
                fits = count < check.limit if check.below else count + check.amount <= check.limit
                found.append(slots)
            else:
                tokens = self._live_tokens(check.key, now)
                count = 0 if tokens is None else tokens.live(now)
                fits = count < check.limit
                found.append(tokens)
            counts.append(count)
            if not fits and refused is None:
                refused = i
        if refused is None:
            return Verdict(True, tuple(map(self._hold, checks, found, counts, repeat(now))))
        return Verdict(False, tuple(map(_refusal, checks, found, counts)), refused)

    async def settle(self, adjusts: Sequence[Adjust], releases: Sequence[Release], now: float) -> list[int | None]:
        if self._writes >= self._sweep_at:
            self._sweep(now)
        values: list[int | None] = []
        for adjust in adjusts:
            slots = self._live_slots(adjust.key, now)
            if adjust.delta <= 0 and (slots is None or adjust.slot not in slots.counts):
                values.append(None)
                continue
            if slots is None:
                slots = self._windows[adjust.key] = _Slots()
            values.append(slots.add(adjust.slot, adjust.delta))
            slots.expires_at = now + adjust.ttl_s
            self._writes += 1
        for release in releases:
            tokens = self._leases.get(release.key)
            if tokens is not None:
                tokens.tokens.pop(release.token, None)
        return values

    async def read(self, windows: Sequence[Window], now: float) -> list[Reading]:
        readings: list[Reading] = []
        for window in windows:
            slots = self._live_slots(window.key, now)
            if slots is None:
                readings.append(_EMPTY)
                continue
            first = window.slot - window.buckets + 1
            readings.append(Reading(slots.count(first, window.slot), slots.oldest(first, window.slot)))
        return readings

    async def held(self, keys: Sequence[str], now: float) -> list[int]:
        out = []
        for key in keys:
            tokens = self._leases.get(key)
            out.append(0 if tokens is None else sum(1 for e in tokens.tokens.values() if e >= now))
        return out

    async def first(self, key: str, ttl_s: int, now: float) -> bool:
        if self._writes >= self._sweep_at:
            self._sweep(now)
        expires_at = self._claims.get(key)
        if expires_at is not None and expires_at > now:
            return False
        self._claims[key] = now + ttl_s
        self._writes += 1
        return True

    async def ping(self) -> None:
        return None

    def _live_slots(self, key: str, now: float) -> _Slots | None:
        slots = self._windows.get(key)
        if slots is not None and slots.expires_at <= now:
            del self._windows[key]
            return None
        return slots

    def _live_tokens(self, key: str, now: float) -> _Tokens | None:
        tokens = self._leases.get(key)
        if tokens is not None and tokens.expires_at < now:
            del self._leases[key]
            return None
        return tokens

    def _hold(self, check: Check, probe: _Slots | _Tokens | None, count: int, now: float) -> Reading:
        """Apply one check of an admitted set; its reading after the call."""
        if isinstance(check, CounterLease):
            # the same key may appear twice in a set: look again rather than trust an empty probe
            tokens = probe if isinstance(probe, _Tokens) else self._leases.get(check.key)
            if tokens is None:
                tokens = self._leases[check.key] = _Tokens()
            self._writes += 1
            return Reading(tokens.hold(check.token, check.expires_at))
        slots = probe if isinstance(probe, _Slots) else self._windows.get(check.key)
        if check.amount:
            if slots is None:
                slots = self._windows[check.key] = _Slots()
            slots.add(check.slot, check.amount)
            slots.expires_at = now + check.ttl_s
            self._writes += 1
            count += check.amount
        oldest = None if slots is None else slots.oldest(check.slot - check.buckets + 1, check.slot)
        return Reading(count, oldest)

    def _sweep(self, now: float) -> None:
        for key in [k for k, v in self._windows.items() if v.expires_at <= now]:
            del self._windows[key]
        for key in [k for k, v in self._leases.items() if v.expires_at < now]:
            del self._leases[key]
        for key in [k for k, e in self._claims.items() if e <= now]:
            del self._claims[key]
        self._writes = 0
        self._sweep_at = max(self._sweep_every, len(self))


def _refusal(check: Check, probe: _Slots | _Tokens | None, count: int) -> Reading:
    """One check's reading in a refused set: the count before, and when a refused window would fit."""
    if isinstance(check, CounterLease) or not isinstance(probe, _Slots):
        return Reading(count)
    first = check.slot - check.buckets + 1
    oldest = probe.oldest(first, check.slot)
    if check.below or count + check.amount <= check.limit:
        return Reading(count, oldest)
    return Reading(count, oldest, probe.fits_at(first, check.slot, check.amount, check.limit, check.buckets))
