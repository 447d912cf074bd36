"""A route's attempts: one call tried across its deployments under the per-deployment policies.

For each attempt, in this order (one method each below):

1. **order**: deployments in the order the route's strategy gives (``engine/routing.py``), the
   ones outside the request's allowed regions left out (``core/regions.py``: the request's and
   the route's restriction; the one place data residency is enforced, since every upstream call
   of every kind comes through here), then the ones whose context window the prompt does not
   fit (``core/tokens.py``);
2. **breaker**: a deployment whose circuit breaker is open or cooling down after a 429 is
   skipped (``engine/calls/breaker.py``);
3. **retry**: coming back to a deployment already tried is a retry, which needs the deployment's
   retry budget and waits a backoff with full jitter, at least the upstream's Retry-After, never
   past the deadline (``engine/calls/retry.py``);
4. **admission**: a deployment with ``max_concurrency`` admits through its fair queue
   (``engine/calls/admission.py``); with the route's ``overflow`` a saturated deployment is
   passed over for the next one instead;
5. **call**: the attempt itself; its outcome feeds the breaker and the statistics. Only
   retryable failures go on (429, 5xx, 529, timeouts, connection, garbage); a 400-class failure
   is returned at once, since any deployment would refuse it the same way.

When everything failed, one error lists each attempt and why; when deployments were left out for
their region, it is ``RegionUnavailable`` (503, ``region_unavailable``) unless the allowed ones
said to back off (429-class).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TypeVar

from breakwater.core.errors import (
    ContextLengthExceeded,
    Overloaded,
    RateLimited,
    RegionUnavailable,
    Unavailable,
    UpstreamError,
    UpstreamTimeout,
)
from breakwater.core.regions import Regions, allows, describe, narrow
from breakwater.core.tokens import byte_estimate, requested_tokens, token_bound
from breakwater.core.types import ChatRequest
from breakwater.engine.calls.admission import ConcurrencyLimiter, Slot
from breakwater.engine.calls.breaker import CircuitBreaker
from breakwater.engine.calls.deployments import Deployments, Hold
from breakwater.engine.calls.retry import backoff_delay, should_retry
from breakwater.engine.calls.stats import DeploymentStats
from breakwater.engine.context import RequestContext
from breakwater.engine.ports import Clock, RandomSource, TokenCounters, text_counter
from breakwater.engine.routing import Deployment, Route, Router

T = TypeVar("T")
#: one attempt of a call on one deployment of a route, within ``budget_s`` seconds
Attempt = Callable[[Route, Deployment, float, Hold], Awaitable[T]]


@dataclass(slots=True)
class _Run:
    """Where one request's attempts on one route stand."""

    order: list[Deployment]
    deadline: float
    failures: list[str]
    tried: set[str] = field(default_factory=set)
    last: UpstreamError | None = None
    attempts: int = 0
    retries: int = 0
    index: int = 0
    #: the regions allowed when some deployment was left out for its region, else ``None``
    fenced: Regions = None


