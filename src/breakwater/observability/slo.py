"""Per-route SLOs read from the ledger: each objective's error budget, its burn rates, and the
multi-window, multi-burn-rate alerts (docs/slo.md).

Everything is counted in the database through the ledger's aggregate path
(``ledger/bucketing.grouped_sums``, one SQL text for SQLite and PostgreSQL): per route and per
window, how many requests an objective counts (``eligible``) and how many of them went badly
(``bad``). So the figures are exact, survive a restart and cover the whole fleet when the
ledger is shared. The alerts and the background task that refreshes the figures are in
``slo_alerts.py``; the request path never waits on either.

What counts, per objective (shadow calls, rows with ``shadow_of``, are never counted):

- ``availability``: every request except those refused for the client's own fault; bad when it
  failed for a gateway or upstream reason (``GATEWAY_FAULTS`` or any 5xx);
- ``latency``: answered (status < 400), non-streamed requests; bad above the threshold;
- ``ttft``: answered streamed requests with a first token; bad above the threshold;
- ``refusal_rate``: answers the refusal detector checked; bad when it found a refusal.

An objective with target ``t`` allows a share ``1 - t`` of its requests to be bad: that is the
budget. The burn rate over a window is the bad share there divided by ``1 - t``: 1 spends the
budget exactly over the SLO window; 14.4 spends 2% of a 30-day budget in an hour.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from breakwater.observability.ledger.bucketing import grouped_sums
from breakwater.observability.ledger.reading import dialect_of

if TYPE_CHECKING:
    from breakwater.core.config.routes import Route
    from breakwater.observability.ledger.service import Store

GATEWAY_FAULTS = (
    "Saturated",
    "BackendUnavailable",
    "ShuttingDown",
    "UpstreamError",
    "UpstreamAuthError",
    "UpstreamPermissionError",
    "UpstreamNotFound",
    "RateLimited",
    "Overloaded",
    "UpstreamServerError",
    "UpstreamTimeout",
    "UpstreamConnectionError",
    "MalformedResponse",
    "Unavailable",
)
"""Error classes (``core/errors.py``) that spend the availability budget whatever their status:
the gateway's own backpressure and shutdown, and the upstream failing (a provider's 429 too).
The client's faults (bad requests, unknown keys, its own limits and budgets, a provider refusing
the request as too long or filtered, the client leaving: 499) are not counted at all."""

OBJECTIVES = ("availability", "latency", "ttft", "refusal_rate")


WINDOWS = {"5m": 300.0, "30m": 1800.0, "1h": 3600.0, "6h": 6 * 3600.0, "3d": 3 * 86400.0}
"""The burn-rate windows shown (``/metrics``, ``/admin/slo``): those the rules read."""
EXHAUSTION_WINDOW = "1h"
"""The burn rate the time to exhaustion is projected at."""


@dataclass(frozen=True, slots=True)
class Objective:
    """One objective of one route's ``slo``."""

    route: str
    name: str
    target: float
    threshold_ms: float | None
    window_s: float
    min_requests: int


def objectives(routes: Mapping[str, Route]) -> list[Objective]:
    """Every route's objectives, by route then in ``OBJECTIVES`` order."""
    out = []
    for name in sorted(routes):
        slo = routes[name].slo
        if slo is None:
            continue
        window, least = slo.window_s, slo.min_requests
        if slo.availability is not None:
            out.append(Objective(name, "availability", slo.availability, None, window, least))
        if slo.latency is not None:
            out.append(Objective(name, "latency", slo.latency.target, slo.latency.threshold_ms, window, least))
        if slo.ttft is not None:
            out.append(Objective(name, "ttft", slo.ttft.target, slo.ttft.threshold_ms, window, least))
        if slo.refusal_rate is not None:
            out.append(Objective(name, "refusal_rate", 1 - slo.refusal_rate, None, window, least))
    return out


Counts = dict[tuple[str, str], tuple[int, int]]
"""``(route, objective) -> (eligible, bad)``."""


