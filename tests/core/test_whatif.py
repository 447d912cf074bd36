"""What-if arithmetic (core/whatif.py) and the self-hosting estimate (core/selfhost.py) on hand-made totals."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

import pytest

from breakwater.core.pricing import Price
from breakwater.core.selfhost import estimate
from breakwater.core.whatif import PromptCache, Reprice, Scenario, Scope, Target, at_base_rates, evaluate


@dataclass(frozen=True)
class Totals:
    route: str = "chat"
    deployment: str = "d"
    provider: str = "p"
    model: str = "m"
    tag: str | None = None
    requests: int = 10
    input_tokens: int = 1_000_000
    cached_input_tokens: int = 0
    cache_write_tokens: int = 0
    output_tokens: int = 0
    reasoning_tokens: int = 0
    cost_usd: Decimal = Decimal(1)
    unpriced: int = 0


CHEAP = Target("cheap", Price(Decimal("0.1"), Decimal("0.4"), tiers=((10, Price(Decimal(100), Decimal(100))),)), "test")


def _unknown(s: object) -> tuple[Price | None, str | None]:
    return None, None


def test_sums_are_priced_at_base_rates_never_a_tier() -> None:
    """A million summed input tokens exceed every tier's threshold; the base rate applies anyway."""
    assert at_base_rates(Totals(), CHEAP.price) == Decimal("0.1")


def test_the_scope_picks_slices_by_route_and_model() -> None:
    """Only the in-scope slice is repriced; the figure is scaled to 30 days from the window."""
    slices = [Totals(), Totals(route="other", model="n", cost_usd=Decimal(5))]
    outcome = evaluate(Scenario(Reprice(CHEAP), Scope(models=("m",))), slices, _unknown, 86_400)
    assert (outcome.requests, outcome.current_usd, outcome.scenario_usd) == (10, 1, Decimal("0.1"))
    assert outcome.monthly(outcome.difference_usd) == Decimal("-27.0") and outcome.scope == "model m"


def test_a_slice_without_a_price_is_left_as_recorded_and_counted() -> None:
    """No price to know the cached rate by: the prompt-cache scenario leaves the slice and counts it;
    a slice recorded without any cost is not repriced either."""
    outcome = evaluate(Scenario(PromptCache(0.5)), [Totals()], _unknown, 3600)
    assert (outcome.scenario_usd, outcome.unpriced) == (Decimal(1), 10)
    unrecorded = Totals(cost_usd=Decimal(0), unpriced=10)
    outcome = evaluate(Scenario(Reprice(CHEAP)), [unrecorded], _unknown, 3600)
    assert (outcome.scenario_usd, outcome.unpriced, outcome.sources) == (0, 10, ())


def test_selfhost_needs_at_least_one_gpu_and_sane_inputs() -> None:
    """A trickle still needs one GPU; a zero window or throughput is refused."""
    r = estimate(
        tokens=36,
        peak_tokens=1,
        bucket_s=60,
        window_s=3600,
        api_usd=Decimal(0),
        per_gpu_tps=100,
        gpu_hour_usd=Decimal(1),
    )
    assert (r.gpus, r.selfhost_monthly_usd, r.breakeven_tokens_per_month) == (1, 720, None)
    with pytest.raises(ValueError):
        estimate(
            tokens=1, peak_tokens=1, bucket_s=60, window_s=0, api_usd=Decimal(1), per_gpu_tps=1, gpu_hour_usd=Decimal(1)
        )
