"""Is a variant's difference from the control more than chance? Two tests, from sums alone.

Rates (error, refusal, ``finish_reason: length`` share) use the two-proportion z-test with the
pooled proportion; means (latency, cost per request, feedback score) use Welch's t-test
(unequal variances, Welch-Satterthwaite degrees of freedom), with the Student t distribution
from the regularised incomplete beta function. Both are two-sided. Everything is computed from
counts, sums and sums of squares, which the ledger query returns: no row comes into Python, and
no statistics package is needed at run time.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

#: a difference with a two-sided p-value below this is reported as significant
ALPHA = 0.05


@dataclass(frozen=True, slots=True)
class Moments:
    """A sample as the database sums it: size, sum, sum of squares."""

    n: int
    total: float
    squares: float

    @property
    def mean(self) -> float | None:
        return self.total / self.n if self.n else None

    @property
    def variance(self) -> float | None:
        """The sample variance (n - 1), never negative (float sums can round below 0)."""
        if self.n < 2:
            return None
        return max((self.squares - self.total * self.total / self.n) / (self.n - 1), 0.0)


def two_proportions(hits_a: int, n_a: int, hits_b: int, n_b: int) -> float | None:
    """Two-sided p-value that rates ``hits_a/n_a`` and ``hits_b/n_b`` differ (``None``: no test possible)."""
    if n_a == 0 or n_b == 0:
        return None
    pooled = (hits_a + hits_b) / (n_a + n_b)
    spread = pooled * (1 - pooled) * (1 / n_a + 1 / n_b)
    if spread <= 0:
        return 1.0  # both rates 0, or both 1: no difference at all
    z = (hits_b / n_b - hits_a / n_a) / math.sqrt(spread)
    return math.erfc(abs(z) / math.sqrt(2))


def welch(a: Moments, b: Moments) -> float | None:
    """Two-sided p-value that the means of ``a`` and ``b`` differ (``None``: fewer than 2 in one)."""
    va, vb = a.variance, b.variance
    if va is None or vb is None or a.mean is None or b.mean is None:
        return None
    sa, sb = va / a.n, vb / b.n
    if sa + sb == 0:
        return 1.0 if a.mean == b.mean else 0.0
    t = (b.mean - a.mean) / math.sqrt(sa + sb)
    df = (sa + sb) ** 2 / ((sa * sa / (a.n - 1) if sa else 0.0) + (sb * sb / (b.n - 1) if sb else 0.0))
    return student_two_sided(t, df)


def student_two_sided(t: float, df: float) -> float:
    """P(|T| >= |t|) for Student's t with ``df`` degrees of freedom."""
    return _incomplete_beta(df / 2, 0.5, df / (df + t * t))


def _incomplete_beta(a: float, b: float, x: float) -> float:
    """The regularised incomplete beta function I_x(a, b), by its continued fraction (modified Lentz)."""
    if x <= 0:
        return 0.0
    if x >= 1:
        return 1.0
    front = math.exp(math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x))
    if x > (a + 1) / (a + b + 2):
        return 1.0 - _incomplete_beta(b, a, 1.0 - x)  # the fraction converges fast on this side
    tiny = 1e-300
    c, d = 1.0, 1.0 - (a + b) * x / (a + 1)
    d = 1.0 / (d if abs(d) > tiny else tiny)
    result = d
    for m in range(1, 300):
        for numerator in (
            m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m)),
            -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1)),
        ):
            d = 1.0 + numerator * d
            d = 1.0 / (d if abs(d) > tiny else tiny)
            c = 1.0 + numerator / c
            c = c if abs(c) > tiny else tiny
            result *= c * d
        if abs(c * d - 1.0) < 1e-14:
            break
    return front * result / a
