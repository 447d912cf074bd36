"""How good a router is: quality and cost against sending everything to the strong model.

``quality_ratio`` = the router's accuracy / the strong model's accuracy; ``cost_ratio`` = the
router's cost / the cost of sending every prompt to the strong model. A threshold sends a prompt
to the strong model when its score is below it. The random baseline sends a random share ``f`` of
the prompts to the strong model; its expected quality and cost are linear in ``f``, so the share
that reaches a quality, and that share's cost ratio, are computed exactly (no sampling).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from breakwater.engine.router.dataset import Bools, Floats

__all__ = ["Curve", "CurvePoint", "Outcomes", "choose_threshold", "curve", "operating_point"]

TENTHS = tuple(i / 10 for i in range(11))


@dataclass(frozen=True, slots=True)
class Outcomes:
    """Per row: which model was right and what each call cost."""

    strong_correct: Bools
    weak_correct: Bools
    strong_cost: Floats
    weak_cost: Floats

    @property
    def strong_quality(self) -> float:
        return float(self.strong_correct.mean())

    @property
    def weak_quality(self) -> float:
        return float(self.weak_correct.mean())

    def random_cost_ratio(self, quality_ratio: float) -> float:
        """Cost ratio of random routing with the expected quality ratio ``quality_ratio``."""
        strong, weak = self.strong_correct.sum(), self.weak_correct.sum()
        if strong <= weak:
            share = 0.0 if quality_ratio * strong <= weak else 1.0
        else:
            share = float(np.clip((quality_ratio * strong - weak) / (strong - weak), 0.0, 1.0))
        all_strong, all_weak = float(self.strong_cost.sum()), float(self.weak_cost.sum())
        return (all_weak + share * (all_strong - all_weak)) / all_strong if all_strong > 0 else 0.0


@dataclass(frozen=True, slots=True)
class CurvePoint:
    threshold: float
    strong_share: float
    quality_ratio: float
    cost_ratio: float

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class Curve:
    """Every distinct operating point of a score on a set of rows, cheapest first."""

    thresholds: Floats  # to the strong model when score < threshold
    strong_share: Floats
    quality_ratio: Floats
    cost_ratio: Floats

    def point(self, i: int) -> CurvePoint:
        return CurvePoint(
            float(self.thresholds[i]),
            float(self.strong_share[i]),
            float(self.quality_ratio[i]),
            float(self.cost_ratio[i]),
        )

    def summary(self, shares: tuple[float, ...] = TENTHS) -> list[CurvePoint]:
        """The points nearest to these strong shares (a table or plot's worth)."""
        picked = sorted({int(np.argmin(np.abs(self.strong_share - s))) for s in shares})
        return [self.point(i) for i in picked]


def curve(scores: Floats, outcomes: Outcomes) -> Curve:
    """The router's curve: one point per distinct score, from all-weak to all-strong.

    Thresholds sit halfway between neighbouring scores (and just outside the ends), so a
    threshold read off the curve splits the rows the way the point says.
    """
    order = np.argsort(scores, kind="stable")
    sorted_scores = scores[order]
    distinct = np.flatnonzero(np.diff(sorted_scores)) + 1  # where a new score starts
    cut = np.concatenate([[0], distinct, [len(scores)]])  # rows sent strong at each point
    gained = np.concatenate([[0], np.cumsum(outcomes.strong_correct[order].astype(np.float64))])
    lost = np.concatenate([[0], np.cumsum(outcomes.weak_correct[order].astype(np.float64))])
    strong_spent = np.concatenate([[0.0], np.cumsum(outcomes.strong_cost[order])])
    weak_saved = np.concatenate([[0.0], np.cumsum(outcomes.weak_cost[order])])
    correct = outcomes.weak_correct.sum() + gained[cut] - lost[cut]
    spent = outcomes.weak_cost.sum() + strong_spent[cut] - weak_saved[cut]
    below = np.concatenate([[sorted_scores[0]], sorted_scores])[cut]  # the highest score sent strong
    above = np.concatenate([sorted_scores, [np.nextafter(sorted_scores[-1], np.inf)]])[cut]  # the lowest sent cheap
    thresholds = np.where((cut > 0) & (cut < len(scores)), (below + above) / 2, above)
    strong_total, cost_total = float(outcomes.strong_correct.sum()), float(outcomes.strong_cost.sum())
    return Curve(
        thresholds=np.clip(thresholds, 0.0, 1.0),
        strong_share=cut / len(scores),
        quality_ratio=correct / strong_total if strong_total else np.ones(len(cut)),
        cost_ratio=spent / cost_total if cost_total else np.zeros(len(cut)),
    )


def operating_point(scores: Floats, outcomes: Outcomes, threshold: float) -> dict[str, Any]:
    """The figures at one threshold: strong when ``score < threshold``."""
    strong = scores < threshold
    correct = np.where(strong, outcomes.strong_correct, outcomes.weak_correct)
    spent = np.where(strong, outcomes.strong_cost, outcomes.weak_cost).sum()
    strong_quality = outcomes.strong_quality
    quality_ratio = float(correct.mean() / strong_quality) if strong_quality else 1.0
    cost_total = float(outcomes.strong_cost.sum())
    return {
        "threshold": threshold,
        "quality_ratio": quality_ratio,
        "cost_ratio": float(spent / cost_total) if cost_total else 0.0,
        "random_cost_ratio": outcomes.random_cost_ratio(quality_ratio),
        "strong_share": float(strong.mean()),
        "strong_quality": strong_quality,
        "weak_quality": outcomes.weak_quality,
        "router_quality": float(correct.mean()),
        "rows": len(scores),
    }


def threshold_for_share(scores: Floats, share: float) -> float:
    """The threshold that sends ``share`` of these prompts to the cheap branch (score at or above
    it): the score of the prompt ranked ``share`` from the top; above every score for 0."""
    ordered = np.sort(np.asarray(scores, dtype=np.float64))[::-1]
    if len(ordered) == 0:
        return 1.0
    cheap = round(share * len(ordered))
    if cheap <= 0:
        return float(np.nextafter(ordered[0], np.inf))
    return float(ordered[min(cheap, len(ordered)) - 1])


def choose_threshold(scores: Floats, outcomes: Outcomes, target: float) -> float:
    """The cheapest threshold whose quality ratio on these rows is at least ``target``.

    Used on out-of-fold training scores, never on test rows. If no point reaches ``target``,
    the threshold that sends everything to the strong model.
    """
    points = curve(scores, outcomes)
    reaching = np.flatnonzero(points.quality_ratio >= target)
    if len(reaching) == 0:
        return float(points.thresholds[-1])
    best = reaching[np.argmin(points.cost_ratio[reaching])]
    return float(points.thresholds[best])
