"""SLOs end to end (docs/slo.md): a scripted fast burn through the mock provider pages once, in
the log and at the webhook outbox, ``GET /admin/slo`` and ``/metrics`` show the budget, and a
restart (a new app on the same ledger) keeps it."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

import openai
import pytest

from breakwater.core.config import build_config
from breakwater.infra.clock import ManualClock
from breakwater.observability.alerts import Alert
from breakwater.observability.ledger import SqliteLedger
from breakwater.observability.slo import objectives
from breakwater.observability.slo_alerts import SloMonitor
from breakwater.server.app import create_app
from tests.polling import until
from tests.server.running import admin_http, openai_sdk, serve

WALL = 1_795_867_200.0  # 2026-11-28 12:00 UTC
ADMIN = "adm-slo-7c1e"


def _config(tmp_path: Path) -> dict[str, Any]:
    return {
        "server": {"admin_key": "env:BW_ADMIN"},
        "access": {"enabled": False},
        "ledger": {"url": f"sqlite:///{tmp_path}/ledger.db", "spool_path": str(tmp_path / "spool")},
        "providers": {"m": {"type": "mock"}},
        "deployments": {"d": {"provider": "m", "model": "mock-gpt"}},
        "routes": {
            "chat": {
                "deployments": ["d"],
                "retry": {"max_attempts": 1},
                "slo": {"availability": 0.99, "window_s": 86400, "min_requests": 10},
            }
        },
    }


def _burn(url: str) -> None:
    """Five answers, then twenty upstream 503s (the mock told so per request)."""
    client = openai_sdk(url, max_retries=0)
    for _ in range(5):
        client.chat.completions.create(model="chat", messages=[{"role": "user", "content": "hi"}])
    for _ in range(20):
        with pytest.raises(openai.APIStatusError):
            client.chat.completions.create(
                model="chat",
                messages=[{"role": "user", "content": "hi"}],
                extra_headers={"x-mock-fault": "status=503"},
            )


def test_a_fast_burn_pages_once_and_a_restart_keeps_the_budget(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """20 of 25 requests failed upstream: a burn of 80x against a 99% objective. A monitor over the
    ledger fires one page (the 1h/5m rule; the 6h and 3-day rules hold too but say nothing new)
    and stays quiet on the next refresh. A second app on the same ledger (a restart) measures the
    same budget and, starting its own monitor, pages once through its outbox (the log)."""
    config = build_config(_config(tmp_path))
    clock = ManualClock(wall=WALL)
    with serve(create_app(config, environ={"BW_ADMIN": ADMIN}, clock=clock)) as url:
        _burn(url)
    # the app has stopped: every row is in the ledger; a second on, they are in every window
    clock.advance(1.0)

    async def refresh_twice() -> list[Alert]:
        pushed: list[Alert] = []
        store = SqliteLedger(tmp_path / "ledger.db")
        monitor = SloMonitor(store, objectives(config.routes), clock.time, pushed.append)
        await monitor.refresh()
        await monitor.refresh()
        assert monitor.active == {("chat", "availability", r) for r in ("page_1h", "page_6h", "ticket_3d")}
        return pushed

    pushed = asyncio.run(refresh_twice())
    assert [(a.rule, a.subject, a.details["burn_rule"], a.details["severity"]) for a in pushed] == [
        ("slo_burn", "chat/availability", "page_1h", "page")
    ]
    assert pushed[0].value == pytest.approx((20 / 25) / 0.01)

    caplog.set_level(logging.WARNING, logger="breakwater.alerts")
    restarted = create_app(config, environ={"BW_ADMIN": ADMIN}, clock=clock)
    with serve(restarted) as url:
        admin = admin_http(url, ADMIN)
        (slo,) = admin.get("/admin/slo").json()["data"]
        assert (slo["route"], slo["objective"], slo["requests"], slo["bad"]) == ("chat", "availability", 25, 20)
        assert slo["budget_remaining"] == pytest.approx(1 - 80.0)
        assert slo["burn_rate"]["5m"] == pytest.approx(80.0)
        assert slo["exhaustion_s"] == 0.0
        assert admin.get("/admin/slo", params={"route": "nope"}).status_code == 404
        assert admin.get("/admin/slo", params={"bogus": "1"}).status_code == 400
        until(
            lambda: any("slo_burn" in r.getMessage() for r in caplog.records),
            10,
            "the restarted gateway's SLO task pages",
        )
        slo_task = restarted.runtime.slo
        assert slo_task is not None and slo_task.monitor.burning("chat"), "a page: optional work is shed"
        metrics = admin.get("/metrics").text
        assert 'breakwater_slo_burn_rate{objective="availability",route="chat",window="1h"} 80.0' in metrics
        assert 'breakwater_slo_burn_alert_active{objective="availability",route="chat",rule="page_1h"} 1.0' in metrics
    pages = [r for r in caplog.records if "slo_burn" in r.getMessage()]
    assert len(pages) == 1, "one page per crossing"


def test_admin_slo_without_objectives_is_an_empty_list(tmp_path: Path) -> None:
    """No route has an slo: the view answers an empty list, and asking for a route is a 404."""
    raw = _config(tmp_path)
    del raw["routes"]["chat"]["slo"]
    with serve(create_app(build_config(raw), environ={"BW_ADMIN": ADMIN})) as url:
        admin = admin_http(url, ADMIN)
        assert admin.get("/admin/slo").json() == {"object": "list", "data": []}
        assert admin.get("/admin/slo", params={"route": "chat"}).status_code == 404
        assert admin.get("/admin/slo", headers={"authorization": "Bearer wrong"}).status_code == 401