async def count(store: Store, objectives_: Iterable[Objective], since: float, until: float) -> Counts:
    """Each objective's eligible and bad requests among the ledger rows in ``[since, until)``.

    One grouped query for every route; the routes are bound parameters, the thresholds (floats
    from the validated config) are written into the text.
    """
    wanted = list(objectives_)
    routes = sorted({o.route for o in wanted})
    if not routes:
        return {}
    d = dialect_of(store)
    slot = {route: f"?{3 + i}" for i, route in enumerate(routes)}

    def threshold(name: str) -> str:
        cases = " ".join(
            f"WHEN route = {slot[o.route]} THEN {float(o.threshold_ms)!r}"
            for o in wanted
            if o.name == name and o.threshold_ms is not None
        )
        return f"(CASE {cases} END)" if cases else "NULL"

    faults = ", ".join(f"'{c}'" for c in GATEWAY_FAULTS)
    bad = f"(status >= 500 OR error_class IN ({faults}))"
    answered = "status < 400"
    stream = f"{d.truth('stream')} = 1"

    def share(condition: str) -> str:
        return f"SUM(CASE WHEN {condition} THEN 1 ELSE 0 END)"

    sums = [
        share(f"{answered} OR {bad}"),
        share(bad),
        share(f"{answered} AND NOT ({stream})"),
        share(f"{answered} AND NOT ({stream}) AND latency_ms > {threshold('latency')}"),
        share(f"{answered} AND {stream} AND ttft_ms IS NOT NULL"),
        share(f"{answered} AND {stream} AND ttft_ms > {threshold('ttft')}"),
        share("refused IS NOT NULL"),
        share(f"refused IS NOT NULL AND {d.truth('refused')} = 1"),
    ]
    where = f" AND shadow_of IS NULL AND route IN ({', '.join(slot.values())})"
    found = await grouped_sums(store, d, (since, until), ["route"], sums, where, tuple(routes))
    out: Counts = {}
    for o in wanted:
        figures = found.get((o.route,))
        if figures is None:
            out[(o.route, o.name)] = (0, 0)
            continue
        at = 1 + 2 * OBJECTIVES.index(o.name)
        out[(o.route, o.name)] = (int(figures[at] or 0), int(figures[at + 1] or 0))
    return out


def burn_rate(eligible: int, bad: int, target: float) -> float | None:
    """The bad share over the allowed share (``None`` without requests)."""
    if eligible == 0:
        return None
    # 1 - 0.99 is 0.010000000000000009 in binary: rounded, a 99% target allows exactly 1%
    return (bad / eligible) / round(1 - target, 12)


@dataclass(frozen=True, slots=True)
class SloStatus:
    """One objective as measured at ``at``."""

    objective: Objective
    at: float
    eligible: int
    bad: int
    #: burn rate per ``WINDOWS`` label (``None``: no request there)
    burn: dict[str, float | None]
    #: requests per ``WINDOWS`` label
    requests: dict[str, int]

    @property
    def current(self) -> float | None:
        """The good share over the SLO window."""
        return None if self.eligible == 0 else 1 - self.bad / self.eligible

    @property
    def budget_remaining(self) -> float | None:
        """The share of the window's budget left (negative once overspent; ``None``: no request)."""
        spent = burn_rate(self.eligible, self.bad, self.objective.target)
        return None if spent is None else 1 - spent

    @property
    def exhaustion_s(self) -> float | None:
        """Seconds until the budget is gone at the last hour's burn (0: gone; ``None``: not burning)."""
        left, rate = self.budget_remaining, self.burn.get(EXHAUSTION_WINDOW)
        if left is not None and left <= 0:
            return 0.0
        if left is None or not rate:
            return None
        return left * self.objective.window_s / rate

    def to_json(self) -> dict[str, Any]:
        o = self.objective
        return {
            "route": o.route,
            "objective": o.name,
            "target": o.target,
            "threshold_ms": o.threshold_ms,
            "window_s": o.window_s,
            "requests": self.eligible,
            "bad": self.bad,
            "current": self.current,
            "budget_remaining": self.budget_remaining,
            "burn_rate": dict(self.burn),
            "window_requests": dict(self.requests),
            "exhaustion_s": self.exhaustion_s,
            "at": self.at,
        }


async def measure(store: Store, objectives_: list[Objective], now: float) -> list[SloStatus]:
    """Every objective over its SLO window and over each of ``WINDOWS``, ending at ``now``."""
    spans = dict(WINDOWS)
    by_span: dict[float, Counts] = {}
    for span in sorted({*spans.values(), *(o.window_s for o in objectives_)}):
        chosen = [o for o in objectives_ if span in spans.values() or o.window_s == span]
        by_span[span] = await count(store, chosen, now - span, now)
    out = []
    for o in objectives_:
        key = (o.route, o.name)
        eligible, bad = by_span[o.window_s][key]
        burn = {label: burn_rate(*by_span[s][key], o.target) for label, s in spans.items()}
        requests = {label: by_span[s][key][0] for label, s in spans.items()}
        out.append(SloStatus(o, now, eligible, bad, burn, requests))
    return out
