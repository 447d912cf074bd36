"""What operators see: the overhead header, the admin view of deployments, /metrics, backpressure."""

from __future__ import annotations

import gc

import httpx2
import openai
import pytest
from prometheus_client.parser import text_string_to_metric_families

from breakwater.core.config import build_config
from breakwater.server.app import GC_YOUNG_THRESHOLD, create_app
from tests.server.running import HELLO, openai_sdk, serve


@pytest.fixture()
def http(gateway_url: str) -> httpx2.Client:
    return httpx2.Client(base_url=gateway_url, timeout=10)


def test_overhead_header_excludes_upstream_time(http: httpx2.Client) -> None:
    """x-breakwater-overhead-ms is the gateway's own time: a 200 ms upstream delay is not in it."""
    body = {"model": "mock", "messages": HELLO}
    for stream in (False, True):
        response = http.post(
            "/v1/chat/completions", json={**body, "stream": stream}, headers={"x-mock-fault": "latency=200"}
        )
        assert response.status_code == 200
        overhead = float(response.headers["x-breakwater-overhead-ms"])
        assert 0 <= overhead < 100


def test_admin_deployments_shows_breaker_and_load(http: httpx2.Client) -> None:
    """GET /admin/deployments lists each used deployment with its breaker state, load and counters."""
    assert http.post("/v1/chat/completions", json={"model": "mock", "messages": HELLO}).status_code == 200
    response = http.get("/admin/deployments")
    assert response.status_code == 200
    rows = {row["name"]: row for row in response.json()["data"]}
    row = rows["d-openai"]
    assert row["breaker"]["state"] == "closed"
    assert row["in_flight"] == 0
    assert row["attempts"] >= 1
    assert row["latency_ms"] is not None


def test_metrics_are_valid_prometheus_text(http: httpx2.Client) -> None:
    """GET /metrics parses as Prometheus text and carries breaker state and attempt counters per deployment."""
    assert http.post("/v1/chat/completions", json={"model": "mock", "messages": HELLO}).status_code == 200
    response = http.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(response.text)
        for s in family.samples
    }
    assert samples[("breakwater_breaker_state", (("deployment", "d-openai"), ("state", "closed")))] == 1
    assert samples[("breakwater_breaker_state", (("deployment", "d-openai"), ("state", "open")))] == 0
    assert samples[("breakwater_upstream_attempts_total", (("deployment", "d-openai"),))] >= 1
    assert samples[("breakwater_in_flight", (("deployment", "d-openai"),))] == 0


def test_saturated_deployment_answers_429_with_retry_after(gateway_url: str) -> None:
    """A deployment at max_concurrency with no queue room answers 429 + Retry-After at once; the slot frees after."""
    client = openai_sdk(gateway_url)
    holding = client.chat.completions.create(
        model="mock-narrow", messages=HELLO, stream=True, extra_headers={"x-mock-fault": "token_delay=50"}
    )
    first = next(iter(holding))  # the stream holds the only slot until it ends
    assert first.choices
    with pytest.raises(openai.RateLimitError) as info:
        client.chat.completions.create(model="mock-narrow", messages=HELLO)
    assert info.value.code == "deployment_saturated"
    assert int(info.value.response.headers["retry-after"]) >= 1
    for _ in holding:
        pass
    assert client.chat.completions.create(model="mock-narrow", messages=HELLO).choices[0].message.content


def test_admin_key_protects_the_admin_api() -> None:
    """With server.admin_key set, /admin/* needs it as a bearer token (401 otherwise); /metrics stays open."""
    config = build_config(
        {
            "server": {"admin_key": "env:BW_ADMIN"},
            "access": {"enabled": False},
            "ledger": {"enabled": False},
            "providers": {"m": {"type": "mock"}},
            "deployments": {"d": {"provider": "m", "model": "mock-gpt"}},
            "routes": {"mock": {"deployments": ["d"]}},
        }
    )
    with serve(create_app(config, environ={"BW_ADMIN": "adm-7f3e"})) as url:
        http = httpx2.Client(base_url=url, timeout=10)
        for headers in ({}, {"authorization": "Bearer wrong"}, {"authorization": "adm-7f3e"}):
            response = http.get("/admin/deployments", headers=headers)
            assert response.status_code == 401
            assert response.json()["error"]["code"] == "invalid_api_key"
            assert "adm-7f3e" not in response.text
        assert http.get("/admin/deployments", headers={"authorization": "Bearer adm-7f3e"}).status_code == 200
        assert http.get("/metrics").status_code == 200


def test_startup_freezes_what_lives_forever_and_collects_the_young_generation_less_often() -> None:
    """Once started, the app's long-lived objects are out of the collector's reach (``gc.freeze``)
    and young-generation passes run every ``GC_YOUNG_THRESHOLD`` allocations, not Python's 700."""
    config = build_config(
        {
            "access": {"enabled": False},
            "ledger": {"enabled": False},
            "providers": {"m": {"type": "mock"}},
            "deployments": {"d": {"provider": "m", "model": "mock-gpt"}},
            "routes": {"mock": {"deployments": ["d"]}},
        }
    )
    before = gc.get_threshold()
    gc.set_threshold(700, *before[1:])
    gc.unfreeze()
    try:
        with serve(create_app(config)):
            assert gc.get_threshold() == (GC_YOUNG_THRESHOLD, *before[1:])
            assert gc.get_freeze_count() > 0
    finally:
        gc.set_threshold(*before)