class Attempts:
    """Runs attempts across a route's deployments (see the module docstring for the steps)."""

    def __init__(
        self, router: Router, deployments: Deployments, clock: Clock, rng: RandomSource, tokens: TokenCounters | None
    ) -> None:
        self.router = router
        self.deployments = deployments
        self.clock = clock
        self.rng = rng
        self.tokens = tokens

    async def run(
        self,
        route: Route,
        ctx: RequestContext,
        attempt: Attempt[T],
        deadline: float,
        *,
        stream: bool,
        request: ChatRequest | None = None,
        avoid: str | None = None,
    ) -> T:
        failures: list[str] = []
        allowed = narrow(ctx.regions, route.allowed_regions)
        run = _Run(self._order(route, request, stream, avoid, failures, allowed), deadline, failures)
        if allowed is not None and any(not allows(allowed, d.region) for d in route.deployments):
            run.fenced = allowed
        policy, clock, deployments = route.retry, self.clock, self.deployments
        while run.attempts < policy.max_attempts and (run.attempts == 0 or clock.monotonic() < deadline):
            if run.index >= len(run.order):
                run.index = 0
                if not run.tried:
                    break  # every deployment skipped: nothing to come back to
            deployment = run.order[run.index]
            run.index += 1
            stats, breaker = deployments.stats_of(deployment), deployments.breaker(deployment)
            if not breaker.allow():
                self._skipped(run, deployment, stats, breaker)
                if len(run.failures) > 4 * len(run.order):
                    break
                continue
            if deployment.name in run.tried and not await self._back_off(run, route, deployment, stats, breaker, ctx):
                break
            slot = None
            limiter = deployments.limiter(deployment)
            if limiter is not None:
                admitted, slot = await self._admit(run, route, deployment, limiter, stats, breaker, ctx, request)
                if not admitted:
                    continue
            done, result = await self._call(run, route, deployment, stats, breaker, ctx, attempt, slot, stream)
            if done:
                return result  # type: ignore[return-value]
        raise _exhausted(route, run.failures, run.last, run.fenced)

    def _order(
        self,
        route: Route,
        request: ChatRequest | None,
        stream: bool,
        avoid: str | None,
        failures: list[str],
        allowed: Regions,
    ) -> list[Deployment]:
        """Step 1: the deployments to try, in order; those outside ``allowed`` or that the prompt
        does not fit noted in ``failures``."""
        order = self.router.order(route, self.deployments.stats, stream=stream)
        if allowed is not None:
            order = _in_regions(order, allowed, failures)
            if not order:
                raise RegionUnavailable(
                    f"model '{route.name}': no deployment in the allowed regions ({describe(allowed)}) "
                    f"can serve the request ({'; '.join(failures)})"
                )
        if avoid is not None:
            order.sort(key=lambda d: d.name == avoid)
        if request is not None and route.has_windows and not _fits_surely(order, request):
            target = order[0].target if order else None
            count = byte_estimate if target is None else text_counter(self.tokens, target.provider, target.model)
            order = _fitting(order, requested_tokens(request, count), failures)
            if not order:
                raise ContextLengthExceeded(
                    f"model '{route.name}': the prompt does not fit any deployment ({'; '.join(failures)})",
                    param="messages",
                )
        return order

    def _skipped(self, run: _Run, deployment: Deployment, stats: DeploymentStats, breaker: CircuitBreaker) -> None:
        """Step 2: a deployment whose breaker is open or cooling down is skipped."""
        stats.skipped += 1
        run.failures.append(f"{deployment.name}: skipped ({breaker.snapshot()['state']}, cooling down)")

    async def _back_off(
        self,
        run: _Run,
        route: Route,
        deployment: Deployment,
        stats: DeploymentStats,
        breaker: CircuitBreaker,
        ctx: RequestContext,
    ) -> bool:
        """Step 3: a retry waits its backoff, if the budget and the deadline allow one (else False)."""
        clock = self.clock
        run.retries += 1
        remaining = run.deadline - clock.monotonic()
        last = run.last
        delay = backoff_delay(run.retries, route.retry, self.rng, last.retry_after if last else None, remaining)
        if delay is None or not self.deployments.budget(deployment, route).try_spend():
            breaker.release_probe()
            return False
        stats.retries += 1
        ctx.outcome.waited_s += delay
        try:
            await clock.sleep(delay)
        except BaseException:  # cancelled (client gone): a half-open probe slot must not leak
            breaker.release_probe()
            raise
        return True

    async def _admit(
        self,
        run: _Run,
        route: Route,
        deployment: Deployment,
        limiter: ConcurrencyLimiter,
        stats: DeploymentStats,
        breaker: CircuitBreaker,
        ctx: RequestContext,
        request: ChatRequest | None,
    ) -> tuple[bool, Slot | None]:
        """Step 4: a concurrency slot, waited for in the fair queue or (overflow) passed over."""
        if route.overflow and run.index < len(run.order):
            slot = limiter.try_acquire()
            if slot is None:
                stats.skipped += 1
                stats.overflowed += 1
                breaker.release_probe()
                run.failures.append(f"{deployment.name}: skipped (at its max_concurrency, overflowing)")
                return False, None
            return True, slot
        clock = self.clock
        queued_at = clock.monotonic()
        try:
            slot = await limiter.acquire(_tenant(ctx, request), run.deadline)
        except BaseException:
            breaker.release_probe()
            raise
        ctx.outcome.waited_s += clock.monotonic() - queued_at
        return True, slot

    async def _call(
        self,
        run: _Run,
        route: Route,
        deployment: Deployment,
        stats: DeploymentStats,
        breaker: CircuitBreaker,
        ctx: RequestContext,
        attempt: Attempt[T],
        slot: Slot | None,
        stream: bool,
    ) -> tuple[bool, T | None]:
        """Step 5: the attempt; (True, result) when it succeeded, (False, None) to go on."""
        if deployment.name not in run.tried:
            self.deployments.budget(deployment, route).record_request()
        run.tried.add(deployment.name)
        run.attempts += 1
        ctx.outcome.attempts += 1
        stats.attempts += 1
        fallback = deployment is not run.order[0]
        if fallback:
            stats.fallbacks += 1
        _chosen(ctx, deployment, fallback=fallback)
        hold = Hold(stats, slot)
        clock = self.clock
        started = clock.monotonic()
        try:
            # a queue wait can end at the deadline itself: the attempt then times out at once
            result = await attempt(route, deployment, max(run.deadline - started, 0.0), hold)
        except UpstreamError as exc:
            hold.release()
            ended = clock.monotonic()
            ctx.outcome.waited_s += ended - started
            _log_attempt(ctx, deployment, started, ended, type(exc).__name__)
            run.last = exc
            run.failures.append(f"{deployment.name}: {exc.message}")
            if isinstance(exc, RateLimited):
                if deployment.breaker.cool_down_on_429:
                    breaker.cool_down(exc.retry_after if exc.retry_after is not None else 1.0)
                breaker.release_probe()
            elif exc.retryable:
                stats.failures += 1
                breaker.record_failure()
            else:
                breaker.release_probe()
            if not should_retry(exc):
                raise
            return False, None
        except BaseException as exc:
            hold.release()
            breaker.release_probe()
            _log_attempt(ctx, deployment, started, clock.monotonic(), type(exc).__name__)
            raise
        ended = clock.monotonic()
        _log_attempt(ctx, deployment, started, ended, None)
        elapsed = ended - started
        ctx.outcome.waited_s += elapsed
        stats.observe(elapsed, stream=stream)
        breaker.record_success()
        if not stream:
            hold.release()  # a stream gives it back when it ends (WatchedStream)
        return True, result


