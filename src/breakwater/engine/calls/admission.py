"""Per-deployment admission: at most N requests in flight, the rest in a bounded, fair queue.

A deployment with ``max_concurrency`` gets one ``ConcurrencyLimiter``. A request takes a ``Slot``
before its upstream call and releases it when the call, stream included, is over.
When every slot is held, the request waits in its tenant's FIFO queue (a tenant is the caller's
key or user), and a freed slot goes to the next tenant in round-robin order, so a tenant with a
hundred requests waiting and one with a single request alternate: one heavy user cannot starve
the rest.

Waiting is bounded two ways, and a request that cannot be served in time gets ``Saturated``
(429 with Retry-After) at once rather than after a pointless wait:

- the queue holds at most ``max_queue`` requests in all. When it is full, a request from a
  tenant with fewer waiters than the heaviest tenant takes the place of that tenant's newest
  waiter (which gets ``Saturated``): otherwise one user filling the queue would lock everyone
  else out of it;
- the expected wait, ``position / max_concurrent * average hold time``, must fit before the
  request's deadline. The position counts the round-robin turns ahead of the request, not the
  whole queue, so a light tenant behind a heavy one is not refused for the heavy one's backlog.
  The average is an exponentially weighted moving average of recent slot hold times; with no
  history yet, nothing is refused on the estimate. Each ``Slot`` carries its grant time, so every
  sample is one slot's real hold time.

A waiter whose deadline passes leaves the queue with ``Saturated``; a waiter cancelled (client
gone) leaves without a trace. If the slot was handed to a waiter at the very moment its task was
cancelled, the slot passes on to the next waiter instead of leaking. The deadline is on the
injected clock's scale; the wait itself is timed by the event loop (``asyncio.timeout_at``), like
the gateway's network timeouts, starting from the time left when the request joins the queue.

Uncontended, ``acquire`` and ``release`` are a counter check, a clock read and the ``Slot`` (two
attributes: its limiter and grant time); the queue machinery (a future per waiter) is only built
when there is a queue.
"""

from __future__ import annotations

import asyncio
import math
from collections import OrderedDict, deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from breakwater.core.errors import Saturated
from breakwater.engine.ports import Clock

#: weight of the newest hold time in the average: roughly the last ten holds count
_ALPHA = 0.2

_REASONS = {
    "queue_full": "the queue is full",
    "deadline": "the expected wait exceeds the time left before the request's deadline",
    "expired": "no slot freed before the request's deadline",
    "evicted": "the queue is full and this caller has the most requests waiting",
}


class Slot:
    """One held slot of a ``ConcurrencyLimiter``. ``release()`` gives it back; a second call does nothing."""

    __slots__ = ("_limiter", "granted_at")

    def __init__(self, limiter: ConcurrencyLimiter, granted_at: float) -> None:
        self._limiter: ConcurrencyLimiter | None = limiter
        #: when the slot was granted, on the limiter clock's monotonic scale
        self.granted_at = granted_at

    def release(self) -> None:
        """Give the slot back: to the next tenant's oldest waiter, or to the pool."""
        limiter = self._limiter
        if limiter is not None:
            self._limiter = None
            limiter._give_back(self.granted_at)


