"""Limits and budgets: admit a request against every cap that applies to it, settle when it ends.

A request may be capped by its key, the key's team, its user, its tags, its route and its agent
session. ``Quota.admit`` turns every cap into a counter check (``engine/limits/counters.py``) and asks
the backend to admit them all at once, atomically, so that replicas sharing Redis never admit
more than a limit between them:

- requests and tokens per minute: a sliding window of 60 one-second slots. A request adds 1
  to the request windows and its token estimate (prompt + the output it may ask for) to the
  token windows;
- requests in flight: a lease, held until the request (or stream) ends;
- budgets: spend in the calendar period so far, including the reservations of requests still
  running. A request is admitted while that is *below* the cap and reserves its maximum cost
  (prompt estimate and ``max_tokens`` at the dearest deployment of the route), so concurrent
  requests cannot overshoot a budget by more than one request's maximum cost;
- sessions (``x-breakwater-session``): calls and spend per session, with the same rules.

Nothing is counted for a refused request. ``Quota.settle`` runs when the request ends, with its
real usage: the token and spend reservations are replaced by the real figures, leases are
given back. Settlement is queued and applied by one background task, in batches (one Redis
round-trip for many requests), so it never delays a response.

The settled spend is also added to a second counter per budget, which only ever holds what was
really spent; budget alerts (``access.budget_alerts``, 50/80/100% by default) fire when it first
crosses a share of the cap in a period, once across every replica (``Counters.first``).

When Redis is unreachable or slow (no answer within ``redis.timeout_ms``), requests never wait
longer for it: that request is admitted on local memory counters (``open``, each limit scaled
by ``local_share``) or refused (``closed``, 503). The late call is not cancelled (it may run in
Redis all the same): it finishes in the background and whatever it reserved is given back, so
a slow moment leaves no stray reservation behind. After three failures in a row Redis counts
as down and requests go straight to the local counters. Budgets count on from the last figure this replica saw, and the spend
settled locally is owed to Redis and added there when it returns. A background probe notices
when Redis answers again; counting then resumes there.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import secrets
from collections import Counter, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Literal

from breakwater.core.errors import (
    BackendUnavailable,
    TokensLimitExceeded,
)
from breakwater.core.limits import Budget, from_nano, period_span, to_nano
from breakwater.engine.context import RequestContext
from breakwater.engine.limits.checks import BudgetAlert, CheckMeta, Demand, Scope, Sessions, rate_headers, refusal
from breakwater.engine.limits.counters import Adjust, Check, CountersUnavailable, Lease, Release, Verdict, Window
from breakwater.engine.ports import Clock, Counters
from breakwater.engine.tasks import stop_task

log = logging.getLogger("breakwater.limits")

#: slots of the per-minute windows (one second each)
MINUTE = 60
#: the minute windows are forgotten this long after their last write
_WINDOW_TTL_S = 2 * MINUTE
#: a budget counter outlives its period by this much (the admin view shows the last period)
_PERIOD_GRACE_S = 7 * 86_400
#: a "total" budget never resets; its counter is kept this long after its last write
_TOTAL_TTL_S = 10 * 365 * 86_400
#: settlements waiting for Redis beyond this many are dropped (logged and counted)
_MAX_PARKED = 100_000
_SETTLE_BATCH = 512
#: budgets whose last shared count is remembered for an outage (the most recently used ones)
_MAX_SEEN = 50_000
#: consecutive failed admissions after which the backend counts as down (until a probe succeeds)
_FAILURES_TO_SWITCH = 3


@dataclass(slots=True)
class Ticket:
    """What an admitted request holds until it ends: its reservations, on one backend."""

    backend: Counters
    tokens: list[Window] = field(default_factory=list)
    spends: list[tuple[Window, CheckMeta]] = field(default_factory=list)
    leases: list[Release] = field(default_factory=list)
    reserved_tokens: int = 0
    reserved_nano: int = 0
    settled: bool = False


@dataclass(slots=True)
class _Settlement:
    backend: Counters
    adjusts: list[Adjust]
    releases: list[Release]
    #: for each adjust of a settled-spend counter: (index in adjusts, meta) for alerts
    spent: list[tuple[int, CheckMeta]]


class Quota:
    """Admission and settlement against every configured cap.

    Args:
        counters: the backend (``MemoryCounters`` or ``RedisCounters``).
        clock: ``time()`` places requests in slots and periods.
        local: counters for when ``counters`` is unreachable (``None`` when ``counters`` is
            already local).
        on_failure: ``open`` (count locally) or ``closed`` (refuse limited requests, 503).
        local_share: the share of each limit a replica allows while counting locally.
        probe_s: seconds between checks that the backend is back.
        wait_s: how long an admission waits for ``counters`` (with a ``local`` fallback) before
            the request goes on with local counters.
        sessions: per-session caps.
        alert_shares: budget shares that raise an alert when first crossed.
        on_alert: receives each budget alert (log and webhook delivery).
    """

    def __init__(
        self,
        counters: Counters,
        clock: Clock,
        *,
        local: Counters | None = None,
        on_failure: Literal["open", "closed"] = "open",
        local_share: float = 1.0,
        probe_s: float = 1.0,
        wait_s: float = 0.1,
        sessions: Sessions | None = None,
        alert_shares: Sequence[float] = (0.5, 0.8, 1.0),
        on_alert: Callable[[BudgetAlert], None] | None = None,
    ) -> None:
        self.counters = counters
        self.local = local
        self.clock = clock
        self.on_failure = on_failure
        self.local_share = local_share
        self.probe_s = probe_s
        self.wait_s = wait_s
        #: admissions the shared counters made after their request had gone ahead without them
        self.late_admissions_undone = 0
        self.sessions = sessions or Sessions()
        self.alert_shares = tuple(alert_shares)
        self.on_alert = on_alert
        #: the backend answers (always True without a ``local`` fallback)
        self.healthy = True
        self._failures = 0
        #: requests admitted on local counters because the backend was unreachable
        self.local_admissions = 0
        #: refusals by (scope kind, limit kind)
        self.refusals: Counter[tuple[str, str]] = Counter()
        #: settlements lost (queue over its bound while the backend was down); each one logged
        self.dropped = 0
        self.alerts_fired = 0
        self._tokens = itertools.count(1)
        self._prefix = secrets.token_hex(4)
        self._queue: deque[_Settlement] = deque()
        self._parked: deque[_Settlement] = deque()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._probe: asyncio.Task[None] | None = None
        #: last count seen on the backend per spend counter: local counting starts from it
        self._seen: dict[str, int] = {}
        self._seeded: set[str] = set()

    @property
    def pending(self) -> int:
        """Settlements queued or waiting for the backend to return."""
        return len(self._queue) + len(self._parked)

    # --- admission ----------------------------------------------------------------------------

    async def admit(
        self,
        ctx: RequestContext,
        scopes: Sequence[Scope],
        demand: Callable[[], Demand],
        *,
        session: str | None = None,
        hold_s: float = 600.0,
    ) -> Ticket | None:
        """Admit the request against every limit of ``scopes`` (and its session), or refuse it.

        On admission ``ctx.ticket`` holds what to settle; either way ``ctx.rate_headers`` holds the
        ``x-ratelimit-*`` headers. ``demand`` is only called when a token or spend cap applies.

        Raises:
            RequestsLimitExceeded, TokensLimitExceeded, LimitExceeded: a rate or concurrency cap
                (429, retryable after ``retry_after``).
            QuotaExceeded: a budget or session cap (429 ``insufficient_quota``).
            BackendUnavailable: Redis is down and limits fail closed.
        """
        now = self.clock.time()
        slot = int(now)
        checks: list[Check] = []
        metas: list[CheckMeta] = []
        wants: Demand | None = None

        def need() -> Demand:
            nonlocal wants
            if wants is None:
                wants = demand()
            return wants

        for scope in scopes:
            limits = scope.limits
            base = f"{scope.kind}:{scope.subject}"
            if limits.rpm is not None:
                checks.append(Window(f"rpm:{base}", limits.rpm, 1, slot, MINUTE, _WINDOW_TTL_S))
                metas.append(CheckMeta("rpm", scope))
            if limits.tpm is not None:
                tokens = need().tokens
                if tokens > limits.tpm:
                    self.refusals[(scope.kind, "tpm")] += 1
                    raise TokensLimitExceeded(
                        f"Request too large for {scope.label}: about {tokens} tokens requested, "
                        f"over its limit of {limits.tpm} tokens per minute; send a shorter prompt or a lower max_tokens",
                        code="request_too_large",
                    )
                checks.append(Window(f"tpm:{base}", limits.tpm, tokens, slot, MINUTE, _WINDOW_TTL_S))
                metas.append(CheckMeta("tpm", scope))
            if limits.max_concurrent is not None:
                token = f"{self._prefix}{next(self._tokens):x}"
                checks.append(Lease(f"conc:{base}", limits.max_concurrent, token, now + hold_s + MINUTE))
                metas.append(CheckMeta("concurrent", scope))
            if limits.budget is not None:
                budget = limits.budget
                span = period_span(budget.period, now)
                ttl = _TOTAL_TTL_S if span.end is None else int(span.end - now) + _PERIOD_GRACE_S
                window = Window(f"spend:{span.id}:{base}", budget.cap_nano, need().cost_nano, 0, 1, ttl, below=True)
                checks.append(window)
                metas.append(CheckMeta("budget", scope, budget, f"spent:{span.id}:{base}", span.id, span.end))
        if session is not None and self.sessions.active:
            self._session_checks(session, need, checks, metas)
        if not checks:
            return None
        backend, verdict = await self._acquire(checks, now)
        ctx.rate_headers = rate_headers(checks, metas, verdict.readings, now)
        if backend is self.counters and self.local is not None:
            seen = self._seen
            for check, meta, reading in zip(checks, metas, verdict.readings, strict=True):
                if meta.kind == "budget":
                    seen.pop(check.key, None)  # re-inserted last: the oldest entries go first
                    seen[check.key] = reading.count
                    if len(seen) > _MAX_SEEN:
                        del seen[next(iter(seen))]
        if not verdict.admitted:
            assert verdict.refused is not None
            meta, reading = metas[verdict.refused], verdict.readings[verdict.refused]
            self.refusals[(meta.scope.kind if meta.scope else "session", meta.kind)] += 1
            raise refusal(checks[verdict.refused], meta, reading, now)
        ticket = Ticket(backend)
        for check, meta in zip(checks, metas, strict=True):
            if isinstance(check, Lease):
                ticket.leases.append(Release(check.key, check.token))
            elif meta.kind == "tpm":
                ticket.tokens.append(check)
                ticket.reserved_tokens = check.amount
            elif meta.kind in ("budget", "session_spend"):
                ticket.spends.append((check, meta))
                ticket.reserved_nano = check.amount
        ctx.ticket = ticket
        return ticket

    def _session_checks(
        self, session: str, need: Callable[[], Demand], checks: list[Check], metas: list[CheckMeta]
    ) -> None:
        s = self.sessions
        if s.max_calls is not None:
            checks.append(Window(f"session_calls:{session}", s.max_calls, 1, 0, 1, s.idle_ttl_s))
            metas.append(CheckMeta("session_calls", None, period_id=session))
        if s.max_spend_usd is not None:
            cap = to_nano(s.max_spend_usd)
            checks.append(Window(f"session_spend:{session}", cap, need().cost_nano, 0, 1, s.idle_ttl_s, below=True))
            metas.append(CheckMeta("session_spend", None, Budget(s.max_spend_usd, "total"), period_id=session))

    async def _acquire(self, checks: list[Check], now: float) -> tuple[Counters, Verdict]:
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
        releases = [Release(c.key, c.token) for c in checks if isinstance(c, Lease)]
        self.late_admissions_undone += 1
        self._queue.append(_Settlement(self.counters, adjusts, releases, []))
        self._wake.set()

    def _scaled(self, check: Check) -> Check:
        share = self.local_share
        if share >= 1.0:
            return check
        limit = max(1, int(check.limit * share))
        if isinstance(check, Window):
            return Window(check.key, limit, check.amount, check.slot, check.buckets, check.ttl_s, check.below)
        return Lease(check.key, limit, check.token, check.expires_at)

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

    def settle(self, ctx: RequestContext, tokens: int, cost: Decimal | None) -> None:
        """The request ended having used ``tokens`` and cost ``cost`` (``None``: no price):
        queue the real figures in place of its reservations and give its leases back."""
        ticket = ctx.ticket
        if ticket is None or ticket.settled:
            return
        ticket.settled = True
        now = self.clock.time()
        slot = int(now)
        adjusts: list[Adjust] = []
        spent: list[tuple[int, CheckMeta]] = []
        delta = tokens - ticket.reserved_tokens
        if delta:
            for w in ticket.tokens:
                if w.slot > slot - w.buckets:  # a window that moved on has forgotten the reservation
                    adjusts.append(Adjust(w.key, w.slot, delta, w.ttl_s))
        actual = 0 if cost is None else to_nano(cost)
        owed: list[Adjust] = []
        owed_spent: list[tuple[int, CheckMeta]] = []
        for w, meta in ticket.spends:
            if actual != ticket.reserved_nano:
                adjusts.append(Adjust(w.key, w.slot, actual - ticket.reserved_nano, w.ttl_s))
            if meta.spent_key is not None and actual > 0:
                spent.append((len(adjusts), meta))
                adjusts.append(Adjust(meta.spent_key, 0, actual, w.ttl_s))
            if ticket.backend is not self.counters and actual > 0:
                # counted locally during an outage: the shared counters are owed this spend, and
                # get it when they are back (the settlement waits, parked, until then)
                owed.append(Adjust(w.key, 0, actual, w.ttl_s))
                if meta.spent_key is not None:
                    owed_spent.append((len(owed), meta))
                    owed.append(Adjust(meta.spent_key, 0, actual, w.ttl_s))
        if ticket.backend is not self.counters:
            spent = []  # alerts come from the shared counters, once the owed spend reaches them
        if adjusts or ticket.leases:
            self._queue.append(_Settlement(ticket.backend, adjusts, ticket.leases, spent))
        if owed:
            self._queue.append(_Settlement(self.counters, owed, [], owed_spent))
        self._wake.set()

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="breakwater-quota-settle")

    async def stop(self) -> None:
        """Apply what is queued (within a second when the backend is down), then stop."""
        task, self._task = self._task, None
        await stop_task(task)
        await stop_task(self._probe)
        self._probe = None
        try:
            async with asyncio.timeout(1.0):
                await self.flush()
        except TimeoutError:
            pass
        left = len(self._queue) + len(self._parked)
        if left:
            self.dropped += left
            log.error("%d limit settlements could not be applied before shutdown", left)

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            try:
                await self.flush()
            except Exception:
                log.exception("applying limit settlements failed")

    async def flush(self) -> None:
        """Apply the queued settlements now (the background task does this as they arrive)."""
        while self._queue:
            batch = [self._queue.popleft() for _ in range(min(len(self._queue), _SETTLE_BATCH))]
            for backend in {id(s.backend): s.backend for s in batch}.values():
                mine = [s for s in batch if s.backend is backend]
                if backend is self.counters and (not self.healthy and self.local is not None):
                    self._park(mine)
                    continue
                await self._apply(backend, mine)

    async def _apply(self, backend: Counters, batch: list[_Settlement]) -> None:
        adjusts = [a for s in batch for a in s.adjusts]
        releases = [r for s in batch for r in s.releases]
        now = self.clock.time()
        try:
            values = await backend.settle(adjusts, releases, now)
        except CountersUnavailable:
            if self.local is None:
                raise
            self._went_down()
            self._park(batch)
            return
        offset = 0
        for s in batch:
            for index, meta in s.spent:
                value = values[offset + index]
                if value is not None:
                    await self._check_alerts(backend, meta, value, s.adjusts[index].delta, now)
            offset += len(s.adjusts)

    def _park(self, batch: list[_Settlement]) -> None:
        self._parked.extend(batch)
        while len(self._parked) > _MAX_PARKED:
            self._parked.popleft()
            self.dropped += 1
            if self.dropped == 1 or self.dropped % 1000 == 0:
                log.error("limit settlements dropped while Redis is unreachable: %d so far", self.dropped)

    async def _check_alerts(self, backend: Counters, meta: CheckMeta, value: int, delta: int, now: float) -> None:
        budget, scope = meta.budget, meta.scope
        if budget is None or scope is None or self.on_alert is None:
            return
        cap = budget.cap_nano
        for share in self.alert_shares:
            threshold = share * cap
            if value - delta < threshold <= value:
                ttl = _TOTAL_TTL_S if meta.period_end is None else int(meta.period_end - now) + _PERIOD_GRACE_S
                claim = f"alert:{meta.period_id}:{scope.kind}:{scope.subject}:{share:g}"
                try:
                    first = await backend.first(claim, max(ttl, 1), now)
                except CountersUnavailable:
                    first = True  # better twice than never
                if first:
                    self.alerts_fired += 1
                    self.on_alert(
                        BudgetAlert(
                            scope.kind,
                            scope.subject,
                            scope.label,
                            share,
                            from_nano(value),
                            budget.usd,
                            budget.period,
                            meta.period_id,
                            now,
                        )
                    )

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
        self._queue.extendleft(reversed(self._parked))
        self._parked.clear()
        self._wake.set()
        return True

    async def seed(self, scope: Scope, spent: Decimal) -> None:
        """Start the scope's budget for this period at ``spent`` (what the ledger says was spent
        before this process started: memory counters begin empty)."""
        budget = scope.limits.budget
        amount = to_nano(spent)
        if budget is None or amount <= 0:
            return
        now = self.clock.time()
        span = period_span(budget.period, now)
        ttl = _TOTAL_TTL_S if span.end is None else int(span.end - now) + _PERIOD_GRACE_S
        base = f"{scope.kind}:{scope.subject}"
        seeds = [Adjust(f"spend:{span.id}:{base}", 0, amount, ttl), Adjust(f"spent:{span.id}:{base}", 0, amount, ttl)]
        await self.counters.settle(seeds, (), now)

    # --- reading --------------------------------------------------------------------------------

    async def spend(self, scopes: Sequence[Scope]) -> list[dict[str, object]]:
        """The budget of each scope that has one: cap, settled spend, committed (with reservations)."""
        now = self.clock.time()
        rows: list[dict[str, object]] = []
        windows: list[Window] = []
        for scope in scopes:
            budget = scope.limits.budget
            if budget is None:
                continue
            span = period_span(budget.period, now)
            base = f"{scope.kind}:{scope.subject}"
            windows += [
                Window(f"spent:{span.id}:{base}", budget.cap_nano, 0, 0),
                Window(f"spend:{span.id}:{base}", budget.cap_nano, 0, 0),
            ]
            rows.append(
                {
                    "scope": scope.kind,
                    "subject": scope.subject,
                    "budget_usd": str(budget.usd),
                    "period": budget.period,
                    "period_id": span.id,
                    "resets_at": span.end,
                }
            )
        if not windows:
            return rows
        backend = self.counters if self.healthy or self.local is None else self.local
        readings = await backend.read(windows, now)
        for i, row in enumerate(rows):
            spent, committed = readings[2 * i].count, readings[2 * i + 1].count
            cap = Decimal(str(row["budget_usd"]))
            row["spent_usd"] = str(from_nano(spent))
            row["committed_usd"] = str(from_nano(committed))
            row["used_share"] = float(from_nano(spent) / cap) if cap else 0.0
        return rows


def _log_failure(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("the limit counters' recovery probe failed", exc_info=task.exception())
