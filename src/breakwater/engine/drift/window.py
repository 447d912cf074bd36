"""A route's rolling eval score: the mean over the last window against the window before it, and
the ``quality_drop`` crossing (docs/evals.md, "Drift watch").

Scores are kept in time buckets, not one by one: a window is ``BUCKETS`` buckets of
``window_s / BUCKETS`` seconds each (a minute at the default hour), and the baseline the buckets
just before it. A route then holds at most ``BUCKETS * (1 + baseline_s / window_s)`` pairs of
(sum, count) however busy it is (1,500 at the defaults), and the windows move a bucket at a time.

The watch fires once per crossing: when the current mean falls below ``baseline * (1 - margin)``
with ``min_samples`` in both windows, and again only after it has cleared, which takes the same
evidence: ``min_samples`` in both windows and the score back above the line. Too few samples to
judge (a quiet night) leaves the state as it was, so the same drop does not page twice.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

#: buckets in one window
BUCKETS = 60


@dataclass(frozen=True, slots=True)
class Reading:
    """The two windows' mean scores (``None``: no sample) and sample counts."""

    current: float | None
    current_samples: int
    baseline: float | None
    baseline_samples: int


@dataclass(frozen=True, slots=True)
class QualityDrop:
    """A route's score crossed below its baseline by more than the margin."""

    route: str
    current: float
    baseline: float
    margin: float
    current_samples: int
    baseline_samples: int
    window_s: float
    baseline_s: float
    at: float

    @property
    def line(self) -> float:
        """The score under which the watch alerts."""
        return self.baseline * (1 - self.margin)


class RollingScore:
    """Scores in time buckets over the window and its baseline.

    Args:
        window_s: the current window, in seconds.
        baseline_s: the window just before it.
    """

    __slots__ = ("_baseline_n", "_buckets", "_width")

    def __init__(self, window_s: float, baseline_s: float) -> None:
        self._width = window_s / BUCKETS
        self._baseline_n = math.ceil(baseline_s / self._width - 1e-9)
        #: bucket index -> [sum of scores, count]
        self._buckets: dict[int, list[float]] = {}

    def add(self, ts: float, score: float) -> None:
        bucket = self._buckets.setdefault(math.floor(ts / self._width), [0.0, 0.0])
        bucket[0] += score
        bucket[1] += 1

    def read(self, now: float) -> Reading:
        """The means of the current window (ending now) and of the baseline before it."""
        top = math.floor(now / self._width)
        current_from, baseline_from = top - BUCKETS + 1, top - BUCKETS - self._baseline_n + 1
        sums = [0.0, 0.0, 0.0, 0.0]  # current sum, count, baseline sum, count
        stale = []
        for index, (total, count) in self._buckets.items():
            if index >= current_from:
                sums[0] += total
                sums[1] += count
            elif index >= baseline_from:
                sums[2] += total
                sums[3] += count
            else:
                stale.append(index)
        for index in stale:
            del self._buckets[index]
        return Reading(
            sums[0] / sums[1] if sums[1] else None, int(sums[1]), sums[2] / sums[3] if sums[3] else None, int(sums[3])
        )


class DriftWatch:
    """One route's rolling score and whether its ``quality_drop`` alert is active.

    Args:
        route: the route watched.
        window_s, baseline_s: the two windows.
        margin: the relative drop that alerts.
        min_samples: samples needed in each window before the watch judges.
    """

    def __init__(self, route: str, window_s: float, baseline_s: float, margin: float, min_samples: int) -> None:
        self.route = route
        self.window_s, self.baseline_s = window_s, baseline_s
        self.margin = margin
        self.min_samples = min_samples
        self.scores = RollingScore(window_s, baseline_s)
        #: the alert fired and has not cleared yet
        self.alerting = False

    def same_windows(self, other: DriftWatch) -> bool:
        """Would ``other``'s scores mean the same here (a reload keeps them then)?"""
        return (self.window_s, self.baseline_s) == (other.window_s, other.baseline_s)

    def add(self, ts: float, score: float, now: float) -> QualityDrop | None:
        """Take a sample's score; the alert when this sample makes the score cross the line."""
        self.scores.add(ts, score)
        return self.check(now)

    def check(self, now: float) -> QualityDrop | None:
        """The alert when the condition starts to hold now; ``None`` otherwise."""
        r = self.scores.read(now)
        if r.current is None or r.baseline is None or min(r.current_samples, r.baseline_samples) < self.min_samples:
            return None  # too little to judge: the state stays as it was
        below = r.current < r.baseline * (1 - self.margin)
        fired = below and not self.alerting
        self.alerting = below
        if not fired:
            return None
        return QualityDrop(
            self.route,
            r.current,
            r.baseline,
            self.margin,
            r.current_samples,
            r.baseline_samples,
            self.window_s,
            self.baseline_s,
            now,
        )
