"""SLO arithmetic on a fixture ledger (``observability/slo.py``), on both stores alike.

Every figure below is worked out by hand from ``ROWS``: route ``chat`` has all four objectives
over a one-day window; rows sit in the last five minutes, two hours ago, two days ago (outside
the window, inside the three-day burn window) and four days ago (outside everything).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from breakwater.core.config.routes import Route
from breakwater.observability.alerts import Alert
from breakwater.observability.ledger import LedgerRow, SqliteLedger
from breakwater.observability.ledger.postgres import PostgresLedger
from breakwater.observability.slo import SloStatus, measure, objectives
from breakwater.observability.slo_alerts import SloMonitor

from .conftest import Holding
from .rows import make_row

Store = SqliteLedger | PostgresLedger
NOW = 1_800_000_000.0
DAY = 86400.0

ROUTES = {
    "chat": Route.model_validate(
        {
            "deployments": ["d"],
            "slo": {
                "availability": 0.5,
                "latency": {"threshold_ms": 1000, "target": 0.9},
                "ttft": {"threshold_ms": 500, "target": 0.8},
                "refusal_rate": 0.5,
                "window_s": DAY,
                "min_requests": 1,
            },
        }
    ),
    "other": Route.model_validate({"deployments": ["d"]}),
}


def _row(
    name: str,
    ago: float,
    *,
    route: str = "chat",
    status: int = 200,
    error_class: str | None = None,
    latency: float = 100.0,
    stream: bool = False,
    ttft: float | None = None,
    refused: bool | None = None,
    shadow_of: str | None = None,
) -> LedgerRow:
    return dataclasses.replace(
        make_row(0),
        id=f"row-{name}",
        request_id=f"req-{name}",
        ts=NOW - ago,
        route=route,
        status=status,
        error_class=error_class,
        latency_ms=latency,
        stream=stream,
        ttft_ms=ttft,
        refused=refused,
        shadow_of=shadow_of,
    )


ROWS = [
    # the last five minutes
    _row("a", 60, latency=500),                                              # good everywhere
    _row("b", 61, status=500, error_class="UpstreamServerError"),            # availability: bad
    _row("c", 62, status=429, error_class="RateLimited"),                    # the provider's 429: bad
    _row("d", 63, status=429, error_class="RequestsLimitExceeded"),          # the client's own limit: not counted
    _row("e", 64, status=400, error_class="InvalidRequest"),                 # the client's fault: not counted
    _row("f", 65, status=499, error_class="CancelledError"),                 # the client left: not counted
    _row("g", 66, latency=5000, stream=True, ttft=800),                      # ttft: bad (a stream: no latency)
    _row("h", 67, latency=9000, stream=True, ttft=100),                      # ttft: good
    _row("i", 68, latency=1500, refused=True),                               # latency: bad; a refusal
    _row("j", 69, latency=300, refused=False),                               # latency: good; checked
    _row("s", 70, status=500, error_class="UpstreamServerError", shadow_of="req-a"),  # a shadow call
    _row("o", 71, route="other", status=500, error_class="UpstreamServerError"),    # no slo
    # two hours ago
    _row("k", 7200, latency=100),
    _row("l", 7201, status=503, error_class="Unavailable"),
    # two days ago: only in the three-day burn window
    _row("m", 2 * DAY, status=500, error_class="UpstreamServerError"),
    # four days ago: nowhere
    _row("n", 4 * DAY, status=500, error_class="UpstreamServerError"),
]  # fmt: skip


@pytest.fixture
async def store(ledger_holding: Holding) -> Store:
    """Each store in turn, holding ``ROWS``."""
    return await ledger_holding(ROWS)


async def _statuses(store: Store, now: float = NOW) -> dict[str, SloStatus]:
    return {s.objective.name: s for s in await measure(store, objectives(ROUTES), now)}


async def test_availability_budget_and_burn_rates(store: Store) -> None:
    """Availability counts a..c, g..l (9 in the day, 3 bad: b, c, l); the client's 4xx, the
    client leaving, shadow calls and other routes are left out. Target 0.5 allows half bad."""
    s = (await _statuses(store))["availability"]
    assert (s.eligible, s.bad) == (9, 3)
    assert s.current == pytest.approx(6 / 9)
    assert s.budget_remaining == pytest.approx(1 - (3 / 9) / 0.5)
    assert s.burn["5m"] == pytest.approx((2 / 7) / 0.5)
    assert s.burn["1h"] == pytest.approx((2 / 7) / 0.5)
    assert s.burn["6h"] == pytest.approx((3 / 9) / 0.5)
    assert s.burn["3d"] == pytest.approx((4 / 10) / 0.5)  # m too
    assert s.requests == {"5m": 7, "30m": 7, "1h": 7, "6h": 9, "3d": 10}
    # a third of the budget left, spent at 4/7 of the pace that empties it in a day
    assert s.exhaustion_s == pytest.approx((1 / 3) * DAY / (4 / 7))


async def test_latency_ttft_and_refusal_objectives(store: Store) -> None:
    """Latency counts answered non-streamed requests (a, i, j, k; i is slow); ttft answered
    streams (g slow, h fast); refusals the checked answers (i refused, j not)."""
    got = await _statuses(store)
    latency, ttft, refusals = got["latency"], got["ttft"], got["refusal_rate"]
    assert (latency.eligible, latency.bad) == (4, 1)
    assert latency.budget_remaining == pytest.approx(1 - 0.25 / 0.1)  # overspent: -1.5
    assert latency.burn["5m"] == pytest.approx((1 / 3) / 0.1)
    assert latency.exhaustion_s == 0.0
    assert (ttft.eligible, ttft.bad) == (2, 1)
    assert ttft.burn["1h"] == pytest.approx(0.5 / 0.2)
    assert (refusals.eligible, refusals.bad) == (2, 1)
    assert refusals.objective.target == 0.5
    assert refusals.budget_remaining == pytest.approx(0.0)


async def test_an_empty_window_has_no_figures(store: Store) -> None:
    """Ten days on, nothing is in any window: no current share, no budget figure, no burn."""
    s = (await _statuses(store, NOW + 10 * DAY))["availability"]
    assert (s.eligible, s.bad, s.current, s.budget_remaining, s.exhaustion_s) == (0, 0, None, None, None)
    assert set(s.burn.values()) == {None}


async def test_burn_alerts_fire_once_per_crossing(store: Store) -> None:
    """Latency burns at 3.3x over 5m and 1h and 2.5x over 6h (page rules need 14.4x and 6x): only
    the ticket rule (1x over 3d and 6h) holds, and it fires once; a second refresh is silent; once
    the burn has passed (ten days on) and it starts again, it fires again."""
    pushed: list[Alert] = []
    clock = {"now": NOW}
    monitor = SloMonitor(store, objectives(ROUTES), lambda: clock["now"], pushed.append)
    await monitor.refresh()
    fired: list[dict[str, Any]] = [a.to_json() for a in pushed]
    by_objective = {a["objective"]: a for a in fired}
    assert by_objective["latency"]["burn_rule"] == "ticket_3d"
    assert by_objective["latency"]["severity"] == "ticket"
    assert all(a["rule"] == "slo_burn" for a in fired)
    assert len(fired) == len(by_objective), "one alert per objective"
    await monitor.refresh()
    assert len(pushed) == len(fired), "still burning: nothing new"
    assert not monitor.burning("chat"), "a ticket does not shed optional work; a page does"
    clock["now"] = NOW + 10 * DAY
    await monitor.refresh()
    assert not monitor.active
    clock["now"] = NOW
    await monitor.refresh()
    assert len(pushed) == 2 * len(fired)


async def test_a_fleet_sharing_redis_alerts_once(store: Store) -> None:
    """Two processes over the same ledger and one Redis: only the leader raises the burn alerts,
    the other keeps the same view and active set silently; when the leader stops, the other
    takes over without raising again what already fired."""
    from uuid import uuid4

    import redis

    from breakwater.infra.alert_exchange import RedisAlertExchange
    from breakwater.observability.slo_alerts import SloTask
    from tests.conftest import require_service

    require_service("Redis", "127.0.0.1", 6379)
    prefix = f"bwtest:{uuid4().hex}:slo:"
    pushed: list[tuple[str, Alert]] = []

    def monitor(name: str) -> SloMonitor:
        fleet = RedisAlertExchange("redis://127.0.0.1:6379/0", namespace=prefix)
        return SloMonitor(store, objectives(ROUTES), lambda: NOW, lambda a: pushed.append((name, a)), fleet=fleet)

    first, second = monitor("first"), monitor("second")
    try:
        await first.refresh()
        await second.refresh()
        assert {name for name, _ in pushed} == {"first"} and pushed
        assert second.active == first.active and second.view
        fired = len(pushed)
        await SloTask(first).stop()  # gives up the lead and closes its connection
        await second.refresh()
        assert len(pushed) == fired, "the new leader knows what is active already"
        assert second.fleet is not None and await second.fleet.lead(90.0), "second leads now"
    finally:
        await SloTask(second).stop()
        with redis.Redis(host="127.0.0.1", port=6379) as client:
            keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
            if keys:
                client.delete(*keys)
