"""Limits while the shared counters (Redis) are unreachable: local counting, outage detection, recovery.

``Quota`` (``engine/limits/quota.py``) decides what a request reserves and what its settlement
changes; ``Failover`` decides where that is counted, and what happens when Redis does not answer.

When Redis is unreachable or slow (no answer within ``redis.timeout_ms``), requests never wait
longer for it: that request is admitted on local memory counters (``open``, each limit scaled
by ``local_share``) or refused (``closed``, 503). The late call is not cancelled (it may run in
Redis all the same): it finishes in the background and whatever it reserved is given back, so
a slow moment leaves no stray reservation behind. After three failures in a row Redis counts
as down and requests go straight to the local counters. Budgets count on from the last figure
this replica saw, and the spend settled locally is owed to Redis and added there when it returns.
A background probe notices when Redis answers again; counting then resumes there.

Settlements due to Redis while it is down (for requests it admitted before, and the spend owed
for those counted locally) wait, parked (the oldest are dropped beyond ``_MAX_PARKED``), and are
applied first once it is back.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from breakwater.core.errors import BackendUnavailable
from breakwater.engine.limits.checks import CheckMeta
from breakwater.engine.limits.counters import (
    Adjust,
    Check,
    CounterLease,
    CountersUnavailable,
    Reading,
    Release,
    Verdict,
    Window,
)
from breakwater.engine.ports import Counters
from breakwater.engine.tasks import stop_task

log = logging.getLogger("breakwater.limits")

#: settlements waiting for Redis beyond this many are dropped (logged and counted)
_MAX_PARKED = 100_000
#: budgets whose last shared count is remembered for an outage (the most recently used ones)
_MAX_SEEN = 50_000
#: consecutive failed admissions after which the backend counts as down (until a probe succeeds)
_FAILURES_TO_SWITCH = 3


@dataclass(slots=True)
class Settlement:
    """Changes to one backend's counters, applied in one call with others of its batch."""

    backend: Counters
    adjusts: list[Adjust]
    releases: list[Release]
    #: for each adjust of a settled-spend counter: (index in adjusts, meta) for alerts
    spent: list[tuple[int, CheckMeta]]


