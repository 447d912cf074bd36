"""Alert rules on a hand-built request stream, and delivery to a real webhook on loopback."""

from __future__ import annotations

import dataclasses
import logging
from decimal import Decimal

import pytest
from aiohttp import web

from breakwater.core.config import build_config
from breakwater.observability.alerts import (
    AlertRules,
    Alerts,
    AlertTask,
    ErrorRate,
    LengthShare,
    P95Latency,
    PromptCacheDrop,
    SpendOutlier,
    WebhookDelivery,
)
from breakwater.observability.ledger.row import LedgerRow
from breakwater.server.app import create_app
from tests.observability.ledger.rows import make_row

NOW = 1_800_000_000.0


def _row(ts: float, *, user: str = "u", cost: str | None = "0.01", status: int = 200,
         finish: str | None = "stop", latency_ms: float = 100.0) -> LedgerRow:  # fmt: skip
    return dataclasses.replace(
        make_row(0), ts=ts, user=user, cost_usd=None if cost is None else Decimal(cost), status=status,
        finish_reason=finish, latency_ms=latency_ms,
    )  # fmt: skip


def test_a_user_far_above_the_median_spend_fires_once_per_crossing() -> None:
    alerts = Alerts(AlertRules(spend_outlier=SpendOutlier(factor=10, window_s=3600, min_spend_usd=0.1)))
    for user in ("a", "b", "c", "d"):
        alerts.observe(_row(NOW - 60, user=user, cost="0.02"))
    alerts.observe(_row(NOW - 30, user="runaway", cost="0.50"))  # 25x the median of 0.02
    fired = alerts.evaluate(NOW)
    assert [(a.rule, a.subject) for a in fired] == [("spend_outlier", "runaway")]
    assert fired[0].value == pytest.approx(0.5) and fired[0].threshold == pytest.approx(0.2)
    assert alerts.evaluate(NOW + 1) == [], "still above: no second alert"
    # an hour later the spend has left the window: the alert clears, and can fire again
    assert alerts.evaluate(NOW + 3600) == []
    alerts.observe(_row(NOW + 3601, user="runaway", cost="1.00"))
    for user in ("a", "b", "c"):
        alerts.observe(_row(NOW + 3601, user=user, cost="0.01"))
    assert [a.subject for a in alerts.evaluate(NOW + 3602)] == ["runaway"]


def test_below_the_minimum_spend_or_with_too_few_users_nothing_fires() -> None:
    alerts = Alerts(AlertRules(spend_outlier=SpendOutlier(factor=10, min_spend_usd=1.0)))
    for user in ("a", "b", "c"):
        alerts.observe(_row(NOW - 1, user=user, cost="0.001"))
    alerts.observe(_row(NOW - 1, user="x", cost="0.5"))  # 500x the median but under $1
    assert alerts.evaluate(NOW) == []


def test_a_rising_share_of_length_stops_fires() -> None:
    rule = LengthShare(threshold=0.2, window_s=600, min_requests=10)
    alerts = Alerts(AlertRules(length_share=rule))
    for i in range(20):  # the window before: 10% cut
        alerts.observe(_row(NOW - 900 + i, finish="length" if i < 2 else "stop"))
    for i in range(20):  # now: 40% cut
        alerts.observe(_row(NOW - 100 + i, finish="length" if i < 8 else "stop"))
    [alert] = alerts.evaluate(NOW)
    assert alert.rule == "length_share" and alert.value == pytest.approx(0.4)
    assert alert.details["previous"] == pytest.approx(0.1)


def test_a_high_but_steady_length_share_is_not_rising() -> None:
    alerts = Alerts(AlertRules(length_share=LengthShare(threshold=0.2, window_s=600, min_requests=10)))
    for start in (NOW - 900, NOW - 100):
        for i in range(20):
            alerts.observe(_row(start + i, finish="length" if i < 8 else "stop"))
    assert alerts.evaluate(NOW) == []


def test_error_rate_and_p95_latency() -> None:
    alerts = Alerts(AlertRules(error_rate=ErrorRate(0.05, 300, 20), p95_latency=P95Latency(2000, 300, 20)))
    for i in range(100):
        status = 503 if i < 4 else 429 if i < 7 else 400 if i < 20 else 200  # 7% 5xx/429; 400s do not count
        alerts.observe(_row(NOW - 200 + i, status=status, latency_ms=3000 if i >= 94 else 500))
    fired = {a.rule: a for a in alerts.evaluate(NOW)}
    assert fired["error_rate"].value == pytest.approx(0.07)
    assert fired["p95_latency"].value == 3000  # the 95th of 100 sorted latencies
    # too few requests: silence
    quiet = Alerts(AlertRules(error_rate=ErrorRate(0.05, 300, 20)))
    for _ in range(10):
        quiet.observe(_row(NOW - 1, status=503))
    assert quiet.evaluate(NOW) == []


