"""The circuit breaker against a fake clock: opening, cooldown, half-open probes, 429 cool-down."""

from __future__ import annotations

from typing import Any

from breakwater.core.config import BreakerPolicy
from breakwater.engine.calls.breaker import CircuitBreaker
from breakwater.infra.clock import ManualClock as FakeClock


def _breaker(clock: FakeClock, transitions: list[tuple[str, str, str]] | None = None, **policy: Any) -> CircuitBreaker:
    sink = transitions if transitions is not None else []
    return CircuitBreaker("dep", BreakerPolicy(**policy), clock, lambda name, old, new: sink.append((name, old, new)))


def _state(breaker: CircuitBreaker) -> str:
    # through a plain str so mypy does not narrow the Literal across calls that change it
    return breaker.state


def _open(clock: FakeClock, breaker: CircuitBreaker, n: int) -> None:
    for _ in range(n):
        assert breaker.allow()
        breaker.record_failure()


def test_opens_on_consecutive_failures() -> None:
    """The breaker opens when consecutive failures reach the threshold, and a success in between resets the count."""
    clock = FakeClock()
    breaker = _breaker(clock, consecutive_failures=3)
    breaker.record_failure()
    breaker.record_failure()
    breaker.record_success()
    breaker.record_failure()
    breaker.record_failure()
    assert _state(breaker) == "closed"
    breaker.record_failure()
    assert _state(breaker) == "open"
    assert not breaker.allow()


def test_opens_on_failure_rate_at_min_volume() -> None:
    """The breaker opens when the failure share in the window reaches the rate once min_volume outcomes are seen."""
    clock = FakeClock()
    breaker = _breaker(clock, consecutive_failures=100, failure_rate=0.5, min_volume=10, window_s=30)
    for _ in range(5):
        breaker.record_success()
        breaker.record_failure()
        clock.now += 1
    assert _state(breaker) == "open"


def test_failure_rate_ignored_below_min_volume() -> None:
    """Below min_volume outcomes in the window, even a 100% failure share does not open the breaker."""
    clock = FakeClock()
    breaker = _breaker(clock, consecutive_failures=100, failure_rate=0.5, min_volume=10)
    for _ in range(9):
        breaker.record_failure()
    assert _state(breaker) == "closed"
    assert breaker.allow()


def test_failure_rate_counts_only_the_window() -> None:
    """Outcomes older than window_s fall out of the rate: old failures cannot combine with new ones."""
    clock = FakeClock()
    breaker = _breaker(clock, consecutive_failures=100, failure_rate=0.5, min_volume=4, window_s=10)
    breaker.record_failure()
    breaker.record_failure()
    breaker.record_failure()
    clock.now += 10
    breaker.record_success()
    breaker.record_success()
    breaker.record_failure()
    assert _state(breaker) == "closed"
    assert breaker.snapshot()["window_requests"] == 3


def test_stays_open_during_cooldown_then_half_opens() -> None:
    """An open breaker refuses requests until cooldown_s has passed, then lets a probe through as half-open."""
    clock = FakeClock()
    breaker = _breaker(clock, consecutive_failures=1, cooldown_s=30)
    _open(clock, breaker, 1)
    clock.now += 29.9
    assert not breaker.allow()
    assert _state(breaker) == "open"
    clock.now += 0.1
    assert breaker.allow()
    assert _state(breaker) == "half_open"


def test_half_open_limits_probes_and_release_gives_a_slot_back() -> None:
    """Half-open allows at most half_open_probes in flight; release_probe frees a slot without closing."""
    clock = FakeClock()
    breaker = _breaker(clock, consecutive_failures=1, cooldown_s=5, half_open_probes=2)
    _open(clock, breaker, 1)
    clock.now += 5
    assert breaker.allow()
    assert breaker.allow()
    assert not breaker.allow()
    breaker.release_probe()
    assert _state(breaker) == "half_open"
    assert breaker.allow()
    assert not breaker.allow()


def test_half_open_success_closes_and_resets() -> None:
    """A successful probe closes the breaker and clears the failure counts."""
    clock = FakeClock()
    breaker = _breaker(clock, consecutive_failures=2, cooldown_s=5)
    _open(clock, breaker, 2)
    clock.now += 5
    assert breaker.allow()
    breaker.record_success()
    assert _state(breaker) == "closed"
    snap = breaker.snapshot()
    assert snap["consecutive_failures"] == 0
    assert snap["window_requests"] == 0
    breaker.record_failure()
    assert _state(breaker) == "closed"