class Failover:
    """The counters a quota admits and settles on: ``counters``, or ``local`` while those are unreachable.

    Args:
        counters: the backend (``MemoryCounters`` or ``RedisCounters``).
        local: counters for when ``counters`` is unreachable (``None`` when ``counters`` is
            already local: every call then goes to it, and its failures are the caller's).
        queue: the quota's settlement queue. A late admission's give-back is added to it, and the
            parked settlements go back to its front when the backend returns.
        wake: set when ``queue`` has new work.
        on_failure: ``open`` (count locally) or ``closed`` (refuse limited requests, 503).
        local_share: the share of each limit a replica allows while counting locally.
        probe_s: seconds between checks that the backend is back.
        wait_s: how long an admission waits for ``counters`` (with a ``local`` fallback) before
            the request goes on with local counters.
    """

    def __init__(
        self,
        counters: Counters,
        local: Counters | None,
        queue: deque[Settlement],
        wake: asyncio.Event,
        *,
        on_failure: Literal["open", "closed"] = "open",
        local_share: float = 1.0,
        probe_s: float = 1.0,
        wait_s: float = 0.1,
    ) -> None:
        self.counters = counters
        self.local = local
        self.on_failure = on_failure
        self.local_share = local_share
        self.probe_s = probe_s
        self.wait_s = wait_s
        self._queue = queue
        self._wake = wake
        #: the backend answers (always True without a ``local`` fallback)
        self.healthy = True
        self._failures = 0
        #: requests admitted on local counters because the backend was unreachable
        self.local_admissions = 0
        #: admissions the shared counters made after their request had gone ahead without them
        self.late_admissions_undone = 0
        #: settlements lost (too many parked while the backend was down, or left at shutdown); each one logged
        self.dropped = 0
        #: settlements for the backend that wait for it to return
        self.parked: deque[Settlement] = deque()
        self._probe: asyncio.Task[None] | None = None
        #: last count seen on the backend per spend counter: local counting starts from it
        self._seen: dict[str, int] = {}
        self._seeded: set[str] = set()

    # --- admission ----------------------------------------------------------------------------

    async def acquire(self, checks: list[Check], now: float) -> tuple[Counters, Verdict]:
        """The backend that counted ``checks`` and its verdict.

        Raises:
            BackendUnavailable: the backend is unreachable and limits fail closed.
        """
        if self.local is None:
            return self.counters, await self.counters.acquire(checks, now)
        if self.healthy:
            try:
                verdict = await self._shared_acquire(checks, now)
            except CountersUnavailable:
                # one slow answer (a busy event loop, a blip) sends only this request to the
                # local counters; a few in a row mean Redis is down
                self._failures += 1
                if self._failures >= _FAILURES_TO_SWITCH:
                    self._went_down()
            else:
                self._failures = 0
                return self.counters, verdict
        if self.on_failure == "closed":
            raise BackendUnavailable(
                "The gateway's limit counters (Redis) are unreachable and limits fail closed; retry shortly"
            )
        self.local_admissions += 1
        local = self.local
        assert local is not None
        scaled = [self._scaled(c) for c in checks]
        await self._seed(local, scaled, now)
        return local, await local.acquire(scaled, now)

    def remember(
        self, backend: Counters, checks: Sequence[Check], metas: Sequence[CheckMeta], readings: Sequence[Reading]
    ) -> None:
        """Note the budgets' counts that ``backend`` read, if it is the shared one: an outage counts on from them."""
        if backend is self.counters and self.local is not None:
            seen = self._seen
            for check, meta, reading in zip(checks, metas, readings, strict=True):
                if meta.kind == "budget":
                    seen.pop(check.key, None)  # re-inserted last: the oldest entries go first
                    seen[check.key] = reading.count
                    if len(seen) > _MAX_SEEN:
                        del seen[next(iter(seen))]

    async def _shared_acquire(self, checks: list[Check], now: float) -> Verdict:
        """The shared counters' verdict within ``wait_s``.

        A call that takes longer is not abandoned: it may well run in Redis, and cancelling it
        would leave its reservations there with no request to settle them (a budget would stay
        charged for the period). It finishes in the background, bounded by the client's own
        timeout, and what it reserved is given back at once; the request goes on without it.
        """
        call = asyncio.ensure_future(self.counters.acquire(checks, now))
        try:
            return await asyncio.wait_for(asyncio.shield(call), self.wait_s)
        except TimeoutError:
            call.add_done_callback(lambda done: self._undo(done, checks))
            raise CountersUnavailable("no answer in time") from None
        except asyncio.CancelledError:  # the client left while waiting
            call.add_done_callback(lambda done: self._undo(done, checks))
            raise

    def _undo(self, call: asyncio.Future[Verdict], checks: list[Check]) -> None:
        """Give back what a late admission reserved (its request went ahead without it)."""
        if call.cancelled() or call.exception() is not None or not call.result().admitted:
            return
        adjusts = [Adjust(c.key, c.slot, -c.amount, c.ttl_s) for c in checks if isinstance(c, Window) and c.amount]
        releases = [Release(c.key, c.token) for c in checks if isinstance(c, CounterLease)]
        self.late_admissions_undone += 1
        self._queue.append(Settlement(self.counters, adjusts, releases, []))
        self._wake.set()

    def _scaled(self, check: Check) -> Check:
        share = self.local_share
        if share >= 1.0:
            return check
        limit = max(1, int(check.limit * share))
        if isinstance(check, Window):
            return Window(check.key, limit, check.amount, check.slot, check.buckets, check.ttl_s, check.below)
        return CounterLease(check.key, limit, check.token, check.expires_at)

    async def _seed(self, local: Counters, checks: list[Check], now: float) -> None:
        """Budgets counted locally start from the last figure seen on the backend, once per outage."""
        seeds = []
        for c in checks:
            if isinstance(c, Window) and c.below and c.key not in self._seeded:
                self._seeded.add(c.key)
                seen = self._seen.get(c.key, 0)
                if seen > 0:
                    seeds.append(Adjust(c.key, c.slot, seen, c.ttl_s))
        if seeds:
            await local.settle(seeds, (), now)

    # --- settlement ---------------------------------------------------------------------------

    async def settle(self, backend: Counters, batch: list[Settlement], now: float) -> list[int | None] | None:
        """Apply ``batch`` (settlements for ``backend``): each adjusted slot's new value, or ``None``
        when the batch is parked until the shared counters are back."""
        if backend is self.counters and (not self.healthy and self.local is not None):
            self._park(batch)
            return None
        adjusts = [a for s in batch for a in s.adjusts]
        releases = [r for s in batch for r in s.releases]
        try:
            return await backend.settle(adjusts, releases, now)
        except CountersUnavailable:
            if self.local is None:
                raise
            self._went_down()
            self._park(batch)
            return None

    def owed(self, spends: Sequence[tuple[Window, CheckMeta]], actual: int) -> Settlement | None:
        """What the shared counters are owed by a request counted locally that spent ``actual``
        (nano-dollars) against ``spends``: the same spend, added there once they are back (the
        settlement waits, parked, until then), and budget alerts from there. ``None``: nothing."""
        if actual <= 0:
            return None
        adjusts: list[Adjust] = []
        spent: list[tuple[int, CheckMeta]] = []
        for w, meta in spends:
            adjusts.append(Adjust(w.key, 0, actual, w.ttl_s))
            if meta.spent_key is not None:
                spent.append((len(adjusts), meta))
                adjusts.append(Adjust(meta.spent_key, 0, actual, w.ttl_s))
        return Settlement(self.counters, adjusts, [], spent) if adjusts else None

    def _park(self, batch: list[Settlement]) -> None:
        self.parked.extend(batch)
        while len(self.parked) > _MAX_PARKED:
            self.parked.popleft()
            self.dropped += 1
            if self.dropped == 1 or self.dropped % 1000 == 0:
                log.error("limit settlements dropped while Redis is unreachable: %d so far", self.dropped)

    # --- outages --------------------------------------------------------------------------------

    def _went_down(self) -> None:
        if self.healthy:
            self.healthy = False
            self._seeded.clear()
            log.warning(
                "limit counters (Redis) unreachable: %s",
                "counting locally until it returns" if self.on_failure == "open" else "refusing limited requests",
            )
        if self._probe is None or self._probe.done():
            self._probe = asyncio.get_running_loop().create_task(self._recover(), name="breakwater-quota-probe")
            self._probe.add_done_callback(_log_failure)

    async def _recover(self) -> None:
        while True:
            if await self.probe():
                return
            await asyncio.sleep(self.probe_s)

    async def probe(self) -> bool:
        """Ask the backend whether it is back; when it is, count there again and apply the
        settlements that waited for it. True when healthy."""
        if self.healthy:
            return True
        try:
            await self.counters.ping()
        except CountersUnavailable:
            return False
        self.healthy = True
        self._failures = 0
        log.info("limit counters (Redis) reachable again: counting resumes there")
        self._queue.extendleft(reversed(self.parked))
        self.parked.clear()
        self._wake.set()
        return True

    async def stop(self) -> None:
        """Stop probing for the backend's return."""
        await stop_task(self._probe)
        self._probe = None


def _log_failure(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("the limit counters' recovery probe failed", exc_info=task.exception())
