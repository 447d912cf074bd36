"""The canary guards' sequential test: looked at after every batch, it rarely trips on a canary
as good as its control (at most about ``alpha`` of runs), and soon trips on a bad one."""

from __future__ import annotations

import random

from breakwater.engine.rollout.sequential import likelihood_ratio, mean_ratio, rate_increase

ALPHA = 0.05


def _run_rates(rng: random.Random, p_canary: float, p_control: float, looks: int, batch: int) -> int | None:
    """The look at which the guard first trips (``None``: never), checking after every batch."""
    ec = nc = e0 = n0 = 0
    for look in range(1, looks + 1):
        nc += batch
        n0 += batch * 20  # a 5% canary: 20 control requests for each canary one
        ec += sum(rng.random() < p_canary for _ in range(batch))
        e0 += sum(rng.random() < p_control for _ in range(batch * 20))
        if rate_increase("error_rate", (ec, nc), (e0, n0), 0.01, ALPHA).breached:
            return look
    return None


def test_a_canary_as_good_as_its_control_rarely_trips_however_often_it_is_checked() -> None:
    rng = random.Random(7)
    trips = sum(_run_rates(rng, 0.02, 0.02, looks=60, batch=10) is not None for _ in range(200))
    assert trips <= 0.05 * 200  # about alpha or less, after 60 looks each


def test_a_canary_just_within_the_allowed_increase_rarely_trips() -> None:
    rng = random.Random(11)
    trips = sum(_run_rates(rng, 0.03, 0.02, looks=60, batch=10) is not None for _ in range(200))
    assert trips <= 0.05 * 200


def test_a_bad_canary_trips_soon() -> None:
    rng = random.Random(3)
    firsts = [_run_rates(rng, 0.25, 0.02, looks=60, batch=10) for _ in range(50)]
    assert all(f is not None for f in firsts)
    assert max(f for f in firsts if f is not None) <= 10  # within 100 canary requests


def test_a_tiny_sample_does_not_trip_even_when_it_looks_bad() -> None:
    # 1 error in 3 canary requests against 1% of 1,000: not enough to call it
    assert not rate_increase("error_rate", (1, 3), (10, 1000), 0.01, ALPHA).breached
    assert rate_increase("error_rate", (30, 90), (10, 1000), 0.01, ALPHA).breached


def test_a_better_canary_never_trips() -> None:
    verdict = rate_increase("error_rate", (0, 5000), (500, 5000), 0.0, ALPHA)
    assert not verdict.breached and verdict.canary == 0.0 and verdict.control == 0.1


def test_latency_is_compared_as_a_ratio_of_geometric_means() -> None:
    rng = random.Random(5)
    control = [rng.lognormvariate(6.0, 0.5) for _ in range(2000)]
    same = [rng.lognormvariate(6.0, 0.5) for _ in range(200)]
    slow = [rng.lognormvariate(6.0 + 0.7, 0.5) for _ in range(200)]  # about 2x slower
    assert not mean_ratio("latency", same, control, 1.5, ALPHA, log=True).breached
    verdict = mean_ratio("latency", slow, control, 1.5, ALPHA, log=True)
    assert verdict.breached and 1.8 < verdict.canary / verdict.control < 2.3
    assert "above the allowed 1.5x" in verdict.reason("1.5x")


def test_cost_is_compared_as_a_ratio_of_means() -> None:
    control = [0.010, 0.012, 0.011, 0.009] * 100
    pricier = [0.030, 0.031, 0.029, 0.030] * 25
    assert mean_ratio("cost", pricier, control, 1.3, ALPHA, log=False).breached
    assert not mean_ratio("cost", control[:100], control, 1.3, ALPHA, log=False).breached


def test_the_likelihood_ratio_grows_with_evidence() -> None:
    assert likelihood_ratio(0.0, 1.0, 1.0) < 1.0  # no difference: evidence for nothing
    small, large = likelihood_ratio(0.05, 0.01, 0.01), likelihood_ratio(0.05, 0.0001, 0.01)
    assert large > small
