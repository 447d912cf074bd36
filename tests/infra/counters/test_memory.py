"""``MemoryCounters`` beyond the shared contract: keys expire on the caller's clock and are swept."""

from __future__ import annotations

from breakwater.engine.limits.counters import Adjust, CounterLease, Reading, Window
from breakwater.infra.counters import MemoryCounters

T = 1_700_000_000.0


async def test_a_window_is_forgotten_ttl_after_its_last_write() -> None:
    """Each write keeps a window for another ``ttl_s``; past that its count is gone, as Redis EXPIRE would do."""
    counters = MemoryCounters()
    budget = Window("budget:alice:2024-06", 100, 5, slot=0, ttl_s=60)
    await counters.acquire([budget], T)
    await counters.settle([Adjust(budget.key, 0, 1, ttl_s=60)], [], T + 30)
    assert await counters.read([budget], T + 89.9) == [Reading(6, oldest=0)]
    assert await counters.read([budget], T + 90) == [Reading(0)]
    assert len(counters) == 0


async def test_a_lease_set_is_forgotten_after_its_latest_token_expires() -> None:
    """A lease set lives until its latest token's expiry, then a new token starts a fresh set."""
    counters = MemoryCounters()
    await counters.acquire([CounterLease("c", 2, "t1", T + 5), CounterLease("c2", 1, "t2", T + 50)], T)
    verdict = await counters.acquire([CounterLease("c", 2, "t3", T + 60), CounterLease("c2", 1, "t4", T + 60)], T + 20)
    assert verdict.refused == 1 and verdict.readings[0] == Reading(0)
    assert (await counters.acquire([CounterLease("c2", 1, "t4", T + 60)], T + 51)).readings == (Reading(1),)


async def test_first_can_be_claimed_again_once_its_ttl_has_passed() -> None:
    """A claim holds for ``ttl_s`` on the caller's clock, then the next caller wins again."""
    counters = MemoryCounters()
    assert await counters.first("alert", 60, T)
    assert not await counters.first("alert", 60, T + 59.9)
    assert await counters.first("alert", 60, T + 60)
    assert not await counters.first("alert", 60, T + 61)


async def test_expired_keys_are_swept_so_memory_stays_bounded() -> None:
    """Twenty thousand short-lived keys (users, sessions, alerts) never leave more than about twice the sweep size held."""
    counters = MemoryCounters(sweep_every=256)
    held = []
    for i in range(20_000):
        now = T + i * 0.01  # each key lives 1 s: about 100 are live at any time
        await counters.acquire([Window(f"rpm:user-{i}", 10, 1, slot=int(now), buckets=60, ttl_s=1)], now)
        await counters.acquire([CounterLease(f"conc:user-{i}", 1, "t", now + 1)], now)
        await counters.first(f"alert:user-{i}", 1, now)
        held.append(len(counters))
    # About 300 keys are live at a time; unswept, 60 000 would be held by the end.
    assert max(held) < 2 * (256 + 300)
    assert held[-1] < 2 * 300
