"""Is a canary worse than its control? A sequential test that may be looked at any time.

A canary's guards are checked every few seconds while its traffic accumulates. A test made for
one look (a z-test at 5%) would, looked at a hundred times, trip on noise far more often than 5%:
a tiny canary would be rolled back for nothing. The mixture sequential probability ratio test
(mSPRT; Robbins 1970, as used for always-valid A/B testing by Johari, Pekelis and Walsh, "Always
Valid Inference", 2017/2022) keeps its error rate below ``alpha`` however often it is checked.

Each guard compares an estimate ``theta`` of "how much worse than allowed" the canary is (its
error rate minus the control's minus the allowed increase; the difference of mean log-latencies
minus the log of the allowed ratio; ...), with the variance ``v`` of that estimate. With a normal
mixing distribution of variance ``tau2`` over the true difference, the likelihood ratio is

    L = sqrt(v / (v + tau2)) * exp(tau2 * theta**2 / (2 * v * (v + tau2)))

and the guard is breached when ``theta > 0`` and ``L >= 1 / alpha``. The test is one-sided: a
canary better than its control never trips it. The normal approximation of each estimate needs
some samples, so a guard also waits for ``min_requests`` on each side.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Verdict:
    """One guard's reading."""

    #: the guard's name (``error_rate``, ``latency``, ``cost``, ``refusal_rate``)
    guard: str
    breached: bool
    #: the canary's and the control's figure (rates, or means), for the reason given
    canary: float
    control: float
    #: the likelihood ratio against the threshold ``1 / alpha``
    ratio: float

    def reason(self, limit: str) -> str:
        word = "above" if self.breached else "within"
        return (
            f"{self.guard}: canary {self.canary:.4g} vs control {self.control:.4g}, {word} the allowed {limit} "
            f"(sequential test likelihood ratio {self.ratio:.3g})"
        )


def likelihood_ratio(theta: float, v: float, tau2: float) -> float:
    """The mSPRT likelihood ratio for an estimate ``theta`` of variance ``v`` (see the module docstring)."""
    if v <= 0.0:
        return math.inf if theta > 0 else 0.0
    exponent = tau2 * theta * theta / (2.0 * v * (v + tau2))
    return math.sqrt(v / (v + tau2)) * math.exp(min(exponent, 700.0))


def rate_increase(
    name: str, canary: tuple[int, int], control: tuple[int, int], allowed: float, alpha: float
) -> Verdict:
    """Has the canary's rate of events risen more than ``allowed`` (an absolute share) above the control's?

    Args:
        canary, control: (events, requests) of each arm.
    """
    (ec, nc), (e0, n0) = canary, control
    pc, p0 = ec / nc, e0 / n0
    # a pooled floor on each variance: with no events yet the rate's variance is not 0
    floor = 1.0 / (nc + n0)
    vc = max(pc * (1 - pc), floor) / nc
    v0 = max(p0 * (1 - p0), floor) / n0
    theta = pc - p0 - allowed
    ratio = likelihood_ratio(theta, vc + v0, tau2=max(allowed, 0.05) ** 2)
    return Verdict(name, theta > 0 and ratio >= 1 / alpha, pc, p0, ratio)


def mean_ratio(
    name: str, canary: Sequence[float], control: Sequence[float], allowed: float, alpha: float, *, log: bool
) -> Verdict:
    """Is the canary's mean more than ``allowed`` times the control's?

    With ``log`` the means are of log values (latencies: their ratio is what matters, and their
    long right tail is tamed); the figures reported are then geometric means.
    """
    xs = [math.log(max(x, 1e-9)) for x in canary] if log else list(canary)
    ys = [math.log(max(y, 1e-9)) for y in control] if log else list(control)
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    if log:
        theta = mx - my - math.log(allowed)
        v = _var(xs, mx) / len(xs) + _var(ys, my) / len(ys)
        tau2 = math.log(allowed) ** 2
        shown = (math.exp(mx), math.exp(my))
    else:
        theta = mx - allowed * my
        v = _var(xs, mx) / len(xs) + allowed * allowed * _var(ys, my) / len(ys)
        tau2 = (max(abs(my), 1e-12) * (allowed - 1 if allowed > 1 else 0.1)) ** 2
        shown = (mx, my)
    ratio = likelihood_ratio(theta, v, tau2)
    return Verdict(name, theta > 0 and ratio >= 1 / alpha, shown[0], shown[1], ratio)


def _var(values: Sequence[float], mean: float) -> float:
    if len(values) < 2:
        return 0.0
    return sum((x - mean) ** 2 for x in values) / (len(values) - 1)
