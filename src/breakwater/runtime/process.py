"""What outlives every configuration one server process runs: the upstream HTTP client, the
tokenizers, time and randomness, the metrics registry, and the runtime serving now."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from breakwater.engine.limits.checks import BudgetAlert
from breakwater.engine.ports import Clock, RandomSource
from breakwater.infra.clock import SystemClock, SystemRandom
from breakwater.infra.http import AiohttpSender
from breakwater.infra.tokenizers import Tokenizers
from breakwater.observability.metrics import Metrics
from breakwater.runtime.observers import budget_alert

if TYPE_CHECKING:
    from breakwater.runtime.runtime import Runtime


class Process:
    """What outlives every configuration one server process runs.

    Args:
        environ: where ``env:`` references are read.
        clock, rng: time and randomness (tests inject fakes).
    """

    def __init__(self, environ: Mapping[str, str], clock: Clock | None = None, rng: RandomSource | None = None) -> None:
        self.environ = environ
        self.clock: Clock = clock or SystemClock()
        self.rng: RandomSource = rng or SystemRandom()
        self.sender = AiohttpSender()
        self.tokenizers = Tokenizers()
        self.metrics: Metrics | None = None
        #: the runtime serving now (``commit`` sets it): budget alerts go to its outbox
        self.current: Runtime | None = None

    def budget_alert(self, alert: BudgetAlert) -> None:
        current = self.current
        if current is not None:
            current.outbox.push(budget_alert(alert))
