"""Budget alerts end to end: a key's spend crossing 50%, 80% and 100% of its budget reaches the
configured webhook (and the log) once per share, with the figures that explain it."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import openai
import pytest

from breakwater.core.config import build_config
from breakwater.server.app import create_app
from tests.server.running import admin_http, openai_sdk, serve

ADMIN = "adm-alerts-77d0"


def test_budget_crossings_reach_the_webhook_once(tmp_path: Path, webhook: tuple[str, list[dict[str, Any]]]) -> None:
    """One request's cost takes a key past all three shares of its budget: three alerts, each once."""
    url, received = webhook
    config: dict[str, Any] = {
        "server": {"admin_key": "env:BW_ADMIN"},
        "access": {"store": f"sqlite:///{tmp_path}/keys.db"},
        "alerts": {"webhook": "env:HOOK"},
        "ledger": {"enabled": False},
        "providers": {"m": {"type": "mock"}},
        "deployments": {
            "d": {"provider": "m", "model": "mock-gpt", "price": {"input_per_mtok": "1000", "output_per_mtok": "1000"}}
        },
        "routes": {"fast": {"deployments": ["d"]}},
    }
    app = create_app(build_config(config), environ={"BW_ADMIN": ADMIN, "HOOK": url})
    with serve(app) as base:
        admin = admin_http(base, ADMIN)
        made = admin.post("/admin/keys", json={"limits": {"budget": {"usd": "0.001", "period": "month"}}}).json()
        client = openai_sdk(base, made["key"])
        client.chat.completions.create(model="fast", messages=[{"role": "user", "content": "hi"}])  # ~$0.03
        with pytest.raises(openai.RateLimitError):
            client.chat.completions.create(model="fast", messages=[{"role": "user", "content": "hi"}])
        deadline = time.monotonic() + 10
        while len(received) < 3 and time.monotonic() < deadline:
            time.sleep(0.02)  # polling for the webhook's deliveries, with a deadline
    alerts = [body["alert"] for body in received]
    assert sorted(a["share"] for a in alerts) == [0.5, 0.8, 1.0]
    assert {a["rule"] for a in alerts} == {"budget"} and {a["subject"] for a in alerts} == {f"key:{made['id']}"}
    assert all(a["budget_usd"] == "0.001" and a["period"] == "month" for a in alerts)
    assert "budget" in received[0]["text"] and made["prefix"] in received[0]["text"]
