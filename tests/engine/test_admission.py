"""The per-deployment concurrency limiter: slots, the fair bounded queue, deadlines, cancellation.

Waiters are tasks; the tests yield to the event loop (no time passes) until the limiter shows
them queued. Only the deadline-while-queued test lets loop time pass: 10 ms on the loop's own
timer, with a holder that is never released in the meantime.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine, Iterable
from typing import Any, TypeVar

import pytest

from breakwater.core.errors import Saturated
from breakwater.engine.calls.admission import ConcurrencyLimiter, Slot
from breakwater.infra.clock import ManualClock

T = TypeVar("T")

#: a deadline so far away it never matters
FAR = 1e9
NO_REJECTIONS = {"queue_full": 0, "deadline": 0, "expired": 0, "evicted": 0}


class LoopClock:
    """Monotonic time is the event loop's own, so request deadlines and the queue's loop timers agree."""

    def monotonic(self) -> float:
        return asyncio.get_running_loop().time()

    def time(self) -> float:
        return self.monotonic()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


def _at_once(coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro`` to its end without letting it wait: it must finish (or raise) without suspending."""
    try:
        coro.send(None)
    except StopIteration as done:
        result: T = done.value
        return result
    coro.close()
    raise AssertionError("the coroutine waited")


async def _until(condition: Callable[[], bool]) -> None:
    """Yield to the event loop, with no time passing, until ``condition`` holds; fail rather than hang."""
    for _ in range(50):
        if condition():
            return
        await asyncio.sleep(0)
    raise AssertionError("condition never held")


async def _granted(waiter: asyncio.Task[Slot]) -> Slot:
    """The slot a waiter was handed; it must already be on its way (fails rather than hangs)."""
    await _until(waiter.done)
    return waiter.result()


async def _cancel(tasks: Iterable[asyncio.Task[Any]]) -> None:
    pending = list(tasks)
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)


def _with_history(limiter: ConcurrencyLimiter, clock: ManualClock, *holds: float) -> None:
    """Hold and release one slot per value, so the wait estimate has an average hold time."""
    for hold in holds:
        lease = limiter.try_acquire()
        assert lease is not None
        clock.advance(hold)
        lease.release()


def _waiters(limiter: ConcurrencyLimiter, tenant: str, n: int, deadline: float = FAR) -> list[asyncio.Task[Slot]]:
    return [asyncio.create_task(limiter.acquire(tenant, deadline)) for _ in range(n)]


async def test_grants_slots_up_to_the_limit_without_waiting() -> None:
    """Up to max_concurrent requests get a slot at once; with all held, no further slot is free."""
    limiter = ConcurrencyLimiter("dep", 2, 10, ManualClock())
    first = _at_once(limiter.acquire("a", FAR))
    second = _at_once(limiter.acquire("b", FAR))
    assert limiter.in_flight == 2
    assert limiter.try_acquire() is None
    first.release()
    second.release()
    assert limiter.in_flight == 0


async def test_a_waiter_gets_the_slot_a_release_frees() -> None:
    """With every slot held a request waits in the queue, and a release hands it that slot directly."""
    limiter = ConcurrencyLimiter("dep", 1, 10, ManualClock())
    holder = _at_once(limiter.acquire("a", FAR))
    [waiter] = _waiters(limiter, "b", 1)
    await _until(lambda: limiter.queued == 1)
    assert not waiter.done()
    holder.release()
    assert (limiter.in_flight, limiter.queued) == (1, 0)
    (await _granted(waiter)).release()
    assert limiter.in_flight == 0


async def test_freed_slots_go_round_robin_across_tenants() -> None:
    """A tenant with four waiters and one with two queued behind it are served alternately, not in arrival order."""
    limiter = ConcurrencyLimiter("dep", 1, 10, ManualClock())
    holder = _at_once(limiter.acquire("x", FAR))
    order: list[str] = []

    async def request(tenant: str, n: int) -> None:
        lease = await limiter.acquire(tenant, FAR)
        order.append(f"{tenant}{n}")
        lease.release()

    tasks = [asyncio.create_task(request("heavy", n)) for n in range(1, 5)]
    await _until(lambda: limiter.queued == 4)
    tasks += [asyncio.create_task(request("light", n)) for n in range(1, 3)]
    await _until(lambda: limiter.queued == 6)
    holder.release()
    await _until(lambda: all(task.done() for task in tasks))
    await asyncio.gather(*tasks)
    assert order == ["heavy1", "light1", "heavy2", "light2", "heavy3", "heavy4"]
    assert limiter.in_flight == 0


