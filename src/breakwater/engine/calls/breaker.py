"""A circuit breaker per deployment: closed -> open -> half-open -> closed.

The breaker only keeps state; the caller asks ``allow()`` before sending and reports the outcome
with ``record_success`` / ``record_failure`` / ``release_probe``. Time comes from the ``Clock``
port, so tests drive it with a fake clock.

A 429 with Retry-After is not a failure of the deployment, only a request to back off:
``cool_down`` skips the deployment for a while without moving it towards open.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Literal

from breakwater.core.config import BreakerPolicy
from breakwater.engine.ports import Clock

State = Literal["closed", "open", "half_open"]

CLOSED: State = "closed"
OPEN: State = "open"
HALF_OPEN: State = "half_open"


class CircuitBreaker:
    """Decides whether one deployment may be called now, from its recent outcomes."""

    def __init__(
        self,
        name: str,
        policy: BreakerPolicy,
        clock: Clock,
        on_transition: Callable[[str, str, str], None] | None = None,
    ) -> None:
        self.name = name
        self._policy = policy
        self._clock = clock
        self._on_transition = on_transition
        self._state: State = CLOSED
        self._consecutive = 0
        # (monotonic time, ok) per outcome while closed; _failures mirrors the failed ones so the
        # rate check is O(1) after pruning
        self._window: deque[tuple[float, bool]] = deque()
        self._failures = 0
        self._opened_at = 0.0
        self._probes = 0
        self._cooling_until = 0.0

    @property
    def state(self) -> State:
        """The state as last updated; an open breaker whose cooldown has passed turns half-open on ``allow()``."""
        return self._state

    def allow(self) -> bool:
        """May a request be sent now? In half-open, a True answer takes a probe slot."""
        now = self._clock.monotonic()
        if now < self._cooling_until:
            return False
        if self._state == OPEN:
            if now - self._opened_at < self._policy.cooldown_s:
                return False
            self._probes = 0
            self._transition(HALF_OPEN)
        if self._state == HALF_OPEN:
            if self._probes >= self._policy.half_open_probes:
                return False
            self._probes += 1
        return True

    def record_success(self) -> None:
        """A request to this deployment succeeded."""
        if self._state == HALF_OPEN:
            self._reset()
            self._transition(CLOSED)
        elif self._state == CLOSED:
            self._consecutive = 0
            self._record(ok=True)
        # a success arriving while open was sent before the breaker opened: too old to close it

    def record_failure(self) -> None:
        """A request failed in a way that counts against the deployment (5xx, timeout, connection...)."""
        if self._state == HALF_OPEN:
            self._open()
        elif self._state == CLOSED:
            self._consecutive += 1
            self._record(ok=False)
            if self._consecutive >= self._policy.consecutive_failures or self._rate_exceeded():
                self._open()
        # a failure arriving while open must not extend the cooldown: it is a late straggler

    def cool_down(self, seconds: float) -> None:
        """Skip this deployment for ``seconds`` (a 429's Retry-After), without counting a failure."""
        if seconds <= 0:
            return
        # a shorter Retry-After arriving later must not cut an earlier, longer one short
        self._cooling_until = max(self._cooling_until, self._clock.monotonic() + seconds)

    def release_probe(self) -> None:
        """Give back a half-open probe slot for an attempt that ended with neither success nor failure."""
        if self._state == HALF_OPEN and self._probes > 0:
            self._probes -= 1

    def snapshot(self) -> dict[str, object]:
        """The breaker's state as JSON-friendly values, for the admin endpoint and metrics."""
        now = self._clock.monotonic()
        self._prune(now)
        cooldown_left = self._opened_at + self._policy.cooldown_s - now if self._state == OPEN else 0.0
        return {
            "name": self.name,
            "state": self._state,
            "consecutive_failures": self._consecutive,
            "window_requests": len(self._window),
            "window_failures": self._failures,
            "open_for_s": now - self._opened_at if self._state != CLOSED else 0.0,
            "cooldown_remaining_s": max(0.0, cooldown_left),
            "cooling_remaining_s": max(0.0, self._cooling_until - now),
            "probes_in_flight": self._probes if self._state == HALF_OPEN else 0,
        }

    def _record(self, *, ok: bool) -> None:
        now = self._clock.monotonic()
        self._prune(now)
        self._window.append((now, ok))
        if not ok:
            self._failures += 1

    def _prune(self, now: float) -> None:
        horizon = now - self._policy.window_s
        window = self._window
        while window and window[0][0] <= horizon:
            _, ok = window.popleft()
            if not ok:
                self._failures -= 1

    def _rate_exceeded(self) -> bool:
        total = len(self._window)
        # below min_volume a few unlucky requests would trip the breaker on a quiet deployment
        return total >= self._policy.min_volume and self._failures / total >= self._policy.failure_rate

    def _open(self) -> None:
        self._opened_at = self._clock.monotonic()
        self._probes = 0
        self._transition(OPEN)

    def _reset(self) -> None:
        self._consecutive = 0
        self._window.clear()
        self._failures = 0
        self._probes = 0

    def _transition(self, new: State) -> None:
        old = self._state
        if old == new:
            return
        # the state is updated before the callback, so a callback that reads snapshot() sees the new state
        self._state = new
        if self._on_transition is not None:
            self._on_transition(self.name, old, new)
