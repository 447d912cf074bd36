"""What the gateway knows about each deployment's recent load and speed.

Counts and moving averages kept in memory per deployment, updated by the attempt loop and read
by the load-balancing strategies (``least_in_flight``, ``lowest_latency``), the admin view and
metrics. Plain attributes, no locks: everything runs on one event loop.
"""

from __future__ import annotations

from dataclasses import dataclass

#: weight of the newest sample in the moving averages: about the last 10 samples matter
ALPHA = 0.2


@dataclass(slots=True)
class DeploymentStats:
    """One deployment's in-flight count, latency averages and lifetime counters."""

    in_flight: int = 0
    #: moving average of seconds to the whole answer (plain requests)
    latency_s: float | None = None
    #: moving average of seconds to the first events (streams)
    ttft_s: float | None = None
    attempts: int = 0
    failures: int = 0
    retries: int = 0
    fallbacks: int = 0
    skipped: int = 0
    #: of ``skipped``: passed over because it was full on an ``overflow`` route
    overflowed: int = 0

    def observe(self, seconds: float, *, stream: bool) -> None:
        """A successful attempt took ``seconds`` to its answer (or to its first events)."""
        if stream:
            self.ttft_s = seconds if self.ttft_s is None else self.ttft_s + ALPHA * (seconds - self.ttft_s)
        else:
            self.latency_s = seconds if self.latency_s is None else self.latency_s + ALPHA * (seconds - self.latency_s)

    def expected(self, *, stream: bool) -> float:
        """The moving average that matters for this kind of request; 0 before any sample, so a
        deployment nobody has measured yet gets tried (and measured) first."""
        value = self.ttft_s if stream else self.latency_s
        return 0.0 if value is None else value

    def snapshot(self) -> dict[str, object]:
        return {
            "in_flight": self.in_flight,
            "latency_ms": None if self.latency_s is None else round(self.latency_s * 1000, 2),
            "ttft_ms": None if self.ttft_s is None else round(self.ttft_s * 1000, 2),
            "attempts": self.attempts,
            "failures": self.failures,
            "retries": self.retries,
            "fallbacks": self.fallbacks,
            "skipped": self.skipped,
            "overflowed": self.overflowed,
        }