async def test_a_full_queue_refuses_at_once_with_retry_after() -> None:
    """With max_queue requests waiting, another from the same tenant gets Saturated without waiting, Retry-After from the estimate."""
    clock = ManualClock()
    limiter = ConcurrencyLimiter("dep", 1, 2, clock)
    _with_history(limiter, clock, 2.0)
    holder = _at_once(limiter.acquire("t", FAR))
    waiters = _waiters(limiter, "t", 2)
    await _until(lambda: limiter.queued == 2)
    with pytest.raises(Saturated) as info:
        _at_once(limiter.acquire("t", FAR))
    assert info.value.code == "deployment_saturated"
    assert info.value.retryable
    assert info.value.retry_after == 6.0  # third in line for one slot held 2 s at a time
    assert limiter.queued == 2
    assert limiter.snapshot()["rejected"] == {**NO_REJECTIONS, "queue_full": 1}
    await _cancel(waiters)
    holder.release()


async def test_a_full_queue_refuses_a_tenant_that_would_only_swap_places() -> None:
    """A tenant one waiter short of the heaviest does not evict it when the queue is full: it is refused like anyone."""
    limiter = ConcurrencyLimiter("dep", 1, 3, ManualClock())
    holder = _at_once(limiter.acquire("x", FAR))
    waiters = _waiters(limiter, "heavy", 2)
    await _until(lambda: limiter.queued == 2)
    waiters += _waiters(limiter, "light", 1)
    await _until(lambda: limiter.queued == 3)
    with pytest.raises(Saturated) as info:
        _at_once(limiter.acquire("light", FAR))
    assert info.value.retry_after == 1.0  # no hold time measured yet
    assert not any(w.done() for w in waiters)
    await _cancel(waiters)
    holder.release()


async def test_a_full_queue_makes_room_for_a_lighter_tenant() -> None:
    """When one tenant fills the queue, another tenant's request takes the place of its newest waiter, which gets Saturated."""
    limiter = ConcurrencyLimiter("dep", 1, 3, ManualClock())
    holder = _at_once(limiter.acquire("x", FAR))
    heavy = _waiters(limiter, "heavy", 3)
    await _until(lambda: limiter.queued == 3)
    [light] = _waiters(limiter, "light", 1)
    await _until(lambda: heavy[2].done())
    with pytest.raises(Saturated):
        heavy[2].result()
    assert limiter.queued == 3
    assert limiter.snapshot()["rejected"] == {**NO_REJECTIONS, "evicted": 1}
    holder.release()
    (await _granted(heavy[0])).release()
    lease = await _granted(light)  # served before the heavy tenant's second waiter
    assert not heavy[1].done()
    lease.release()
    (await _granted(heavy[1])).release()
    assert (limiter.in_flight, limiter.queued) == (0, 0)


async def test_refuses_at_once_when_the_expected_wait_exceeds_the_deadline() -> None:
    """With one slot held 2 s on average, a request with 1 s left is refused at once (Retry-After 2); one with 3 s left waits."""
    clock = ManualClock()
    limiter = ConcurrencyLimiter("dep", 1, 10, clock)
    _with_history(limiter, clock, 2.0)
    holder = _at_once(limiter.acquire("a", FAR))
    with pytest.raises(Saturated) as info:
        _at_once(limiter.acquire("b", clock.now + 1.0))
    assert info.value.retry_after == 2.0
    assert limiter.snapshot()["rejected"] == {**NO_REJECTIONS, "deadline": 1}
    [waiter] = _waiters(limiter, "b", 1, clock.now + 3.0)
    await _until(lambda: limiter.queued == 1)
    holder.release()
    (await _granted(waiter)).release()
    assert limiter.in_flight == 0


