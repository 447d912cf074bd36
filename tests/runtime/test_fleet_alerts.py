"""Traffic alerts see the whole fleet: two workers (two gateway apps in this process, each with its
own injected clock) share one Redis; neither sees enough failures on its own, together they do,
and the error-rate alert fires once, on one worker, and not again when another takes the lead.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any
from uuid import uuid4

import httpx2 as httpx
import pytest
import redis

from breakwater.core.config import build_config
from breakwater.infra.alert_exchange import RedisAlertExchange
from breakwater.infra.clock import ManualClock
from breakwater.observability.alerts import AlertRules, Alerts, ErrorRate
from breakwater.observability.fleet_alerts import FleetAlerts
from breakwater.server.app import BreakwaterApp, create_app
from tests.conftest import require_service

HOST, PORT = "127.0.0.1", 6379
WALL = 1_795_867_200.0
HI = [{"role": "user", "content": "hi"}]


@pytest.fixture
def namespace() -> Iterator[str]:
    require_service("Redis", HOST, PORT)
    prefix = f"bwtest:{uuid4().hex}:"
    yield prefix
    with redis.Redis(host=HOST, port=PORT) as client:
        keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
        if keys:
            client.delete(*keys)


def _config(namespace: str) -> dict[str, Any]:
    return {
        "access": {"enabled": False},
        "ledger": {"enabled": False},
        "redis": {"url": f"redis://{HOST}:{PORT}/0", "namespace": namespace},
        "alerts": {"interval_s": 60, "error_rate": {"threshold": 0.5, "window_s": 300, "min_requests": 10}},
        "providers": {"m": {"type": "mock", "wire": "openai", "faults": [{"fault": "status=500"}]}},
        "deployments": {"d": {"provider": "m", "model": "mock-gpt"}},
        "routes": {"fast": {"deployments": ["d"], "retry": {"max_attempts": 1}}},
    }


@pytest.fixture
async def workers(namespace: str) -> AsyncIterator[list[tuple[BreakwaterApp, ManualClock]]]:
    config = build_config(_config(namespace))
    started: list[tuple[BreakwaterApp, ManualClock]] = []
    for _ in range(2):
        clock = ManualClock(wall=WALL)
        app = create_app(config, environ={}, clock=clock)
        await app.startup()
        started.append((app, clock))
    yield started
    for app, _ in started:
        await app.shutdown()


async def _fail(app: BreakwaterApp, n: int) -> None:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://worker") as client:
        for _ in range(n):
            r = await client.post("/v1/chat/completions", json={"model": "fast", "messages": HI})
            assert r.status_code >= 500


async def test_two_workers_fire_one_alert_once(
    workers: list[tuple[BreakwaterApp, ManualClock]], namespace: str
) -> None:
    tasks = []
    for app, _ in workers:
        task = app.runtime.alerts
        assert task is not None and task.fleet is not None
        tasks.append(task)
    for app, _ in workers:
        await _fail(app, 6)  # 6 failures each: below min_requests (10) for either worker alone

    async def round_() -> list[list[str]]:
        fired = [[a.rule for a in await task.run_once()] for task in tasks]
        for _, clock in workers:
            clock.advance(60)
        return fired

    first = await round_()
    # worker 0 led with only its own 6 samples (worker 1 published after): nothing yet
    assert first == [[], []]
    second = await round_()
    assert second == [["error_rate"], []]  # 12 failures of 12 over the fleet: fires, on the leader only
    await _fail(workers[1][0], 3)
    assert await round_() == [[], []]  # still failing: an alert fires once per crossing
    await _fail(workers[0][0], 2)
    await tasks[0].stop()  # the leader stops: it publishes what it saw since its last round, gives up the lead
    with redis.Redis(host=HOST, port=PORT) as client:
        assert client.zcard(f"{namespace}alerts:samples") == 6 + 6 + 3 + 2
    assert await tasks[1].run_once() == []  # the new leader knows the alert is active: not fired again
    fleet = tasks[1].fleet
    assert isinstance(fleet.exchange, RedisAlertExchange)
    with redis.Redis(host=HOST, port=PORT) as client:
        assert client.get(f"{namespace}alerts:leader") == fleet.exchange.worker.encode()
    assert sum(task.delivered for task in tasks) == 1


async def test_redis_out_of_reach_keeps_the_samples_for_the_next_round() -> None:
    rules = AlertRules(error_rate=ErrorRate(threshold=0.5, window_s=300, min_requests=1))
    alerts = Alerts(rules)
    exchange = RedisAlertExchange("redis://127.0.0.1:1/0", timeout_s=0.5)  # nothing listens on port 1
    fleet = FleetAlerts(exchange, interval_s=60)
    sample = (WALL, "alice", 0.0, 500, None, 10.0, "fast", 0, 0)
    alerts.restore([sample], WALL - 1)
    assert await fleet.evaluate(alerts, WALL + 1) == []
    assert alerts.take() == [sample]  # put back, to be published next round
    alerts.restore([sample], WALL + 1000)  # older than the horizon by then: dropped
    assert alerts.take() == []
    await exchange.close()
