"""The ``Counters`` contract (``engine/limits/counters.py``), one suite run against every backend.

Memory runs everywhere; Redis needs 127.0.0.1:6379 (skipped when absent, a failure under
``BREAKWATER_REQUIRE_SERVICES=1``) and uses a namespace of its own per test.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from breakwater.engine.limits.counters import Adjust, CounterLease, Reading, Release, Verdict, Window
from breakwater.engine.ports import Counters
from breakwater.infra.counters import MemoryCounters
from breakwater.infra.counters.redis import RedisCounters

from .conftest import URL

T = 1_700_000_000.0


@pytest.fixture(params=["memory", "redis"])
async def counters(request: pytest.FixtureRequest) -> AsyncIterator[Counters]:
    """Each backend in turn; the Redis one in a fresh namespace, closed after the test."""
    if request.param == "memory":
        yield MemoryCounters()
        return
    namespace: str = request.getfixturevalue("namespace")
    store = RedisCounters(URL, namespace=namespace, timeout_s=1.0)
    yield store
    await store.close()


async def test_a_window_admits_exactly_its_limit(counters: Counters) -> None:
    """A limit of 5 admits five amounts of 1, each reading the count including itself, then refuses the sixth."""
    verdicts = [await counters.acquire([Window("rpm", 5, 1, slot=10)], T) for _ in range(6)]
    assert [v.admitted for v in verdicts] == [True] * 5 + [False]
    assert [v.readings[0].count for v in verdicts] == [1, 2, 3, 4, 5, 5]
    assert verdicts[-1].refused == 0
    assert [v.refused for v in verdicts[:5]] == [None] * 5


async def test_an_amount_is_admitted_only_while_it_fits_whole(counters: Counters) -> None:
    """With 4 of 5 used an amount of 2 is refused, though an amount of 1 still fits."""
    assert (await counters.acquire([Window("tpm", 5, 2, slot=0)], T)).admitted
    assert (await counters.acquire([Window("tpm", 5, 2, slot=0)], T)).admitted
    refused = await counters.acquire([Window("tpm", 5, 2, slot=0)], T)
    assert not refused.admitted and refused.readings[0].count == 4
    assert (await counters.acquire([Window("tpm", 5, 1, slot=0)], T)).readings[0].count == 5


async def test_the_window_slides_forgetting_old_slots_and_counting_the_rest(counters: Counters) -> None:
    """Over 3 buckets, slot 10 leaves the count at slot 13, slot 11 at 14, and the freed room admits again."""
    for slot, amount in ((10, 1), (11, 2), (12, 3)):
        assert (await counters.acquire([Window("w", 6, amount, slot=slot, buckets=3)], T)).admitted
    counts = [(await counters.read([Window("w", 6, 0, slot=s, buckets=3)], T))[0].count for s in (12, 13, 14, 15)]
    assert counts == [6, 5, 3, 0]
    assert not (await counters.acquire([Window("w", 6, 1, slot=12, buckets=3)], T)).admitted
    admitted = await counters.acquire([Window("w", 6, 1, slot=13, buckets=3)], T)
    assert admitted.admitted and admitted.readings[0] == Reading(6, oldest=11)


async def test_below_admits_while_under_the_cap_and_may_overshoot_it(counters: Counters) -> None:
    """A ``below`` window admits while the count is under the limit (the last amount overshoots), then refuses without a ``fits_at``."""
    budget = Window("budget", 10, 4, slot=0, below=True)
    counts = [(await counters.acquire([budget], T)).readings[0].count for _ in range(3)]
    assert counts == [4, 8, 12]
    refused = await counters.acquire([budget], T)
    assert refused == Verdict(False, (Reading(12, oldest=0),), refused=0)
    exact = Window("exact", 8, 4, slot=0, below=True)
    assert [(await counters.acquire([exact], T)).admitted for _ in range(3)] == [True, True, False]


async def test_a_refused_set_changes_none_of_its_counters(counters: Counters) -> None:
    """When one check refuses, the window and lease that had room are not counted either."""
    assert (await counters.acquire([Window("full", 1, 1, slot=0)], T)).admitted
    roomy, full = Window("roomy", 10, 3, slot=0), Window("full", 1, 1, slot=0)
    held = CounterLease("slots", 1, "req-1", T + 30)
    verdict = await counters.acquire([roomy, full, held], T)
    assert verdict == Verdict(False, (Reading(0), Reading(1, oldest=0, fits_at=1), Reading(0)), refused=1)
    assert await counters.read([roomy, full], T) == [Reading(0), Reading(1, oldest=0)]
    other = await counters.acquire([CounterLease("slots", 1, "req-2", T + 30)], T)
    assert other.admitted and other.readings == (Reading(1),)


async def test_oldest_and_fits_at_on_a_multi_slot_window(counters: Counters) -> None:
    """``oldest`` is the earliest nonzero slot counted; ``fits_at`` the first slot at which enough has left for the amount."""
    assert await counters.settle([Adjust("w", 99, 2)], [], T) == [2]
    assert await counters.settle([Adjust("w", 99, -2)], [], T) == [0]  # slot 99 stays, counting 0
    for slot, amount in ((100, 3), (102, 4), (103, 2)):
        assert (await counters.acquire([Window("w", 10, amount, slot=slot, buckets=5)], T)).admitted
    # At slot 104 slots 100..104 count 9. Amount 5 fits once 6 have gone: slot 100 leaves at
    # 105 (6 left, 6 + 5 > 10), slot 102 at 107 (2 left): it fits at 107.
    refused = await counters.acquire([Window("w", 10, 5, slot=104, buckets=5)], T)
    assert refused == Verdict(False, (Reading(9, oldest=100, fits_at=107),), refused=0)
    # Amount 4 fits as soon as slot 100 leaves.
    assert (await counters.acquire([Window("w", 10, 4, slot=104, buckets=5)], T)).readings[0].fits_at == 105
    fresh = await counters.acquire([Window("empty", 10, 1, slot=7, buckets=5)], T)
    assert fresh.readings == (Reading(1, oldest=7),)


async def test_fits_at_is_none_when_the_window_is_refused_and_the_amount_can_never_fit(counters: Counters) -> None:
    """An amount above the limit is refused with no ``fits_at`` (the backend does not search for one forever)."""
    verdict = await counters.acquire([Window("w", 3, 5, slot=0, buckets=60)], T)
    assert verdict == Verdict(False, (Reading(0),), refused=0)


async def test_a_refused_set_reports_fits_at_for_every_window_that_does_not_fit(counters: Counters) -> None:
    """Each window that would refuse on its own gets its ``fits_at``; one that fits does not."""
    a, b = Window("a", 2, 2, slot=10, buckets=3), Window("b", 2, 2, slot=10, buckets=2)
    assert (await counters.acquire([a, b], T)).admitted
    ok, a, b = Window("ok", 5, 1, slot=11), Window("a", 2, 1, slot=11, buckets=3), Window("b", 2, 1, slot=11, buckets=2)
    verdict = await counters.acquire([ok, a, b], T)
    assert verdict.refused == 1
    assert verdict.readings == (Reading(0), Reading(2, oldest=10, fits_at=13), Reading(2, oldest=10, fits_at=12))


async def test_lease_limit_release_and_expiry(counters: Counters) -> None:
    """At most ``limit`` live tokens are held; a release frees a place; a token stops counting after its expiry."""
    assert (await counters.acquire([CounterLease("c", 2, "t1", T + 30)], T)).readings == (Reading(1),)
    assert (await counters.acquire([CounterLease("c", 2, "t2", T + 10)], T)).readings == (Reading(2),)
    assert await counters.acquire([CounterLease("c", 2, "t3", T + 30)], T) == Verdict(False, (Reading(2),), refused=0)
    assert await counters.settle([], [Release("c", "t1")], T) == []
    assert (await counters.acquire([CounterLease("c", 2, "t3", T + 30)], T)).readings == (Reading(2),)
    assert not (await counters.acquire([CounterLease("c", 2, "t4", T + 40)], T + 10)).admitted  # t2 counts until T + 10
    later = await counters.acquire([CounterLease("c", 2, "t4", T + 40)], T + 10.5)
    assert later.admitted and later.readings == (Reading(2),)


async def test_held_counts_a_lease_sets_live_tokens_and_changes_nothing(counters: Counters) -> None:
    """``held`` counts the tokens not yet expired (one counts until its expiry), 0 for an unknown set."""
    assert (await counters.acquire([CounterLease("h", 3, "t1", T + 30)], T)).admitted
    assert (await counters.acquire([CounterLease("h", 3, "t2", T + 10)], T)).admitted
    assert await counters.held(["h", "none"], T + 10) == [2, 0]
    assert await counters.held(["h"], T + 10.5) == [1]
    assert await counters.held(["h"], T) == [2]  # nothing was dropped by the later look
    assert await counters.held([], T) == []


async def test_settle_applies_deltas_and_skips_a_negative_one_on_a_missing_slot(counters: Counters) -> None:
    """Positive and negative deltas change the slot and return its value; a negative delta on a missing slot returns None."""
    assert (await counters.acquire([Window("tpm", 100, 10, slot=5, buckets=3)], T)).admitted
    adjusts = [Adjust("tpm", 5, 3), Adjust("tpm", 5, -8), Adjust("tpm", 6, -1), Adjust("tpm", 7, 4)]
    assert await counters.settle(adjusts, [], T) == [13, 5, None, 4]
    assert await counters.read([Window("tpm", 100, 0, slot=7, buckets=3)], T) == [Reading(9, oldest=5)]
    assert await counters.settle([Adjust("never", 1, -5)], [Release("no-such-set", "t")], T) == [None]
    assert await counters.read([Window("never", 100, 0, slot=1)], T) == [Reading(0)]


async def test_read_changes_nothing(counters: Counters) -> None:
    """Reading ignores amounts, does not drop slots it does not count, and leaves later admissions as they were."""
    for slot in (10, 11):
        assert (await counters.acquire([Window("w", 5, 2, slot=slot, buckets=3)], T)).admitted
    huge = Window("w", 1, 1000, slot=11, buckets=3)
    assert await counters.read([huge, huge], T) == [Reading(4, oldest=10)] * 2
    assert await counters.read([Window("w", 5, 0, slot=20, buckets=3)], T) == [Reading(0)]
    assert await counters.read([Window("w", 5, 0, slot=11, buckets=3)], T) == [Reading(4, oldest=10)]
    verdict = await counters.acquire([Window("w", 5, 1, slot=11, buckets=3)], T)
    assert verdict.admitted and verdict.readings[0].count == 5


async def test_first_is_true_for_the_first_claim_only(counters: Counters) -> None:
    """The first claim of a key wins; later claims within its ttl do not."""
    assert await counters.first("alert:budget:alice", 3600, T)
    assert not await counters.first("alert:budget:alice", 3600, T + 1)
    assert await counters.first("alert:budget:bob", 3600, T + 1)


async def test_an_empty_set_is_admitted_and_ping_answers(counters: Counters) -> None:
    """No checks means nothing to refuse; ``ping`` returns when the backend answers."""
    assert await counters.acquire([], T) == Verdict(True, ())
    assert await counters.settle([], [], T) == []
    assert await counters.read([], T) == []
    await counters.ping()