async def test_the_wait_estimate_counts_turns_not_the_whole_queue() -> None:
    """Behind a heavy tenant's three waiters a light tenant is second in line and fits 2.5 s; the heavy tenant's next request does not."""
    clock = ManualClock()
    limiter = ConcurrencyLimiter("dep", 1, 10, clock)
    _with_history(limiter, clock, 1.0)
    holder = _at_once(limiter.acquire("x", FAR))
    waiters = _waiters(limiter, "heavy", 3)
    await _until(lambda: limiter.queued == 3)
    waiters += _waiters(limiter, "light", 1, clock.now + 2.5)
    await _until(lambda: limiter.queued == 4)
    with pytest.raises(Saturated) as info:
        _at_once(limiter.acquire("heavy", clock.now + 2.5))
    assert info.value.retry_after == 5.0  # its three, the light one, then itself
    await _cancel(waiters)
    holder.release()


async def test_without_history_the_estimate_refuses_nothing() -> None:
    """Before any slot has been released there is no average hold time, so a short deadline behind a long queue still waits."""
    clock = ManualClock()
    limiter = ConcurrencyLimiter("dep", 1, 100, clock)
    holder = _at_once(limiter.acquire("x", FAR))
    waiters = _waiters(limiter, "t", 50)
    waiters += _waiters(limiter, "t", 1, clock.now + 5.0)
    await _until(lambda: limiter.queued == 51)
    assert limiter.snapshot()["rejected"] == NO_REJECTIONS
    await _cancel(waiters)
    holder.release()
    assert (limiter.in_flight, limiter.queued) == (0, 0)


async def test_a_deadline_already_passed_is_refused_at_once_when_slots_are_full() -> None:
    """A request whose deadline has passed gets a free slot if there is one, and Saturated at once if it would have to wait."""
    clock = ManualClock(now=10.0)
    limiter = ConcurrencyLimiter("dep", 1, 10, clock)
    holder = _at_once(limiter.acquire("a", 5.0))
    with pytest.raises(Saturated):
        _at_once(limiter.acquire("b", 5.0))
    assert limiter.queued == 0
    holder.release()


async def test_a_waiter_whose_deadline_passes_leaves_the_queue_with_saturated() -> None:
    """A queued request whose deadline passes gets Saturated and leaves the queue; the holder's slot is untouched."""
    clock = LoopClock()
    limiter = ConcurrencyLimiter("dep", 1, 10, clock)
    holder = _at_once(limiter.acquire("a", FAR))
    with pytest.raises(Saturated) as info:
        async with asyncio.timeout(10):  # a safety net against a hang, never reached when correct
            await limiter.acquire("b", clock.monotonic() + 0.01)
    assert info.value.retry_after == 1.0
    assert (limiter.in_flight, limiter.queued) == (1, 0)
    assert limiter.snapshot()["rejected"] == {**NO_REJECTIONS, "expired": 1}
    holder.release()
    assert limiter.in_flight == 0


async def test_a_cancelled_waiter_leaves_the_queue_without_leaking_a_slot() -> None:
    """Cancelling a queued request (client gone) removes it; the held slot is then freed, not handed to the ghost."""
    limiter = ConcurrencyLimiter("dep", 1, 10, ManualClock())
    holder = _at_once(limiter.acquire("a", FAR))
    [waiter] = _waiters(limiter, "b", 1)
    await _until(lambda: limiter.queued == 1)
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    assert limiter.queued == 0
    holder.release()
    assert limiter.in_flight == 0
    assert limiter.try_acquire() is not None


async def test_a_slot_handed_to_a_waiter_cancelled_at_that_moment_passes_on() -> None:
    """If a release hands the slot to a waiter whose task is cancelled before it resumes, the next waiter gets the slot."""
    limiter = ConcurrencyLimiter("dep", 1, 10, ManualClock())
    holder = _at_once(limiter.acquire("a", FAR))
    [b] = _waiters(limiter, "b", 1)
    [c] = _waiters(limiter, "c", 1)
    await _until(lambda: limiter.queued == 2)
    holder.release()  # hands the slot to b...
    b.cancel()  # ...whose task is cancelled before it runs
    with pytest.raises(asyncio.CancelledError):
        await b
    lease = await _granted(c)
    assert (limiter.in_flight, limiter.queued) == (1, 0)
    lease.release()
    assert limiter.in_flight == 0


