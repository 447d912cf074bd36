"""The login throttle (server/ui/throttle.py): failures counted per address in a window, a lock
that ends with the window, a success that forgets, and a bound on the addresses tracked."""

from __future__ import annotations

import pytest

from breakwater.server.ui.throttle import FAILURES, WINDOW_S, LoginThrottle


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_the_fifth_failure_in_the_window_locks_the_address_until_the_window_passes() -> None:
    """Four failures leave the address free; the fifth locks it for the window, then it may try again."""
    clock = Clock(1_800_000_000.0)
    throttle = LoginThrottle(clock)
    for _ in range(FAILURES - 1):
        assert throttle.failed("10.0.0.1") is None
        clock.now += 10
    assert throttle.retry_after("10.0.0.1") is None
    assert throttle.failed("10.0.0.1") == WINDOW_S
    assert throttle.retry_after("10.0.0.1") == WINDOW_S
    clock.now += WINDOW_S - 0.5
    assert throttle.retry_after("10.0.0.1") == 1
    clock.now += 0.5
    assert throttle.retry_after("10.0.0.1") is None
    assert throttle.failed("10.0.0.1") is None  # counting starts afresh after a lock


def test_failures_older_than_the_window_do_not_count() -> None:
    """Failures spread wider than the window never add up to a lock."""
    clock = Clock(1_800_000_000.0)
    throttle = LoginThrottle(clock)
    for _ in range(3 * FAILURES):
        assert throttle.failed("10.0.0.1") is None
        clock.now += WINDOW_S / (FAILURES - 1) + 1
    assert throttle.retry_after("10.0.0.1") is None


def test_a_success_forgets_the_failures() -> None:
    """After a success the address has its whole allowance of failures again."""
    clock = Clock(1_800_000_000.0)
    throttle = LoginThrottle(clock)
    for _ in range(FAILURES - 1):
        throttle.failed("10.0.0.1")
    throttle.succeeded("10.0.0.1")
    for _ in range(FAILURES - 1):
        assert throttle.failed("10.0.0.1") is None
    assert throttle.retry_after("10.0.0.1") is None


def test_addresses_are_counted_apart() -> None:
    """One address's lock leaves another's logins alone."""
    throttle = LoginThrottle(Clock(1_800_000_000.0))
    for _ in range(FAILURES):
        throttle.failed("10.0.0.1")
    assert throttle.retry_after("10.0.0.1") is not None
    assert throttle.retry_after("10.0.0.2") is None


def test_the_addresses_tracked_are_bounded_and_the_oldest_dropped() -> None:
    """A flood from many addresses keeps at most ``max_clients`` of them; the last touched stay."""
    clock = Clock(1_800_000_000.0)
    throttle = LoginThrottle(clock, failures=2, max_clients=100)
    throttle.failed("locked")
    throttle.failed("locked")
    for i in range(1000):
        throttle.failed(f"10.0.{i // 256}.{i % 256}")
        assert len(throttle) <= 100
    assert len(throttle) == 100
    assert throttle.retry_after("locked") is None  # dropped with the oldest
    throttle.failed("10.0.3.231")  # the last address of the flood is still counted: its second failure locks
    assert throttle.retry_after("10.0.3.231") is not None


def test_a_nonsensical_setting_is_refused() -> None:
    """A throttle that could never lock, or never track, is a ValueError."""
    for kwargs in ({"failures": 0}, {"window_s": 0.0}, {"max_clients": 0}):
        with pytest.raises(ValueError):
            LoginThrottle(Clock(0.0), **kwargs)  # type: ignore[arg-type]
