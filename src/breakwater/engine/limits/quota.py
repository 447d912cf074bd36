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

When Redis is unreachable or slow, requests are counted on local memory counters instead, or
refused (``engine/limits/failover.py``); the spend they settle there is owed to Redis.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Literal

from breakwater.core.errors import TokensLimitExceeded
from breakwater.core.ids import IdGenerator
from breakwater.core.limits import Budget, from_nano, period_span, to_nano
from breakwater.engine.context import RequestContext
from breakwater.engine.limits.budget_report import read_budgets
from breakwater.engine.limits.checks import BudgetAlert, CheckMeta, Demand, Scope, Sessions, rate_headers, refusal
from breakwater.engine.limits.counters import Adjust, Check, CounterLease, CountersUnavailable, Release, Window
from breakwater.engine.limits.failover import Failover, Settlement
from breakwater.engine.limits.limit_report import MINUTE, read_limits
from breakwater.engine.ports import Clock, Counters
from breakwater.engine.tasks import stop_task

log = logging.getLogger("breakwater.limits")

#: the minute windows are forgotten this long after their last write
_WINDOW_TTL_S = 2 * MINUTE
#: a budget counter outlives its period by this much (the admin view shows the last period)
_PERIOD_GRACE_S = 7 * 86_400
#: a "total" budget never resets; its counter is kept this long after its last write
_TOTAL_TTL_S = 10 * 365 * 86_400
_SETTLE_BATCH = 512


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


class Quota:
    """Admission and settlement against every configured cap.

    Args:
        counters: the backend (``MemoryCounters`` or ``RedisCounters``).
        clock: ``time()`` places requests in slots and periods.
        local, on_failure, local_share, probe_s, wait_s: counting while ``counters`` is
            unreachable (``Failover``).
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
        self.clock = clock
        self.sessions = sessions or Sessions()
        self.alert_shares = tuple(alert_shares)
        self.on_alert = on_alert
        #: refusals by (scope kind, limit kind)
        self.refusals: Counter[tuple[str, str]] = Counter()
        self.alerts_fired = 0
        #: the tokens of concurrency leases (a random prefix: unique across replicas)
        self._tokens = IdGenerator(4, width=0)
        self._queue: deque[Settlement] = deque()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        #: where requests are counted, and what happens when ``counters`` is unreachable
        self.failover = Failover(
            counters,
            local,
            self._queue,
            self._wake,
            on_failure=on_failure,
            local_share=local_share,
            probe_s=probe_s,
            wait_s=wait_s,
        )

    @property
    def local(self) -> Counters | None:
        return self.failover.local

    @property
    def on_failure(self) -> Literal["open", "closed"]:
        return self.failover.on_failure

    @property
    def healthy(self) -> bool:
        """The backend answers (always True without a ``local`` fallback)."""
        return self.failover.healthy

    @property
    def local_admissions(self) -> int:
        """Requests admitted on local counters because the backend was unreachable."""
        return self.failover.local_admissions

    @property
    def late_admissions_undone(self) -> int:
        """Admissions the shared counters made after their request had gone ahead without them."""
        return self.failover.late_admissions_undone

    @property
    def dropped(self) -> int:
        """Settlements lost (too many waiting for the backend, or left at shutdown); each one logged."""
        return self.failover.dropped

    @property
    def pending(self) -> int:
        """Settlements queued or waiting for the backend to return."""
        return len(self._queue) + len(self.failover.parked)

    async def probe(self) -> bool:
        """Ask the backend whether it is back (``Failover.probe``). True when healthy."""
        return await self.failover.probe()

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

        On admission ``ctx.limits.ticket`` holds what to settle; either way
        ``ctx.limits.rate_headers`` holds the ``x-ratelimit-*`` headers. ``demand`` is only called
        when a token or spend cap applies.

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
                token = self._tokens.new()
                checks.append(CounterLease(f"conc:{base}", limits.max_concurrent, token, now + hold_s + MINUTE))
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
        backend, verdict = await self.failover.acquire(checks, now)
        ctx.limits.rate_headers = rate_headers(checks, metas, verdict.readings, now)
        self.failover.remember(backend, checks, metas, verdict.readings)
        if not verdict.admitted:
            assert verdict.refused is not None
            meta, reading = metas[verdict.refused], verdict.readings[verdict.refused]
            self.refusals[(meta.scope.kind if meta.scope else "session", meta.kind)] += 1
            raise refusal(checks[verdict.refused], meta, reading, now)
        ticket = Ticket(backend)
        for check, meta in zip(checks, metas, strict=True):
            if isinstance(check, CounterLease):
                ticket.leases.append(Release(check.key, check.token))
            elif meta.kind == "tpm":
                ticket.tokens.append(check)
                ticket.reserved_tokens = check.amount
            elif meta.kind in ("budget", "session_spend"):
                ticket.spends.append((check, meta))
                ticket.reserved_nano = check.amount
        ctx.limits.ticket = ticket
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

    # --- settlement ---------------------------------------------------------------------------

    def settle(self, ctx: RequestContext, tokens: int, cost: Decimal | None) -> None:
        """The request ended having used ``tokens`` and cost ``cost`` (``None``: no price):
        queue the real figures in place of its reservations and give its leases back."""
        ticket = ctx.limits.ticket
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
        for w, meta in ticket.spends:
            if actual != ticket.reserved_nano:
                adjusts.append(Adjust(w.key, w.slot, actual - ticket.reserved_nano, w.ttl_s))
            if meta.spent_key is not None and actual > 0:
                spent.append((len(adjusts), meta))
                adjusts.append(Adjust(meta.spent_key, 0, actual, w.ttl_s))
        owed = None
        if ticket.backend is not self.counters:
            spent = []  # alerts come from the shared counters, once the owed spend reaches them
            owed = self.failover.owed(ticket.spends, actual)
        if adjusts or ticket.leases:
            self._queue.append(Settlement(ticket.backend, adjusts, ticket.leases, spent))
        if owed is not None:
            self._queue.append(owed)
        self._wake.set()

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="breakwater-quota-settle")

    async def stop(self) -> None:
        """Apply what is queued (within a second when the backend is down), then stop."""
        task, self._task = self._task, None
        await stop_task(task)
        await self.failover.stop()
        try:
            async with asyncio.timeout(1.0):
                await self.flush()
        except TimeoutError:
            pass
        left = self.pending
        if left:
            self.failover.dropped += left
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
                await self._apply(backend, mine)

    async def _apply(self, backend: Counters, batch: list[Settlement]) -> None:
        now = self.clock.time()
        values = await self.failover.settle(backend, batch, now)
        if values is None:
            return  # parked until the backend is back
        offset = 0
        for s in batch:
            for index, meta in s.spent:
                value = values[offset + index]
                if value is not None:
                    await self._check_alerts(backend, meta, value, s.adjusts[index].delta, now)
            offset += len(s.adjusts)

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

    # --- budgets --------------------------------------------------------------------------------

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

    async def usage(self, scopes: Sequence[Scope]) -> list[dict[str, object]]:
        """Each scope's rate and concurrency limits against their live use (``read_limits``)."""
        backend = self.counters if self.healthy or self.local is None else self.local
        return await read_limits(backend, scopes, self.clock.time())

    async def spend(self, scopes: Sequence[Scope]) -> list[dict[str, object]]:
        """The budget of each scope that has one: cap, settled spend, committed (with reservations)."""
        backend = self.counters if self.healthy or self.local is None else self.local
        return await read_budgets(backend, scopes, self.clock.time())