def test_half_open_failure_reopens_with_new_cooldown() -> None:
    """A failed probe re-opens the breaker and the cooldown starts again from that moment."""
    clock = FakeClock()
    breaker = _breaker(clock, consecutive_failures=1, cooldown_s=10)
    _open(clock, breaker, 1)
    clock.now += 10
    assert breaker.allow()
    clock.now += 3
    breaker.record_failure()
    assert _state(breaker) == "open"
    clock.now += 9.9
    assert not breaker.allow()
    clock.now += 0.1
    assert breaker.allow()


def test_late_failure_while_open_does_not_extend_cooldown() -> None:
    """A failure reported while already open (a straggler) leaves the cooldown where it was."""
    clock = FakeClock()
    breaker = _breaker(clock, consecutive_failures=1, cooldown_s=10)
    _open(clock, breaker, 1)
    clock.now += 8
    breaker.record_failure()
    clock.now += 2
    assert breaker.allow()


def test_cool_down_skips_without_counting_a_failure() -> None:
    """cool_down makes allow() False until it expires, without changing state or the failure counts."""
    clock = FakeClock()
    transitions: list[tuple[str, str, str]] = []
    breaker = _breaker(clock, transitions, consecutive_failures=1)
    breaker.cool_down(2.0)
    assert not breaker.allow()
    assert _state(breaker) == "closed"
    assert breaker.snapshot()["consecutive_failures"] == 0
    assert breaker.snapshot()["cooling_remaining_s"] == 2.0
    breaker.cool_down(0.5)  # a shorter Retry-After does not cut the longer one short
    clock.now += 1.9
    assert not breaker.allow()
    clock.now += 0.1
    assert breaker.allow()
    assert transitions == []


def test_cool_down_applies_in_half_open() -> None:
    """An active cool-down refuses even a half-open probe and does not use up its slot."""
    clock = FakeClock()
    breaker = _breaker(clock, consecutive_failures=1, cooldown_s=5)
    _open(clock, breaker, 1)
    clock.now += 5
    assert breaker.allow()
    breaker.release_probe()
    breaker.cool_down(1.0)
    assert not breaker.allow()
    clock.now += 1
    assert breaker.allow()


def test_each_transition_reported_once() -> None:
    """on_transition is called exactly once per state change, with the name and old and new states."""
    clock = FakeClock()
    transitions: list[tuple[str, str, str]] = []
    breaker = _breaker(clock, transitions, consecutive_failures=1, cooldown_s=5, half_open_probes=2)
    _open(clock, breaker, 1)
    assert not breaker.allow()
    clock.now += 5
    assert breaker.allow()
    assert breaker.allow()
    breaker.record_failure()
    clock.now += 5
    assert breaker.allow()
    breaker.record_success()
    breaker.record_success()
    assert transitions == [
        ("dep", "closed", "open"),
        ("dep", "open", "half_open"),
        ("dep", "half_open", "open"),
        ("dep", "open", "half_open"),
        ("dep", "half_open", "closed"),
    ]


def test_snapshot_contents() -> None:
    """snapshot() reports state, counts, cooldown and cool-down remaining as plain JSON values."""
    clock = FakeClock()
    breaker = _breaker(clock, consecutive_failures=3, cooldown_s=30)
    breaker.record_success()
    breaker.record_failure()
    assert breaker.snapshot() == {
        "name": "dep",
        "state": "closed",
        "consecutive_failures": 1,
        "window_requests": 2,
        "window_failures": 1,
        "open_for_s": 0.0,
        "cooldown_remaining_s": 0.0,
        "cooling_remaining_s": 0.0,
        "probes_in_flight": 0,
    }
    breaker.record_failure()
    breaker.record_failure()
    clock.now += 10
    snap = breaker.snapshot()
    assert snap["state"] == "open"
    assert snap["open_for_s"] == 10.0
    assert snap["cooldown_remaining_s"] == 20.0
    clock.now += 20
    assert breaker.allow()
    assert breaker.snapshot()["probes_in_flight"] == 1
