"""Deployments without a price: said once at start-up with the fix, counted as unpriced, never guessed.

A gateway in front of the session's ``breakwater mock`` server through an ordinary ``openai``
provider on a ``base_url`` of its own (as a vLLM server would be: no list price), next to two
in-process mock deployments, one free by default and one with a ``price:``.
"""

from __future__ import annotations

import logging
import re
from decimal import Decimal
from pathlib import Path

import httpx2 as httpx
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from breakwater.core.config import build_config
from breakwater.server.app import create_app
from tests.server.running import serve
from tests.server.test_ledger import _row

HI = [{"role": "user", "content": "hi"}]
ROOT = Path(__file__).parents[2]
#: what the gateway logs for the deployment ``local-llama`` below, word for word
WARNING = (
    "deployment 'local-llama' (provider 'vllm', model 'llama-3') has no known price: its costs are counted "
    "as unpriced; add price: {input_per_mtok: ..., output_per_mtok: ...} to it (USD per million tokens)"
)


def _samples(url: str, name: str) -> dict[str, float]:
    """``name``'s samples on /metrics, by deployment."""
    text = httpx.get(f"{url}/metrics", timeout=10).text
    return {
        s.labels["deployment"]: s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == name
    }


def test_an_unpriced_deployment_is_named_once_with_its_fix_and_counted_as_unpriced(
    tmp_path: Path, mock_server_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A self-hosted deployment is warned about once at start-up, naming it and the price: to add,
    and not again per request; its requests are counted unpriced with a null cost, while the mock
    costs 0 and a priced mock deployment costs its price, neither warned about."""
    ledger = tmp_path / "ledger.db"
    config = build_config(
        {
            "access": {"enabled": False},
            "ledger": {"url": f"sqlite:///{ledger}", "spool_path": str(tmp_path / "spool"), "flush_interval_s": 0.05},
            "providers": {"vllm": {"type": "openai", "base_url": f"{mock_server_url}/v1"}, "m": {"type": "mock"}},
            "deployments": {
                "local-llama": {"provider": "vllm", "model": "llama-3"},
                "free": {"provider": "m", "model": "mock-1"},
                "priced": {"provider": "m", "model": "mock-1", "price": {"input_per_mtok": 1, "output_per_mtok": 2}},
            },
            "routes": {n: {"deployments": [n]} for n in ("local-llama", "free", "priced")},
        }
    )
    with caplog.at_level(logging.WARNING, logger="breakwater"), serve(create_app(config, environ={})) as url:
        ids = {}
        for model in ("local-llama", "local-llama", "free", "priced"):
            r = httpx.post(f"{url}/v1/chat/completions", json={"model": model, "messages": HI}, timeout=10)
            assert r.status_code == 200
            ids[model] = r.headers["x-request-id"]
        unpriced = _samples(url, "breakwater_unpriced_requests_total")
        costs = _samples(url, "breakwater_cost_usd_total")
    warnings = [r.getMessage() for r in caplog.records if "price" in r.getMessage()]
    assert warnings == [WARNING]
    assert unpriced.get("local-llama") == 2
    assert unpriced.get("free", 0) == 0 and unpriced.get("priced", 0) == 0
    assert costs.get("local-llama", 0) == 0 and costs.get("free", 0) == 0 and costs["priced"] > 0
    assert _row(ledger, ids["local-llama"])["cost_usd"] is None, "an unknown price is null, never a guess"
    assert Decimal(_row(ledger, ids["free"])["cost_usd"]) == 0
    assert Decimal(_row(ledger, ids["priced"])["cost_usd"]) > 0


def test_the_documented_warning_and_fix_are_the_real_ones() -> None:
    """docs/configuration.md shows the warning word for word, and its price: example validates."""
    doc = (ROOT / "docs" / "configuration.md").read_text(encoding="utf-8").split("### Prices", 1)[1]
    assert WARNING in doc
    example = yaml.safe_load(re.findall(r"```yaml\n(.*?)```", doc, flags=re.DOTALL)[0])
    config = build_config(
        {"providers": {"vllm": {"type": "openai", "host": "vllm", "base_url": "http://127.0.0.1:8000/v1"}}}
        | example
        | {"routes": {"llama": {"deployments": ["local-llama"]}}}
    )
    price = config.deployments["local-llama"].price
    assert price is not None and (price.input_per_mtok, price.output_per_mtok) == (Decimal("0.10"), Decimal("0.40"))