class ConcurrencyLimiter:
    """At most ``max_concurrent`` slots for one deployment; waiters queue fairly across tenants."""

    def __init__(self, name: str, max_concurrent: int, max_queue: int, clock: Clock) -> None:
        """Create an idle limiter with no hold-time history.

        Args:
            name: the deployment's name, used in error messages and the snapshot.
            max_concurrent: slots; at least 1.
            max_queue: requests that may wait, across all tenants; 0 refuses every request
                that finds no free slot.
            clock: time source for hold times and deadlines.
        """
        if max_concurrent < 1:
            raise ValueError(f"max_concurrent must be at least 1, not {max_concurrent}")
        if max_queue < 0:
            raise ValueError(f"max_queue must not be negative, not {max_queue}")
        self.name = name
        self.max_concurrent = max_concurrent
        self.max_queue = max_queue
        self._clock = clock
        self._in_flight = 0
        self._queued = 0
        # tenant -> its waiters, oldest first. The dict's order is the turn order: a served tenant
        # with more waiters goes to the back. Invariant: waiters exist only while every slot is
        # held (a released slot goes straight to a waiter), so a free slot never jumps the queue.
        self._queues: OrderedDict[str, deque[asyncio.Future[None]]] = OrderedDict()
        self._avg_hold: float | None = None
        self._rejected = dict.fromkeys(_REASONS, 0)

    @property
    def in_flight(self) -> int:
        """Slots held now (including ones handed to waiters that have not resumed yet)."""
        return self._in_flight

    @property
    def queued(self) -> int:
        """Requests waiting for a slot, across all tenants."""
        return self._queued

    async def acquire(self, tenant: str, deadline: float) -> Slot:
        """A slot, waiting for one in ``tenant``'s queue if all are held. Release the slot when done.

        Args:
            tenant: who the request is for (API key or user id); fairness is between tenants.
            deadline: when the request must be done, on ``clock.monotonic()``'s scale. A free
                slot is granted whatever the deadline; waiting is refused or ended by it.

        Raises:
            Saturated: the queue is full, the expected wait exceeds the time left, or the
                deadline passed while waiting.
        """
        if self._in_flight < self.max_concurrent:
            self._in_flight += 1
            return Slot(self, self._clock.monotonic())
        return await self._wait(tenant, deadline)

    def try_acquire(self) -> Slot | None:
        """A free slot now, or None: never queues (for ``overflow`` routes that spill over instead)."""
        if self._in_flight < self.max_concurrent:
            self._in_flight += 1
            return Slot(self, self._clock.monotonic())
        return None

    @asynccontextmanager
    async def slot(self, tenant: str, deadline: float) -> AsyncIterator[Slot]:
        """``acquire`` as a context manager: the slot is released however the block ends."""
        held = await self.acquire(tenant, deadline)
        try:
            yield held
        finally:
            held.release()

    def snapshot(self) -> dict[str, object]:
        """The limiter's state as JSON-friendly values, for the admin endpoint and metrics."""
        return {
            "name": self.name,
            "max_concurrent": self.max_concurrent,
            "max_queue": self.max_queue,
            "in_flight": self._in_flight,
            "queued": self._queued,
            "waiting_tenants": len(self._queues),
            "avg_hold_s": self._avg_hold,
            # the wait at the back of the line; None until a slot has been held and released
            "expected_wait_s": 0.0 if self._in_flight < self.max_concurrent else self._wait_for(self._queued + 1),
            "rejected": dict(self._rejected),
        }

    # --- the queue ------------------------------------------------------------------------------

    async def _wait(self, tenant: str, deadline: float) -> Slot:
        left = deadline - self._clock.monotonic()
        if left <= 0:
            raise self._reject("deadline", self._wait_for(self._position(tenant)))
        if self._avg_hold is not None:
            # the whole queue ahead is an O(1) upper bound; only when it does not fit is the
            # tenant's real place in the rotation (O(tenants)) worth counting
            wait = self._wait_for(self._queued + 1)
            if wait is not None and wait > left:
                wait = self._wait_for(self._position(tenant))
                if wait is not None and wait > left:
                    raise self._reject("deadline", wait)
        if self._queued >= self.max_queue and not self._make_room(tenant):
            raise self._reject("queue_full", self._wait_for(self._position(tenant)))

        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[None] = loop.create_future()
        queue = self._queues.get(tenant)
        if queue is None:
            queue = self._queues[tenant] = deque()
        queue.append(waiter)
        self._queued += 1
        try:
            async with asyncio.timeout_at(loop.time() + left if left != math.inf else None):
                await waiter
        except BaseException as exc:
            # reading exception() also marks an eviction's error as retrieved
            granted = waiter.done() and not waiter.cancelled() and waiter.exception() is None
            if granted and isinstance(exc, TimeoutError):
                # the slot was handed over as the deadline fired: it came in time, so keep it
                return Slot(self, self._clock.monotonic())
            if granted:
                # cancelled (client gone) just after the slot was handed over: hand it on
                self._hand_on()
                raise
            self._forget(tenant, waiter)
            if isinstance(exc, TimeoutError):
                raise self._reject("expired", self._wait_for(self._position(tenant))) from None
            raise
        return Slot(self, self._clock.monotonic())

    def _give_back(self, granted_at: float) -> None:
        held = self._clock.monotonic() - granted_at
        avg = self._avg_hold
        self._avg_hold = held if avg is None else avg + _ALPHA * (held - avg)
        if self._queued:
            self._hand_on()
        else:
            self._in_flight -= 1

    def _hand_on(self) -> None:
        """Pass a held slot to the next tenant's oldest waiter, or free it if nobody waits."""
        queues = self._queues
        while queues:
            tenant, queue = queues.popitem(last=False)
            waiter = queue.popleft()
            if queue:
                queues[tenant] = queue
            self._queued -= 1
            # a waiter cancelled a moment ago is still queued until its task runs: skip it
            if not waiter.done():
                waiter.set_result(None)
                return
        self._in_flight -= 1

    def _forget(self, tenant: str, waiter: asyncio.Future[None]) -> None:
        queue = self._queues.get(tenant)
        if queue is None:
            return
        try:
            queue.remove(waiter)
        except ValueError:
            return  # already taken off by a release or an eviction
        self._queued -= 1
        if not queue:
            del self._queues[tenant]

    def _make_room(self, tenant: str) -> bool:
        """Evict the heaviest tenant's newest waiter if it has at least two more than ``tenant``."""
        mine = self._queues.get(tenant)
        # with one more, taking its place would only swap who is heavier
        floor = (len(mine) if mine is not None else 0) + 2
        victim: str | None = None
        most = floor - 1
        for name, queue in self._queues.items():
            if len(queue) > most:
                victim, most = name, len(queue)
        if victim is None:
            return False
        queue = self._queues[victim]
        waiter = queue.pop()
        if not queue:
            del self._queues[victim]
        self._queued -= 1
        if not waiter.done():
            waiter.set_exception(self._reject("evicted", self._wait_for(self._position(victim))))
        return True

    def _position(self, tenant: str) -> int:
        """Grants until a new request from ``tenant`` is served, itself included, in round-robin order.

        If the tenant has k waiters, each tenant before it in the rotation is served up to k + 1
        times first, each one after it up to k times; a tenant new to the rotation joins at the back.
        """
        mine = self._queues.get(tenant)
        k = len(mine) if mine is not None else 0
        position = k + 1
        cap = k + 1
        for name, queue in self._queues.items():
            if name == tenant:
                cap = k
            else:
                position += min(len(queue), cap)
        return position

    def _wait_for(self, position: int) -> float | None:
        if self._avg_hold is None:
            return None
        return position / self.max_concurrent * self._avg_hold

    def _reject(self, reason: str, wait: float | None) -> Saturated:
        self._rejected[reason] += 1
        seconds = 1 if wait is None else max(1, math.ceil(wait))
        return Saturated(
            f"deployment '{self.name}' is saturated ({self.max_concurrent} in flight, {self._queued} waiting): "
            f"{_REASONS[reason]}; retry after {seconds}s",
            retry_after=float(seconds),
        )
