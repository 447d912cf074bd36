"""``GET /metrics`` of a running app counts requests even with the ledger disabled."""

from __future__ import annotations

import time

import httpx2 as httpx
from prometheus_client.parser import text_string_to_metric_families

from breakwater.core.config import build_config
from breakwater.server.app import create_app
from tests.server.running import serve


def _samples(url: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    text = httpx.get(f"{url}/metrics", timeout=10).text
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_requests_counted_without_ledger() -> None:
    """With ``ledger.enabled: false`` a 200 and a 404 for an unknown model are counted; no ledger gauges."""
    config = build_config(
        {
            "access": {"enabled": False},
            "ledger": {"enabled": False},
            "providers": {"m": {"type": "mock", "wire": "openai"}},
            "deployments": {"d": {"provider": "m", "model": "mock-gpt"}},
            "routes": {"fast": {"deployments": ["d"]}},
        }
    )
    app = create_app(config, environ={})
    assert app.ledger is None
    hi = [{"role": "user", "content": "hi"}]
    ok = ("breakwater_requests_total", frozenset({("route", "fast"), ("deployment", "d"), ("status", "200")}))
    missing = ("breakwater_requests_total", frozenset({("route", "other"), ("deployment", ""), ("status", "404")}))
    with serve(app) as url:
        assert httpx.post(f"{url}/v1/chat/completions", json={"model": "fast", "messages": hi}).status_code == 200
        r = httpx.post(f"{url}/v1/chat/completions", json={"model": "no-such-model-xyz", "messages": hi})
        assert r.status_code == 404
        deadline = time.monotonic() + 10
        while not {ok, missing} <= (s := _samples(url)).keys():
            assert time.monotonic() < deadline, "the request was never counted"
            time.sleep(0.01)  # polling a condition with a deadline, not a fixed wait
    assert s[ok] == 1
    assert s[missing] == 1
    assert s[("breakwater_tokens_total", frozenset({("route", "fast"), ("deployment", "d"), ("kind", "output")}))] > 0
    assert not any(name.startswith("breakwater_ledger_") for name, _ in s)
    assert "no-such-model-xyz" not in str(s)