async def test_a_release_skips_a_waiter_cancelled_just_before_it() -> None:
    """A waiter cancelled just before a release (its task not yet run) is passed over, and the queue count stays right."""
    limiter = ConcurrencyLimiter("dep", 1, 10, ManualClock())
    holder = _at_once(limiter.acquire("a", FAR))
    [b] = _waiters(limiter, "b", 1)
    [c] = _waiters(limiter, "c", 1)
    await _until(lambda: limiter.queued == 2)
    b.cancel()
    holder.release()
    with pytest.raises(asyncio.CancelledError):
        await b
    lease = await _granted(c)
    assert (limiter.in_flight, limiter.queued) == (1, 0)
    lease.release()
    assert limiter.in_flight == 0


async def test_try_acquire_takes_only_a_free_slot_and_never_queues() -> None:
    """try_acquire returns a slot while a slot is free and None when all are held, without joining the queue."""
    limiter = ConcurrencyLimiter("dep", 1, 10, ManualClock())
    lease = limiter.try_acquire()
    assert lease is not None
    assert limiter.try_acquire() is None
    assert (limiter.in_flight, limiter.queued) == (1, 0)
    lease.release()
    again = limiter.try_acquire()
    assert again is not None
    again.release()


async def test_releasing_a_lease_twice_frees_one_slot() -> None:
    """A second release of the same slot does nothing, so a double release cannot raise capacity."""
    limiter = ConcurrencyLimiter("dep", 2, 10, ManualClock())
    first = _at_once(limiter.acquire("a", FAR))
    _at_once(limiter.acquire("a", FAR))
    first.release()
    first.release()
    assert limiter.in_flight == 1


async def test_slot_releases_however_the_block_ends() -> None:
    """The slot() context manager holds a slot inside the block and releases it when the block raises."""
    limiter = ConcurrencyLimiter("dep", 1, 10, ManualClock())
    with pytest.raises(RuntimeError):
        async with limiter.slot("a", FAR):
            assert limiter.in_flight == 1
            raise RuntimeError("upstream call failed")
    assert limiter.in_flight == 0


async def test_snapshot_reports_slots_queue_and_average_hold() -> None:
    """The snapshot shows limits, slots held, waiters and tenants, the moving average of hold times and the expected wait."""
    clock = ManualClock()
    limiter = ConcurrencyLimiter("gpt", 2, 5, clock)
    assert limiter.snapshot()["avg_hold_s"] is None
    assert limiter.snapshot()["expected_wait_s"] == 0.0
    _with_history(limiter, clock, 2.0, 4.0)
    holders = [_at_once(limiter.acquire("x", FAR)) for _ in range(2)]
    waiters = _waiters(limiter, "a", 2) + _waiters(limiter, "b", 1)
    await _until(lambda: limiter.queued == 3)
    snap = limiter.snapshot()
    avg = 2.0 + 0.2 * (4.0 - 2.0)  # the newest hold weighs 0.2
    assert snap == {
        "name": "gpt",
        "max_concurrent": 2,
        "max_queue": 5,
        "in_flight": 2,
        "queued": 3,
        "waiting_tenants": 2,
        "avg_hold_s": pytest.approx(avg),
        "expected_wait_s": pytest.approx(4 / 2 * avg),
        "rejected": NO_REJECTIONS,
    }
    await _cancel(waiters)
    for holder in holders:
        holder.release()


def test_rejects_nonsense_limits() -> None:
    """A limiter needs at least one slot and a queue bound of zero or more."""
    with pytest.raises(ValueError):
        ConcurrencyLimiter("dep", 0, 10, ManualClock())
    with pytest.raises(ValueError):
        ConcurrencyLimiter("dep", 1, -1, ManualClock())
