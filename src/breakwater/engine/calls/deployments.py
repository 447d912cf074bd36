"""Per-deployment state that outlives a request: breakers, statistics, concurrency limiters, retry budgets.

One ``Deployments`` belongs to a gateway. A reloaded configuration builds a new gateway; it
takes over (``carry_over``) the state of every deployment whose settings did not change, so a
reload neither closes an open breaker nor forgets a deployment's latency or the requests queued
for it. A deployment that changed starts afresh.
"""

from __future__ import annotations

from collections.abc import Callable

from breakwater.engine.calls.admission import ConcurrencyLimiter, Slot
from breakwater.engine.calls.breaker import CircuitBreaker
from breakwater.engine.calls.retry import RetryBudget
from breakwater.engine.calls.stats import DeploymentStats
from breakwater.engine.ports import Clock
from breakwater.engine.routing import Deployment, Route

OnTransition = Callable[[str, str, str], None]


class Hold:
    """What one attempt holds on its deployment: an in-flight count and maybe a concurrency slot."""

    __slots__ = ("_slot", "_stats")

    def __init__(self, stats: DeploymentStats, slot: Slot | None) -> None:
        self._stats: DeploymentStats | None = stats
        self._slot = slot
        stats.in_flight += 1

    def release(self) -> None:
        """Give it back; safe to call more than once."""
        if self._stats is not None:
            self._stats.in_flight -= 1
            self._stats = None
            if self._slot is not None:
                self._slot.release()


class Deployments:
    """The state of each deployment that has been used, made on first use, by deployment name."""

    def __init__(self, clock: Clock, on_transition: OnTransition | None = None) -> None:
        self.clock = clock
        self.breakers: dict[str, CircuitBreaker] = {}
        self.stats: dict[str, DeploymentStats] = {}
        self.limiters: dict[str, ConcurrencyLimiter] = {}
        self.budgets: dict[str, RetryBudget] = {}
        self._on_transition = on_transition

    def breaker(self, deployment: Deployment) -> CircuitBreaker:
        breaker = self.breakers.get(deployment.name)
        if breaker is None:
            breaker = CircuitBreaker(deployment.name, deployment.breaker, self.clock, self._on_transition)
            self.breakers[deployment.name] = breaker
        return breaker

    def stats_of(self, deployment: Deployment) -> DeploymentStats:
        stats = self.stats.get(deployment.name)
        if stats is None:
            stats = self.stats[deployment.name] = DeploymentStats()
        return stats

    def limiter(self, deployment: Deployment) -> ConcurrencyLimiter | None:
        if deployment.max_concurrency is None:
            return None
        limiter = self.limiters.get(deployment.name)
        if limiter is None:
            limiter = ConcurrencyLimiter(deployment.name, deployment.max_concurrency, deployment.max_queue, self.clock)
            self.limiters[deployment.name] = limiter
        return limiter

    def budget(self, deployment: Deployment, route: Route) -> RetryBudget:
        budget = self.budgets.get(deployment.name)
        if budget is None:
            budget = RetryBudget(route.retry, self.clock)
            self.budgets[deployment.name] = budget
        return budget

    def carry_over(self, old: Deployments, unchanged: set[str]) -> None:
        """Take ``old``'s state for the deployments named in ``unchanged`` (a reload).

        Retry budgets start afresh: they follow the route's retry policy, which may have changed.
        A carried limiter is shared with the requests still running on the old configuration,
        so the deployment's concurrency cap holds across the reload.
        """
        for mine, theirs in (
            (self.breakers, old.breakers),
            (self.stats, old.stats),
            (self.limiters, old.limiters),
        ):
            for name, value in theirs.items():
                if name in unchanged:
                    mine[name] = value  # type: ignore[assignment]

    def snapshot(self) -> list[dict[str, object]]:
        """Every deployment that has been used: breaker, load and latency (the admin view)."""
        names = sorted(set(self.breakers) | set(self.stats))
        out: list[dict[str, object]] = []
        for name in names:
            breaker = self.breakers.get(name)
            limiter = self.limiters.get(name)
            row: dict[str, object] = {"name": name}
            row["breaker"] = breaker.snapshot() if breaker is not None else {"state": "closed"}
            row.update(self.stats.get(name, DeploymentStats()).snapshot())
            if limiter is not None:
                row["queue"] = limiter.snapshot()
            out.append(row)
        return out