async def test_alerts_are_logged_and_posted_to_the_webhook(caplog: pytest.LogCaptureFixture) -> None:
    received: list[dict[str, object]] = []

    async def hook(request: web.Request) -> web.Response:
        received.append(await request.json())
        return web.Response(status=204)

    app = web.Application()
    app.router.add_post("/hook", hook)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        alerts = Alerts(AlertRules(error_rate=ErrorRate(0.05, 300, 10)))
        task = AlertTask(alerts, 60, lambda: NOW, WebhookDelivery(f"http://127.0.0.1:{port}/hook"))
        for _ in range(10):
            alerts.observe(_row(NOW - 1, status=500))
        caplog.set_level(logging.WARNING, logger="breakwater.alerts")
        fired = await task.run_once()
        await task.stop()
    finally:
        await runner.cleanup()
    assert [a.rule for a in fired] == ["error_rate"]
    assert len(received) == 1 and received[0]["alert"]["rule"] == "error_rate"  # type: ignore[index]
    assert "100.0% of requests failed" in str(received[0]["text"])
    assert any("alert error_rate" in r.getMessage() for r in caplog.records)


async def test_a_dead_webhook_is_logged_not_raised(caplog: pytest.LogCaptureFixture) -> None:
    alerts = Alerts(AlertRules(error_rate=ErrorRate(0.05, 300, 1)))
    alerts.observe(_row(NOW - 1, status=500))
    # port 9 on loopback: nothing listens, the connection is refused at once
    task = AlertTask(alerts, 60, lambda: NOW, WebhookDelivery("http://127.0.0.1:9/hook"))
    caplog.set_level(logging.ERROR, logger="breakwater.alerts")
    assert len(await task.run_once()) == 1
    await task.stop()
    assert any("alert webhook failed" in r.getMessage() for r in caplog.records)


def test_the_app_builds_its_alert_task_from_the_config() -> None:
    base = {
        "access": {"enabled": False},
        "ledger": {"enabled": False},
        "providers": {"m": {"type": "mock"}},
        "deployments": {"d": {"provider": "m", "model": "mock-gpt"}},
        "routes": {"r": {"deployments": ["d"]}},
    }
    assert create_app(build_config(base), environ={}).alerts is None, "no rule, no task"
    config = {**base, "alerts": {"webhook": "env:HOOK", "error_rate": {"threshold": 0.1}, "spend_outlier": {}}}
    app = create_app(build_config(config), environ={"HOOK": "http://127.0.0.1:9/x"})
    assert app.alerts is not None
    rules = app.alerts.alerts.rules
    assert rules.error_rate == ErrorRate(threshold=0.1) and rules.spend_outlier == SpendOutlier()
    assert rules.length_share is None and rules.p95_latency is None


def _cached(ts: float, route: str, cached: int) -> LedgerRow:
    return dataclasses.replace(
        make_row(0), ts=ts, route=route, status=200, input_tokens=2000, cached_input_tokens=cached
    )


def test_a_route_whose_prompt_cache_share_halves_fires_and_a_steady_one_does_not() -> None:
    """Per route: 75% of input tokens cached in the window before, 10% now: an alert naming the route;
    a route that stayed at 75%, and one that never cached, stay quiet."""
    alerts = Alerts(
        AlertRules(prompt_cache_drop=PromptCacheDrop(drop=0.5, min_baseline=0.2, window_s=900, min_requests=5))
    )
    for i in range(10):
        alerts.observe(_cached(NOW - 1500 + i, "support", 1500))  # the window before: 75%
        alerts.observe(_cached(NOW - 600 + i, "support", 200))  # now: 10%
        alerts.observe(_cached(NOW - 1500 + i, "steady", 1500))
        alerts.observe(_cached(NOW - 600 + i, "steady", 1500))
        alerts.observe(_cached(NOW - 1500 + i, "never", 0))
        alerts.observe(_cached(NOW - 600 + i, "never", 0))
    fired = alerts.evaluate(NOW)
    assert [(a.rule, a.subject) for a in fired] == [("prompt_cache_drop", "support")]
    assert fired[0].value == pytest.approx(0.1) and fired[0].details["previous"] == pytest.approx(0.75)
    assert alerts.evaluate(NOW + 1) == []  # once per crossing


def test_a_quiet_route_does_not_fire_on_a_prompt_cache_drop() -> None:
    """Fewer than min_requests in either window: nothing to compare."""
    alerts = Alerts(AlertRules(prompt_cache_drop=PromptCacheDrop(min_requests=20)))
    for i in range(5):
        alerts.observe(_cached(NOW - 1500 + i, "support", 1500))
        alerts.observe(_cached(NOW - 600 + i, "support", 0))
    assert alerts.evaluate(NOW) == []