def _chosen(ctx: RequestContext, deployment: Deployment, *, fallback: bool) -> None:
    outcome = ctx.outcome
    outcome.deployment = deployment.name
    outcome.provider = deployment.target.provider
    outcome.upstream_model = deployment.target.model
    outcome.region = deployment.region
    outcome.fallback = outcome.fallback or fallback


def _log_attempt(ctx: RequestContext, deployment: Deployment, started: float, ended: float, error: str | None) -> None:
    target = deployment.target
    ctx.outcome.attempt_log.append((deployment.name, target.provider, target.model, started, ended, error))


def _exhausted(route: Route, failures: list[str], last: UpstreamError | None, fenced: Regions) -> UpstreamError:
    """One error for a request nothing could serve: 429/503-class if that is what the upstreams
    said (so clients back off), else 503 (``region_unavailable`` when deployments were left out
    for their region); the message lists every attempt, never an upstream body."""
    summary = f"model '{route.name}': no deployment could serve the request ({'; '.join(failures) or 'none tried'})"
    if fenced is not None and not isinstance(last, RateLimited):
        summary = (
            f"model '{route.name}': no deployment in the allowed regions ({describe(fenced)}) could serve "
            f"the request ({'; '.join(failures)})"
        )
        return RegionUnavailable(summary, upstream_status=last.upstream_status if last else None)
    if isinstance(last, (RateLimited, Overloaded, UpstreamTimeout)):
        return type(last)(
            summary, provider=last.provider, upstream_status=last.upstream_status, retry_after=last.retry_after
        )
    return Unavailable(summary, upstream_status=last.upstream_status if last else None)


def _tenant(ctx: RequestContext, request: ChatRequest | None) -> str:
    return ctx.caller.user or (request.user if request is not None else None) or ""


def _in_regions(order: list[Deployment], allowed: frozenset[str], failures: list[str]) -> list[Deployment]:
    """The deployments in the ``allowed`` regions; the others are noted in ``failures``."""
    kept: list[Deployment] = []
    for d in order:
        if allows(allowed, d.region):
            kept.append(d)
        else:
            failures.append(f"{d.name}: skipped (region {d.region or 'unset'} not allowed)")
    return kept


def _fits_surely(order: list[Deployment], request: ChatRequest) -> bool:
    """Every deployment's window holds the request's upper bound (bytes): counting its tokens,
    which costs a tokenizer pass (and its encoding's memory), could not change the order."""
    most = requested_tokens(request, token_bound)
    return all(d.context_window is None or most <= d.context_window for d in order)


def _fitting(order: list[Deployment], tokens: int, failures: list[str]) -> list[Deployment]:
    """The deployments whose context window fits ``tokens``; the others are noted in ``failures``."""
    fit: list[Deployment] = []
    for d in order:
        if d.context_window is not None and tokens > d.context_window:
            failures.append(f"{d.name}: skipped (~{tokens} tokens requested, context window {d.context_window})")
        else:
            fit.append(d)
    return fit
